"""Gaussian MLP policy with a learned, state-independent log standard deviation.

    pi_theta(a | s) = N(a; mu_theta(s), diag(exp(2 log_std)))
    mu_theta(s)     = W3 relu(W2 relu(W1 s + b1) + b2) + b3          (two hidden layers)

theta is a dict {"mlp": [(W1, b1), (W2, b2), (W3, b3)], "log_std": (2,)}: shared parameters, or
one set per task with a leading task axis K (W (K, in, out), b (K, out), log_std (K, 2)), which is
what the inner loop produces.  Observations are (K, M, 2) for K tasks and M states each.
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp

from autograd.tracer import getval

from .._validate import check_rng

__all__ = ["init", "mean_action", "log_prob", "check_params", "SIZES"]

SIZES = (2, 100, 100, 2)   # the paper's policy: two hidden layers of 100 ReLU units


def init(rng, sizes=SIZES, log_std=0.0, dtype=onp.float64):
    """Glorot-uniform weights, zero biases, log_std = log_std (0: a standard deviation of 1)."""
    check_rng(rng)
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or sizes[0] != 2 or sizes[-1] != 2 or min(sizes) < 1:
        raise ValueError(f"sizes must start and end with 2 (positions in, velocities out), e.g. (2, 100, 100, 2); "
                         f"got {sizes}.")
    mlp = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        lim = onp.sqrt(6.0 / (n_in + n_out))
        mlp.append((rng.uniform(-lim, lim, size=(n_in, n_out)).astype(dtype), onp.zeros(n_out, dtype=dtype)))
    return {"mlp": mlp, "log_std": onp.full(2, log_std, dtype=dtype)}


def check_params(theta, per_task=None):
    """A ValueError that says what is wrong when theta is not a policy (e.g. a checkpoint of the wrong shape).

    per_task: None (either), False (shared only) or the number of tasks K of per-task parameters.
    """
    if not isinstance(theta, dict) or set(theta) != {"mlp", "log_std"}:
        got = sorted(theta) if isinstance(theta, dict) else type(theta).__name__
        raise ValueError(f"a policy is a dict with keys ['log_std', 'mlp'] (policy.init), got {got}.")
    mlp, log_std = theta["mlp"], onp.shape(theta["log_std"])
    lead = log_std[:-1]
    if len(log_std) not in (1, 2) or log_std[-1] != 2 or (per_task is False and lead) or \
            (isinstance(per_task, int) and not isinstance(per_task, bool) and lead != (per_task,)):
        raise ValueError(f"log_std must have shape (2,) (shared) or (num_tasks, 2), got {log_std}.")
    n_prev = 2
    for l, layer in enumerate(mlp):
        if len(layer) != 2:
            raise ValueError(f"layer {l} must be a (W, b) pair.")
        W, b = onp.shape(layer[0]), onp.shape(layer[1])
        if W[:-2] != lead or b[:-1] != lead or len(W) < 2 or W[-2] != n_prev or b[-1] != W[-1]:
            raise ValueError(f"layer {l} has W {W} and b {b}; expected W {lead + (n_prev, 'n')} and b {lead + ('n',)} "
                             f"(a policy for 2D positions, e.g. policy.init(rng, {SIZES})).")
        n_prev = W[-1]
    if not mlp or n_prev != 2:
        raise ValueError(f"the last layer must output 2 velocities, got {n_prev}; use sizes ending in 2.")
    return theta


def _bias(b, lead):
    return b[..., None, :] if lead else b


def mean_action(theta, obs):
    """mu_theta(s): obs (K, M, 2) -> (K, M, 2); theta shared or per task (leading axis K)."""
    lead = onp.ndim(theta["log_std"]) == 2
    h = obs
    mlp = theta["mlp"]
    for l in range(len(mlp)):
        W, b = mlp[l]
        h = np.matmul(h, W) + _bias(b, lead)
        if l < len(mlp) - 1:
            h = h * (getval(h) > 0)     # ReLU as a product with a constant mask: cheap to differentiate twice
    return h


def log_prob(theta, obs, actions):
    """log pi_theta(a | s) of each pair: obs, actions (K, M, 2) -> (K, M)."""
    log_std = theta["log_std"]
    ls = log_std[:, None, :] if onp.ndim(log_std) == 2 else log_std
    z = (actions - mean_action(theta, obs)) * np.exp(-ls)
    return -0.5 * np.sum(z * z, axis=-1) - np.sum(ls, axis=-1) - onp.log(2.0 * onp.pi)
