"""The outer loop: sample a meta-batch, take a meta-gradient, update theta with Adam.

    for it in 1..iterations:
        batch  = p(T).sample(rng, meta_batch_size, k_support, k_query)
        loss, g = meta_grad(theta, batch, alpha, inner_steps)    # MAML, FOMAML, Reptile, pretrain...
        theta  = Adam(theta, g, beta)                            # beta: outer learning rate

Deterministic given the seed; stops with a FloatingPointError naming the iteration on NaN/inf.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import maml, nets, tree
from ._validate import check_alpha, check_count, check_rng
from .tasks import TaskBatch

__all__ = ["Adam", "METHODS", "meta_train", "evaluate", "support_and_query_losses", "save_checkpoint", "load_checkpoint", "History"]


def _methods():
    from . import baseline, reptile
    return {
        "maml": maml.maml_value_and_grad,
        "maml_multistep": maml.multistep_value_and_grad,
        "fomaml": maml.fomaml_value_and_grad,
        "reptile": reptile.reptile_pseudo_grad,
        "pretrain": baseline.pretrain_value_and_grad,
    }


METHODS = ("maml", "maml_multistep", "fomaml", "reptile", "pretrain")


@dataclass
class Adam:
    """Adam (Kingma & Ba, 2015) on a parameter container; state is plain arrays."""

    beta: float = 1e-3       # outer learning rate
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    m: list = None
    v: list = None
    t: int = 0

    def step(self, theta, g):
        if self.m is None:
            # moments in float64: g * g of a large float32 gradient would overflow
            self.m = tree.tree_map(lambda a: np.zeros(np.shape(a)), theta)
            self.v = tree.tree_map(lambda a: np.zeros(np.shape(a)), theta)
        self.t += 1
        self.m = tree.tree_map(lambda m, gi: self.b1 * m + (1 - self.b1) * gi, self.m, g)
        self.v = tree.tree_map(lambda v, gi: self.b2 * v + (1 - self.b2) * gi * gi, self.v, g)
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        lr = self.beta * np.sqrt(c2) / c1
        return tree.tree_map(lambda p, m, v: (p - lr * m / (np.sqrt(v) + self.eps)).astype(p.dtype),
                             theta, self.m, self.v)


@dataclass
class History:
    iteration: list = field(default_factory=list)
    loss: list = field(default_factory=list)

    def as_dict(self):
        return {"iteration": list(self.iteration), "loss": list(self.loss)}


def meta_train(theta, task_dist, *, rng, method="maml", iterations=1000, meta_batch_size=25, k_support=10,
               k_query=10, alpha=0.01, inner_steps=1, beta=1e-3, beta_schedule="constant", log_every=10,
               progress=True, callback=None):
    """Meta-train theta on tasks from task_dist; returns (theta, History).

    beta_schedule: "constant", or "cosine" (beta_t = beta (1 + cos(pi t / iterations)) / 2, which
    settles the meta-parameters at the end of a short run).

    method: "maml" (exact second order), "fomaml", "reptile" or "pretrain" (the baseline), or any
    function (theta, batch, alpha, inner_steps) -> (loss, grad).  Data are sampled in theta's dtype.
    """
    check_rng(rng)
    iterations = check_count(iterations, "iterations")
    meta_batch_size = check_count(meta_batch_size, "meta_batch_size", 1)
    alpha, beta = check_alpha(alpha), check_alpha(beta, "beta")
    inner_steps = check_count(inner_steps, "inner_steps")
    log_every = check_count(log_every, "log_every", 1)
    if callable(method):
        value_and_grad = method
    elif method in METHODS:
        value_and_grad = _methods()[method]
    else:
        raise ValueError(f"method must be one of {', '.join(METHODS)} or a function, got {method!r}.")
    if beta_schedule not in ("constant", "cosine"):
        raise ValueError(f"beta_schedule must be 'constant' or 'cosine', got {beta_schedule!r}.")
    dtype = tree.leaves(theta)[0].dtype
    opt, hist = Adam(beta=beta), History()
    bar = None
    if progress:
        import sys

        from tqdm.auto import tqdm
        # In a log file (not a terminal, not Jupyter) redraw rarely instead of ten times a second.
        quiet_log = not getattr(sys.stderr, "isatty", lambda: False)() and "ipykernel" not in sys.modules
        bar = tqdm(total=iterations, desc=f"meta-train {method if isinstance(method, str) else 'custom'}",
                   leave=False, mininterval=10.0 if quiet_log else 0.1)
    # Overflow inside a diverging step is reported once, below, as a FloatingPointError naming the iteration.
    err = np.errstate(over="ignore", invalid="ignore")
    err.__enter__()
    try:
        for it in range(1, iterations + 1):
            batch = task_dist.sample(rng, meta_batch_size, k_support, k_query, dtype=dtype)
            loss, g = value_and_grad(theta, batch, alpha, inner_steps)
            if not np.isfinite(loss) or not all(np.all(np.isfinite(a)) for a in tree.leaves(g)):
                raise FloatingPointError(
                    f"meta-training diverged at iteration {it}: the meta-loss is {loss!r}. "
                    f"Lower beta (now {beta}) or alpha (now {alpha}), or use fewer inner steps.")
            if beta_schedule == "cosine":
                opt.beta = beta * 0.5 * (1.0 + np.cos(np.pi * (it - 1) / iterations))
            theta = opt.step(theta, g)
            if it % log_every == 0 or it == iterations:
                hist.iteration.append(it)
                hist.loss.append(float(loss))
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if callback is not None:
                callback(it, theta, float(loss))
            if bar is not None:
                bar.update(1)
    finally:
        err.__exit__(None, None, None)
        if bar is not None:
            bar.close()
    return theta, hist


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


def save_checkpoint(path, theta, hparams=None, history=None, overwrite=False):
    """Write theta, the hyperparameters and the loss history to an .npz; never overwrites unless asked."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"checkpoint paths end in .npz, got {path!r}.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (or --overwrite) to replace it, "
                              "or choose another path.")
    arrays = {}
    for l, (W, b) in enumerate(theta):
        arrays[f"W{l}"], arrays[f"b{l}"] = np.asarray(W), np.asarray(b)
    meta = {"num_layers": len(theta), "hparams": hparams or {},
            "history": history.as_dict() if isinstance(history, History) else (history or {})}
    arrays["meta_json"] = np.array(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_checkpoint(path):
    """(theta, hparams, history dict) from save_checkpoint's .npz."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}; train one first (mlcourse train sinusoid --save PATH).")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            theta = [(z[f"W{l}"], z[f"b{l}"]) for l in range(meta["num_layers"])]
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(f"{path} is not an mlcourse checkpoint ({e}).") from None
    return theta, meta["hparams"], meta["history"]
