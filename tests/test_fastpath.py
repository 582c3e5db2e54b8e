"""The hand-derived NumPy path equals autograd to 1e-10 in float64."""
import numpy as np
import pytest

from mlcourse import checks, fastpath, maml, nets, tasks, tree

EXACT = 1e-10


@pytest.mark.parametrize("sizes", [(1, 40, 40, 1), (3, 8, 2), (2, 5, 6, 4, 3)])
@pytest.mark.parametrize("steps", [0, 1, 2, 5])
def test_fast_maml_equals_autograd(sizes, steps):
    rng = np.random.default_rng(steps)
    d_in, d_out = sizes[0], sizes[-1]
    x = rng.uniform(-2, 2, (4, 6, d_in))
    y = np.sin(x.sum(-1, keepdims=True)) * np.ones(d_out)
    xq = rng.uniform(-2, 2, (4, 7, d_in))
    batch = tasks.TaskBatch(x, y, xq, np.cos(xq.sum(-1, keepdims=True)) * np.ones(d_out))
    theta = nets.mlp_init(rng, list(sizes))
    for fast, slow in ((maml.maml_value_and_grad, maml.maml_value_and_grad),
                       (maml.fomaml_value_and_grad, maml.fomaml_value_and_grad)):
        v1, g1 = fast(theta, batch, 0.03, steps)
        v2, g2 = slow(theta, batch, 0.03, steps, backend="autograd")
        assert abs(v1 - v2) <= EXACT * abs(v2)
        assert checks.rel_error(g1, g2) < EXACT


def test_fast_hvp_equals_autograd_hvp():
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 3, 5, 5)
    theta = nets.mlp_init(rng, [1, 10, 10, 1])
    T = batch.num_tasks
    theta_T = tree.tile_tasks(theta, T)
    theta_T = [(np.asarray(W), np.asarray(b)) for W, b in theta_T]
    v = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in theta_T]
    _, _, (hs, masks, deltas, s) = fastpath.support_grad(theta_T, batch.x_support, batch.y_support)
    fast = fastpath.hvp(theta_T, hs, masks, deltas, v, s)
    slow = checks.support_hvp(theta_T, batch, v)
    assert checks.rel_error(fast, slow) < EXACT


def test_float32_path_tracks_float64():
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 25, 10, 10)
    theta = nets.mlp_init(rng, [1, 40, 40, 1])
    g64 = maml.maml_grad(theta, batch, 0.01, 5)
    g32 = maml.maml_grad(tree.astype(theta, np.float32), batch, 0.01, 5)
    assert all(a.dtype == np.float32 for a in tree.leaves(g32))
    assert checks.rel_error(g32, g64) < 1e-4


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_fast_multistep_equals_autograd_and_finite_differences(steps):
    rng = np.random.default_rng(7)
    batch = tasks.Sinusoid().sample(rng, 3, 5, 6)
    theta = nets.mlp_init(rng, [1, 7, 7, 1])
    v1, g1 = maml.multistep_value_and_grad(theta, batch, 0.03, steps)
    v2, g2 = maml.multistep_value_and_grad(theta, batch, 0.03, steps, backend="autograd")
    assert abs(v1 - v2) <= EXACT * abs(v2) and checks.rel_error(g1, g2) < EXACT
    fd = checks.finite_difference_grad(lambda th: maml.multistep_loss(th, batch, 0.03, steps), theta)
    assert checks.rel_error(g1, fd) < 1e-6
    if steps == 1:  # one step: the multi-step loss is the MAML loss
        assert checks.rel_error(g1, maml.maml_grad(theta, batch, 0.03, 1)) < EXACT
