"""ANIL: exact gradients for the MLP and for another body, head-only adaptation, bad heads."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from mlcourse import anil, checks, maml, nets, tasks, train, tree

from tolerances import EXACT, FD_TOL


def _setup(seed=0, T=3, K=4, Q=5, sizes=(1, 6, 6, 1)):
    rng = np.random.default_rng(seed)
    batch = tasks.Sinusoid().sample(rng, T, K, Q)
    return anil.anil_init(rng, list(sizes)), batch


def tanh_body(theta_body, x):
    """A different body: one tanh layer on [x, x^2] with dict parameters."""
    z = anp.concatenate([x, x ** 2], axis=-1)
    return anp.tanh(anp.matmul(z, theta_body["W"]) + theta_body["b"])


def _tanh_params(rng, h=5):
    return {"body": {"W": rng.normal(size=(2, h)) * 0.5, "b": rng.normal(size=h) * 0.1},
            "head": (rng.normal(size=(h, 1)) * 0.5, np.zeros(1))}


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("multistep", [False, True])
def test_mlp_gradient_matches_finite_differences(steps, multistep):
    params, batch = _setup()
    vg = anil.anil_multistep_value_and_grad if multistep else anil.anil_value_and_grad
    value, g = vg(params, batch, 0.1, steps)
    if multistep:
        f = lambda p: sum(anil.anil_loss(p, batch, 0.1, j) for j in range(1, steps + 1)) / steps  # noqa: E731
    else:
        f = lambda p: anil.anil_loss(p, batch, 0.1, steps)  # noqa: E731
    assert abs(value - f(params)) < EXACT
    assert checks.rel_error(g, checks.finite_difference_grad(f, params)) < FD_TOL
    assert isinstance(g["head"], tuple) and len(g["body"]) == 2


@pytest.mark.parametrize("steps", [1, 4])
def test_another_body_gradient_matches_finite_differences(steps):
    params = _tanh_params(np.random.default_rng(1))
    batch = tasks.Sinusoid().sample(np.random.default_rng(2), 4, 5, 6)
    _, g = anil.anil_value_and_grad(params, batch, 0.2, steps, body=tanh_body)
    fd = checks.finite_difference_grad(lambda p: anil.anil_loss(p, batch, 0.2, steps, body=tanh_body), params)
    assert set(g["body"]) == {"W", "b"} and checks.rel_error(g, fd) < FD_TOL


def test_second_order_terms_reach_the_body():
    """With one head step the body's gradient differs from the one that treats the features' effect on
    the adapted head as absent (the second-order path through the head's inner step)."""
    params, batch = _setup()
    _, g = anil.anil_value_and_grad(params, batch, 0.5, 1)
    head1 = anil.adapt_head(params, batch.x_support, batch.y_support, 0.5, 1)

    def query_with_fixed_head(body):
        phi = anil.mlp_body(body, batch.x_query)
        return anp.mean(nets.mse(anil.head_apply(head1, phi), batch.y_query))
    first_order = grad(query_with_fixed_head)(params["body"])
    assert checks.rel_error(g["body"], first_order) > 1e-4


def test_head_steps_are_sgd_on_the_features_and_zero_steps_is_the_mlp():
    params, batch = _setup()
    phi = anil.mlp_body(params["body"], batch.x_support)
    head = anil.adapt_head(params, batch.x_support, batch.y_support, 0.05, 2)
    ref = maml.adapt([params["head"]], phi, batch.y_support, 0.05, 2, model=nets.mlp_apply)
    assert checks.rel_error(list(head), list(ref[0])) < EXACT
    full = nets.mse(nets.mlp_apply(anil.join_mlp(params), batch.x_query), batch.y_query)
    L = anil.query_losses(params, batch, 0.05, steps=(0, 2))
    np.testing.assert_allclose(L[0], full, rtol=EXACT)
    np.testing.assert_allclose(L[1].mean(), anil.anil_loss(params, batch, 0.05, 2), rtol=EXACT)
    theta = nets.mlp_init(np.random.default_rng(3), [1, 5, 5, 1])
    assert checks.rel_error(anil.join_mlp(anil.split_mlp(theta)), theta) == 0


def test_evaluate_draws_the_tasks_of_train_evaluate():
    params, _ = _setup()
    kw = dict(num_tasks=120, k_shot=5, k_query=20, steps=(0,))
    ours = anil.evaluate(params, tasks.Sinusoid(), rng=np.random.default_rng(7), **kw)
    ref = train.evaluate(anil.join_mlp(params), tasks.Sinusoid(), rng=np.random.default_rng(7), **kw)
    np.testing.assert_allclose(ours["mse"], ref["mse"], rtol=1e-9)


def test_a_head_that_does_not_fit_names_the_shapes():
    params, batch = _setup()
    wide = dict(params, head=(np.zeros((7, 1)), np.zeros(1)))
    with pytest.raises(ValueError, match=r"head W \(7, 1\) expects 7 features.*\(1, 1, 6\)"):
        anil.anil_value_and_grad(wide, batch, 0.01, 1)
    two_out = dict(params, head=(np.zeros((6, 2)), np.zeros(2)))
    with pytest.raises(ValueError, match="2 outputs .* y of size 1"):
        anil.anil_loss(two_out, batch)
    with pytest.raises(ValueError, match=r"W \(6, 1\) and b \(3,\)"):
        anil.anil_loss(dict(params, head=(np.zeros((6, 1)), np.zeros(3))), batch)
    with pytest.raises(TypeError, match="body"):
        anil.anil_loss(anil.join_mlp(params), batch)
    with pytest.raises(ValueError, match="same first two axes"):
        anil.anil_loss(params, batch, body=lambda b, x: anp.sum(anil.mlp_body(b, x), axis=1))
    tanh = _tanh_params(np.random.default_rng(0), h=5)
    with pytest.raises(TypeError, match=r"params\['body'\] must be a non-empty list"):
        anil.anil_loss(tanh, batch)   # the default MLP body given the tanh body's parameters
    nan = dict(params, head=(params["head"][0] * np.nan, params["head"][1]))
    with pytest.raises(ValueError, match="NaN"):
        anil.anil_loss(nan, batch)
    with pytest.raises(ValueError, match="two layers"):
        anil.split_mlp(nets.mlp_init(np.random.default_rng(0), [1, 1]))


def test_the_one_pass_check_sends_every_bad_call_to_the_message_that_names_it():
    """The common call is checked in one pass; anything it does not accept meets the full checks' errors."""
    params, batch = _setup()
    assert anil._common_call(params, batch, 0.01, 2) == (0.01, 2)
    v1, g1 = anil.anil_value_and_grad(params, batch, 0.01, 2)
    v2, g2 = anil.anil_value_and_grad(params, batch, np.float64(0.01), np.int64(2))  # the full checks' route
    assert v1 == v2 and checks.rel_error(g1, g2) == 0
    nan_x = tasks.TaskBatch(batch.x_support * np.nan, batch.y_support, batch.x_query, batch.y_query)
    nan_body = dict(params, body=[(params["body"][0][0] * np.nan, params["body"][0][1]), params["body"][1]])
    bad = [((params, nan_x, 0.01, 1), ValueError, "batch.x_support contains NaN"),
           ((nan_body, batch, 0.01, 1), ValueError, "params contain NaN"),
           ((params, batch, -0.1, 1), ValueError, "alpha must be finite and >= 0"),
           ((params, batch, np.inf, 1), ValueError, "alpha must be finite and >= 0"),
           ((params, batch, True, 1), TypeError, "alpha must be a real number"),
           ((params, batch, 0.01, -1), ValueError, "inner_steps must be >= 0"),
           ((params, batch, 0.01, 1.0), TypeError, "inner_steps must be an integer"),
           ((dict(params, head=(np.zeros((6, 2)), np.zeros(2))), batch, 0.01, 1), ValueError, "2 outputs"),
           ((params, tasks.TaskBatch(batch.x_support[0], batch.y_support, batch.x_query, batch.y_query), 0.01, 1),
            ValueError, "must have shape")]
    for args, error, message in bad:
        assert anil._common_call(*args) is None
        with pytest.raises(error, match=message):
            anil.anil_value_and_grad(*args)
    f32 = tree.astype(params, np.float32)  # float32 parameters, float64 data: cast, not refused
    assert anil._common_call(f32, batch, 0.01, 1) is None
    assert anil.anil_value_and_grad(f32, batch, 0.01, 1)[1]["head"][0].dtype == np.float32
