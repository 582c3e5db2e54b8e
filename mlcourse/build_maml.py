"""Exercises 09 (build MAML yourself): the notebook's settings, its stated targets and the fresh tasks it is scored on.

The learner's notebook and the grader read the same numbers from here, so what the notebook states is what the
grader scores (the question bank, which the notebook may not import, takes them from this module).
"""
from __future__ import annotations

import functools

import numpy as np

from .tasks import Sinusoid

__all__ = ["SIZES", "META_BATCH_SIZE", "K_SHOT", "ALPHA", "BETA", "ITERATIONS", "SEED", "TARGET_MSE",
           "TARGET_PRETRAIN_MSE", "EVAL_TASKS", "EVAL_SEED", "eval_tasks"]

# the notebook's settings, which the full-run tests use too
SIZES = (1, 40, 40, 1)      # the MAML paper's MLP
META_BATCH_SIZE = 25        # tasks per meta-iteration
K_SHOT = 10                 # support points per task, and as many query points
ALPHA = 0.01                # inner step size
BETA = 0.02                 # Adam's outer learning rate
ITERATIONS = 500            # meta-iterations (about 4 s with a vectorised maml_loss)
SEED = 0

# the stated targets, scored on EVAL_TASKS fresh tasks (K_SHOT support points, 100 query points each)
TARGET_MSE = 1.2            # meta-trained: query MSE after one inner step at most this
TARGET_PRETRAIN_MSE = 3.5   # pretrained: query MSE with no adaptation at most this (predicting 0 gives about 4.2)
EVAL_TASKS = 1000
EVAL_SEED = 9009


@functools.lru_cache(maxsize=1)
def eval_tasks():
    """The EVAL_TASKS fresh tasks the full runs are scored on (TaskBatch: K_SHOT support points, 100 query points)."""
    return Sinusoid().sample(np.random.default_rng(EVAL_SEED), EVAL_TASKS, K_SHOT, 100)
