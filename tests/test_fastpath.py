"""The hand-derived NumPy paths (MAML, FOMAML, Reptile, Meta-SGD, ANIL) equal autograd to 1e-10 in float64."""
import numpy as np
import pytest

from tolerances import EXACT, FD_TOL

from mlcourse import anil, checks, fastpath, maml, metasgd, nets, reptile, tasks, tree


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


# ---- Meta-SGD and ANIL: the hand-derived paths against autograd and finite differences ----

def _metasgd_problem(sizes, seed):
    theta, batch = _problem(sizes, seed)
    rng = np.random.default_rng(100 + seed)
    return metasgd.params_from_alpha(theta, metasgd.init_alpha(rng, theta)), batch


def _anil_problem(sizes, seed):
    theta, batch = _problem(sizes, seed)
    return anil.split_mlp(theta), batch


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("steps", [0, 1, 2, 5])
@pytest.mark.parametrize("multistep", [False, True])
def test_fast_metasgd_equals_autograd(seed, sizes, steps, multistep):
    params, batch = _metasgd_problem(sizes, seed)
    vg = metasgd.metasgd_multistep_value_and_grad if multistep else metasgd.metasgd_value_and_grad
    v1, (g_theta, g_log_alpha) = fastpath.metasgd_value_and_grad(params["theta"], params["log_alpha"], batch,
                                                                 steps, multistep)
    v2, g2 = vg(params, batch, steps, backend="autograd")
    assert abs(v1 - v2) <= EXACT * abs(v2)
    assert checks.rel_error(g_theta, g2["theta"]) < EXACT
    if steps == 0:  # no step: the step sizes do not enter the loss
        assert all(np.all(a == 0) for a in tree.leaves(g_log_alpha)) and tree.norm(g2["log_alpha"]) == 0
    else:
        assert checks.rel_error(g_log_alpha, g2["log_alpha"]) < EXACT
    v3, g3 = vg(params, batch, steps)  # the public API: the hand-derived path, params' containers
    assert v3 == v1 and checks.rel_error(g3, g2) < EXACT
    assert [type(layer) for layer in g3["theta"]] == [type(layer) for layer in params["theta"]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("steps", [0, 1, 2, 5])
@pytest.mark.parametrize("multistep", [False, True])
def test_fast_anil_equals_autograd(seed, sizes, steps, multistep):
    params, batch = _anil_problem(sizes, seed)
    vg = anil.anil_multistep_value_and_grad if multistep else anil.anil_value_and_grad
    v1, (g_body, g_head) = fastpath.anil_value_and_grad(params["body"], params["head"], batch, 0.3, steps,
                                                        multistep)
    v2, g2 = vg(params, batch, 0.3, steps, backend="autograd")
    assert abs(v1 - v2) <= EXACT * abs(v2)
    assert checks.rel_error(g_body, g2["body"]) < EXACT and checks.rel_error(g_head, g2["head"]) < EXACT
    v3, g3 = vg(params, batch, 0.3, steps)
    assert v3 == v1 and checks.rel_error(g3, g2) < EXACT and isinstance(g3["head"], tuple)


@pytest.mark.parametrize("steps", [1, 5])
@pytest.mark.parametrize("multistep", [False, True])
def test_fast_metasgd_and_anil_agree_with_finite_differences(steps, multistep):
    rng = np.random.default_rng(11)
    batch = tasks.Sinusoid().sample(rng, 3, 5, 6)
    params = metasgd.metasgd_init(rng, [1, 6, 6, 1])
    msgd = metasgd.metasgd_multistep_loss if multistep else metasgd.metasgd_loss
    _, (g_theta, g_log_alpha) = fastpath.metasgd_value_and_grad(params["theta"], params["log_alpha"], batch,
                                                                steps, multistep)
    fd = checks.finite_difference_grad(lambda p: msgd(p, batch, steps), params)
    assert checks.rel_error({"theta": g_theta, "log_alpha": g_log_alpha}, fd) < FD_TOL
    a = anil.anil_init(rng, [1, 6, 6, 1])
    a["body"] = [(W, rng.normal(0, 0.3, b.shape)) for W, b in a["body"]]

    def anil_loss(p):
        if not multistep:
            return anil.anil_loss(p, batch, 0.3, steps)
        return sum(anil.anil_loss(p, batch, 0.3, j) for j in range(1, steps + 1)) / steps
    _, (g_body, g_head) = fastpath.anil_value_and_grad(a["body"], a["head"], batch, 0.3, steps, multistep)
    fd = checks.finite_difference_grad(anil_loss, a)
    assert checks.rel_error({"body": g_body, "head": g_head}, fd) < FD_TOL


@pytest.mark.parametrize("name", ["metasgd_value_and_grad", "metasgd_multistep_value_and_grad"])
def test_metasgd_uses_the_fast_path_for_mlp_and_mse_only(monkeypatch, name):
    params, batch = _metasgd_problem(SIZES[0], 0)
    calls = []
    real = fastpath.metasgd_value_and_grad
    monkeypatch.setattr(fastpath, "metasgd_value_and_grad", lambda *a: calls.append(1) or real(*a))
    public = getattr(metasgd, name)
    public(params, batch, 2)
    assert calls == [1]
    _, g = public(params, batch, 2, backend="autograd")
    _, g_model = public(params, batch, 2, model=lambda p, x: nets.mlp_apply(p, x))  # another model
    _, g_loss = public(params, batch, 2, loss=lambda pred, y: nets.mse(pred, y))  # another loss
    mixed = {"theta": params["theta"], "log_alpha": tree.astype(params["log_alpha"], np.float32)}
    public(mixed, batch, 2)  # log_alpha in another dtype than theta: autograd
    assert calls == [1]
    assert checks.rel_error(g_model, g) < EXACT and checks.rel_error(g_loss, g) < EXACT
    with pytest.raises(ValueError, match="backend"):
        public(params, batch, 2, backend="jax")


@pytest.mark.parametrize("name", ["anil_value_and_grad", "anil_multistep_value_and_grad"])
def test_anil_uses_the_fast_path_for_the_mlp_body_and_mse_only(monkeypatch, name):
    params, batch = _anil_problem(SIZES[0], 0)
    calls = []
    real = fastpath.anil_value_and_grad
    monkeypatch.setattr(fastpath, "anil_value_and_grad", lambda *a: calls.append(1) or real(*a))
    public = getattr(anil, name)
    public(params, batch, 0.1, 2)
    assert calls == [1]
    _, g = public(params, batch, 0.1, 2, backend="autograd")
    _, g_body = public(params, batch, 0.1, 2, body=lambda th, x: anil.mlp_body(th, x))  # another body
    _, g_loss = public(params, batch, 0.1, 2, loss=lambda pred, y: nets.mse(pred, y))  # another loss
    assert calls == [1]
    assert checks.rel_error(g_body, g) < EXACT and checks.rel_error(g_loss, g) < EXACT
    with pytest.raises(ValueError, match="backend"):
        public(params, batch, 0.1, 2, backend="jax")


def test_metasgd_and_anil_float32_paths_track_float64():
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 25, 10, 10)
    params = metasgd.metasgd_init(rng, [1, 40, 40, 1])
    _, g64 = metasgd.metasgd_value_and_grad(params, batch, 5)
    _, g32 = metasgd.metasgd_value_and_grad(tree.astype(params, np.float32), batch, 5)
    assert all(a.dtype == np.float32 for a in tree.leaves(g32)) and checks.rel_error(g32, g64) < 1e-4
    a = anil.split_mlp(params["theta"])
    _, g64 = anil.anil_value_and_grad(a, batch, 0.01, 5)
    _, g32 = anil.anil_value_and_grad(tree.astype(a, np.float32), batch, 0.01, 5)
    assert all(x.dtype == np.float32 for x in tree.leaves(g32)) and checks.rel_error(g32, g64) < 1e-4


def test_metasgd_check_rejects_non_finite_or_overflowing_step_sizes_on_the_fast_path():
    params, batch = _metasgd_problem(SIZES[0], 0)
    for bad, match in ((np.nan, "NaN or infinite"), (-np.inf, "NaN or infinite"), (800.0, "overflow")):
        log_alpha = [(W.copy(), b.copy()) for W, b in params["log_alpha"]]
        log_alpha[1][0][2, 3] = bad
        with pytest.raises(ValueError, match=match):
            metasgd.metasgd_value_and_grad({"theta": params["theta"], "log_alpha": log_alpha}, batch, 1)
