"""The one outer loop: sample a batch, take (loss, gradient), update the parameters with Adam.

    state = adam_init(params)
    for t in 1..iterations:
        batch         = sample_batch(rng)                  # a meta-batch of tasks, episodes, rollouts...
        loss, g       = value_and_grad(params, batch)      # MAML, FOMAML, Reptile, pretrain, your method
        params, state = adam_update(state, params, g, schedule(t))    # beta_t: outer learning rate

Every method fits it unchanged: params is any container of arrays (MAML's theta, a (theta, alpha)
pair, a dict), and the method's own hyperparameters are bound beforehand::

    vg = functools.partial(maml.maml_value_and_grad, alpha=0.01, inner_steps=1)
    theta, history = meta_train(theta, vg, task_batches(tasks.Sinusoid(), k_support=5), rng=rng,
                                iterations=1000, schedule=constant(1e-3))

Deterministic given the seed; stops with a FloatingPointError naming the iteration on NaN/inf.
"""
from __future__ import annotations

import contextlib
import functools
import json
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from . import maml, nets, tree
from ._validate import check_alpha, check_count, check_rng
from .tasks import TaskBatch

__all__ = ["meta_train", "task_batches", "constant", "cosine", "adam_init", "adam_update", "ADAM_DEFAULTS",
           "History", "evaluate", "support_and_query_losses", "save_checkpoint", "load_checkpoint"]

ADAM_DEFAULTS = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}   # Kingma & Ba (2015)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules: functions t -> beta_t, t = 1..iterations.

def constant(beta):
    """The schedule beta_t = beta."""
    beta = check_alpha(beta, "beta")

    def schedule(t):
        return beta
    schedule.__name__ = schedule.__qualname__ = f"constant({beta!r})"
    return schedule


def cosine(beta, iterations):
    """The schedule beta_t = beta (1 + cos(pi (t - 1) / iterations)) / 2: beta at t = 1, near 0 at the end.

    Settles the meta-parameters at the end of a short run.
    """
    beta = check_alpha(beta, "beta")
    iterations = check_count(iterations, "iterations", 1)

    def schedule(t):
        return beta * 0.5 * (1.0 + np.cos(np.pi * (t - 1) / iterations))
    schedule.__name__ = schedule.__qualname__ = f"cosine({beta!r}, {iterations})"
    return schedule


def _beta_at(schedule, t):
    """schedule(t), checked: a finite real number >= 0."""
    try:
        beta_t = schedule(t)
    except TypeError as e:
        raise TypeError(f"schedule(t) failed at iteration {t} ({e}); a schedule is a function of the iteration "
                        "t = 1..iterations, such as train.constant(1e-3) or train.cosine(1e-3, iterations).") from e
    if isinstance(beta_t, bool) or not isinstance(beta_t, numbers.Real):
        raise TypeError(f"schedule({t}) must return a real number beta_t, got {type(beta_t).__name__} {beta_t!r}.")
    if not np.isfinite(beta_t) or beta_t < 0:
        raise ValueError(f"schedule({t}) returned beta_t = {beta_t!r}; a learning rate must be finite and >= 0.")
    return float(beta_t)


# ---------------------------------------------------------------------------------------------
# Adam (Kingma & Ba, 2015), as a pure function of (state, params, g).

def _check_float_leaves(params, where="params"):
    leaves = tree.leaves(params)
    if not leaves:
        raise ValueError(f"{where} holds no arrays; pass a container (list / tuple / dict) of float arrays.")
    for leaf in leaves:
        kind = getattr(leaf, "dtype", np.result_type(leaf) if isinstance(leaf, numbers.Number) else None)
        if kind is None or np.dtype(kind).kind != "f":
            raise TypeError(f"{where} must hold float arrays (float32 or float64) in lists, tuples or dicts; "
                            f"found {type(leaf).__name__}"
                            + (f" of dtype {leaf.dtype}" if hasattr(leaf, "dtype") else "") + ".")


def _mismatch(a, b, where="params"):
    """Where containers a and b differ in structure or leaf shapes (None when they match)."""
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return f"{where} is a {type(a).__name__} of {len(a)}, the other {type(b).__name__}" + (
                f" of {len(b)}" if isinstance(b, (list, tuple)) else "")
        return next((m for i, (x, y) in enumerate(zip(a, b)) if (m := _mismatch(x, y, f"{where}[{i}]"))), None)
    if isinstance(a, dict):
        if not isinstance(b, dict) or list(a) != list(b):
            return f"{where} has keys {list(a)}, the other " + (
                f"keys {list(b)}" if isinstance(b, dict) else type(b).__name__)
        return next((m for k in a if (m := _mismatch(a[k], b[k], f"{where}[{k!r}]"))), None)
    if isinstance(b, (list, tuple, dict)) or np.shape(a) != np.shape(b):
        return f"{where} has shape {np.shape(a)}, the other " + (
            type(b).__name__ if isinstance(b, (list, tuple, dict)) else f"shape {np.shape(b)}")
    return None


def adam_init(params):
    """Adam's state for params: {"t": 0, "m": zeros, "v": zeros}, the moments shaped like params.

    The moments are float64 whatever the parameters' dtype: g * g of a large float32 gradient
    would overflow.
    """
    _check_float_leaves(params)

    def zeros():
        return tree.tree_map(lambda a: np.zeros(np.shape(a)), params)   # float64
    return {"t": 0, "m": zeros(), "v": zeros()}


def _check_adam_settings(b1, b2, eps):
    for name, b in (("b1", b1), ("b2", b2)):
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not 0 <= b < 1:
            raise ValueError(f"Adam's {name} must be a real number in [0, 1) (default {ADAM_DEFAULTS[name]}), "
                             f"got {b!r}.")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"Adam's eps must be a real number > 0 (default {ADAM_DEFAULTS['eps']}), got {eps!r}.")


def adam_update(state, params, g, beta_t, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step; returns (new params, new state) and mutates nothing.

        t <- t + 1,   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
        params <- params - beta_t sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

    (the bias-corrected step in the form of Kingma & Ba's section 2).  state comes from
    adam_init(params) or a previous adam_update; g is shaped like params; the new parameters
    keep their dtype, the moments stay float64.
    """
    if not isinstance(state, dict) or set(state) != {"t", "m", "v"}:
        raise TypeError("state must be Adam's state from train.adam_init(params) (a dict with t, m, v), "
                        f"got {type(state).__name__}.")
    beta_t = check_alpha(beta_t, "beta_t")
    _check_adam_settings(b1, b2, eps)
    _check_grad_like(params, g, state)
    return _adam_step(state, params, g, beta_t, b1, b2, eps)


def _check_grad_like(params, g, state):
    bad = _mismatch(params, g, "params") or _mismatch(params, state["m"], "params")
    if bad:
        raise ValueError(f"the gradient (or Adam's state) is not shaped like params: {bad}. value_and_grad must "
                         "return a gradient with the same containers and shapes as params; make the state with "
                         "adam_init(params).")


def _adam_step(state, params, g, beta_t, b1, b2, eps):
    """adam_update's arithmetic, on arguments already checked."""
    t = state["t"] + 1
    m = tree.tree_map(lambda m, gi: b1 * m + (1 - b1) * gi, state["m"], g)
    v = tree.tree_map(lambda v, gi: b2 * v + (1 - b2) * gi * gi, state["v"], g)
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    lr = beta_t * np.sqrt(c2) / c1
    new = tree.tree_map(lambda p, m, v: (p - lr * m / (np.sqrt(v) + eps)).astype(_dtype(p)), params, m, v)
    return new, {"t": t, "m": m, "v": v}


def _dtype(a):
    dt = getattr(a, "dtype", None)
    return np.result_type(a) if dt is None else dt


# ---------------------------------------------------------------------------------------------
# The loop.

@dataclass
class History:
    iteration: list = field(default_factory=list)
    loss: list = field(default_factory=list)

    def as_dict(self):
        return {"iteration": list(self.iteration), "loss": list(self.loss)}


def task_batches(task_dist, *, meta_batch_size=25, k_support=10, k_query=10, dtype=None):
    """A batch sampler rng -> task_dist.sample(rng, meta_batch_size, k_support, k_query, dtype=dtype).

    dtype: the parameters' dtype (float32 for speed); None keeps the distribution's default.
    """
    if not callable(getattr(task_dist, "sample", None)):
        raise TypeError("task_dist must be a task distribution with a .sample(rng, num_tasks, k_support, k_query) "
                        f"method, such as tasks.Sinusoid(); got {type(task_dist).__name__}.")
    meta_batch_size = check_count(meta_batch_size, "meta_batch_size", 1)
    k_support = check_count(k_support, "k_support", 1)
    k_query = check_count(k_query, "k_query", 1)
    kw = {} if dtype is None else {"dtype": np.dtype(dtype)}

    def sample_batch(rng):
        return task_dist.sample(rng, meta_batch_size, k_support, k_query, **kw)
    return sample_batch


def _describe(fn):
    """A short name for the progress bar: the function's name (through functools.partial)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def _settings(fn):
    """Hyperparameters bound with functools.partial, for the divergence message."""
    kw = {}
    while isinstance(fn, functools.partial):
        kw = {**fn.keywords, **kw}
        fn = fn.func
    return ", ".join(f"{k}={v!r}" for k, v in kw.items() if isinstance(v, (numbers.Number, str)))


@contextlib.contextmanager
def _progress_bar(progress, iterations, desc):
    if not progress:
        yield None
        return
    import sys

    from tqdm.auto import tqdm
    # In a log file (not a terminal, not Jupyter) redraw rarely instead of ten times a second.
    quiet_log = not getattr(sys.stderr, "isatty", lambda: False)() and "ipykernel" not in sys.modules
    bar = tqdm(total=iterations, desc=desc, leave=False, mininterval=10.0 if quiet_log else 0.1)
    try:
        yield bar
    finally:
        bar.close()


def _check_callable(f, name, what):
    if not callable(f):
        raise TypeError(f"{name} must be a function {what}; got {type(f).__name__} {f!r}.")


def meta_train(params, value_and_grad, sample_batch, *, rng, iterations=1000, schedule=constant(1e-3),
               adam=None, log_every=10, progress=True, callback=None):
    """Minimise the expected loss of value_and_grad with Adam; returns (params, History).

    params          initial parameters: a list / tuple / dict (nested) of float arrays
    value_and_grad  (params, batch) -> (scalar loss, gradient shaped like params); bind a
                    method's hyperparameters first, e.g.
                    functools.partial(maml.multistep_value_and_grad, alpha=0.01, inner_steps=2)
    sample_batch    rng -> batch: task_batches(task_dist, ...) for task distributions, or your own
                    (episodes, rollouts, ...); called once per iteration with rng, in order
    schedule        t -> beta_t, the outer learning rate at iteration t = 1..iterations:
                    constant(beta) or cosine(beta, iterations), or any such function
    adam            {"b1", "b2", "eps"} overriding ADAM_DEFAULTS
    log_every       record the loss in History every this many iterations (and at the last)
    callback        called as callback(t, params, loss) after each update
    """
    check_rng(rng)
    _check_callable(value_and_grad, "value_and_grad", "(params, batch) -> (loss, grad), such as "
                    "functools.partial(maml.maml_value_and_grad, alpha=0.01, inner_steps=1)")
    _check_callable(sample_batch, "sample_batch", "rng -> batch, such as "
                    "train.task_batches(tasks.Sinusoid(), meta_batch_size=25, k_support=5, k_query=10)")
    _check_callable(schedule, "schedule", "t -> beta_t, such as train.constant(1e-3) or train.cosine(1e-3, "
                    "iterations)")
    if callback is not None:
        _check_callable(callback, "callback", "(t, params, loss)")
    iterations = check_count(iterations, "iterations")
    log_every = check_count(log_every, "log_every", 1)
    if adam is None:
        adam = {}
    if not isinstance(adam, dict) or set(adam) - set(ADAM_DEFAULTS):
        raise ValueError(f"adam must be a dict with some of the keys {sorted(ADAM_DEFAULTS)}, got {adam!r}.")
    adam = {**ADAM_DEFAULTS, **adam}
    _check_adam_settings(**adam)
    state, hist = adam_init(params), History()
    with _progress_bar(progress, iterations, f"meta-train {_describe(value_and_grad)}") as bar, \
            np.errstate(over="ignore", invalid="ignore"):
        # Overflow inside a diverging step is reported once, below, as a FloatingPointError naming the iteration.
        for it in range(1, iterations + 1):
            beta_t = _beta_at(schedule, it)
            batch = sample_batch(rng)
            out = value_and_grad(params, batch)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"value_and_grad must return a pair (loss, grad), got {type(out).__name__}.")
            loss, g = out
            if np.ndim(loss) != 0:
                raise TypeError(f"value_and_grad must return a scalar loss (the mean over the batch), got shape "
                                f"{np.shape(loss)}.")
            if not np.isfinite(loss) or not all(np.all(np.isfinite(a)) for a in tree.leaves(g)):
                bound = _settings(value_and_grad)
                what = (f"the meta-loss is {float(loss)}" if not np.isfinite(loss)
                        else f"the meta-loss is {float(loss):.4g} but its gradient is not finite")
                raise FloatingPointError(
                    f"meta-training diverged at iteration {it}: {what}. Lower the outer learning rate beta "
                    f"(the schedule gives beta_t = {beta_t!r} here)"
                    + (f" or the method's step sizes ({bound}), or use fewer inner steps." if bound
                       else " or the method's own step sizes."))
            # the settings and beta_t were checked above; a gradient's shape can change from call to call
            _check_grad_like(params, g, state)
            params, state = _adam_step(state, params, g, beta_t, **adam)
            if it % log_every == 0 or it == iterations:
                hist.iteration.append(it)
                hist.loss.append(float(loss))
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if callback is not None:
                callback(it, params, float(loss))
            if bar is not None:
                bar.update(1)
    return params, hist


# ---------------------------------------------------------------------------------------------
# Meta-test.

def _test_batches(theta, task_dist, rng, num_tasks, k_shot, k_query, chunk):
    """Fresh meta-test tasks in theta's dtype, `chunk` at a time (the same tasks for the same rng)."""
    check_rng(rng)
    num_tasks = check_count(num_tasks, "num_tasks", 1)
    k_shot = check_count(k_shot, "k_shot", 1)
    dtype = tree.leaves(theta)[0].dtype
    for start in range(0, num_tasks, chunk):
        yield task_dist.sample(rng, min(chunk, num_tasks - start), k_shot, k_query, dtype=dtype)


def support_and_query_losses(theta, task_dist, *, rng, num_tasks=600, k_shot=5, k_query=100, alpha=0.01,
                             steps=(0, 1, 5, 10), model=nets.mlp_apply, loss=nets.mse, chunk=100):
    """Meta-test per task: MSE on the K support points adapted on, and on the query points.

    Returns (support, query), each of shape (len(steps), num_tasks).  A small support loss with a
    large query loss is within-task overfitting.
    """
    support, query = [], []
    for batch in _test_batches(theta, task_dist, rng, num_tasks, k_shot, k_query, chunk):
        on_support = TaskBatch(batch.x_support, batch.y_support, batch.x_support, batch.y_support)
        query.append(maml.query_losses(theta, batch, alpha, steps, model=model, loss=loss))
        support.append(maml.query_losses(theta, on_support, alpha, steps, model=model, loss=loss))
    return np.concatenate(support, axis=1), np.concatenate(query, axis=1)


def evaluate(theta, task_dist, *, rng, num_tasks=600, k_shot=5, k_query=100, alpha=0.01,
             steps=(0, 1, 5, 10), model=nets.mlp_apply, loss=nets.mse, chunk=100):
    """Meta-test: adapt on K = k_shot fresh points per task, report query MSE after each step count.

    Returns {"steps": [...], "mse": [...], "ci95": [...]} (mean over num_tasks tasks and a 95%
    interval 1.96 * std / sqrt(n)).
    """
    per_task = [maml.query_losses(theta, batch, alpha, steps, model=model, loss=loss)
                for batch in _test_batches(theta, task_dist, rng, num_tasks, k_shot, k_query, chunk)]
    L = np.concatenate(per_task, axis=1)  # (len(steps), num_tasks)
    return {"steps": [int(s) for s in steps], "mse": L.mean(axis=1).tolist(),
            "ci95": (1.96 * L.std(axis=1, ddof=1) / np.sqrt(L.shape[1])).tolist() if L.shape[1] > 1
            else [float("nan")] * len(steps), "num_tasks": int(num_tasks), "k_shot": int(k_shot)}


# ---------------------------------------------------------------------------------------------
# Checkpoints: the leaves as arrays p0, p1, ... and the containers as JSON beside them.

def _encode(params, arrays):
    """JSON description of params' containers; appends the leaves to `arrays` (index = leaf number)."""
    if isinstance(params, (list, tuple)):
        return {type(params).__name__: [_encode(p, arrays) for p in params]}
    if isinstance(params, dict):
        bad = [k for k in params if not isinstance(k, str)]
        if bad:
            raise TypeError(f"checkpoint dicts need string keys, got {bad[0]!r}; rename the key.")
        return {"dict": [[k, _encode(p, arrays)] for k, p in params.items()]}
    a = np.asarray(params)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"checkpoints store numeric arrays in lists, tuples and dicts; got {type(params).__name__}.")
    arrays.append(a)
    return len(arrays) - 1


def _decode(spec, z):
    if isinstance(spec, int):
        return z[f"p{spec}"]
    (kind, items), = spec.items()
    if kind == "dict":
        return {k: _decode(s, z) for k, s in items}
    return {"list": list, "tuple": tuple}[kind](_decode(s, z) for s in items)


def save_checkpoint(path, params, hparams=None, history=None, overwrite=False):
    """Write params (any container of arrays), the hyperparameters and the loss history to an .npz.

    Never overwrites an existing file unless overwrite=True.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"checkpoint paths end in .npz, got {path!r}.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (or --overwrite) to replace it, "
                              "or choose another path.")
    leaves = []
    meta = {"params": _encode(params, leaves), "hparams": hparams or {},
            "history": history.as_dict() if isinstance(history, History) else (history or {})}
    arrays = {f"p{i}": a for i, a in enumerate(leaves)}
    arrays["meta_json"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_checkpoint(path):
    """(params, hparams, history dict) from save_checkpoint's .npz, containers as they were saved.

    Also reads the earlier layout (arrays W0, b0, W1, ... and num_layers: a list of (W, b) pairs).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}; train one first (mlcourse train sinusoid --save PATH).")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            if "params" in meta:
                params = _decode(meta["params"], z)
            else:  # the MLP-only layout written before any container could be saved
                params = [(z[f"W{l}"], z[f"b{l}"]) for l in range(meta["num_layers"])]
    except (KeyError, ValueError, OSError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not an mlcourse checkpoint ({e}).") from None
    return params, meta["hparams"], meta["history"]
