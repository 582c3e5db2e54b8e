"""Meta-test summary shared by the methods whose adaptation is not MAML's (Meta-SGD, ANIL).

``evaluate_with`` draws exactly the fresh tasks ``train.evaluate`` draws for the same rng and
sizes (same sampler calls, same chunks), so every method of a run is scored on the same tasks.
"""
from __future__ import annotations

import numpy as np

from . import train
from ._validate import check_count


def evaluate_with(per_task_losses, params, task_dist, *, rng, num_tasks, k_shot, k_query, steps, chunk=100,
                  dtype=None):
    """{"steps", "mse", "ci95", "num_tasks", "k_shot"} from per_task_losses(batch) -> (len(steps), T).

    The mean over num_tasks fresh tasks and its 95% interval 1.96 std / sqrt(n), as train.evaluate.
    dtype: the parameters' dtype (the tasks are drawn in it); default the first leaf's.
    """
    steps = [check_count(s, "steps") for s in steps]
    probe = params if dtype is None else [np.zeros(1, dtype=dtype)]
    L = np.concatenate([per_task_losses(batch) for batch in
                        train._test_batches(probe, task_dist, rng, num_tasks, k_shot, k_query, chunk)], axis=1)
    return {"steps": [int(s) for s in steps], "mse": L.mean(axis=1).tolist(),
            "ci95": (1.96 * L.std(axis=1, ddof=1) / np.sqrt(L.shape[1])).tolist() if L.shape[1] > 1
            else [float("nan")] * len(steps), "num_tasks": int(num_tasks), "k_shot": int(k_shot)}
