"""The "minimal background" protocol on Omniglot: train on small1, test on three unseen alphabets.

    training classes   every character of images_background_small1 (5 alphabets, 136 characters)
                       and its rotations by 90, 180, 270 degrees as new classes: 544 classes
    (a) within-alphabet 20-way 1-shot: Japanese_(katakana) or Sanskrit at random, 20 of its characters,
        two different drawers; the support images are the first drawer's, the 20 queries the second's
        (one per class), as in the one-shot benchmark of Lake et al. (2015).  1000 episodes, error.
    (b) 5-way 1-shot over Japanese_(katakana) + Sanskrit + Tagalog pooled (106 characters), 16 distinct
        drawers per class: the first is the support image, the other 15 the queries.  1000 episodes, accuracy.

These are the alphabets of images_background_small2 that are not in small1.  The episodes are
drawn once from EVAL_SEED, so every method and checkpoint is scored on the same ones; rotations
never appear at evaluation.  Intervals are 1.96 sd / sqrt(episodes) over the per-episode scores.

    train = training_classes()                          # OmniglotData, 544 classes
    ev = evaluation_episodes()                          # {"a": EpisodeSet, "b": EpisodeSet}
    ep = ev["a"].episode(0)                             # protonet.Episode, 20 + 20 images
    score(per_episode_accuracy)                         # {"accuracy", "error", "ci95", "episodes"}
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_count
from ..protonet import Episode
from .omniglot import MissingDataError, find_split, load_split, with_rotations

__all__ = ["TRAIN_SPLIT", "EVAL_SPLIT", "SPLITS", "missing_splits", "EVAL_ALPHABETS", "WITHIN_ALPHABETS", "EVAL_SEED",
           "NUM_EPISODES", "EpisodeSet", "training_classes", "evaluation_data", "evaluation_episodes", "within_alphabet_episodes",
           "pooled_episodes", "score"]

TRAIN_SPLIT = "images_background_small1"
EVAL_SPLIT = "images_background_small2"
EVAL_ALPHABETS = ("Japanese_(katakana)", "Sanskrit", "Tagalog")   # small2 minus small1
WITHIN_ALPHABETS = ("Japanese_(katakana)", "Sanskrit")            # the two with >= 20 characters
EVAL_SEED = 20150611
NUM_EPISODES = 1000
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)   # what the protocol reads


def missing_splits(root=None) -> tuple:
    """The names in SPLITS that are neither under ``root``, nor in $MLCOURSE_OMNIGLOT, nor in the cache."""
    missing = []
    for split in SPLITS:
        try:
            find_split(split, root)
        except MissingDataError:
            missing.append(split)
    return tuple(missing)


def training_classes(root=None, size=28):
    """small1 with every rotation (0, 90, 180, 270 degrees) as its own class: OmniglotData of 544 classes."""
    return with_rotations(load_split(TRAIN_SPLIT, root=root, size=size))


def evaluation_data(root=None, size=28):
    """The three evaluation alphabets of small2 (106 characters, 20 drawers each, sorted by file name)."""
    return load_split(EVAL_SPLIT, root=root, size=size, alphabets=EVAL_ALPHABETS)


@dataclass(frozen=True)
class EpisodeSet:
    """Fixed episodes as indices into ``data``: classes (E, n_way), drawers (E, n_way, 1 + k_query).

    Drawer column 0 is each class's support image, the others its queries.
    """

    data: object
    classes: np.ndarray
    drawers: np.ndarray
    name: str = ""

    def __len__(self):
        return len(self.classes)

    @property
    def n_way(self) -> int:
        return self.classes.shape[1]

    @property
    def k_query(self) -> int:
        return self.drawers.shape[2] - 1

    def subset(self, n) -> "EpisodeSet":
        """The first n episodes (the audit and quick checks score a prefix)."""
        n = check_count(n, "n", 1)
        return EpisodeSet(self.data, self.classes[:n], self.drawers[:n], self.name)

    def arrays(self, e):
        """(x_support (N, s, s), y_support (N,), x_query (N * Q, s, s), y_query (N * Q,)) of episode e."""
        cls, dr = self.classes[e], self.drawers[e]
        imgs = [self.data.classes[c] for c in cls]
        xs = np.stack([imgs[k][dr[k, 0]] for k in range(len(cls))])
        xq = np.stack([imgs[k][d] for k in range(len(cls)) for d in dr[k, 1:]])
        ys = np.arange(len(cls))
        yq = np.repeat(np.arange(len(cls)), dr.shape[1] - 1)
        return xs, ys, xq, yq

    def episode(self, e) -> Episode:
        xs, ys, xq, yq = self.arrays(e)
        return Episode(xs, ys, xq, yq, self.n_way, np.asarray(self.classes[e]))

    def batch(self, start, stop):
        """Episodes start..stop-1 stacked: x_support (E, N, s, s), y_support (E, N), x_query (E, N*Q, s, s), y_query."""
        parts = [self.arrays(e) for e in range(start, min(stop, len(self)))]
        return tuple(np.stack(p) for p in zip(*parts))


def within_alphabet_episodes(data, rng, num_episodes=NUM_EPISODES, n_way=20, alphabets=WITHIN_ALPHABETS):
    """(a): per episode an alphabet at random, n_way of its characters, two different drawers."""
    groups = data.by_alphabet()
    pools = [np.asarray(groups[a]) for a in alphabets]
    for a, p in zip(alphabets, pools):
        if len(p) < n_way:
            raise ValueError(f"{a} has {len(p)} characters, fewer than n_way = {n_way}.")
    classes, drawers = [], []
    for _ in range(check_count(num_episodes, "num_episodes", 1)):
        pool = pools[rng.integers(len(pools))]
        classes.append(rng.choice(pool, size=n_way, replace=False))
        n_drawers = min(len(data.classes[c]) for c in classes[-1])
        d = rng.choice(n_drawers, size=2, replace=False)
        drawers.append(np.tile(d, (n_way, 1)))
    return EpisodeSet(data, np.array(classes), np.array(drawers), "within-alphabet 20-way 1-shot")


def pooled_episodes(data, rng, num_episodes=NUM_EPISODES, n_way=5, k_query=15):
    """(b): n_way characters of the pooled alphabets, 1 + k_query distinct drawers for each."""
    classes, drawers = [], []
    for _ in range(check_count(num_episodes, "num_episodes", 1)):
        cls = rng.choice(data.num_classes, size=n_way, replace=False)
        classes.append(cls)
        drawers.append(np.stack([rng.choice(len(data.classes[c]), size=1 + k_query, replace=False) for c in cls]))
    return EpisodeSet(data, np.array(classes), np.array(drawers), "5-way 1-shot")


def evaluation_episodes(data=None, seed=EVAL_SEED, num_episodes=NUM_EPISODES, root=None):
    """{"a": within-alphabet 20-way 1-shot, "b": 5-way 1-shot with 15 queries}, drawn from one seed."""
    data = evaluation_data(root) if data is None else data
    rng = np.random.default_rng(seed)
    a = within_alphabet_episodes(data, rng, num_episodes)
    b = pooled_episodes(data, rng, num_episodes)
    return {"a": a, "b": b}


def score(per_episode_accuracy):
    """Mean accuracy, error = 1 - accuracy, and the 95% interval 1.96 sd / sqrt(n) over episodes."""
    acc = np.asarray(per_episode_accuracy, dtype=float)
    if acc.ndim != 1 or len(acc) == 0:
        raise ValueError("per_episode_accuracy must be a non-empty 1-D array of per-episode accuracies.")
    ci = float(1.96 * acc.std(ddof=1) / np.sqrt(len(acc))) if len(acc) > 1 else float("nan")
    return {"accuracy": float(acc.mean()), "error": float(1.0 - acc.mean()), "ci95": ci, "episodes": int(len(acc))}
