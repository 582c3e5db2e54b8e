"""Functional models and losses.  Parameters are plain lists of ndarrays.

MLP parameters theta = [(W1, b1), ..., (WL, bL)], W_l of shape (fan_in, fan_out),
b_l of shape (fan_out,).  Per-task parameters (theta' after adaptation) carry a
leading task axis: W_l (T, fan_in, fan_out), b_l (T, fan_out).  Every model here
accepts both, so that a whole meta-batch runs as one computation.
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp

from ._validate import check_count, check_rng

__all__ = ["mlp_init", "mlp_apply", "mse", "linear_apply", "sine_apply", "check_mlp_params", "num_params"]


def mlp_init(rng, sizes, dtype=onp.float64):
    """Uniform weights U[-1/sqrt(fan_in), 1/sqrt(fan_in)], zero biases.  sizes = [d_in, h1, ..., d_out]."""
    check_rng(rng)
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, e.g. [1, 40, 40, 1]; got {sizes}.")
    for s in sizes:
        check_count(s, "each layer size", 1)
    theta = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = 1.0 / onp.sqrt(fan_in)  # small enough that alpha = 0.01 SGD steps are stable from the start
        W = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)
        theta.append((W, onp.zeros(fan_out, dtype=dtype)))
    return theta


def check_mlp_params(theta, x_dim=None, y_dim=None, where="theta"):
    """Raise a ValueError naming the layer whose shapes do not chain or do not fit the data."""
    if not isinstance(theta, (list, tuple)) or len(theta) == 0:
        raise TypeError(f"{where} must be a non-empty list of (W, b) pairs as made by nets.mlp_init; "
                        f"got {type(theta).__name__}.")
    prev_out = None
    for l, layer in enumerate(theta):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise TypeError(f"{where}[{l}] must be a (W, b) pair, got {type(layer).__name__}.")
        W, b = layer
        ws, bs = getattr(W, "shape", None), getattr(b, "shape", None)
        if ws is None or bs is None:
            raise TypeError(f"{where}[{l}] must hold numpy arrays (W, b), got {type(W).__name__}, "
                            f"{type(b).__name__}.")
        if (len(ws), len(bs)) not in ((2, 1), (3, 2)):
            raise ValueError(f"{where}[{l}]: W must be (fan_in, fan_out) and b (fan_out,) [or with a leading "
                             f"task axis]; got W {ws}, b {bs}.")
        if ws[-1] != bs[-1]:
            raise ValueError(f"{where}[{l}]: W has {ws[-1]} outputs but b has {bs[-1]}.")
        if prev_out is not None and ws[-2] != prev_out:
            raise ValueError(f"{where}[{l}]: W expects {ws[-2]} inputs but layer {l - 1} gives "
                             f"{prev_out}; the sizes must chain like nets.mlp_init(rng, [1, 40, 40, 1]).")
        prev_out = ws[-1]
    if x_dim is not None and theta[0][0].shape[-2] != x_dim:
        raise ValueError(f"{where}[0] expects inputs of size {theta[0][0].shape[-2]} but the data has "
                         f"x of size {x_dim}; build theta with sizes[0] = {x_dim}.")
    if y_dim is not None and prev_out != y_dim:
        raise ValueError(f"{where} outputs {prev_out} values but the data has y of size {y_dim}; "
                         f"build theta with sizes[-1] = {y_dim}.")
    return theta


def mlp_apply(theta, x):
    """f_theta(x): ReLU hidden layers, linear output.

    x: (..., K, d_in) -> (..., K, d_out).  Shared W (d_in, d_out) or per-task W (T, d_in, d_out)
    with x (T, K, d_in).  The computation runs in theta's dtype.
    """
    x = np.asarray(x, dtype=theta[0][0].dtype) if not hasattr(x, "_value") else x
    if np.ndim(x) < 2 or np.shape(x)[-1] != np.shape(theta[0][0])[-2]:
        raise ValueError(f"x has shape {np.shape(x)} but theta's first layer expects (..., K, "
                         f"{np.shape(theta[0][0])[-2]}); add the feature axis with x[..., None] or build theta "
                         f"with sizes[0] = {np.shape(x)[-1] if np.ndim(x) else 1}.")
    h = x
    last = len(theta) - 1
    for l, (W, b) in enumerate(theta):
        if np.ndim(b) == 2:  # per-task bias (T, out) -> (T, 1, out)
            b = np.expand_dims(b, 1)
        h = np.matmul(h, W) + b
        if l < last:
            h = h * (h > 0)  # ReLU with relu'(0) = 0, as the fast path (np.maximum would give 1/2 at ties)
    return h


def mse(pred, y):
    """Mean squared error per task: mean over examples and outputs, shape (...,) for (..., K, d)."""
    return np.mean((pred - y) ** 2, axis=(-2, -1))


def _task_scalar(theta, x):
    """Reshape a scalar (or per-task (T,)) parameter so it broadcasts against x (T, K, 1)."""
    return np.reshape(theta, (-1,) + (1,) * (np.ndim(x) - 1)) if np.ndim(theta) else theta


def linear_apply(theta, x):
    """Worked example 2's model f_theta(x) = theta x, theta scalar or per-task (T,)."""
    return _task_scalar(theta, x) * x


def sine_apply(theta, x):
    """Worked example 1's model f_theta(x) = sin(theta x), theta scalar or per-task (T,)."""
    return np.sin(_task_scalar(theta, x) * x)


def num_params(theta):
    return int(sum(onp.size(W) + onp.size(b) for W, b in theta))
