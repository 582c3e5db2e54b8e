"""Meta-SGD (Li, Zhou, Chen & Li, 2017): MAML with a learned step size for every parameter.

    params       {"theta": theta, "log_alpha": log alpha}, alpha a container shaped like theta
                 (one step size per entry); alpha = exp(log_alpha) > 0
    inner step   theta^(i+1) = theta^(i) - alpha * grad L_s(theta^(i))      (* : entry by entry)
    meta-loss    L(theta, alpha) = mean over tasks of L_q(theta'(theta, alpha))
    meta-grad    exact, through every inner step, for theta and alpha jointly:
                 one step: dL/dtheta = (I - diag(alpha) H_s)^T grad L_q(theta'),
                           dL/dalpha = -grad L_s(theta) * grad L_q(theta'),
                           dL/dlog_alpha = alpha * dL/dalpha

Initialisation as in the paper: theta as for MAML, alpha drawn uniformly from [0.005, 0.1],
one independent draw per entry (``init_alpha``).  One difference: the paper meta-learns alpha
itself, whose entries may then turn negative (a step uphill along that coordinate); here the
outer loop learns log alpha, so every step size stays positive and Adam's steps on it are
relative ones (an entry of 0.005 and one of 0.1 move by the same factor).  Without it, Adam's
steps of about beta = 0.001 carry entries near 0.005 below zero within the first hundreds of
iterations.  A step size given directly (``params_from_alpha``, ``metasgd_step``) must be finite
and >= 0, and every public function says so with a ValueError (also for a checkpoint).

Same shape as ``maml``: ``metasgd_value_and_grad(params, batch, inner_steps)`` -> (loss, grad
shaped like params), vectorised over the meta-batch, any ``model(theta, x)`` and ``loss(pred, y)
-> (T,)``.  For the MLP + MSE pair the gradients come from a hand-derived NumPy path
(``fastpath.metasgd_value_and_grad``, equal to autograd's to 1e-10 in float64); any other model or
loss goes through autograd, which differentiates through the inner loop.
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp
from autograd import grad as ag_grad
from autograd import value_and_grad as ag_value_and_grad

from . import _evaluation, fastpath, maml, nets, train, tree
from ._validate import all_finite, check_count, check_rng
from .tasks import TaskBatch

__all__ = ["ALPHA_INIT", "init_alpha", "metasgd_init", "params_from_alpha", "alpha_of", "check_params",
           "metasgd_step", "inner_update", "adapt", "metasgd_loss", "metasgd_value_and_grad", "metasgd_multistep_loss",
           "metasgd_multistep_value_and_grad", "query_losses", "evaluate", "load"]

ALPHA_INIT = (0.005, 0.1)   # Li et al. (2017), section 4: alpha initialised uniformly in [0.005, 0.1]


def init_alpha(rng, theta, low=ALPHA_INIT[0], high=ALPHA_INIT[1]):
    """alpha shaped like theta, every entry an independent draw from U[low, high], in theta's dtype."""
    check_rng(rng)
    if not (onp.isfinite(low) and onp.isfinite(high) and 0 < low <= high):
        raise ValueError(f"the alpha range must satisfy 0 < low <= high (the paper: {ALPHA_INIT}), "
                         f"got ({low!r}, {high!r}).")
    return tree.tree_map(lambda a: rng.uniform(low, high, size=onp.shape(a)).astype(onp.asarray(a).dtype), theta)


def _float_leaves_like_theta(theta, x, name, where, how_to_make):
    """(leaves of x as arrays, number of non-finite entries), after checking x is float and shaped like theta."""
    bad = train._mismatch(theta, x, "theta")
    if bad:
        raise ValueError(f"{where}: {name} must be shaped like theta (one step size per parameter): {bad}. "
                         + how_to_make)
    leaves = [onp.asarray(a) for a in tree.leaves(x)]
    for a in leaves:
        if a.dtype.kind != "f":
            raise TypeError(f"{where}: {name} must hold float arrays, got dtype {a.dtype}.")
    return leaves, sum(int(a.size - onp.count_nonzero(onp.isfinite(a))) for a in leaves)


def _check_step_sizes(theta, alpha, where):
    """alpha (step sizes given directly) shaped like theta, float, finite and >= 0."""
    leaves, nonfinite = _float_leaves_like_theta(theta, alpha, "alpha", where,
                                                 "Make it with metasgd.init_alpha(rng, theta).")
    if nonfinite:
        raise ValueError(f"{where}: alpha has {nonfinite} NaN or infinite entries; step sizes must be finite "
                         "(re-initialise them with metasgd.init_alpha(rng, theta)).")
    negative = sum(int(onp.count_nonzero(a < 0)) for a in leaves)
    if negative:
        low = min(float(a.min()) for a in leaves if a.size)
        raise ValueError(f"{where}: alpha has {negative} negative entries (smallest {low:.3g}); Meta-SGD's step "
                         "sizes must be >= 0 (a negative one climbs the support loss). Clip them with "
                         "tree.tree_map(lambda a: np.maximum(a, 0), alpha) or re-initialise with metasgd.init_alpha.")
    return alpha


def params_from_alpha(theta, alpha):
    """{"theta", "log_alpha"} from step sizes alpha (shaped like theta, finite, > 0)."""
    _check_step_sizes(theta, alpha, "alpha")
    zero = sum(int(onp.count_nonzero(onp.asarray(a) == 0)) for a in tree.leaves(alpha))
    if zero:
        raise ValueError(f"alpha has {zero} entries equal to 0, whose logarithm is -inf; use a small positive "
                         "step size (e.g. 1e-6) for parameters that should not move.")
    with onp.errstate(divide="ignore"):
        return {"theta": theta, "log_alpha": tree.tree_map(onp.log, alpha)}


def metasgd_init(rng, sizes, dtype=onp.float64):
    """{"theta", "log_alpha"} for an MLP: theta = nets.mlp_init(rng, sizes), alpha = init_alpha(rng, theta)."""
    theta = nets.mlp_init(rng, sizes, dtype=dtype)
    return params_from_alpha(theta, init_alpha(rng, theta))


def _split(params):
    if not isinstance(params, dict) or set(params) != {"theta", "log_alpha"}:
        raise TypeError('params must be a dict {"theta": theta, "log_alpha": log alpha} with log_alpha shaped like '
                        "theta (metasgd.metasgd_init(rng, [1, 40, 40, 1]) or metasgd.params_from_alpha(theta, "
                        "alpha) make one); got " + (f"a dict with keys {sorted(params)}" if isinstance(params, dict)
                                                   else type(params).__name__) + ".")
    return params["theta"], params["log_alpha"]


def alpha_of(params):
    """The learned step sizes alpha = exp(log_alpha), shaped like theta."""
    check_params(params)
    return tree.tree_map(np.exp, params["log_alpha"])


def _plain_and_fine(theta, log_alpha, check_theta=False):
    """The common case in one pass: plain MLP parameters, log_alpha float, shaped like theta, finite and
    below log(largest float) (so alpha = exp(log_alpha) is finite); with check_theta, theta float and finite
    too.  False sends the call to the full checks, which say what is wrong."""
    if not (maml._plain_mlp(theta) and maml._plain_mlp(log_alpha) and len(theta) == len(log_alpha)):
        return False
    leaves = [a for layer in log_alpha for a in layer]
    thetas = [t for layer in theta for t in layer]
    if any(a.dtype.kind != "f" or a.shape != t.shape for a, t in zip(leaves, thetas)):
        return False
    if check_theta and any(t.dtype.kind != "f" for t in thetas):
        return False
    flat = onp.concatenate([a.ravel() for a in leaves])
    with onp.errstate(invalid="ignore", over="ignore"):  # NaN or inf anywhere survive the sum
        fine = bool(onp.isfinite(flat.sum()) and flat.max(initial=0) < onp.log(onp.finfo(flat.dtype).max) - 1)
    return fine and (not check_theta or all_finite(thetas))


def check_params(params, where="params"):
    """params checked: log_alpha shaped like theta, float and finite (so alpha is positive and finite)."""
    theta, log_alpha = _split(params)
    if _plain_and_fine(theta, log_alpha):
        return params
    if tree.is_traced(log_alpha):
        return params
    leaves, nonfinite = _float_leaves_like_theta(
        theta, log_alpha, "log_alpha", where,
        "Make params with metasgd.params_from_alpha(theta, metasgd.init_alpha(rng, theta)).")
    if nonfinite:
        raise ValueError(f"{where}: the learned log_alpha has {nonfinite} NaN or infinite entries (alpha = 0, "
                         "infinite or undefined); the run diverged. Retrain with a lower outer learning rate beta, "
                         "or re-initialise with metasgd.metasgd_init.")
    with onp.errstate(over="ignore"):
        big = sum(int(onp.count_nonzero(~onp.isfinite(onp.exp(a)))) for a in leaves)
    if big:
        raise ValueError(f"{where}: {big} learned step sizes exp(log_alpha) overflow to infinity; the run diverged. "
                         "Retrain with a lower outer learning rate beta.")
    return params


def metasgd_step(theta, alpha, x_support, y_support, *, model=nets.mlp_apply, loss=nets.mse):
    """One Meta-SGD inner step from a shared theta with step sizes alpha given directly (finite, >= 0).

    theta' = theta - alpha * grad L_s(theta) per task: x_support (T, K, d_in) -> theta' with task axis T.
    """
    batch = maml._check_batch(TaskBatch(x_support, y_support, x_support, y_support))
    maml._check_theta(theta, model, batch.x_support, batch.y_support)
    _check_step_sizes(theta, alpha, "alpha")
    return inner_update(tree.tile_tasks(theta, batch.num_tasks), batch.x_support, batch.y_support, alpha, model, loss)


def _common_call(params, batch, inner_steps):
    """True when the call is the common one, checked in one pass: theta and log_alpha plain MLP arrays of one
    float dtype, shaped alike, whose sizes chain and fit a well-formed batch in that dtype; everything finite and
    log_alpha below log(largest float).  False sends the call through the full checks, which say what is wrong."""
    if type(params) is not dict or len(params) != 2 or type(batch) is not TaskBatch:
        return False
    theta, log_alpha = params.get("theta"), params.get("log_alpha")
    if (type(inner_steps) is not int or inner_steps < 0 or not maml._plain_mlp(theta) or not theta
            or not maml._plain_mlp(log_alpha) or len(log_alpha) != len(theta)):
        return False
    dt = theta[0][0].dtype
    shapes = maml._plain_batch(batch, dt)
    if shapes is None:
        return False
    n, d_out = shapes[2:]
    leaves = []
    for (W, b), (aW, ab) in zip(theta, log_alpha):
        if (W.dtype != dt or b.dtype != dt or aW.dtype != dt or ab.dtype != dt or W.ndim != 2
                or b.shape != (W.shape[1],) or W.shape[0] != n or aW.shape != W.shape or ab.shape != b.shape):
            return False
        n = W.shape[1]
        leaves += (aW, ab)
    if n != d_out:
        return False
    k = sum(a.size for a in leaves)
    leaves += [a for layer in theta for a in layer] + [batch.x_support, batch.y_support, batch.x_query, batch.y_query]
    flat = onp.concatenate([a.ravel() for a in leaves])  # log_alpha first: flat[:k]
    return (onp.count_nonzero(onp.isfinite(flat)) == flat.size
            and flat[:k].max(initial=0) < onp.log(onp.finfo(dt).max) - 1)


def _prepare(params, batch, inner_steps, model):
    if model is nets.mlp_apply and _common_call(params, batch, inner_steps):
        return inner_steps, batch
    theta, log_alpha = _split(params)
    inner_steps = check_count(inner_steps, "inner_steps")
    batch = maml._check_batch(batch)
    if model is nets.mlp_apply and _plain_and_fine(theta, log_alpha, check_theta=True):
        nets.check_mlp_params(theta, batch.x_support.shape[-1], batch.y_support.shape[-1])
        return inner_steps, batch
    check_params(params)
    maml._check_theta(theta, model, batch.x_support, batch.y_support)
    return inner_steps, batch


def inner_update(theta_tasks, x_support, y_support, alpha, model=nets.mlp_apply, loss=nets.mse):
    """One Meta-SGD step per task: theta' = theta - alpha * grad L_s(theta); alpha shared by the tasks."""
    g = ag_grad(maml._task_losses(model, loss))(theta_tasks, x_support, y_support)
    return tree.tree_map(lambda t, a, gi: t - a * gi, theta_tasks, alpha, g)


def _steps(params, x, y, steps, model, loss):
    """theta^(1), ..., theta^(steps) per task (a generator), from params' theta and alpha."""
    alpha = tree.tree_map(np.exp, params["log_alpha"])
    theta_tasks = tree.tile_tasks(params["theta"], np.shape(x)[0])
    yield theta_tasks
    for _ in range(steps):
        theta_tasks = inner_update(theta_tasks, x, y, alpha, model, loss)
        yield theta_tasks


def adapt(params, x_support, y_support, steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """theta' for every task after `steps` Meta-SGD steps; x_support (T, K, d_in) -> leading task axis T."""
    steps, batch = _prepare(params, TaskBatch(x_support, y_support, x_support, y_support), steps, model)
    *_, theta_prime = _steps(params, batch.x_support, batch.y_support, steps, model, loss)
    return theta_prime


def _loss_last(params, batch, inner_steps, model, loss):
    *_, theta_prime = _steps(params, batch.x_support, batch.y_support, inner_steps, model, loss)
    return np.mean(loss(model(theta_prime, batch.x_query), batch.y_query))


def _loss_multistep(params, batch, inner_steps, model, loss):
    if inner_steps == 0:
        return _loss_last(params, batch, 0, model, loss)
    path = list(_steps(params, batch.x_support, batch.y_support, inner_steps, model, loss))[1:]
    return sum(np.mean(loss(model(th, batch.x_query), batch.y_query)) for th in path) / inner_steps


def metasgd_loss(params, batch, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """Meta-objective: mean over tasks of L_q(theta'), theta' after `inner_steps` Meta-SGD steps."""
    inner_steps, batch = _prepare(params, batch, inner_steps, model)
    return _loss_last(params, batch, inner_steps, model, loss)


def _fast(backend, params, model, loss):
    """True when the hand-derived NumPy path computes this call: MLP + MSE, theta and log_alpha plain
    [(W, b), ...] of one dtype."""
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' or 'autograd', got {backend!r}.")
    theta, log_alpha = params["theta"], params["log_alpha"]
    return (backend == "auto" and model is nets.mlp_apply and loss is nets.mse
            and maml._plain_mlp(theta) and maml._plain_mlp(log_alpha)
            and len({a.dtype for layer in (*theta, *log_alpha) for a in layer}) == 1)


def _fast_value_and_grad(params, batch, inner_steps, multistep):
    theta, log_alpha = params["theta"], params["log_alpha"]
    value, (g_theta, g_log_alpha) = fastpath.metasgd_value_and_grad(theta, log_alpha, maml._cast(batch, theta),
                                                                    inner_steps, multistep)
    like = type(theta)
    return value, {"theta": like(type(t)(g) for t, g in zip(theta, g_theta)),
                   "log_alpha": type(log_alpha)(type(t)(g) for t, g in zip(log_alpha, g_log_alpha))}


def metasgd_value_and_grad(params, batch, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse, backend="auto"):
    """(meta-loss, exact gradient for theta and log_alpha jointly), the gradient shaped like params.

    backend: "auto" (hand-derived NumPy for MLP + MSE, autograd otherwise) or "autograd".
    """
    inner_steps, batch = _prepare(params, batch, inner_steps, model)
    if _fast(backend, params, model, loss):
        return _fast_value_and_grad(params, batch, inner_steps, multistep=False)
    return ag_value_and_grad(_loss_last)(params, batch, inner_steps, model, loss)


def metasgd_multistep_loss(params, batch, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """Multi-step meta-loss (as ``maml.multistep_loss``): mean over j = 1..m of L_q(theta^(j))."""
    inner_steps, batch = _prepare(params, batch, inner_steps, model)
    return _loss_multistep(params, batch, inner_steps, model, loss)


def metasgd_multistep_value_and_grad(params, batch, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse,
                                     backend="auto"):
    """(multi-step meta-loss, its exact gradient for theta and log_alpha): notebook 07's objective."""
    inner_steps, batch = _prepare(params, batch, inner_steps, model)
    if _fast(backend, params, model, loss):
        return _fast_value_and_grad(params, batch, inner_steps, multistep=True)
    return ag_value_and_grad(_loss_multistep)(params, batch, inner_steps, model, loss)


def query_losses(params, batch, steps=(0, 1, 10), *, model=nets.mlp_apply, loss=nets.mse):
    """Per-task query loss after each step count in `steps` with the learned alpha: (len(steps), T)."""
    steps = [check_count(s, "steps") for s in steps]
    if any(b < a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"steps must be increasing, got {list(steps)}.")
    _, batch = _prepare(params, batch, 0, model)
    dt = tree.leaves(params["theta"])[0].dtype
    if any(getattr(a, "dtype", None) != dt for a in (batch.x_support, batch.y_support, batch.x_query, batch.y_query)):
        batch = batch.astype(dt)
    out = onp.zeros((len(steps), batch.num_tasks))
    path = _steps(params, batch.x_support, batch.y_support, max(steps, default=0), model, loss)
    for s, th in enumerate(path):
        for j in [j for j, sj in enumerate(steps) if sj == s]:
            out[j] = loss(model(th, batch.x_query), batch.y_query)
    return out


def evaluate(params, task_dist, *, rng, num_tasks=600, k_shot=5, k_query=100, steps=(0, 1, 5, 10),
             model=nets.mlp_apply, loss=nets.mse, chunk=100):
    """Meta-test with the learned alpha: the same fresh tasks and summary as ``train.evaluate``."""
    check_params(params)
    return _evaluation.evaluate_with(lambda b: query_losses(params, b, steps, model=model, loss=loss),
                                     params["theta"], task_dist, rng=rng, num_tasks=num_tasks, k_shot=k_shot,
                                     k_query=k_query, steps=steps, chunk=chunk)


def load(path):
    """(params, hparams, history) of a Meta-SGD checkpoint, its learned step sizes checked."""
    params, hparams, history = train.load_checkpoint(path)
    try:
        check_params(params, where=str(path))
    except TypeError as e:
        raise ValueError(f"{path} is not a Meta-SGD checkpoint ({e})") from None
    return params, hparams, history
