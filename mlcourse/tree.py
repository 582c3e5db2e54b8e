"""Arithmetic on parameter containers (lists / tuples / dicts of arrays).

Reptile's update reads as ``interpolate(theta, theta_prime_mean, epsilon)``; MAML's inner
step as ``sub(theta, scale(alpha, grad))``.  Works inside autograd (no in-place writes).
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp
from autograd.builtins import DictBox, SequenceBox
from autograd.misc import flatten as _ag_flatten

__all__ = ["tree_map", "add", "sub", "scale", "interpolate", "dot", "norm", "flatten",
           "zeros_like", "tile_tasks", "task_mean", "leaves", "astype", "is_traced"]


def _unbox(t):
    """autograd boxes whole containers (SequenceBox / DictBox); read them as plain ones."""
    if isinstance(t, SequenceBox):
        return [t[i] for i in range(len(t))]
    if isinstance(t, DictBox):
        return {k: t[k] for k in t}
    return t


def tree_map(f, *trees):
    """f applied leaf by leaf to containers of the same structure (ValueError when they differ)."""
    trees = [_unbox(t) for t in trees]
    t0 = trees[0]
    if isinstance(t0, (list, tuple)):
        if any(not isinstance(t, (list, tuple)) or len(t) != len(t0) for t in trees[1:]):
            raise ValueError(f"containers differ: a {type(t0).__name__} of {len(t0)} entries against "
                             f"{[len(t) if isinstance(t, (list, tuple)) else type(t).__name__ for t in trees[1:]]}; "
                             "pass parameters of the same structure (e.g. a gradient shaped like theta).")
        return type(t0)(tree_map(f, *parts) for parts in zip(*trees))
    if isinstance(t0, dict):
        if any(not isinstance(t, dict) or t.keys() != t0.keys() for t in trees[1:]):
            raise ValueError(f"containers differ: a dict with keys {sorted(t0)} against "
                             f"{[sorted(t) if isinstance(t, dict) else type(t).__name__ for t in trees[1:]]}; "
                             "pass parameters of the same structure.")
        return {k: tree_map(f, *(t[k] for t in trees)) for k in t0}
    return f(*trees)


def leaves(tree):
    tree = _unbox(tree)
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in leaves(t)]
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in leaves(tree[k])]
    return [tree]


def add(a, b):
    return tree_map(lambda x, y: x + y, a, b)


def sub(a, b):
    return tree_map(lambda x, y: x - y, a, b)


def scale(s, a):
    return tree_map(lambda x: s * x, a)


def interpolate(old, new, epsilon):
    """old + epsilon (new - old)."""
    return tree_map(lambda o, n: o + epsilon * (n - o), old, new)


def zeros_like(a):
    """Zeros shaped like every leaf (plain arrays, also inside autograd: constants, no gradient)."""
    return tree_map(lambda x: onp.zeros(np.shape(x), dtype=_dtype(x)), a)


def dot(a, b):
    return sum(np.sum(x * y) for x, y in zip(leaves(a), leaves(b)))


def norm(a):
    return float(onp.sqrt(sum(float(onp.sum(onp.square(x))) for x in leaves(a))))


def flatten(tree):
    """(vector, unflatten) pair: one 1-D float array and the function that rebuilds the tree."""
    return _ag_flatten(tree)


def tile_tasks(theta, num_tasks):
    """Give every leaf a leading task axis: shared theta -> per-task copies (T, ...)."""
    return tree_map(lambda a: a + np.zeros((num_tasks,) + np.shape(a), dtype=_dtype(a)), theta)


def task_mean(theta_tasks):
    return tree_map(lambda a: np.mean(a, axis=0), theta_tasks)


def astype(tree, dtype):
    return tree_map(lambda a: onp.asarray(a, dtype=dtype), tree)


def _dtype(a):
    return getattr(a, "dtype", onp.result_type(a))


def is_traced(tree):
    """True when autograd is differentiating through these values (they are Boxes)."""
    from autograd.tracer import Box
    return any(isinstance(leaf, Box) for leaf in leaves(tree))
