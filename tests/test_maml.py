"""MAML against finite differences, against a per-task loop, and its error messages."""
import numpy as np
import pytest

from mlcourse import checks, maml, nets, tasks, tree

from tolerances import EXACT, FD_TOL


def _setup(seed=0, T=3, K=4, Q=5, sizes=(1, 6, 6, 1)):
    rng = np.random.default_rng(seed)
    batch = tasks.Sinusoid().sample(rng, T, K, Q)
    theta = nets.mlp_init(rng, list(sizes))
    return theta, batch


@pytest.mark.parametrize("steps", [1, 5])
def test_maml_grad_matches_finite_differences(steps):
    theta, batch = _setup()
    alpha = 0.01
    g = maml.maml_grad(theta, batch, alpha, steps)
    fd = checks.finite_difference_grad(lambda th: maml.maml_loss(th, batch, alpha, steps), theta, eps=1e-6)
    assert checks.rel_error(g, fd) < FD_TOL


def test_autograd_path_with_custom_model_matches_finite_differences():
    batch = tasks.Scalar1D().sample(np.random.default_rng(3), num_tasks=4, k_support=5, k_query=5)
    f = lambda th: maml.maml_loss(th, batch, 0.1, 3, model=nets.sine_apply)  # noqa: E731
    g = maml.maml_grad(np.float64(0.8), batch, 0.1, 3, model=nets.sine_apply)
    fd = checks.finite_difference_grad(f, np.float64(0.8))
    assert checks.rel_error(g, fd) < FD_TOL


def test_vectorised_adapt_equals_per_task_loop():
    theta, batch = _setup(T=4)
    alpha, steps = 0.02, 3
    theta_prime = maml.adapt(theta, batch.x_support, batch.y_support, alpha, steps)
    from autograd import grad
    for t in range(batch.num_tasks):
        th = theta
        for _ in range(steps):
            g = grad(lambda p: np.mean((nets.mlp_apply(p, batch.x_support[t]) - batch.y_support[t]) ** 2))(th)
            th = tree.sub(th, tree.scale(alpha, g))
        assert checks.rel_error([(W[t], b[t]) for W, b in theta_prime], th) < EXACT


def test_meta_batch_gradient_is_mean_of_single_task_gradients():
    theta, batch = _setup(T=5)
    g = maml.maml_grad(theta, batch, 0.01, 2)
    single = [maml.maml_grad(theta, batch.task(i), 0.01, 2) for i in range(5)]
    mean = tree.scale(0.2, tree.tree_map(lambda *a: sum(a), *single))
    assert checks.rel_error(g, mean) < EXACT


def test_zero_steps_is_plain_query_gradient_and_fomaml_drops_curvature():
    theta, batch = _setup()
    g0 = maml.maml_grad(theta, batch, 0.01, 0)
    f0 = maml.fomaml_grad(theta, batch, 0.01, 0)
    assert checks.rel_error(g0, f0) < EXACT
    g1, f1 = maml.maml_grad(theta, batch, 0.05, 1), maml.fomaml_grad(theta, batch, 0.05, 1)
    assert checks.rel_error(g1, f1) > 1e-4  # the Hessian term is really there


def test_loss_value_consistent_across_paths():
    theta, batch = _setup()
    v1, _ = maml.maml_value_and_grad(theta, batch, 0.01, 2)
    v2, _ = maml.maml_value_and_grad(theta, batch, 0.01, 2, backend="autograd")
    assert abs(v1 - v2) < EXACT and abs(maml.maml_loss(theta, batch, 0.01, 2) - v1) < EXACT


def test_query_losses_decrease_for_small_alpha():
    theta, batch = _setup(T=6)
    # Query = support: small SGD steps on a task's own loss lower that loss, for every task and every step.
    own = tasks.TaskBatch(batch.x_support, batch.y_support, batch.x_support, batch.y_support)
    L = maml.query_losses(theta, own, 0.001, steps=(0, 1, 5))
    assert L.shape == (3, 6)
    assert np.all(L[1] < L[0]) and np.all(L[2] < L[1])
    np.testing.assert_allclose(L[0], nets.mse(nets.mlp_apply(theta, own.x_query), own.y_query), rtol=EXACT)


def test_query_losses_rows_are_the_meta_loss_after_each_step_count():
    theta, batch = _setup(T=4)
    steps = (0, 1, 3, 4)
    L = maml.query_losses(theta, batch, 0.05, steps=steps)
    for row, s in zip(L, steps):  # steps are taken one after another, not restarted from theta
        assert abs(row.mean() - maml.maml_loss(theta, batch, 0.05, s)) < EXACT
    th = np.float64(0.8)
    scalar = tasks.Scalar1D().sample(np.random.default_rng(3), 3, 5, 5)
    Ls = maml.query_losses(th, scalar, 0.1, steps=(0, 2), model=nets.sine_apply)  # the autograd path
    assert abs(Ls[1].mean() - maml.maml_loss(th, scalar, 0.1, 2, model=nets.sine_apply)) < EXACT
    with pytest.raises(ValueError, match="increasing"):
        maml.query_losses(theta, batch, 0.05, steps=(2, 1))


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(alpha=-0.1), ValueError, "alpha"),
    (dict(alpha=float("nan")), ValueError, "alpha"),
    (dict(alpha=float("inf")), ValueError, "alpha"),
    (dict(alpha="0.1"), TypeError, "alpha"),
    (dict(inner_steps=1.5), TypeError, "inner_steps"),
    (dict(inner_steps=-1), ValueError, "inner_steps"),
])
def test_bad_hyperparameters(kwargs, exc, words):
    theta, batch = _setup()
    args = dict(alpha=0.01, inner_steps=1)
    args.update(kwargs)
    for fn in (maml.maml_grad, maml.fomaml_grad, maml.maml_loss):
        with pytest.raises(exc, match=words):
            fn(theta, batch, **args)


def test_bad_data_and_parameters():
    theta, batch = _setup()
    nan_batch = tasks.TaskBatch(batch.x_support, batch.y_support * np.nan, batch.x_query, batch.y_query)
    with pytest.raises(ValueError, match="NaN"):
        maml.maml_grad(theta, nan_batch)
    with pytest.raises(ValueError, match="sizes\\[0\\]"):
        maml.maml_grad(nets.mlp_init(np.random.default_rng(0), [2, 4, 1]), batch)
    with pytest.raises(ValueError, match="sizes\\[-1\\]"):
        maml.adapt(nets.mlp_init(np.random.default_rng(0), [1, 4, 2]), batch.x_support, batch.y_support)
    empty = tasks.TaskBatch(batch.x_support[:, :0], batch.y_support[:, :0], batch.x_query, batch.y_query)
    with pytest.raises(ValueError, match="K = 0"):
        maml.maml_grad(theta, empty)
    with pytest.raises(TypeError, match="TaskBatch"):
        maml.maml_grad(theta, (batch.x_support, batch.y_support))
    bad_theta = [(theta[0][0] * np.nan, theta[0][1])] + theta[1:]
    with pytest.raises(ValueError, match="NaN"):
        maml.maml_grad(bad_theta, batch)
    with pytest.raises(ValueError, match="backend"):
        maml.maml_grad(theta, batch, backend="jax")
