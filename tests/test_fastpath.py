"""The hand-derived NumPy path equals autograd to 1e-10 in float64."""
import numpy as np
import pytest

from tolerances import EXACT

from mlcourse import checks, fastpath, maml, nets, reptile, tasks, tree


SIZES = [(1, 40, 40, 1), (3, 8, 2), (2, 5, 6, 4, 3)]  # 1-input outer product, 2-D inputs, 3 outputs


def _problem(sizes, seed):
    rng = np.random.default_rng(seed)
    d_in, d_out = sizes[0], sizes[-1]
    x = rng.uniform(-2, 2, (4, 6, d_in))
    y = np.sin(x.sum(-1, keepdims=True)) * np.ones(d_out)
    xq = rng.uniform(-2, 2, (4, 7, d_in))
    batch = tasks.TaskBatch(x, y, xq, np.cos(xq.sum(-1, keepdims=True)) * np.ones(d_out))
    theta = nets.mlp_init(rng, list(sizes))
    theta = [(W, rng.normal(0, 0.3, b.shape)) for W, b in theta]  # nonzero biases: the augmented bias row
    return theta, batch


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("steps", [0, 1, 2, 5])
def test_fast_maml_equals_autograd(sizes, steps):
    theta, batch = _problem(sizes, steps)
    # the hand-derived module itself against autograd differentiating the engine's model and loss
    for hand_derived, through_autograd in ((fastpath.maml_value_and_grad, maml.maml_value_and_grad),
                                           (fastpath.fomaml_value_and_grad, maml.fomaml_value_and_grad),
                                           (fastpath.multistep_value_and_grad, maml.multistep_value_and_grad)):
        v1, g1 = hand_derived(theta, batch, 0.03, steps)
        v2, g2 = through_autograd(theta, batch, 0.03, steps, backend="autograd")
        assert abs(v1 - v2) <= EXACT * abs(v2)
        assert checks.rel_error(g1, g2) < EXACT


@pytest.mark.parametrize("name", ["maml_value_and_grad", "fomaml_value_and_grad", "multistep_value_and_grad"])
def test_public_api_uses_the_fast_path_for_mlp_and_mse_only(monkeypatch, name):
    """maml.* with the default backend calls fastpath.* for the MLP + MSE pair, and autograd otherwise."""
    theta, batch = _problem(SIZES[0], 0)
    calls = []
    real = getattr(fastpath, name)
    monkeypatch.setattr(fastpath, name, lambda *a: calls.append(1) or real(*a))
    getattr(maml, name)(theta, batch, 0.03, 2)
    assert calls == [1]
    getattr(maml, name)(theta, batch, 0.03, 2, backend="autograd")
    getattr(maml, name)(theta, batch, 0.03, 2, model=lambda p, x: nets.mlp_apply(p, x))  # another model
    assert calls == [1]


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


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("steps", [0, 1, 2, 5])
def test_fast_reptile_and_adapt_equal_the_autograd_inner_loop(sizes, steps):
    theta, batch = _problem(sizes, 10 + steps)
    slow = maml._adapt_autograd(theta, batch.x_support, batch.y_support, 0.03, steps, nets.mlp_apply, nets.mse)
    fast = maml.adapt(theta, batch.x_support, batch.y_support, 0.03, steps)
    assert [np.shape(a) for a in tree.leaves(fast)] == [np.shape(a) for a in tree.leaves(slow)]
    assert checks.rel_error(fast, slow) < EXACT
    direction = reptile.reptile_direction(theta, batch, 0.03, steps)
    expected = tree.sub(tree.task_mean(slow), theta)
    assert [a.shape for a in tree.leaves(direction)] == [a.shape for a in tree.leaves(theta)]
    if steps == 0:
        assert all(np.all(a == 0) for a in tree.leaves(direction))
    else:
        assert checks.rel_error(direction, expected) < EXACT


def test_public_api_rejects_nan_in_theta_or_batch_on_the_fast_path():
    theta, batch = _problem((1, 40, 40, 1), 0)
    bad = [(W.copy(), b) for W, b in theta]
    bad[1][0][3, 4] = np.nan
    with pytest.raises(ValueError, match="theta contains NaN"):
        maml.maml_grad(bad, batch)
    x = batch.x_query.copy()
    x[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match="x_query contains NaN"):
        maml.fomaml_grad(theta, tasks.TaskBatch(batch.x_support, batch.y_support, x, batch.y_query))
    big = [(np.full_like(W, 3e38, dtype=np.float32), b.astype(np.float32)) for W, b in theta]  # sums overflow
    maml._check_theta(big, nets.mlp_apply, batch.x_support, batch.y_support)  # finite: no error
