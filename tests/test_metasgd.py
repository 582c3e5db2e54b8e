"""Meta-SGD: exact gradients (finite differences), its closed forms, MAML as a special case, bad inputs."""
import numpy as np
import pytest
from autograd import grad

from mlcourse import checks, maml, metasgd, nets, tasks, train, tree

from tolerances import EXACT, FD_TOL


def _setup(seed=0, T=3, K=4, Q=5, sizes=(1, 6, 6, 1)):
    rng = np.random.default_rng(seed)
    batch = tasks.Sinusoid().sample(rng, T, K, Q)
    return metasgd.metasgd_init(rng, list(sizes)), batch


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("multistep", [False, True])
def test_gradient_matches_finite_differences(steps, multistep):
    params, batch = _setup()
    vg = metasgd.metasgd_multistep_value_and_grad if multistep else metasgd.metasgd_value_and_grad
    f = metasgd.metasgd_multistep_loss if multistep else metasgd.metasgd_loss
    value, g = vg(params, batch, steps)
    fd = checks.finite_difference_grad(lambda p: f(p, batch, steps), params)
    assert set(g) == {"theta", "log_alpha"}
    assert checks.rel_error(g, fd) < FD_TOL
    assert abs(value - f(params, batch, steps)) < EXACT


def test_one_step_gradients_are_the_closed_forms():
    """dL/dalpha = -mean_T grad L_s(theta) * grad L_q(theta'); dL/dlog_alpha = alpha * dL/dalpha;
    dL/dtheta = mean_T (I - diag(alpha) H_s) grad L_q(theta')."""
    params, batch = _setup(T=2)
    theta, alpha = params["theta"], metasgd.alpha_of(params)
    _, g = metasgd.metasgd_value_and_grad(params, batch, 1)
    want_a, want_t = tree.zeros_like(theta), tree.zeros_like(theta)
    for t in range(batch.num_tasks):
        Ls = lambda th: np.mean((nets.mlp_apply(th, batch.x_support[t]) - batch.y_support[t]) ** 2)  # noqa: E731
        Lq = lambda th: np.mean((nets.mlp_apply(th, batch.x_query[t]) - batch.y_query[t]) ** 2)  # noqa: E731
        gs = grad(Ls)(theta)
        theta_prime = tree.tree_map(lambda p, a, gi: p - a * gi, theta, alpha, gs)
        gq = grad(Lq)(theta_prime)
        hv = checks.hessian_vector_product(Ls)(theta, tree.tree_map(lambda a, v: a * v, alpha, gq))
        want_a = tree.add(want_a, tree.tree_map(lambda s, q: -s * q / batch.num_tasks, gs, gq))
        want_t = tree.add(want_t, tree.scale(1 / batch.num_tasks, tree.sub(gq, hv)))
    assert checks.rel_error(g["log_alpha"], tree.tree_map(lambda a, d: a * d, alpha, want_a)) < EXACT
    assert checks.rel_error(g["theta"], want_t) < EXACT


@pytest.mark.parametrize("steps", [1, 3])
def test_constant_alpha_is_maml(steps):
    params, batch = _setup()
    theta = params["theta"]
    same = metasgd.params_from_alpha(theta, tree.tree_map(lambda a: np.full_like(a, 0.03), theta))
    v, g = metasgd.metasgd_value_and_grad(same, batch, steps)
    v_maml, g_maml = maml.maml_value_and_grad(theta, batch, 0.03, steps, backend="autograd")
    assert abs(v - v_maml) < EXACT and checks.rel_error(g["theta"], g_maml) < EXACT
    vm, gm = metasgd.metasgd_multistep_value_and_grad(same, batch, steps)
    vm_maml, gm_maml = maml.multistep_value_and_grad(theta, batch, 0.03, steps)
    assert abs(vm - vm_maml) < EXACT and checks.rel_error(gm["theta"], gm_maml) < EXACT


def test_step_adapt_and_query_losses_agree():
    params, batch = _setup()
    theta, alpha = params["theta"], metasgd.alpha_of(params)
    one = metasgd.metasgd_step(theta, alpha, batch.x_support, batch.y_support)
    assert checks.rel_error(one, metasgd.adapt(params, batch.x_support, batch.y_support, 1)) < EXACT
    L = metasgd.query_losses(params, batch, steps=(0, 1, 3))
    assert L.shape == (3, batch.num_tasks)
    np.testing.assert_allclose(L[1].mean(), metasgd.metasgd_loss(params, batch, 1), rtol=EXACT)
    np.testing.assert_allclose(L[2].mean(), metasgd.metasgd_loss(params, batch, 3), rtol=EXACT)
    np.testing.assert_allclose(L[0], nets.mse(nets.mlp_apply(theta, batch.x_query), batch.y_query), rtol=EXACT)


def test_evaluate_draws_the_tasks_of_train_evaluate():
    rng = np.random.default_rng(4)
    theta = nets.mlp_init(rng, [1, 8, 1])
    params = metasgd.params_from_alpha(theta, tree.tree_map(lambda a: np.full_like(a, 0.01), theta))
    kw = dict(num_tasks=150, k_shot=5, k_query=20, steps=(0, 1, 3))
    ours = metasgd.evaluate(params, tasks.Sinusoid(), rng=np.random.default_rng(7), **kw)
    ref = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng(7), alpha=0.01, **kw)
    assert ours["steps"] == ref["steps"] and ours["num_tasks"] == 150
    np.testing.assert_allclose(ours["mse"], ref["mse"], rtol=1e-9)
    np.testing.assert_allclose(ours["ci95"], ref["ci95"], rtol=1e-9)


def test_initialisation_is_one_draw_per_entry_in_the_papers_range():
    params = metasgd.metasgd_init(np.random.default_rng(0), [1, 40, 40, 1])
    a = np.concatenate([np.ravel(x) for x in tree.leaves(metasgd.alpha_of(params))])
    assert a.size == nets.num_params(params["theta"])
    assert metasgd.ALPHA_INIT == (0.005, 0.1)
    assert a.min() >= 0.005 and a.max() <= 0.1 and len(np.unique(a)) == a.size


def test_bad_step_sizes_say_what_to_change():
    params, batch = _setup()
    theta = params["theta"]
    neg = tree.tree_map(lambda a: np.full_like(a, 0.01), theta)
    neg[0] = (neg[0][0] * -1, neg[0][1])
    with pytest.raises(ValueError, match="negative"):
        metasgd.params_from_alpha(theta, neg)
    with pytest.raises(ValueError, match="negative"):
        metasgd.metasgd_step(theta, neg, batch.x_support, batch.y_support)
    nan = tree.tree_map(lambda a: np.full_like(a, np.nan), theta)
    with pytest.raises(ValueError, match="NaN or infinite"):
        metasgd.params_from_alpha(theta, nan)
    with pytest.raises(ValueError, match="equal to 0"):
        metasgd.params_from_alpha(theta, tree.zeros_like(theta))
    with pytest.raises(ValueError, match="shaped like theta"):
        metasgd.params_from_alpha(theta, theta[:2])
    bad = {"theta": theta, "log_alpha": tree.tree_map(lambda a: a + np.inf, params["log_alpha"])}
    with pytest.raises(ValueError, match="NaN or infinite"):
        metasgd.metasgd_value_and_grad(bad, batch, 1)
    with pytest.raises(ValueError, match="overflow"):
        metasgd.metasgd_loss({"theta": theta, "log_alpha": tree.tree_map(lambda a: a + 1e4, params["log_alpha"])},
                             batch)
    with pytest.raises(TypeError, match="log_alpha"):
        metasgd.metasgd_value_and_grad((theta, neg), batch, 1)
    with pytest.raises(ValueError, match="increasing"):
        metasgd.query_losses(params, batch, steps=(3, 1))


def test_checkpoint_with_non_finite_step_sizes_is_refused(tmp_path):
    params, _ = _setup()
    good = tmp_path / "good.npz"
    train.save_checkpoint(good, params, {"method": "metasgd"})
    loaded, hp, _ = metasgd.load(good)
    assert hp["method"] == "metasgd" and checks.rel_error(loaded, params) == 0
    broken = {"theta": params["theta"], "log_alpha": tree.tree_map(lambda a: a * np.nan, params["log_alpha"])}
    train.save_checkpoint(tmp_path / "bad.npz", broken)
    with pytest.raises(ValueError, match="bad.npz: the learned log_alpha has .* NaN"):
        metasgd.load(tmp_path / "bad.npz")
    train.save_checkpoint(tmp_path / "maml.npz", params["theta"])
    with pytest.raises(ValueError, match="not a Meta-SGD checkpoint"):
        metasgd.load(tmp_path / "maml.npz")


def test_main_job_trains_and_meta_tests_metasgd_and_anil(tmp_path):
    from mlcourse import anil
    from mlcourse.experiments import sinusoid_job
    assert {"metasgd", "anil"} <= set(sinusoid_job.METHODS)
    assert len(set(sinusoid_job.METHOD_STREAMS.values())) == len(sinusoid_job.METHOD_STREAMS)
    s = sinusoid_job.run(tmp_path / "run", methods=("metasgd", "anil"), iterations=3, eval_tasks=10, workers=1,
                         progress=False, log=lambda *a: None, hidden=(6, 6))
    assert "learned" in s["results"]["metasgd"]["meta_test_adaptation"]
    params, hp, _ = metasgd.load(tmp_path / "run" / "metasgd.npz")
    assert hp["method"] == "metasgd" and set(params) == {"theta", "log_alpha"}
    again = metasgd.evaluate(params, tasks.Sinusoid(), rng=np.random.default_rng([0, 999]), num_tasks=10, k_shot=5,
                             k_query=100, steps=s["config"]["eval_steps"])
    np.testing.assert_allclose(again["mse"], s["results"]["metasgd"]["mse"], rtol=1e-6)
    a, _, _ = train.load_checkpoint(tmp_path / "run" / "anil.npz")
    assert set(a) == {"body", "head"} and anil.anil_loss(a, tasks.Sinusoid().sample(np.random.default_rng(0), 2, 5, 5)) > 0


def test_the_one_pass_check_sends_every_bad_call_to_the_message_that_names_it():
    """The common call is checked in one pass; anything it does not accept meets the full checks' errors."""
    params, batch = _setup()
    theta, log_alpha = params["theta"], params["log_alpha"]
    assert metasgd._common_call(params, batch, 2)
    nan_y = tasks.TaskBatch(batch.x_support, batch.y_support, batch.x_query, batch.y_query * np.nan)
    nan_theta = {"theta": tree.tree_map(lambda a: a * np.nan, theta), "log_alpha": log_alpha}
    big = {"theta": theta, "log_alpha": tree.tree_map(lambda a: a + 1e4, log_alpha)}
    short = {"theta": theta, "log_alpha": log_alpha[:2]}
    bad = [((params, nan_y, 1), ValueError, "batch.y_query contains NaN"),
           ((nan_theta, batch, 1), ValueError, "NaN or infinite"),
           ((big, batch, 1), ValueError, "overflow"),
           ((short, batch, 1), ValueError, "shaped like theta"),
           ((params, batch, -1), ValueError, "inner_steps must be >= 0")]
    for args, error, message in bad:
        assert not metasgd._common_call(*args)
        with pytest.raises(error, match=message):
            metasgd.metasgd_value_and_grad(*args)
    v1, g1 = metasgd.metasgd_value_and_grad(params, batch, 2)
    v2, g2 = metasgd.metasgd_value_and_grad(params, batch, np.int64(2))  # the full checks' route
    assert v1 == v2 and checks.rel_error(g1, g2) == 0
