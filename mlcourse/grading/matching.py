"""Comparisons run in the grader's own process: learner output vs reference, or vs a property.

Every comparison returns ``(fraction, message)``: fraction in [0, 1] of the test's points, and a
message saying what was expected (a property: shape, tolerance, structure) and what came back,
never the reference value itself.
"""
from __future__ import annotations

import numbers

import numpy as np

from .codec import Unsupported

RTOL = 1e-5   # float32 answers computed the straightforward way pass; every common mistake is far off
ATOL = 1e-300  # only guards an all-zero reference (then only exact zeros pass) from dividing by 0


def summarize(v, max_items=6):
    """A short, readable description of a value: type, shape and (if small) the numbers."""
    if isinstance(v, Unsupported):
        return f"an object of type {v.type_name} (return numbers or NumPy arrays)"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(summarize(x, 3) for x in v[:4]) + (", ..." if len(v) > 4 else "")
        return f"{type(v).__name__} of {len(v)}: [{inner}]"
    if isinstance(v, dict):
        return f"dict with keys {sorted(v)[:6]}"
    if isinstance(v, np.random.Generator):
        return "a numpy Generator"
    if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, str):
        return repr(v)[:120]
    a = np.asarray(v) if isinstance(v, (numbers.Number, np.ndarray, np.generic)) else None
    if a is None:
        return f"{type(v).__name__}"
    if a.ndim == 0:
        return np.array2string(a, precision=6)
    vals = np.array2string(a.ravel()[:max_items], precision=4, separator=", ")
    more = " ..." if a.size > max_items else ""
    return f"array shape {a.shape} {vals[:-1] if more else vals}{more + ']' if more else ''}"


def _leaves(v, path="value"):
    """(path, leaf) pairs of nested lists/tuples/dicts."""
    if isinstance(v, (list, tuple)):
        out = []
        for i, x in enumerate(v):
            out += _leaves(x, f"{path}[{i}]")
        return out
    if isinstance(v, dict):
        out = []
        for k in sorted(v):
            out += _leaves(v[k], f"{path}[{k!r}]")
        return out
    return [(path, v)]


def _structure(v):
    if isinstance(v, (list, tuple)):
        return ("seq", len(v), tuple(_structure(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted(v)), tuple(_structure(v[k]) for k in sorted(v)))
    return "leaf"


def _as_number_array(x):
    if isinstance(x, Unsupported) or isinstance(x, (str, bytes)) or x is None:
        return None
    if isinstance(x, (numbers.Number, np.ndarray, np.generic)):
        a = np.asarray(x)
        return a if a.dtype.kind in "biuf" else None
    return None


def relative_errors(got, ref, atol=ATOL):
    """Per element |got - ref| / (|ref| + max |ref| + atol): the quantity ``close`` compares with rtol.

    Dividing by |ref| makes it a relative error; adding the largest |ref| of the array is the
    scale-aware absolute tolerance (an element near 0 of an array whose other entries are large is
    judged at the precision the whole computation carries, as float32 rounding is); atol only keeps
    an all-zero reference finite.
    """
    g, r = np.asarray(got, float), np.asarray(ref, float)
    return np.abs(g - r) / (np.abs(r) + float(np.max(np.abs(r), initial=0.0)) + atol)


def close(got, ref, rtol=RTOL, atol=ATOL):
    """All-or-nothing: same structure, same shapes, finite, and every relative error <= rtol.

    The relative error of an element is |got - ref| / (|ref| + max |ref| + atol) (``relative_errors``):
    per element, with an absolute tolerance that scales with the array, so that an answer computed
    the straightforward way in float32 passes at rtol 1e-5 and a wrong one does not.  The message
    states that same quantity.
    """
    tol = (f"within rtol={rtol:g} of the reference (per element, relative error "
           f"|got - ref| / (|ref| + max |ref|))")
    if _structure(got) != _structure(ref):
        if isinstance(ref, (list, tuple)):
            want = f"a {type(ref).__name__} of {len(ref)} items shaped like the input parameters"
        else:
            want = "a single number or array"
        return 0.0, f"expected {want}; got {summarize(got)}"
    worst = 0.0
    for (path, g), (_, r) in zip(_leaves(got), _leaves(ref)):
        ga, ra = _as_number_array(g), np.asarray(r)
        where = "" if path == "value" else f" at {path}"
        if ga is None:
            return 0.0, f"expected numbers{where}; got {summarize(g)}"
        if ga.shape != ra.shape:
            # a (1,) array or 0-d array for a scalar is accepted: shapes must match otherwise
            if not (ra.ndim == 0 and ga.size == 1):
                return 0.0, f"expected shape {ra.shape}{where}; got shape {ga.shape}"
            ga = ga.reshape(())
        if not np.all(np.isfinite(ga)):
            bad = int(ga.size - np.count_nonzero(np.isfinite(ga)))
            return 0.0, f"expected finite numbers{where}; got {bad} NaN/inf value(s): {summarize(g)}"
        if ra.size and not np.any(ra):
            if np.any(ga):
                return 0.0, (f"expected exactly 0{where} (nothing to compute here: no rounding either); got "
                             f"{summarize(g)} (largest |value| {float(np.max(np.abs(ga))):.2g})")
            continue
        err = float(np.max(relative_errors(ga, ra, atol), initial=0.0))
        if not err <= rtol:
            return 0.0, f"expected values {tol}{where}; got {summarize(g)} (relative error {err:.2g})"
        worst = max(worst, err)
    return 1.0, f"matches the reference (largest relative error {worst:.1g}, rtol={rtol:g})"
