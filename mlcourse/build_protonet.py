"""Exercises 10 (build a ProtoNet yourself): the notebook's settings, its stated target, the given embedding and the data.

The learner's notebook and the grader read the same numbers and images from here, so what the notebook states is
what the grader scores (the question bank, which the notebook may not import, takes them from this module).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import conv
from .data import omniglot, protocol

__all__ = ["IMAGE_SIZE", "CHANNELS", "BLOCKS", "N_WAY", "K_SHOT", "K_QUERY", "BETA", "EPISODES", "SEED",
           "TARGET_ACCURACY", "EVAL_EPISODES", "embed", "ExerciseData", "load", "missing_splits", "how_to_get",
           "exercise_data", "heldout_accuracy"]

# the notebook's settings, which the full-run test uses too
IMAGE_SIZE = 14             # Omniglot downscaled 105 -> 14 pixels (area average)
CHANNELS, BLOCKS = 16, 3    # the embedding: conv.conv4_init(rng, CHANNELS, BLOCKS), 14 -> 7 -> 3 -> 1, 16 numbers
N_WAY, K_SHOT, K_QUERY = 20, 1, 2   # training episodes: 20-way 1-shot, 2 queries per class (60 images)
BETA = 0.004                # Adam's learning rate
EPISODES = 300              # training episodes (about 2 s of CPU time)
SEED = 0

# the stated target: mean accuracy on the first EVAL_EPISODES of the protocol's fixed 5-way 1-shot episodes
# (15 queries per class) drawn from the three alphabets of images_background_small2 that training never sees
TARGET_ACCURACY = 0.70
EVAL_EPISODES = 300


def embed(theta, x):
    """The given embedding: images (n, s, s) -> (n, d) by conv.conv4_apply, BatchNorm over the n images of the call."""
    return conv.conv4_apply(theta, x)


@dataclass(frozen=True)
class ExerciseData:
    """images (136, 20, s, s) float32: small1's characters, 20 drawers each (ink = 1); heldout: the
    protocol's 5-way 1-shot episodes on the alphabets small1 lacks (``protocol.EpisodeSet``)."""

    images: np.ndarray
    heldout: object


@functools.lru_cache(maxsize=1)
def load():
    """ExerciseData (MissingDataError when Omniglot's two small background splits are not on this machine)."""
    train_split = omniglot.load_split(protocol.TRAIN_SPLIT, size=IMAGE_SIZE)
    heldout = protocol.evaluation_episodes(protocol.evaluation_data(size=IMAGE_SIZE))["b"].subset(EVAL_EPISODES)
    return ExerciseData(np.stack(train_split.classes).astype(np.float32), heldout)


def missing_splits():
    """The Omniglot splits this exercise needs that are not on this machine (names)."""
    out = []
    for split in (protocol.TRAIN_SPLIT, protocol.EVAL_SPLIT):
        try:
            omniglot.find_split(split)
        except (omniglot.MissingDataError, OSError):
            out.append(split)
    return out


def how_to_get(splits):
    """The one shell line that downloads the given splits."""
    return " && ".join(omniglot.download_command(s) for s in splits)


def exercise_data():
    """ExerciseData, or None after one printed note saying how to get Omniglot (the notebook carries on)."""
    missing = missing_splits()
    if not missing:
        try:
            return load()
        except (omniglot.MissingDataError, PermissionError):   # a folder we may not read counts as missing
            missing = [protocol.TRAIN_SPLIT, protocol.EVAL_SPLIT]
    print("Omniglot is not on this machine, so the cells that train and score on it are skipped (the checks of your "
          "loss and of your loop still run). To get it, run in a terminal\n\n"
          f"    {how_to_get(missing)}\n\nthen restart the kernel and run the notebook again.")
    return None


def _accuracy(theta, episode):
    """Fraction of the episode's queries whose nearest prototype (squared distance) is their class.

    Written out here rather than through mlcourse.protonet, whose functions exercises 10 asks the learner to write
    (they are unavailable while it is graded, and the notebook scores its model with this).
    """
    z = np.asarray(embed(theta, np.concatenate([episode.x_support, episode.x_query])))
    zs, zq = z[:len(episode.x_support)], z[len(episode.x_support):]
    onehot = (np.asarray(episode.y_support)[:, None] == np.arange(episode.n_way)[None, :]).astype(z.dtype)
    c = onehot.T @ zs / onehot.sum(axis=0)[:, None]
    d = np.sum((zq[:, None, :] - c[None, :, :]) ** 2, axis=2)
    return float(np.mean(np.argmin(d, axis=1) == np.asarray(episode.y_query)))


def heldout_accuracy(theta, data=None):
    """Mean accuracy and its 95% interval over the held-out episodes (each embedded in one call)."""
    data = load() if data is None else data
    acc = [_accuracy(theta, data.heldout.episode(e)) for e in range(len(data.heldout))]
    s = protocol.score(acc)
    return s["accuracy"], s["ci95"]
