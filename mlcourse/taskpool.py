"""A fixed pool of training tasks, task augmentation, and the meta-train / meta-test gap.

Across-task overfitting (meta-overfitting): theta is good after adaptation on the tasks it was
meta-trained on and worse on new tasks from p(T).  Measured as

    gap = E_{T ~ p(T), new}[L_q(theta'_T)] - E_{T in pool}[L_q(theta'_T)]

with fresh support and query points in both terms, so that only the *tasks* differ.

``TaskPool`` is a sampler like ``tasks.Sinusoid``: ``sample(rng, num_tasks, k_support, k_query)``
draws tasks from the pool (with replacement) and fresh x for each.  With ``amplitude_scale`` or
``phase_shift`` it augments every drawn task: y = (r A) sin(x - (phi + delta)), r and delta drawn
per task, new tasks made from old ones with the family's own symmetries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_count, check_rng
from .tasks import Sinusoid, TaskBatch

__all__ = ["TaskPool", "generalisation_gap", "early_stopping_index"]


def _range(name, r, low_bound=None):
    lo, hi = (float(v) for v in r)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or (low_bound is not None and lo < low_bound):
        raise ValueError(f"{name} must be a finite (low, high) pair with {low_bound if low_bound is not None else ''}"
                         f"{' <= ' if low_bound is not None else ''}low <= high, got {r!r}.")
    return lo, hi


@dataclass(frozen=True)
class TaskPool:
    """A fixed, finite set of sinusoid tasks (amplitude[i], phase[i]); x is drawn fresh every time."""

    amplitude: np.ndarray
    phase: np.ndarray
    amplitude_scale: tuple = (1.0, 1.0)   # augmentation: A -> r A, r ~ U[amplitude_scale]
    phase_shift: tuple = (0.0, 0.0)       # augmentation: phi -> phi + delta, delta ~ U[phase_shift]
    x_range: tuple = Sinusoid.x_range

    def __post_init__(self):
        a, p = np.asarray(self.amplitude, dtype=float), np.asarray(self.phase, dtype=float)
        if a.ndim != 1 or p.shape != a.shape:
            raise ValueError(f"amplitude and phase must be 1-D arrays of the same length (one entry per task), "
                             f"got shapes {a.shape} and {p.shape}.")
        if a.size == 0:
            raise ValueError("the task pool is empty: give it at least one task (TaskPool.draw(rng, size) with "
                             "size >= 1).")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(p))):
            raise ValueError("the task pool's amplitudes and phases must be finite.")
        _range("amplitude_scale", self.amplitude_scale, 0.0)
        _range("phase_shift", self.phase_shift)
        _range("x_range", self.x_range)
        object.__setattr__(self, "amplitude", a)
        object.__setattr__(self, "phase", p)

    @classmethod
    def draw(cls, rng, size, dist=Sinusoid(), **augmentation):
        """A pool of `size` tasks drawn once from the sinusoid distribution dist."""
        check_rng(rng)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"a task pool needs size >= 1 tasks (an integer), got {size!r}.")
        p = dist.sample_params(rng, int(size))
        return cls(p["amplitude"], p["phase"], x_range=dist.x_range, **augmentation)

    @property
    def size(self) -> int:
        return int(self.amplitude.size)

    @property
    def augmented(self) -> bool:
        return tuple(self.amplitude_scale) != (1.0, 1.0) or tuple(self.phase_shift) != (0.0, 0.0)

    def without_augmentation(self) -> "TaskPool":
        """The same tasks, drawn as they are (what "the meta-training tasks" are for the gap)."""
        return TaskPool(self.amplitude, self.phase, x_range=self.x_range)

    def sample(self, rng, num_tasks=25, k_support=10, k_query=10, dtype=np.float64) -> TaskBatch:
        """num_tasks tasks of the pool (drawn with replacement, augmented if asked), fresh x for each."""
        check_rng(rng)
        check_count(num_tasks, "num_tasks", 1)
        check_count(k_support, "k_support", 1)
        check_count(k_query, "k_query", 1)
        idx = rng.integers(self.size, size=num_tasks)
        amplitude, phase = self.amplitude[idx], self.phase[idx]
        if self.augmented:
            amplitude = amplitude * rng.uniform(*self.amplitude_scale, size=num_tasks)
            phase = phase + rng.uniform(*self.phase_shift, size=num_tasks)
        x = rng.uniform(*self.x_range, size=(num_tasks, k_support + k_query, 1))
        y = Sinusoid.function(x, amplitude[:, None, None], phase[:, None, None])
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskBatch(x[:, :k_support], y[:, :k_support], x[:, k_support:], y[:, k_support:],
                         {"amplitude": amplitude, "phase": phase, "index": idx})


def _losses(name, a):
    a = np.asarray(a, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of per-task losses, got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite losses; evaluate again with a model that did not diverge.")
    return a


def generalisation_gap(train_losses, test_losses):
    """{"train", "test", "gap", "ci95"}: mean post-adaptation loss on meta-training tasks and on new tasks,
    gap = test - train, and a 95% interval of the gap (independent samples:
    1.96 sqrt(var_train / n_train + var_test / n_test); 0 for a single loss on a side)."""
    tr, te = _losses("train_losses", train_losses), _losses("test_losses", test_losses)

    def var_of_mean(a):
        return float(np.var(a, ddof=1) / a.size) if a.size > 1 else 0.0
    return {"train": float(tr.mean()), "test": float(te.mean()), "gap": float(te.mean() - tr.mean()),
            "ci95": float(1.96 * np.sqrt(var_of_mean(tr) + var_of_mean(te)))}


def early_stopping_index(validation_losses):
    """Index of the smallest meta-validation loss (the first one on ties): where early stopping keeps theta."""
    return int(np.argmin(_losses("validation_losses", validation_losses)))
