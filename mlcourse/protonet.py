"""Prototypical Networks (Snell, Swersky & Zemel, 2017): classify by the nearest class mean.

    z = f_theta(x)                                   embeddings (conv.conv4_apply by default)
    c_k = mean of z over the support images of class k               (prototypes, (n_way, d))
    logits[q, k] = -||z_q - c_k||^2                                   (n_query, n_way)
    L(theta) = mean over queries of cross-entropy(softmax(logits[q]), y_q)

An episode is embedded in one call (support and query images together), so BatchNorm normalises
with the statistics of the whole episode (see ``conv``), as in training; for evaluation,
``model=functools.partial(conv.conv4_apply, stats=stats)`` embeds each image with fixed population
statistics instead (how the shipped ProtoNet is scored).  Everything is a pure function of
(theta, episode); ``protonet_value_and_grad`` plugs into ``train.meta_train`` unchanged.

    ep = Episode.from_sample(OmniglotEpisodes(data, n_way=60, k_shot=1, k_query=5).sample(rng))
    loss, g = protonet_value_and_grad(theta, ep)
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad as ag_value_and_grad

from . import conv, fastconv
from ._validate import check_count
from .conv import conv4_apply

__all__ = ["Episode", "prototypes", "logits", "cross_entropy", "protonet_loss", "protonet_value_and_grad",
           "predict", "accuracy", "embed_episode"]


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot episode of images.

    x_support (n_way * k_shot, H, W) float, y_support (n_way * k_shot,) int in 0..n_way-1,
    x_query (n_query, H, W) float, y_query (n_query,) int; ``classes`` (n_way,) says which class of the
    data set each label is (optional, for plots).
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    n_way: int
    classes: np.ndarray | None = None

    @classmethod
    def from_sample(cls, sample, n_way=None):
        """From the 5-tuple of ``OmniglotEpisodes.sample`` / ``tasks.sample_episode``."""
        if isinstance(sample, Episode):
            return sample
        if not isinstance(sample, (tuple, list)) or len(sample) not in (4, 5):
            raise TypeError("sample must be the (x_support, y_support, x_query, y_query, chosen) tuple of "
                            f"OmniglotEpisodes.sample(rng); got {type(sample).__name__}.")
        xs, ys, xq, yq = sample[:4]
        chosen = np.asarray(sample[4]) if len(sample) == 5 else None
        if n_way is None:
            n_way = len(chosen) if chosen is not None else int(np.max(ys)) + 1
        return cls(np.asarray(xs), np.asarray(ys), np.asarray(xq), np.asarray(yq), int(n_way), chosen).validate()

    @property
    def k_shot(self) -> int:
        return len(self.y_support) // self.n_way

    def validate(self, where="episode") -> "Episode":
        """ValueError / TypeError saying what to change when shapes or labels are wrong."""
        check_count(self.n_way, f"{where}.n_way", 1)
        xs, xq = np.asarray(self.x_support), np.asarray(self.x_query)
        ys, yq = np.asarray(self.y_support), np.asarray(self.y_query)
        for name, x in (("x_support", xs), ("x_query", xq)):
            if x.ndim not in (3, 4):
                raise ValueError(f"{where}.{name} must be images of shape (n, H, W) or (n, H, W, C), got {x.shape}.")
            if x.dtype.kind not in "fiu":
                raise TypeError(f"{where}.{name} must be numeric images, got dtype {x.dtype}.")
        if xs.shape[1:] != xq.shape[1:]:
            raise ValueError(f"{where}: support images {xs.shape[1:]} and query images {xq.shape[1:]} differ in size.")
        for name, y, x in (("y_support", ys, xs), ("y_query", yq, xq)):
            if y.ndim != 1 or len(y) != len(x):
                raise ValueError(f"{where}.{name} must hold one integer label per image ({len(x)}), got shape "
                                 f"{y.shape}.")
            if y.dtype.kind not in "iu":
                raise TypeError(f"{where}.{name} must be integer class labels 0..n_way-1, got dtype {y.dtype}.")
            if len(y) and (y.min() < 0 or y.max() >= self.n_way):
                raise ValueError(f"{where}.{name} holds labels outside 0..{self.n_way - 1}; relabel the classes "
                                 "of the episode 0..n_way-1.")
        if len(ys) == 0 or len(yq) == 0:
            raise ValueError(f"{where} needs at least one support and one query image.")
        missing = sorted(set(range(self.n_way)) - set(ys.tolist()))
        if missing:
            raise ValueError(f"{where}: classes {missing[:5]} have no support image, so they have no prototype; "
                             "every class 0..n_way-1 needs k_shot >= 1 support images.")
        return self


def prototypes(embeddings_support, y_support, n_way):
    """c_k = mean of the support embeddings of class k: (n_support, d), (n_support,) -> (n_way, d)."""
    y = np.asarray(y_support)
    onehot = (y[:, None] == np.arange(n_way)[None, :]).astype(np.result_type(embeddings_support, np.float32))
    counts = onehot.sum(axis=0)
    if np.any(counts == 0):
        raise ValueError(f"classes {np.flatnonzero(counts == 0)[:5].tolist()} have no support example; every "
                         f"class 0..{n_way - 1} needs one.")
    return anp.dot(onehot.T, embeddings_support) / counts[:, None]


def logits(embeddings_query, protos):
    """-||z_q - c_k||^2 for every query q and prototype k: (n_query, d), (n_way, d) -> (n_query, n_way)."""
    zq2 = anp.sum(embeddings_query * embeddings_query, axis=1, keepdims=True)
    c2 = anp.sum(protos * protos, axis=1)[None, :]
    return -(zq2 - 2.0 * anp.dot(embeddings_query, protos.T) + c2)


def cross_entropy(logit, y):
    """Mean over rows of -log softmax(logit)[y]: logit (n, n_way), y (n,) int."""
    mx = np.max(logit._value if hasattr(logit, "_value") else logit, axis=1, keepdims=True)
    shifted = logit - mx
    lse = anp.log(anp.sum(anp.exp(shifted), axis=1))
    picked = shifted[np.arange(len(y)), np.asarray(y)]
    return anp.mean(lse - picked)


def _check_episode(episode):
    if not isinstance(episode, Episode):
        episode = Episode.from_sample(episode)
    return episode


def embed_episode(theta, episode, model=conv4_apply):
    """(z_support, z_query): the episode's images embedded in one call of model(theta, x)."""
    xs, xq = np.asarray(episode.x_support), np.asarray(episode.x_query)
    z = model(theta, np.concatenate([xs, xq]))
    return z[:len(xs)], z[len(xs):]


def _loss(theta, episode, model):
    zs, zq = embed_episode(theta, episode, model)
    return cross_entropy(logits(zq, prototypes(zs, episode.y_support, episode.n_way)), episode.y_query)


def protonet_loss(theta, episode, *, model=conv4_apply):
    """Cross-entropy over the query set of softmax(-||z_q - c_k||^2)."""
    return _loss(theta, _check_episode(episode).validate(), model)


def protonet_value_and_grad(theta, episode, *, model=conv4_apply, backend="auto"):
    """(loss, gradient shaped like theta): what ``train.meta_train`` calls each iteration.

    backend: "auto" (hand-derived NumPy, ``fastconv``, for the Conv-4 embedding; autograd for any
    other model) or "autograd".
    """
    episode = _check_episode(episode).validate()
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' or 'autograd', got {backend!r}.")
    if backend == "auto" and model is conv4_apply and fastconv.usable(conv.check_conv4_params(theta)):
        xs, xq = (conv._cast_x(conv._images(np.asarray(x), 0), theta[0][0])
                  for x in (episode.x_support, episode.x_query))
        conv.check_conv4_params(theta, in_channels=xs.shape[-1])
        return fastconv.protonet_value_and_grad(theta, xs, episode.y_support, xq, episode.y_query, episode.n_way)
    loss, g = ag_value_and_grad(_loss)(theta, episode, model)
    return float(loss), g


def predict(theta, x_support, y_support, x_query, n_way, *, model=conv4_apply):
    """Labels of the queries (nearest prototype) and the logits: ((n_query,), (n_query, n_way))."""
    ep = Episode(np.asarray(x_support), np.asarray(y_support), np.asarray(x_query),
                 np.zeros(len(x_query), dtype=int), int(n_way)).validate()
    zs, zq = embed_episode(theta, ep, model)
    lg = np.asarray(logits(zq, prototypes(zs, ep.y_support, ep.n_way)))
    return np.argmax(lg, axis=1), lg


def accuracy(theta, episode, *, model=conv4_apply):
    """Fraction of the episode's queries assigned to their own class."""
    episode = _check_episode(episode).validate()
    labels, _ = predict(theta, episode.x_support, episode.y_support, episode.x_query, episode.n_way, model=model)
    return float(np.mean(labels == np.asarray(episode.y_query)))
