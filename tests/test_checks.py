"""The lesson's closed forms against independent computations: finite differences of the actual
meta-objective, derivatives worked out by hand, the engine's autograd inner loop.

Nothing here restates an implementation: each quantity is computed a second way.
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from tolerances import EXACT, FD_TOL

from mlcourse import checks, directions, maml, nets, tasks, tree

EPS = 1e-6   # central-difference step: truncation error ~ EPS^2, rounding ~ 1e-16 / EPS


def central_difference(f, t, eps=EPS):
    return (f(t + eps) - f(t - eps)) / (2 * eps)


def scalar_task(seed=1):
    batch = tasks.Scalar1D().sample(np.random.default_rng(seed), num_tasks=1)
    xs, ys, xq, yq = (a[0, :, 0] for a in (batch.x_support, batch.y_support, batch.x_query, batch.y_query))
    return batch, xs, ys, xq, yq


def sine_loss(t, x, y):
    """mean (sin(t x) - y)^2 and its derivative by hand: 2 mean((sin(t x) - y) cos(t x) x)."""
    return np.mean((np.sin(t * x) - y) ** 2), np.mean(2 * (np.sin(t * x) - y) * np.cos(t * x) * x)


def meta_objective(t, alpha, steps, xs, ys, xq, yq):
    """L_q(theta^(m)) with the inner steps taken with the hand derivative of L_s."""
    for _ in range(steps):
        t = t - alpha * sine_loss(t, xs, ys)[1]
    return sine_loss(t, xq, yq)[0]


# ---- MAML = FOMAML - alpha HVP ----------------------------------------------------------------

def test_maml_equals_fomaml_minus_alpha_hvp():
    rng = np.random.default_rng(0)
    batch = tasks.Sinusoid().sample(rng, 4, 5, 6)
    theta = nets.mlp_init(rng, [1, 12, 12, 1])
    for alpha in (0.01, 0.1):
        r = checks.check_maml_vs_fomaml_hvp(theta, batch, alpha)
        assert r["rel_error"] < EXACT
        assert checks.rel_error(r["maml"], r["fomaml"]) > 1e-6  # the HVP term is not negligible


def test_hessian_vector_product_is_the_full_hessian_times_v():
    f = lambda th: anp.sum(anp.sin(th[0]) * th[1] ** 2)  # noqa: E731
    theta = [np.array([0.3, 0.7]), np.array([1.5, -0.5])]
    v = [np.array([1.0, -2.0]), np.array([0.5, 0.1])]
    # by hand: f = sum_i sin(a_i) b_i^2;  d2f/da2 = -sin(a) b^2, d2f/dadb = 2 cos(a) b, d2f/db2 = 2 sin(a)
    a, b = theta
    Hv = [-np.sin(a) * b ** 2 * v[0] + 2 * np.cos(a) * b * v[1], 2 * np.cos(a) * b * v[0] + 2 * np.sin(a) * v[1]]
    assert checks.rel_error(checks.hessian_vector_product(f)(theta, v), Hv) < EXACT


def test_gradient_checks_catch_a_wrong_gradient():
    f = lambda th: np.sum(np.sin(th[0]) * th[1])  # noqa: E731
    theta = [np.array([0.3, 0.7]), np.array([1.5, -0.5])]
    assert checks.check_grad(f, theta)["rel_error"] < FD_TOL
    wrong = [np.cos(theta[0]) * theta[1] * 1.01, np.sin(theta[0])]
    assert checks.check_grad(f, theta, grad=wrong)["rel_error"] > 1e-3
    v = [np.array([1.0, -2.0]), np.array([0.5, 0.1])]
    assert checks.check_hvp(f, theta, v)["rel_error"] < FD_TOL


# ---- worked example 1 ---------------------------------------------------------------------------

def test_meta_gradient_1d_is_the_derivative_of_the_one_step_meta_objective():
    """L_s = theta^4 / 4 + theta, L_q = sin: derivatives by hand, meta-objective differenced."""
    dLs = lambda t: t ** 3 + 1          # noqa: E731
    d2Ls = lambda t: 3 * t ** 2         # noqa: E731
    for theta, alpha in ((0.4, 0.1), (-1.2, 0.05), (0.9, 0.5)):
        meta = lambda t: np.sin(t - alpha * dLs(t))  # noqa: E731,B023
        formula = checks.meta_gradient_1d(np.cos(theta - alpha * dLs(theta)), d2Ls(theta), alpha)
        assert formula == pytest.approx(central_difference(meta, theta), rel=FD_TOL, abs=FD_TOL)
    # FOMAML's L_q'(theta') alone is not it: the curvature factor matters
    assert checks.meta_gradient_1d(1.0, 3.0, 0.5) != pytest.approx(1.0)


def test_worked_example_1_against_a_hand_written_meta_objective():
    batch, xs, ys, xq, yq = scalar_task(1)
    for theta in (0.3, 0.9, 1.7):
        for alpha in (0.05, 0.3):
            r = checks.check_worked_example_1(theta, batch, alpha)
            fd = central_difference(lambda t: meta_objective(t, alpha, 1, xs, ys, xq, yq), theta)  # noqa: B023
            assert r["closed_form"] == pytest.approx(fd, rel=FD_TOL, abs=FD_TOL)
            assert r["rel_error"] < EXACT                       # closed form = autograd
            tp = theta - alpha * sine_loss(theta, xs, ys)[1]
            assert r["theta_prime"] == pytest.approx(tp, rel=EXACT)
            assert r["first_order"] == pytest.approx(sine_loss(tp, xq, yq)[1], rel=EXACT)


def test_losses_on_grid_are_the_mse_of_each_theta():
    batch, xs, ys, xq, yq = scalar_task(2)
    grid = np.linspace(-1, 3, 9)
    Ls, Lq = checks.losses_on_grid(batch, grid)
    np.testing.assert_allclose(Ls, [sine_loss(t, xs, ys)[0] for t in grid], rtol=EXACT)
    np.testing.assert_allclose(Lq, [sine_loss(t, xq, yq)[0] for t in grid], rtol=EXACT)


def test_meta_gradient_steps_is_the_derivative_of_the_m_step_meta_objective():
    batch, xs, ys, xq, yq = scalar_task(3)
    for theta, alpha, steps in ((0.3, 0.3, 1), (1.2, 0.1, 2), (-0.4, 0.5, 3), (0.8, 0.2, 5)):
        p = checks.meta_gradient_steps(batch, theta, alpha, steps)
        fd = central_difference(lambda t: meta_objective(t, alpha, steps, xs, ys, xq, yq), theta)  # noqa: B023
        assert float(p["exact"]) == pytest.approx(fd, rel=FD_TOL, abs=FD_TOL)
        # the engine's inner loop (autograd through maml.adapt) lands on the same theta^(m)
        tp = maml.adapt(np.float64(theta), batch.x_support, batch.y_support, alpha, steps, model=nets.sine_apply)
        assert float(p["theta_prime"]) == pytest.approx(float(np.ravel(tp)[0]), rel=EXACT)
        assert float(p["exact"]) == pytest.approx(
            float(maml.maml_grad(np.float64(theta), batch, alpha, steps, model=nets.sine_apply)), rel=1e-9, abs=1e-12)
        auto, fd_engine = checks.meta_gradient_autograd(batch, theta, alpha, steps)
        assert auto == pytest.approx(fd, rel=FD_TOL, abs=FD_TOL) and fd_engine == pytest.approx(fd, rel=FD_TOL, abs=FD_TOL)
    # alpha = 0: no step, the meta-gradient is the plain query gradient and the factor is 1
    p = checks.meta_gradient_steps(batch, 0.7, 0.0, 3)
    assert float(p["factor"]) == 1.0 and float(p["exact"]) == pytest.approx(sine_loss(0.7, xq, yq)[1], rel=EXACT)
    grid = np.linspace(-1, 3, 7)   # vectorised over theta = one call per theta
    vec = checks.meta_gradient_steps(batch, grid, 0.2, 2)["exact"]
    one = [float(checks.meta_gradient_steps(batch, t, 0.2, 2)["exact"]) for t in grid]
    np.testing.assert_allclose(vec, one, rtol=EXACT)
    with pytest.raises(ValueError, match="one task"):
        checks.meta_gradient_steps(tasks.Scalar1D().sample(np.random.default_rng(0), num_tasks=2), 0.3, 0.1)


# ---- worked example 2 and the "hard" practice problem -------------------------------------------

def test_worked_example_2_against_the_engine_inner_loop():
    batch = tasks.LinearSlope().sample(np.random.default_rng(2), num_tasks=20, k_support=5, k_query=5)
    theta, alpha = 0.4, 0.2
    r = checks.check_worked_example_2(theta, batch, alpha=alpha)
    assert r["rel_error"] < EXACT
    a = batch.params["slope"]
    # c is the fraction of the way to a that the engine's gradient step goes
    np.testing.assert_allclose((r["engine"] - theta) / (a - theta), checks.linear_c(alpha, batch.x_support), rtol=1e-9)
    assert np.all((r["c"] > 0) & (r["c"] < 1))     # so theta' lies between theta and a
    assert np.all(np.minimum(theta, a) <= r["engine"]) and np.all(r["engine"] <= np.maximum(theta, a))


def test_linear_trajectories_are_the_engines_repeated_steps():
    batch = tasks.LinearSlope().sample(np.random.default_rng(4), num_tasks=6, k_support=5, k_query=5)
    a = batch.params["slope"]
    path = checks.linear_trajectories(0.2, 0.4, batch.x_support, a, 3)
    assert path.shape == (4, 6) and np.all(path[0] == 0.2)
    for k in range(1, 4):
        engine = maml.adapt(np.float64(0.2), batch.x_support, batch.y_support, 0.4, k, model=nets.linear_apply)
        np.testing.assert_allclose(path[k], np.ravel(engine), rtol=1e-9)


@pytest.mark.parametrize("c, word", [(0.5, "convex"), (1.0, "exactly"), (1.5, "converge"), (2.0, "forever"),
                                     (2.5, "divergence")])
def test_linear_regime_says_what_repeated_steps_do(c, word):
    x = np.array([[[1.0], [-1.0]]])             # mean x^2 = 1, so c = 2 alpha
    a, theta = np.array([2.0]), 0.0
    path = checks.linear_trajectories(theta, c / 2, x, a, 8)[:, 0] - a[0]   # distance to a after k steps
    assert word in checks.linear_regime(c)
    if c < 1:
        assert np.all(np.diff(np.abs(path)) < 0) and np.all(path < 0)      # monotone, never past a
    elif c == 1:
        assert np.all(path[1:] == 0)
    elif c < 2:
        assert path[1] > 0 and np.all(np.diff(np.abs(path)) < 0)           # overshoots, still converges
    elif c == 2:
        np.testing.assert_allclose(np.abs(path), 2.0)                      # bounces
    else:
        assert np.all(np.diff(np.abs(path)) > 0)                           # diverges
    assert "no step" in checks.linear_regime(0.0)


def test_best_initialisation_is_mean_slope():
    slopes = np.random.default_rng(3).uniform(0.5, 2.5, 1000)
    r = checks.check_best_initialisation(slopes)
    assert r["rel_error"] < EXACT
    J = lambda t: np.mean((t - slopes) ** 2)  # noqa: E731
    t = checks.best_initialisation(slopes)
    assert J(t) < J(t + 1e-3) and J(t) < J(t - 1e-3)
    assert central_difference(J, t) == pytest.approx(0.0, abs=FD_TOL)


# ---- notebook 00's picture ----------------------------------------------------------------------

def test_quadratic_maml_step_is_the_gradient_of_the_meta_objective():
    rng = np.random.default_rng(5)
    optima, theta, alpha = rng.normal(size=(3, 2)), np.array([-1.0, -0.8]), 0.3
    L = lambda t, o: anp.sum((t - o) ** 2)  # noqa: E731
    meta = lambda t: anp.mean(anp.array([L(t - alpha * grad(L)(t, o), o) for o in optima]))  # noqa: E731
    r = checks.quadratic_maml_step(theta, optima, alpha)
    np.testing.assert_allclose(r["meta_gradient"], grad(meta)(theta), rtol=EXACT)
    fd = [central_difference(lambda s: meta(theta + s * e), 0.0) for e in np.eye(2)]  # noqa: B023
    np.testing.assert_allclose(r["meta_gradient"], fd, rtol=FD_TOL)
    np.testing.assert_allclose(r["theta_prime"], [theta - alpha * grad(L)(theta, o) for o in optima], rtol=EXACT)
    with pytest.raises(ValueError, match="tasks, d"):
        checks.quadratic_maml_step(theta, optima[0], alpha)


# ---- meta-test adaptation -----------------------------------------------------------------------

def test_adaptation_path_is_the_engines_adaptation():
    rng = np.random.default_rng(6)
    theta = nets.mlp_init(rng, [1, 10, 10, 1])
    task = tasks.Sinusoid().sample(rng, 1, 5, 20)
    grid = np.linspace(-5, 5, 11)
    path = checks.adaptation_path(theta, task, alpha=0.05, max_steps=4, x_grid=grid)
    assert path["fits"].shape == (5, 11) and path["mse"].shape == (5,)
    np.testing.assert_allclose(path["mse"], maml.query_losses(theta, task, 0.05, list(range(5)))[:, 0], rtol=1e-9)
    for k in (0, 3):
        tp = maml.adapt(theta, task.x_support, task.y_support, 0.05, k)
        np.testing.assert_allclose(path["fits"][k], nets.mlp_apply(tp, grid[None, :, None])[0, :, 0], rtol=1e-9)
    with pytest.raises(ValueError, match="one task"):
        checks.adaptation_path(theta, tasks.Sinusoid().sample(rng, 2, 5, 5))


# ---- the directions of notebook 04: the plane of the widget --------------------------------------

def test_plane_coordinates_keep_lengths_and_angles():
    rng = np.random.default_rng(7)
    d = {k: [rng.normal(size=(3, 2)), rng.normal(size=2)] for k in ("maml", "fomaml", "reptile")}
    p = directions.plane_coordinates(d)
    s = directions.summarize(d)
    assert p["maml"][1] == pytest.approx(0.0, abs=EXACT) and p["maml"][0] == pytest.approx(s["norm_maml"], rel=EXACT)
    assert np.hypot(*p["fomaml"]) == pytest.approx(s["norm_fomaml"], rel=EXACT)       # FOMAML lies in the plane
    assert p["fomaml"][0] / np.hypot(*p["fomaml"]) == pytest.approx(s["cos_fomaml"], rel=EXACT)
    assert np.hypot(*p["reptile"]) <= s["norm_reptile"]                               # a projection
    assert p["reptile"][0] / s["norm_reptile"] == pytest.approx(s["cos_reptile"], rel=EXACT)
    assert s["norm_dropped"] == pytest.approx(tree.norm(tree.sub(d["maml"], d["fomaml"])), rel=EXACT)
    parallel = {"maml": d["maml"], "fomaml": tree.scale(2.0, d["maml"]), "reptile": d["reptile"]}
    assert directions.plane_coordinates(parallel)["fomaml"][1] == 0.0
