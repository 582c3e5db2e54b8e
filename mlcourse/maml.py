"""MAML: the inner loop theta -> theta' and the outer (meta) objective.

    inner step   theta^(i+1) = theta^(i) - alpha grad L_s(theta^(i)),   theta' = theta^(m)
    meta-loss    L(theta)    = mean over tasks of L_q(theta'(theta))
    meta-grad    grad L      = (I - alpha H_s)^T grad L_q(theta')          (one step; exact)
    FOMAML       grad L     ~= grad L_q(theta')                              (d theta'/d theta ~ I)
    multi-step   L_ms(theta) = mean over j = 1..m of L_q(theta^(j))          (MAML++'s loss; m = 1: MAML)

Every function takes a TaskBatch (leading task axis) and runs the whole meta-batch as one
vectorised computation.  ``model(theta, x)`` and ``loss(pred, y) -> per-task (T,)`` default to
the MLP and MSE; for that pair a hand-derived NumPy path (``fastpath``) is used, any other
model goes through autograd, which differentiates to any order.
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp
from autograd import grad as ag_grad
from autograd import value_and_grad as ag_value_and_grad

from . import fastpath, nets, tree
from ._validate import all_finite, check_alpha, check_count
from .tasks import TaskBatch

__all__ = ["inner_update", "adapt", "query_loss", "maml_loss", "maml_grad", "maml_value_and_grad", "multistep_loss",
           "multistep_value_and_grad",
           "fomaml_grad", "fomaml_value_and_grad", "query_losses"]


def _plain_mlp(theta):
    """True for a list of (W, b) pairs of plain ndarrays (not autograd boxes): checked without tree walks."""
    return (type(theta) in (list, tuple)
            and all(type(layer) in (list, tuple) and len(layer) == 2 and type(layer[0]) is onp.ndarray
                    and type(layer[1]) is onp.ndarray for layer in theta))


def _plain_batch(batch, dt):
    """(T, K, d_in, d_out) of a TaskBatch of plain ndarrays of dtype dt whose shapes fit together (one set of
    support and of query points per task), else None: the one-pass check of the common call, before the full
    checks that say what is wrong."""
    arrays = (batch.x_support, batch.y_support, batch.x_query, batch.y_query)
    if dt.kind != "f" or not all(type(a) is onp.ndarray and a.dtype == dt and a.ndim == 3 for a in arrays):
        return None
    xs, ys, xq, yq = arrays
    T, K, n = xs.shape
    if not (ys.shape[:2] == (T, K) and xq.shape[0] == yq.shape[0] == T and xq.shape[1] == yq.shape[1]
            and K > 0 and xq.shape[1] > 0 and xq.shape[2] == n and yq.shape[2] == ys.shape[2]):
        return None
    return T, K, n, ys.shape[2]


def _use_fastpath(theta, model, loss):
    return (model is nets.mlp_apply and loss is nets.mse
            and (_plain_mlp(theta) or not tree.is_traced(theta)))


def _fast(backend, theta, model, loss):
    """True when the hand-derived NumPy path computes this call; checks the backend name."""
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' or 'autograd', got {backend!r}.")
    return backend == "auto" and _use_fastpath(theta, model, loss)


def _check_batch(batch):
    if not isinstance(batch, TaskBatch):
        raise TypeError("batch must be a tasks.TaskBatch (from a sampler's .sample(...) or "
                        f"tasks.batch_from_arrays(...)), got {type(batch).__name__}.")
    return batch.validate()


def _check_theta(theta, model, x, y):
    if model is nets.mlp_apply:
        nets.check_mlp_params(theta, onp.shape(x)[-1], onp.shape(y)[-1])
    plain = _plain_mlp(theta)
    if plain or not tree.is_traced(theta):
        leaves = [a for layer in theta for a in layer] if plain else [onp.asarray(a) for a in tree.leaves(theta)]
        for arr in leaves:
            if arr.dtype.kind != "f":
                raise TypeError(f"theta must hold float arrays (float32 or float64), got dtype {arr.dtype}.")
        if not all_finite(leaves):  # NaN / inf anywhere propagate to the sum
            raise ValueError("theta contains NaN or infinite values; re-initialise it (nets.mlp_init) "
                             "or lower the learning rates.")


def _cast(batch, theta):
    """Run in the parameters' dtype (float32 for speed, float64 for checks)."""
    dt = theta[0][0].dtype  # fast path only: theta is an MLP's [(W, b), ...]
    b = batch
    same = all(getattr(a, "dtype", None) == dt for a in (b.x_support, b.y_support, b.x_query, b.y_query))
    return batch if same else batch.astype(dt)


def _task_losses(model, loss):
    def per_task_sum(theta_tasks, x, y):
        return np.sum(loss(model(theta_tasks, x), y))
    return per_task_sum


def inner_update(theta_tasks, x_support, y_support, alpha, model=nets.mlp_apply, loss=nets.mse):
    """One SGD step per task: theta' = theta - alpha grad L_s(theta).  theta_tasks has a task axis.

    The gradient of the *sum* of per-task losses w.r.t. per-task copies is each task's own gradient.
    """
    g = ag_grad(_task_losses(model, loss))(theta_tasks, x_support, y_support)
    return tree.sub(theta_tasks, tree.scale(alpha, g))


def _adapt_autograd(theta, x, y, alpha, steps, model, loss):
    theta_tasks = tree.tile_tasks(theta, np.shape(x)[0])
    for _ in range(steps):
        theta_tasks = inner_update(theta_tasks, x, y, alpha, model, loss)
    return theta_tasks


def adapt(theta, x_support, y_support, alpha=0.01, steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """theta' for every task: `steps` SGD steps of size alpha from the shared theta.

    x_support (T, K, d_in), y_support (T, K, d_out) -> per-task parameters, leading axis T.
    """
    alpha = check_alpha(alpha)
    steps = check_count(steps, "steps")
    batch = _check_batch(TaskBatch(x_support, y_support, x_support, y_support))
    _check_theta(theta, model, batch.x_support, batch.y_support)
    if _use_fastpath(theta, model, loss):
        b = _cast(batch, theta)
        theta_prime, _ = fastpath.adapt(theta, b.x_support, b.y_support, alpha, steps, keep_caches=False)
        return theta_prime
    return _adapt_autograd(theta, x_support, y_support, alpha, steps, model, loss)


def _maml_loss_autograd(theta, batch, alpha, inner_steps, model, loss):
    theta_prime = _adapt_autograd(theta, batch.x_support, batch.y_support, alpha, inner_steps, model, loss)
    return np.mean(loss(model(theta_prime, batch.x_query), batch.y_query))


def _prepare(theta, batch, alpha, inner_steps, model):
    alpha = check_alpha(alpha)
    inner_steps = check_count(inner_steps, "inner_steps")
    batch = _check_batch(batch)
    _check_theta(theta, model, batch.x_support, batch.y_support)
    return alpha, inner_steps, batch


def query_loss(theta_prime, batch, *, model=nets.mlp_apply, loss=nets.mse):
    """Mean over tasks of L_q(theta'_T) for given per-task parameters theta' (leading task axis)."""
    if _use_fastpath(theta_prime, model, loss):
        b = _cast(batch, theta_prime)
        return float(np.mean(fastpath.query_loss(theta_prime, b.x_query, b.y_query)))
    return np.mean(loss(model(theta_prime, batch.x_query), batch.y_query))


def maml_loss(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """Meta-objective: mean over tasks of L_q(theta'), theta' = adapt(theta, D_s)."""
    alpha, inner_steps, batch = _prepare(theta, batch, alpha, inner_steps, model)
    if _use_fastpath(theta, model, loss):
        b = _cast(batch, theta)
        theta_prime, _ = fastpath.adapt(theta, b.x_support, b.y_support, alpha, inner_steps, keep_caches=False)
        return query_loss(theta_prime, b)
    return _maml_loss_autograd(theta, batch, alpha, inner_steps, model, loss)


def maml_value_and_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse,
                        backend="auto"):
    """(meta-loss, exact second-order meta-gradient), the gradient shaped like theta.

    backend: "auto" (hand-derived NumPy for MLP + MSE, autograd otherwise) or "autograd".
    """
    alpha, inner_steps, batch = _prepare(theta, batch, alpha, inner_steps, model)
    if _fast(backend, theta, model, loss):
        return fastpath.maml_value_and_grad(theta, _cast(batch, theta), alpha, inner_steps)
    return ag_value_and_grad(_maml_loss_autograd)(theta, batch, alpha, inner_steps, model, loss)


def maml_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse, backend="auto"):
    """Exact meta-gradient d/dtheta mean_T L_q(theta'(theta)), through every inner step."""
    return maml_value_and_grad(theta, batch, alpha, inner_steps, model=model, loss=loss, backend=backend)[1]


def _multistep_loss_autograd(theta, batch, alpha, inner_steps, model, loss):
    theta_tasks = tree.tile_tasks(theta, batch.num_tasks)
    total = 0.0
    for _ in range(inner_steps):
        theta_tasks = inner_update(theta_tasks, batch.x_support, batch.y_support, alpha, model, loss)
        total = total + np.mean(loss(model(theta_tasks, batch.x_query), batch.y_query))
    return total / inner_steps


def multistep_loss(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """Multi-step meta-loss (Antoniou et al., 2019, "MAML++"): mean over j = 1..m of L_q(theta^(j)).

    With m = 1 it is the MAML loss.  Scoring every intermediate theta^(j), not only the last,
    keeps the learned initialisation good for any number of test-time steps up to and beyond m.
    """
    alpha, inner_steps, batch = _prepare(theta, batch, alpha, inner_steps, model)
    if inner_steps == 0:
        return maml_loss(theta, batch, alpha, 0, model=model, loss=loss)
    return _multistep_loss_autograd(theta, batch, alpha, inner_steps, model, loss)


def multistep_value_and_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse,
                             backend="auto"):
    """(multi-step meta-loss, its exact gradient): see ``multistep_loss``."""
    alpha, inner_steps, batch = _prepare(theta, batch, alpha, inner_steps, model)
    if _fast(backend, theta, model, loss):
        return fastpath.multistep_value_and_grad(theta, _cast(batch, theta), alpha, inner_steps)
    if inner_steps == 0:
        return ag_value_and_grad(_maml_loss_autograd)(theta, batch, alpha, 0, model, loss)
    return ag_value_and_grad(_multistep_loss_autograd)(theta, batch, alpha, inner_steps, model, loss)


def fomaml_value_and_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse,
                          backend="auto"):
    """(meta-loss, first-order MAML direction mean_T grad L_q(theta'_T))."""
    alpha, inner_steps, batch = _prepare(theta, batch, alpha, inner_steps, model)
    if _fast(backend, theta, model, loss):
        return fastpath.fomaml_value_and_grad(theta, _cast(batch, theta), alpha, inner_steps)
    theta_prime = _adapt_autograd(theta, batch.x_support, batch.y_support, alpha, inner_steps, model, loss)
    T = batch.num_tasks

    def query(tp):
        return np.sum(loss(model(tp, batch.x_query), batch.y_query)) / T
    value, g = ag_value_and_grad(query)(theta_prime)  # theta' held fixed: no path back to theta
    return value, tree.tree_map(lambda a: np.sum(a, axis=0), g)


def fomaml_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse, backend="auto"):
    """First-order MAML: grad L_q at theta', the inner gradient held fixed (a stop-gradient), so d theta'/d theta ~ I."""
    return fomaml_value_and_grad(theta, batch, alpha, inner_steps, model=model, loss=loss, backend=backend)[1]


def query_losses(theta, batch, alpha=0.01, steps=(0, 1, 10), *, model=nets.mlp_apply, loss=nets.mse):
    """Per-task query loss after each step count in `steps`: array (len(steps), T).  Meta-test helper."""
    alpha = check_alpha(alpha)
    steps = [check_count(s, "steps") for s in steps]
    batch = _check_batch(batch)
    _check_theta(theta, model, batch.x_support, batch.y_support)
    out = np.zeros((len(steps), batch.num_tasks))
    fast = _use_fastpath(theta, model, loss)
    b = _cast(batch, theta) if fast else batch
    th, done = (theta if fast else tree.tile_tasks(theta, batch.num_tasks)), 0
    for j, s in enumerate(steps):
        if s < done:
            raise ValueError(f"steps must be increasing, got {list(steps)}.")
        if fast:
            th, _ = fastpath.adapt(th, b.x_support, b.y_support, alpha, s - done, keep_caches=False)
            out[j] = fastpath.query_loss(th, b.x_query, b.y_query)
        else:
            for _ in range(s - done):
                th = inner_update(th, b.x_support, b.y_support, alpha, model, loss)
            out[j] = loss(model(th, b.x_query), b.y_query)
        done = s
    return out
