"""Task distributions p(T): every sampler returns a TaskBatch with a leading task axis.

A task T is a small regression problem with its own support set D_s (used to adapt,
theta -> theta') and query set D_q (used to score theta').  Shapes:

    x_support, y_support : (num_tasks, k_support, dim)
    x_query,   y_query   : (num_tasks, k_query, dim)

``params`` holds the hidden variables that generated each task (amplitude, phase,
slope...), each of shape (num_tasks,), for plots and closed forms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import all_finite, check_count, check_rng

__all__ = ["TaskBatch", "Sinusoid", "LinearSlope", "Scalar1D", "batch_from_arrays", "sample_episode"]


@dataclass(frozen=True)
class TaskBatch:
    """A batch of tasks: support and query sets with a leading task axis."""

    x_support: np.ndarray  # (T, K, d_in)
    y_support: np.ndarray  # (T, K, d_out)
    x_query: np.ndarray    # (T, Q, d_in)
    y_query: np.ndarray    # (T, Q, d_out)
    params: dict = field(default_factory=dict)  # name -> (T,) task variables

    @property
    def num_tasks(self) -> int:
        return self.x_support.shape[0]

    @property
    def k_support(self) -> int:
        return self.x_support.shape[1]

    @property
    def k_query(self) -> int:
        return self.x_query.shape[1]

    def task(self, i: int) -> "TaskBatch":
        """Task i alone, keeping the task axis (shape (1, K, d))."""
        sl = slice(i, i + 1)
        return TaskBatch(self.x_support[sl], self.y_support[sl], self.x_query[sl], self.y_query[sl],
                         {k: np.asarray(v)[sl] for k, v in self.params.items()})

    def astype(self, dtype) -> "TaskBatch":
        return TaskBatch(*(np.asarray(a, dtype=dtype) for a in
                           (self.x_support, self.y_support, self.x_query, self.y_query)), dict(self.params))

    def validate(self, where: str = "batch", finite: bool = True) -> "TaskBatch":
        """Check shapes and values; raise ValueError saying what to change.

        finite=False leaves the NaN / inf check to a caller that folds it into a reduction of its own
        (and calls validate() again to name the culprit when that reduction is not finite).
        """
        names = ("x_support", "y_support", "x_query", "y_query")
        arrays = [np.asarray(getattr(self, n)) for n in names]
        well_formed = all(a.ndim == 3 and a.dtype.kind in "fiu" for a in arrays)
        if not (well_formed and (not finite or all_finite(arrays))):  # one reduction when all is well
            for n, a in zip(names, arrays):
                if a.ndim != 3:
                    raise ValueError(f"{where}.{n} must have shape (num_tasks, K, dim), got shape {a.shape}; "
                                     "add the task axis with a[None] or the feature axis with a[..., None].")
                if a.dtype.kind not in "fiu":
                    raise TypeError(f"{where}.{n} must be numeric, got dtype {a.dtype}.")
                if not np.isfinite(np.sum(a, dtype=np.float64)):  # NaN / inf anywhere propagate to the sum
                    raise ValueError(f"{where}.{n} contains NaN or infinite values; clean the data first.")
        xs, ys, xq, yq = arrays
        if xs.shape[1] == 0:
            raise ValueError(f"{where} has K = 0 support examples: adaptation needs k_support >= 1.")
        if xq.shape[1] == 0:
            raise ValueError(f"{where} has 0 query examples: the meta-loss needs k_query >= 1.")
        if not (xs.shape[0] == ys.shape[0] == xq.shape[0] == yq.shape[0]):
            raise ValueError(f"{where}: the task axes differ ({xs.shape[0]}, {ys.shape[0]}, {xq.shape[0]}, "
                             f"{yq.shape[0]}); every array needs the same num_tasks first.")
        if xs.shape[1] != ys.shape[1] or xq.shape[1] != yq.shape[1]:
            raise ValueError(f"{where}: x and y hold different numbers of examples "
                             f"(support {xs.shape[1]} vs {ys.shape[1]}, query {xq.shape[1]} vs {yq.shape[1]}).")
        if xs.shape[2] != xq.shape[2] or ys.shape[2] != yq.shape[2]:
            raise ValueError(f"{where}: support and query have different feature sizes "
                             f"(x {xs.shape[2]} vs {xq.shape[2]}, y {ys.shape[2]} vs {yq.shape[2]}).")
        return self


def batch_from_arrays(x_support, y_support, x_query, y_query, params=None) -> TaskBatch:
    """Build a TaskBatch from your own arrays, adding missing task / feature axes.

    1-D arrays are read as one task with scalar inputs: (K,) -> (1, K, 1).
    2-D arrays are read as (num_tasks, K) with scalar inputs: -> (T, K, 1).
    """
    def fix(a):
        a = np.asarray(a, dtype=float) if not np.issubdtype(np.asarray(a).dtype, np.floating) else np.asarray(a)
        if a.ndim == 1:
            return a[None, :, None]
        if a.ndim == 2:
            return a[:, :, None]
        return a
    return TaskBatch(fix(x_support), fix(y_support), fix(x_query), fix(y_query), dict(params or {})).validate()


def _check_sample_args(rng, num_tasks, k_support, k_query):
    check_rng(rng)
    check_count(num_tasks, "num_tasks", 1)
    check_count(k_support, "k_support", 1)
    check_count(k_query, "k_query", 1)


def _check_range(name, r):
    lo, hi = (float(v) for v in r)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"{name} must be a finite (low, high) pair with low <= high, got {r!r}.")
    return lo, hi


@dataclass(frozen=True)
class Sinusoid:
    """The MAML paper's regression tasks: y = A sin(x - phi).

    A ~ U[0.1, 5.0], phi ~ U[0, pi], x ~ U[-5, 5] (Finn, Abbeel & Levine, 2017, section 5.1).
    """

    amplitude_range: tuple = (0.1, 5.0)
    phase_range: tuple = (0.0, np.pi)
    x_range: tuple = (-5.0, 5.0)

    def __post_init__(self):
        for n in ("amplitude_range", "phase_range", "x_range"):
            _check_range(n, getattr(self, n))

    @staticmethod
    def function(x, amplitude, phase):
        """y = A sin(x - phi); amplitude and phase broadcast against x."""
        return amplitude * np.sin(x - phase)

    def sample_params(self, rng, num_tasks):
        check_rng(rng)
        amplitude = rng.uniform(*self.amplitude_range, size=num_tasks)
        phase = rng.uniform(*self.phase_range, size=num_tasks)
        return {"amplitude": amplitude, "phase": phase}

    def sample(self, rng, num_tasks=25, k_support=10, k_query=10, dtype=np.float64) -> TaskBatch:
        """Sample num_tasks sinusoids with k_support + k_query points each."""
        _check_sample_args(rng, num_tasks, k_support, k_query)
        p = self.sample_params(rng, num_tasks)
        x = rng.uniform(*self.x_range, size=(num_tasks, k_support + k_query, 1))
        y = self.function(x, p["amplitude"][:, None, None], p["phase"][:, None, None])
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskBatch(x[:, :k_support], y[:, :k_support], x[:, k_support:], y[:, k_support:], p)


@dataclass(frozen=True)
class LinearSlope:
    """Worked example 2: y = a x + noise, one slope a per task.

    a ~ U[slope_range], x ~ U[x_range], noise ~ N(0, noise_std^2).  With the model
    f_theta(x) = theta x and MSE, one inner step gives theta' = (1 - c) theta + c a,
    c = 2 alpha mean(x^2) (exact when noise_std = 0).
    """

    slope_range: tuple = (0.5, 2.5)
    x_range: tuple = (-1.0, 1.0)
    noise_std: float = 0.0

    def __post_init__(self):
        _check_range("slope_range", self.slope_range)
        _check_range("x_range", self.x_range)
        if not np.isfinite(self.noise_std) or self.noise_std < 0:
            raise ValueError(f"noise_std must be finite and >= 0, got {self.noise_std!r}.")

    @property
    def mean_slope(self) -> float:
        """E[a], the best initialisation theta* when only a small step is allowed."""
        return 0.5 * (self.slope_range[0] + self.slope_range[1])

    def sample(self, rng, num_tasks=25, k_support=5, k_query=5, dtype=np.float64) -> TaskBatch:
        _check_sample_args(rng, num_tasks, k_support, k_query)
        a = rng.uniform(*self.slope_range, size=num_tasks)
        x = rng.uniform(*self.x_range, size=(num_tasks, k_support + k_query, 1))
        y = a[:, None, None] * x + self.noise_std * rng.standard_normal(x.shape)
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskBatch(x[:, :k_support], y[:, :k_support], x[:, k_support:], y[:, k_support:], {"slope": a})


@dataclass(frozen=True)
class Scalar1D:
    """Worked example 1: tasks for a single scalar parameter theta.

    Task: y = sin(omega x), omega ~ U[omega_range], x ~ U[x_range].  Model:
    f_theta(x) = sin(theta x) (see ``nets.sine_apply``).  The support loss L_s(theta)
    is curved and its curvature L_s''(theta) changes sign, so the curvature term
    of the 1D meta-gradient dL_q(theta')/dtheta = L_q'(theta') (1 - alpha L_s''(theta))
    visibly matters.
    """

    omega_range: tuple = (0.5, 1.5)
    x_range: tuple = (-2.0, 2.0)

    def __post_init__(self):
        _check_range("omega_range", self.omega_range)
        _check_range("x_range", self.x_range)

    def sample(self, rng, num_tasks=1, k_support=5, k_query=15, dtype=np.float64) -> TaskBatch:
        _check_sample_args(rng, num_tasks, k_support, k_query)
        omega = rng.uniform(*self.omega_range, size=num_tasks)
        x = rng.uniform(*self.x_range, size=(num_tasks, k_support + k_query, 1))
        y = np.sin(omega[:, None, None] * x)
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskBatch(x[:, :k_support], y[:, :k_support], x[:, k_support:], y[:, k_support:], {"omega": omega})


def sample_episode(rng, classes, n_way=5, k_shot=1, k_query=5):
    """An N-way K-shot classification episode from a pool of classes.

    classes: sequence of arrays, classes[c] of shape (num_examples_c, ...) (e.g. images of one
    character).  Picks n_way distinct classes, relabels them 0..n_way-1 in the order drawn, and
    k_shot support + k_query query examples of each without replacement.

    Returns (x_support (n_way * k_shot, ...), y_support (n_way * k_shot,), x_query (n_way * k_query, ...),
    y_query (n_way * k_query,), chosen class indices (n_way,)), examples grouped by class.
    """
    check_rng(rng)
    n_way = check_count(n_way, "n_way", 1)
    k_shot = check_count(k_shot, "k_shot", 1)
    k_query = check_count(k_query, "k_query", 0)
    if len(classes) < n_way:
        raise ValueError(f"n_way = {n_way} needs at least {n_way} classes, the pool has {len(classes)}; "
                         "lower n_way or add classes.")
    chosen = rng.choice(len(classes), size=n_way, replace=False)
    xs, ys, xq, yq = [], [], [], []
    for label, c in enumerate(chosen):
        pool = np.asarray(classes[c])
        if len(pool) < k_shot + k_query:
            raise ValueError(f"class {int(c)} has {len(pool)} examples but k_shot + k_query = {k_shot + k_query}; "
                             "lower k_shot or k_query.")
        idx = rng.choice(len(pool), size=k_shot + k_query, replace=False)
        xs.append(pool[idx[:k_shot]])
        xq.append(pool[idx[k_shot:]])
        ys.append(np.full(k_shot, label))
        yq.append(np.full(k_query, label))
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(xq), np.concatenate(yq), chosen)
