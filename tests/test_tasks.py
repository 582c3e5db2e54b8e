import numpy as np
import pytest

from mlcourse import tasks


def test_sinusoid_shapes_ranges_and_determinism():
    b = tasks.Sinusoid().sample(np.random.default_rng(0), num_tasks=25, k_support=10, k_query=7)
    assert b.x_support.shape == b.y_support.shape == (25, 10, 1)
    assert b.x_query.shape == b.y_query.shape == (25, 7, 1)
    a, p = b.params["amplitude"], b.params["phase"]
    assert a.shape == p.shape == (25,)
    assert np.all((0.1 <= a) & (a <= 5.0)) and np.all((0 <= p) & (p <= np.pi))
    assert np.all(np.abs(b.x_support) <= 5.0)
    np.testing.assert_allclose(b.y_query, a[:, None, None] * np.sin(b.x_query - p[:, None, None]))
    b2 = tasks.Sinusoid().sample(np.random.default_rng(0), num_tasks=25, k_support=10, k_query=7)
    np.testing.assert_array_equal(b.x_support, b2.x_support)
    assert tasks.Sinusoid().sample(np.random.default_rng(0), 2, 3, 3, dtype=np.float32).x_support.dtype == np.float32


def test_linear_slope_and_scalar_tasks():
    b = tasks.LinearSlope(noise_std=0.0).sample(np.random.default_rng(1), num_tasks=4, k_support=5, k_query=3)
    np.testing.assert_allclose(b.y_support, b.params["slope"][:, None, None] * b.x_support)
    assert tasks.LinearSlope().mean_slope == 1.5
    s = tasks.Scalar1D().sample(np.random.default_rng(2), num_tasks=2, k_support=4, k_query=6)
    np.testing.assert_allclose(s.y_query, np.sin(s.params["omega"][:, None, None] * s.x_query))


def test_task_slicing_keeps_task_axis():
    b = tasks.Sinusoid().sample(np.random.default_rng(0), 5, 3, 2)
    t = b.task(2)
    assert t.num_tasks == 1 and t.x_support.shape == (1, 3, 1)
    np.testing.assert_array_equal(t.y_query[0], b.y_query[2])


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(k_support=0), ValueError, "k_support"),
    (dict(k_query=0), ValueError, "k_query"),
    (dict(num_tasks=2.5), TypeError, "num_tasks"),
    (dict(k_support=-1), ValueError, "k_support"),
])
def test_bad_sampling_arguments(kwargs, exc, words):
    args = dict(num_tasks=2, k_support=3, k_query=3)
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        tasks.Sinusoid().sample(np.random.default_rng(0), **args)


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="default_rng"):
        tasks.Sinusoid().sample(0, 2, 3, 3)


def test_bad_ranges():
    with pytest.raises(ValueError, match="low <= high"):
        tasks.Sinusoid(amplitude_range=(5, 1))


def test_batch_validation_messages():
    x = np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match="NaN"):
        tasks.TaskBatch(x, x + np.nan, x, x).validate()
    with pytest.raises(ValueError, match="shape"):
        tasks.TaskBatch(x[0], x, x, x).validate()
    with pytest.raises(ValueError, match="task axes differ"):
        tasks.TaskBatch(x, x, x[:1], x[:1]).validate()
    with pytest.raises(ValueError, match="K = 0"):
        tasks.TaskBatch(x[:, :0], x[:, :0], x, x).validate()
    b = tasks.batch_from_arrays([1.0, 2.0], [2.0, 4.0], [3.0], [6.0])
    assert b.x_support.shape == (1, 2, 1)


def test_sample_episode_properties():
    rng = np.random.default_rng(0)
    pool = [np.arange(20) + 100 * c for c in range(10)]
    xs, ys, xq, yq, chosen = tasks.sample_episode(rng, pool, n_way=5, k_shot=2, k_query=3)
    assert xs.shape == (10,) and xq.shape == (15,)
    np.testing.assert_array_equal(ys, np.repeat(np.arange(5), 2))
    np.testing.assert_array_equal(yq, np.repeat(np.arange(5), 3))
    assert len(set(chosen)) == 5
    for label, c in enumerate(chosen):  # examples come from the class they are labelled with
        assert np.all(xs[ys == label] // 100 == c) and np.all(xq[yq == label] // 100 == c)
    assert not set(xs) & set(xq)
    with pytest.raises(ValueError, match="n_way"):
        tasks.sample_episode(rng, pool[:3], n_way=5)
    with pytest.raises(ValueError, match="k_shot"):
        tasks.sample_episode(rng, pool, n_way=2, k_shot=15, k_query=10)
