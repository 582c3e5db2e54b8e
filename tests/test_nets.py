import numpy as np
import pytest

from mlcourse import nets


def _loop_apply(theta, x):
    h = x
    for l, (W, b) in enumerate(theta):
        h = h @ W + b
        if l < len(theta) - 1:
            h = np.maximum(h, 0)
    return h


def test_shared_and_per_task_parameters():
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [2, 7, 5, 3])
    assert [W.shape for W, _ in theta] == [(2, 7), (7, 5), (5, 3)]
    x = rng.standard_normal((4, 6, 2))
    y = nets.mlp_apply(theta, x)
    assert y.shape == (4, 6, 3)
    np.testing.assert_allclose(y, _loop_apply(theta, x))
    per_task = [(np.stack([W * (t + 1) for t in range(4)]), np.stack([b + t for t in range(4)])) for W, b in theta]
    y2 = nets.mlp_apply(per_task, x)
    for t in range(4):
        th_t = [(W[t], b[t]) for W, b in per_task]
        np.testing.assert_allclose(y2[t], _loop_apply(th_t, x[t]))


def test_dtype_follows_parameters():
    rng = np.random.default_rng(0)
    t32 = nets.mlp_init(rng, [1, 4, 1], dtype=np.float32)
    assert nets.mlp_apply(t32, np.ones((2, 3, 1))).dtype == np.float32
    assert nets.mlp_apply(nets.mlp_init(rng, [1, 4, 1]), np.ones((2, 3, 1), np.float32)).dtype == np.float64


def test_parameter_shape_errors():
    rng = np.random.default_rng(0)
    theta = nets.mlp_init(rng, [1, 4, 1])
    with pytest.raises(ValueError, match="sizes\\[0\\] = 3"):
        nets.check_mlp_params(theta, x_dim=3, y_dim=1)
    with pytest.raises(ValueError, match="chain"):
        nets.check_mlp_params([theta[0], (np.zeros((5, 1)), np.zeros(1))])
    with pytest.raises(TypeError, match="list of \\(W, b\\)"):
        nets.check_mlp_params({"W": 1})
    with pytest.raises(ValueError, match="at least"):
        nets.mlp_init(rng, [3])
    with pytest.raises(ValueError, match="feature axis"):
        nets.mlp_apply(theta, np.ones((4, 5)))


def test_mse_per_task_and_scalar_models():
    pred = np.zeros((3, 4, 1))
    y = np.ones((3, 4, 1)) * np.arange(3)[:, None, None]
    np.testing.assert_allclose(nets.mse(pred, y), [0, 1, 4])
    x = np.ones((2, 3, 1))
    np.testing.assert_allclose(nets.linear_apply(np.array([2.0, 3.0]), x)[:, 0, 0], [2, 3])
    np.testing.assert_allclose(nets.sine_apply(0.5, x), np.sin(0.5) * x)
