"""The lesson's closed forms against the engine, and checkers that really catch wrong gradients."""
import numpy as np

from mlcourse import checks, nets, tasks

EXACT = 1e-10


def test_maml_equals_fomaml_minus_alpha_hvp():
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 4, 5, 6)
    theta = nets.mlp_init(rng, [1, 12, 12, 1])
    for alpha in (0.01, 0.1):
        r = checks.check_maml_vs_fomaml_hvp(theta, batch, alpha)
        assert r["rel_error"] < EXACT
        assert checks.rel_error(r["maml"], r["fomaml"]) > 1e-6  # the HVP term is not negligible


def test_worked_example_1_closed_form():
    batch = tasks.Scalar1D().sample(np.random.default_rng(1), num_tasks=1)
    for theta in (0.3, 0.9, 1.7):
        for alpha in (0.05, 0.3):
            r = checks.check_worked_example_1(theta, batch, alpha)
            assert r["rel_error"] < EXACT
            assert r["fd_rel_error"] < 1e-6


def test_worked_example_2_closed_form_and_c():
    batch = tasks.LinearSlope().sample(np.random.default_rng(2), num_tasks=20, k_support=5, k_query=5)
    r = checks.check_worked_example_2(0.4, batch, alpha=0.2)
    assert r["rel_error"] < EXACT
    np.testing.assert_allclose(r["c"], 0.4 * np.mean(batch.x_support[..., 0] ** 2, axis=1))
    # theta' is the convex combination (1 - c) theta + c a when 0 < c < 1
    a, c = batch.params["slope"], r["c"]
    assert np.all((c > 0) & (c < 1))
    assert np.all(np.minimum(0.4, a) <= r["engine"]) and np.all(r["engine"] <= np.maximum(0.4, a))


def test_best_initialisation_is_mean_slope():
    slopes = np.random.default_rng(3).uniform(0.5, 2.5, 1000)
    r = checks.check_best_initialisation(slopes)
    assert r["rel_error"] < EXACT
    J = lambda t: np.mean((t - slopes) ** 2)  # noqa: E731
    t = checks.best_initialisation(slopes)
    assert J(t) < J(t + 1e-3) and J(t) < J(t - 1e-3)


def test_gradient_checks_catch_a_wrong_gradient():
    f = lambda th: np.sum(np.sin(th[0]) * th[1])  # noqa: E731
    theta = [np.array([0.3, 0.7]), np.array([1.5, -0.5])]
    assert checks.check_grad(f, theta)["rel_error"] < 1e-8
    wrong = [np.cos(theta[0]) * theta[1] * 1.01, np.sin(theta[0])]
    assert checks.check_grad(f, theta, grad=wrong)["rel_error"] > 1e-3
    v = [np.array([1.0, -2.0]), np.array([0.5, 0.1])]
    assert checks.check_hvp(f, theta, v)["rel_error"] < 1e-7


def test_meta_gradient_1d_formula():
    assert checks.meta_gradient_1d(2.0, 3.0, 0.1) == 2.0 * (1 - 0.3)
