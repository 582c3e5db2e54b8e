"""MAML and FOMAML for N-way classification against finite differences (second order) and a loop."""
import numpy as np
import pytest

from mlcourse import checks, classification as cl, conv, tree

from tolerances import EXACT, FD_TOL


def _setup(seed=0, T=2, N=3, Q=2, size=6):
    rng = np.random.default_rng(seed)
    theta = conv.conv4_init(rng, channels=3, blocks=2, dtype=np.float64)
    theta = [(W, g + 0.3 * rng.standard_normal(g.shape), b + 0.1 * rng.standard_normal(b.shape)) for W, g, b in theta]
    batch = cl.ClassificationBatch(rng.random((T, N, size, size)), np.tile(np.arange(N), (T, 1)),
                                   rng.random((T, N * Q, size, size)), np.tile(np.repeat(np.arange(N), Q), (T, 1)), N)
    return theta, batch


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_gradient_matches_finite_differences(steps):
    """Second order through every inner step.  The network is piecewise smooth (ReLU, max-pooling):
    the point is one where no pooling window is within eps of a tie."""
    theta, batch = _setup(1)
    loss, g = cl.maml_value_and_grad(theta, batch, alpha=0.5, inner_steps=steps)
    fd = checks.finite_difference_grad(lambda th: cl.maml_loss(th, batch, 0.5, steps), theta, eps=1e-6)
    assert checks.rel_error(g, fd) < FD_TOL


def test_fomaml_is_the_query_gradient_at_the_adapted_parameters():
    theta, batch = _setup(1)
    loss, g = cl.fomaml_value_and_grad(theta, batch, alpha=0.5, inner_steps=2)
    body, head = cl.adapt(theta, batch, 0.5, 2)
    for t in range(batch.num_tasks):
        body_t = [tuple(a[t] for a in blk) for blk in body]
        head_t = tuple(a[t:t + 1] for a in head)

        def q(b):
            tt = tree.tile_tasks(b, 1)
            return cl.task_cross_entropy(cl.classifier_apply_tasks((tt, head_t), batch.x_query[t:t + 1]),
                                         batch.y_query[t:t + 1])[0]
        fd = checks.finite_difference_grad(q, body_t, eps=1e-6)
        if t == 0:
            total = fd
        else:
            total = tree.add(total, fd)
    assert checks.rel_error(g, tree.scale(1 / batch.num_tasks, total)) < FD_TOL


def test_zero_head_first_step_moves_only_the_head_towards_class_means():
    """From W = 0 the embedding gets no gradient in step 1; W_k = alpha (mean z of class k - mean z) / n."""
    theta, batch = _setup(2)
    body, (W, b) = cl.adapt(theta, batch, alpha=0.3, steps=1)
    assert checks.rel_error([tuple(a[0] for a in blk) for blk in body], theta) < EXACT
    z = conv.conv4_apply(theta, batch.x_support[0])
    n = len(z)
    expected = 0.3 * (z - z.mean(axis=0)).T / n   # one support image per class: columns = classes
    assert np.max(np.abs(W[0] - expected)) < 1e-12


def test_vectorised_tasks_equal_one_task_at_a_time():
    theta, batch = _setup(3, T=3)
    g = cl.maml_value_and_grad(theta, batch, 0.5, 1)[1]
    one = [cl.maml_value_and_grad(theta, cl.ClassificationBatch(batch.x_support[t:t + 1], batch.y_support[t:t + 1],
                                                                batch.x_query[t:t + 1], batch.y_query[t:t + 1],
                                                                batch.n_way), 0.5, 1)[1] for t in range(3)]
    assert checks.rel_error(g, tree.scale(1 / 3, tree.tree_map(lambda *a: sum(a), *one))) < EXACT


def test_bad_batches_and_settings():
    theta, batch = _setup(4)
    with pytest.raises(TypeError, match="ClassificationBatch"):
        cl.maml_loss(theta, (batch.x_support,), 0.5, 1)
    bad = cl.ClassificationBatch(batch.x_support, batch.y_support + 3, batch.x_query, batch.y_query, batch.n_way)
    with pytest.raises(ValueError, match="labels"):
        cl.fomaml_value_and_grad(theta, bad)
    with pytest.raises(ValueError):
        cl.maml_loss(theta, batch, alpha=-1.0)
    with pytest.raises(TypeError):
        cl.maml_loss(theta, batch, inner_steps=1.5)
