"""Test inputs several question files share, each made from a fixed seed (so always the same)."""
from __future__ import annotations

import numpy as np

from ... import nets, tasks


def linear(seed, T, K):
    """Worked example 2's tasks: (x_support, y_support, x_query, y_query) each (T, K), and the slopes (T,)."""
    b = tasks.LinearSlope().sample(np.random.default_rng(seed), T, K, K)
    return b.x_support[..., 0], b.y_support[..., 0], b.x_query[..., 0], b.y_query[..., 0], b.params["slope"]


def sine(seed, T, K, sizes=(1, 8, 8, 1)):
    """An MLP theta and T sinusoid tasks: (theta, x_support, y_support, x_query, y_query), arrays (T, K, 1)."""
    rng = np.random.default_rng(seed)
    theta = nets.mlp_init(rng, list(sizes))
    b = tasks.Sinusoid().sample(rng, T, K, K)
    return theta, b.x_support, b.y_support, b.x_query, b.y_query
