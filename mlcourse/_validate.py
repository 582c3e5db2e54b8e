"""Input checks shared by the public API: each raises an error that says how to fix the call."""
from __future__ import annotations

import math
import numbers

import numpy as np


def check_alpha(alpha, name="alpha"):
    """alpha (or beta, epsilon) must be a finite, non-negative real number."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{name} must be a real number such as 0.01, got {type(alpha).__name__} {alpha!r}.")
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"{name} must be finite and >= 0 (for example {name}=0.01), got {alpha!r}.")
    return float(alpha)


def check_count(n, name, minimum=0):
    """A count (inner steps, K, number of tasks) must be a Python or NumPy integer >= minimum."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum} (for example {name}={max(minimum, 1)}), "
                        f"got {type(n).__name__} {n!r}.")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}.")
    return int(n)


def check_seed(seed):
    """A job's seed must be a non-negative Python integer (every random choice of the run flows from it)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return seed


def check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator: pass rng=np.random.default_rng(seed), "
                        f"got {type(rng).__name__}.")
    return rng


def all_finite(arrays):
    """True when every value of every array is finite: one concatenation, one test, one count."""
    flat = np.concatenate([a.ravel() if type(a) is np.ndarray else np.ravel(a) for a in arrays])
    if flat.dtype.kind not in "fiub":  # objects or complex: the per-array float64 check
        return all(np.isfinite(np.sum(a, dtype=np.float64)) for a in arrays)
    return np.count_nonzero(np.isfinite(flat)) == flat.size


def check_finite(name, a):
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}.")
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); clean the data before calling.")
    return a
