"""MAML and first-order MAML for N-way image classification: the Conv-4 embedding plus a linear head.

    f_(theta, phi)(x) = z W + b,   z = conv.conv4_apply(theta, x) (64-d),   phi = (W (64, n_way), b (n_way,))
    inner steps  (theta, phi)^(i+1) = (theta, phi)^(i) - alpha grad L_s,   L_s = cross-entropy on the support set
    meta-loss    L(theta) = mean over episodes of the query cross-entropy after `inner_steps` steps
    MAML         exact gradient through every inner step (second order)
    FOMAML       the query gradient at the adapted parameters, d theta' / d theta ~ I

The head starts at zero in every episode (W = 0, b = 0), and only the embedding theta is meta-learned.
The labels 0..n_way-1 are a random permutation of new classes in each episode, so a meta-learned
head could only learn a label-independent average; the zero head is that average, it makes the
model indifferent to the order of the labels, and it serves any n_way (train 20-way, test 5-way or
on the 20-way one-shot runs).  From a zero head the first inner step gives
W_k = alpha (mean support z of class k - mean support z) / n_support: the first step alone already
acts like a prototype classifier, and later steps adapt the embedding too.

Episodes come as a ``ClassificationBatch`` with a leading task axis; every function runs the whole
meta-batch as one vectorised computation (per-task parameters, ``conv.conv4_apply_tasks``), through
``maml.inner_update`` (the same inner step as the regression MAML).  BatchNorm uses the statistics
of each forward call: the support set during the inner steps, the query set after.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad as ag_value_and_grad

from . import conv, fastconv, maml, tree
from ._validate import check_alpha, check_count
from .conv import conv4_apply_tasks, embedding_size

__all__ = ["ClassificationBatch", "head_init", "classifier_apply_tasks", "task_cross_entropy", "adapt",
           "maml_loss", "maml_value_and_grad", "fomaml_value_and_grad", "predict"]


@dataclass(frozen=True)
class ClassificationBatch:
    """T episodes: x_support (T, N * K, H, W), y_support (T, N * K) int, x_query (T, Q, H, W), y_query (T, Q)."""

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    n_way: int

    @property
    def num_tasks(self) -> int:
        return int(np.shape(self.x_support)[0])

    @classmethod
    def from_episodes(cls, episodes):
        """Stack protonet.Episode objects of the same shapes into one batch."""
        episodes = list(episodes)
        if not episodes:
            raise ValueError("from_episodes needs at least one episode.")
        n_way = episodes[0].n_way
        if any(e.n_way != n_way or np.shape(e.x_support) != np.shape(episodes[0].x_support)
               or np.shape(e.x_query) != np.shape(episodes[0].x_query) for e in episodes):
            raise ValueError("every episode of a batch needs the same n_way and the same support and query sizes.")
        return cls(*(np.stack([np.asarray(getattr(e, k)) for e in episodes])
                     for k in ("x_support", "y_support", "x_query", "y_query")), n_way).validate()

    def validate(self) -> "ClassificationBatch":
        check_count(self.n_way, "n_way", 1)
        xs, xq, ys, yq = (np.asarray(a) for a in (self.x_support, self.x_query, self.y_support, self.y_query))
        if xs.ndim not in (4, 5) or xq.ndim != xs.ndim:
            raise ValueError(f"x_support and x_query must be (T, n, H, W) image batches, got {xs.shape} and {xq.shape}.")
        if ys.shape != xs.shape[:2] or yq.shape != xq.shape[:2]:
            raise ValueError(f"labels must be (T, n) like the images: y_support {ys.shape} for x_support {xs.shape}, "
                             f"y_query {yq.shape} for x_query {xq.shape}.")
        if ys.dtype.kind not in "iu" or yq.dtype.kind not in "iu":
            raise TypeError("y_support and y_query must be integer labels 0..n_way-1.")
        if min(ys.min(), yq.min()) < 0 or max(ys.max(), yq.max()) >= self.n_way:
            raise ValueError(f"labels must lie in 0..{self.n_way - 1}.")
        if not (xs.shape[0] == xq.shape[0]) or xs.shape[2:] != xq.shape[2:]:
            raise ValueError("support and query need the same number of tasks and the same image size.")
        return self


def head_init(num_tasks, n_way, dim=64, dtype=np.float32):
    """The zero head of every episode: (W (T, dim, n_way), b (T, n_way))."""
    return (np.zeros((num_tasks, dim, n_way), dtype), np.zeros((num_tasks, n_way), dtype))


def classifier_apply_tasks(params_tasks, x):
    """Logits (T, n, n_way) of per-task (body, (W, b)) on x (T, n, H, W)."""
    body, head = params_tasks
    W, b = head
    z = conv4_apply_tasks(body, x)
    return anp.einsum("tnd,tdk->tnk", z, W) + b[:, None, :]


def task_cross_entropy(logit, y):
    """Per-task mean cross-entropy: logit (T, n, N), y (T, n) int -> (T,)."""
    raw = logit._value if hasattr(logit, "_value") else logit
    shifted = logit - np.max(raw, axis=2, keepdims=True)
    lse = anp.log(anp.sum(anp.exp(shifted), axis=2))
    T, n = np.shape(y)
    picked = shifted[np.arange(T)[:, None], np.arange(n)[None, :], np.asarray(y)]
    return anp.mean(lse - picked, axis=1)


def _start(theta, batch, dtype):
    body = tree.tile_tasks(theta, batch.num_tasks)
    dim = embedding_size(np.shape(batch.x_support)[2], blocks=len(theta), channels=np.shape(theta[-1][0])[-1])
    return (body, head_init(batch.num_tasks, batch.n_way, dim, dtype))


def _dtype(theta):
    return np.asarray(tree.leaves(theta)[0]._value if hasattr(tree.leaves(theta)[0], "_value")
                      else tree.leaves(theta)[0]).dtype


def _xs(batch, dtype):
    return (np.asarray(batch.x_support, dtype), np.asarray(batch.y_support), np.asarray(batch.x_query, dtype),
            np.asarray(batch.y_query))


def _adapt(theta, batch, alpha, steps):
    dt = _dtype(theta)
    xs, ys, _, _ = _xs(batch, dt)
    params = _start(theta, batch, dt)
    for _ in range(steps):
        params = maml.inner_update(params, xs, ys, alpha, model=classifier_apply_tasks, loss=task_cross_entropy)
    return params


def _check(theta, batch, alpha, steps):
    if not isinstance(batch, ClassificationBatch):
        raise TypeError(f"batch must be a classification.ClassificationBatch, got {type(batch).__name__}.")
    batch.validate()
    return check_alpha(alpha), check_count(steps, "inner_steps")


def adapt(theta, batch, alpha=0.4, steps=1):
    """Per-task adapted (body, head) after `steps` SGD steps on each episode's support set."""
    alpha, steps = _check(theta, batch, alpha, steps)
    return _adapt(theta, batch, alpha, steps)


def _maml_loss(theta, batch, alpha, steps):
    params = _adapt(theta, batch, alpha, steps)
    _, _, xq, yq = _xs(batch, _dtype(theta))
    return anp.mean(task_cross_entropy(classifier_apply_tasks(params, xq), yq))


def maml_loss(theta, batch, alpha=0.4, inner_steps=1):
    """Mean over episodes of the query cross-entropy after adaptation."""
    alpha, inner_steps = _check(theta, batch, alpha, inner_steps)
    return _maml_loss(theta, batch, alpha, inner_steps)


def maml_value_and_grad(theta, batch, alpha=0.4, inner_steps=1):
    """(meta-loss, exact second-order gradient in theta), through every inner step."""
    alpha, inner_steps = _check(theta, batch, alpha, inner_steps)
    loss, g = ag_value_and_grad(_maml_loss)(theta, batch, alpha, inner_steps)
    return float(loss), g


def fomaml_value_and_grad(theta, batch, alpha=0.4, inner_steps=1, *, backend="auto"):
    """(meta-loss, first-order direction mean_T grad_theta' L_q(theta'_T)) for the embedding theta.

    backend: "auto" (hand-derived NumPy, ``fastconv``, when theta is plain float32 / float64 arrays)
    or "autograd".
    """
    alpha, inner_steps = _check(theta, batch, alpha, inner_steps)
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' or 'autograd', got {backend!r}.")
    if backend == "auto" and fastconv.usable(conv.check_conv4_params(theta)):
        dt = _dtype(theta)
        xs, ys, xq, yq = _xs(batch, dt)
        xs, xq = conv._images(xs, 1), conv._images(xq, 1)
        conv.check_conv4_params(theta, in_channels=xs.shape[-1])
        return fastconv.fomaml_value_and_grad(theta, xs, ys, xq, yq, batch.n_way, alpha, inner_steps)
    params = _adapt(theta, batch, alpha, inner_steps)
    _, _, xq, yq = _xs(batch, _dtype(theta))
    T = batch.num_tasks

    def query(body):
        return anp.sum(task_cross_entropy(classifier_apply_tasks((body, params[1]), xq), yq)) / T
    loss, g = ag_value_and_grad(query)(params[0])
    return float(loss), tree.tree_map(lambda a: np.sum(a, axis=0), g)


def predict(theta, batch, alpha=0.4, steps=1):
    """Adapt on each support set, then label the queries: (labels (T, Q), logits (T, Q, N))."""
    params = adapt(theta, batch, alpha, steps)
    _, _, xq, _ = _xs(batch, _dtype(theta))
    lg = np.asarray(classifier_apply_tasks(params, xq))
    return np.argmax(lg, axis=2), lg
