"""The Conv-4 engine: every hand-written VJP against finite differences, to first and second order."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from mlcourse import checks, conv

from tolerances import EXACT, FD_TOL


def _rng(seed=0):
    return np.random.default_rng(seed)


def _conv_reference(x, W):
    """A plain loop: y[t, n, i, j, o] = sum_{a, b, c} x_pad[t, n, i + a, j + b, c] W[t, a, b, c, o]."""
    T, n, H, Wd, C = x.shape
    xp = np.zeros((T, n, H + 2, Wd + 2, C))
    xp[:, :, 1:-1, 1:-1] = x
    y = np.zeros((T, n, H, Wd, W.shape[-1]))
    for i in range(H):
        for j in range(Wd):
            y[:, :, i, j] = np.einsum("tnabc,tabco->tno", xp[:, :, i:i + 3, j:j + 3], W)
    return y


def _bn_pool_reference(x, gamma, beta):
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    y = gamma[:, None, None, None] * (x - mu) / np.sqrt(var + conv.BN_EPS) + beta[:, None, None, None]
    T, n, H, W, C = x.shape
    h, w = H // 2, W // 2
    return y[:, :, :2 * h, :2 * w].reshape(T, n, h, 2, w, 2, C).max(axis=(3, 5))


def test_conv3x3_equals_a_loop_and_shared_filters_broadcast():
    rng = _rng()
    x, W = rng.standard_normal((2, 3, 5, 4, 2)), rng.standard_normal((2, 3, 3, 2, 3))
    assert np.max(np.abs(conv.conv3x3(x, W) - _conv_reference(x, W))) < EXACT
    shared = conv.conv3x3(x, W[:1])
    assert np.max(np.abs(shared - _conv_reference(x, np.repeat(W[:1], 2, axis=0)))) < EXACT


def test_bn_pool_equals_batchnorm_then_maxpool_including_negative_gamma_and_odd_sizes():
    rng = _rng(1)
    x = rng.standard_normal((2, 3, 5, 7, 4))
    gamma, beta = rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    gamma[0, 0], gamma[1, 2] = -1.5, -0.2          # the min-pool branch
    assert np.max(np.abs(conv.bn_pool(x, gamma, beta) - _bn_pool_reference(x, gamma, beta))) < 1e-9


def _fd_check(f, args):
    g = grad(f)(args)
    fd = checks.finite_difference_grad(f, args, eps=1e-6)
    return checks.rel_error(g, fd)


@pytest.mark.parametrize("shared", [False, True])
def test_conv3x3_vjps_match_finite_differences(shared):
    rng = _rng(2)
    x = rng.standard_normal((2, 2, 4, 3, 2))
    W = rng.standard_normal((1 if shared else 2, 3, 3, 2, 3))
    v = rng.standard_normal((2, 2, 4, 3, 3))
    assert _fd_check(lambda p: anp.sum(conv.conv3x3(p[0], p[1]) * v), [x, W]) < FD_TOL


def test_wgrad_vjps_match_finite_differences():
    rng = _rng(3)
    x, g = rng.standard_normal((2, 2, 4, 3, 2)), rng.standard_normal((2, 2, 4, 3, 3))
    V = rng.standard_normal((2, 3, 3, 2, 3))
    assert _fd_check(lambda p: anp.sum(conv.conv3x3_wgrad(p[0], p[1]) * V), [x, g]) < FD_TOL


def test_bn_pool_vjp_matches_finite_differences_in_x_gamma_beta():
    rng = _rng(4)
    x = rng.standard_normal((2, 3, 5, 4, 3))
    gamma, beta = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    gamma[1, 1] = -0.7
    v = rng.standard_normal((2, 3, 2, 2, 3))
    assert _fd_check(lambda p: anp.sum(conv.bn_pool(p[0], p[1], p[2]) * v), [x, gamma, beta]) < FD_TOL


def test_bn_pool_fast_vjp_equals_the_differentiable_one():
    rng = _rng(5)
    x = rng.standard_normal((2, 3, 6, 5, 3))
    gamma, beta = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    gamma[0, 2] = -1.0
    g = rng.standard_normal((2, 3, 3, 2, 3))
    ans = conv.bn_pool(x, gamma, beta)
    fast = conv._bn_pool_vjp((0, 1, 2), ans, (x, gamma, beta), {})(g)
    traced = conv._bn_pool_vjp_traced((0, 1, 2), x, gamma, g)
    assert checks.rel_error(list(fast), list(traced)) < EXACT


def test_pooling_ties_send_the_gradient_to_one_element_per_window():
    """Blank paper convolves to exactly 0: a window of equal values passes its gradient on once."""
    x = np.zeros((1, 2, 4, 4, 1))
    x[0, 0, 0, 0, 0] = 1.0                    # one non-blank pixel, the rest tie
    mask_sum = sum(eq.sum() for _, _, eq in conv._selection(x, conv._pooled(x, np.ones((1, 1)))))
    assert mask_sum == 8                      # 2 images x 4 windows, one selected element each


def _second_order(f, params, rng):
    """grad of <grad f(p), u> against finite differences of it: a Hessian-vector product check."""
    u = [rng.standard_normal(np.shape(p)) for p in params]

    def h(p):
        return sum(anp.sum(a * b) for a, b in zip(grad(f)(p), u))
    return _fd_check(h, params)


def test_second_order_through_conv_and_wgrad():
    rng = _rng(6)
    x, W = rng.standard_normal((2, 2, 4, 3, 2)), rng.standard_normal((2, 3, 3, 2, 2))
    v = rng.standard_normal((2, 2, 4, 3, 2))
    f = lambda p: anp.sum(anp.tanh(conv.conv3x3(p[0], p[1])) * v)  # noqa: E731  (tanh: a curved outer loss)
    assert _second_order(f, [x, W], rng) < FD_TOL


def test_second_order_through_bn_pool_and_relu():
    rng = _rng(7)
    x = rng.standard_normal((2, 3, 4, 4, 2))
    gamma, beta = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    gamma[0, 0] = -0.8
    v = rng.standard_normal((2, 3, 2, 2, 2))
    f = lambda p: anp.sum(conv.relu(conv.bn_pool(p[0], p[1], p[2])) ** 2 * v)  # noqa: E731
    assert _second_order(f, [x, gamma, beta], rng) < FD_TOL


def _tiny_theta(rng, negative=True):
    theta = conv.conv4_init(rng, channels=3, blocks=2, dtype=np.float64)
    out = []
    for W, g, b in theta:
        g = g + 0.3 * rng.standard_normal(g.shape)
        if negative:
            g[0] = -abs(g[0])
        out.append((W, g, b + 0.1 * rng.standard_normal(b.shape)))
    return out


def test_conv4_first_and_second_order_match_finite_differences():
    rng = _rng(8)
    theta = _tiny_theta(rng)
    x = rng.random((5, 6, 6))
    v = rng.standard_normal((5, 3))
    f = lambda th: anp.sum(anp.tanh(conv.conv4_apply(th, x)) * v)  # noqa: E731
    assert _fd_check(f, theta) < FD_TOL
    u = [tuple(rng.standard_normal(np.shape(a)) for a in b) for b in theta]

    def h(th):
        return sum(anp.sum(a * b) for ga, ub in zip(grad(f)(th), u) for a, b in zip(ga, ub))
    assert _fd_check(h, theta) < FD_TOL


def test_conv4_shapes_channel_axis_episodes_and_float32():
    rng = _rng(9)
    theta = conv.conv4_init(rng)
    assert conv.num_params(theta) == 9 * 64 + 3 * 9 * 64 * 64 + 4 * 2 * 64
    x = rng.random((3, 28, 28)).astype(np.float32)
    z = conv.conv4_apply(theta, x)
    assert z.shape == (3, 64) and z.dtype == np.float32
    assert np.array_equal(z, conv.conv4_apply(theta, x[..., None]))
    xe = rng.random((2, 4, 28, 28)).astype(np.float32)
    ze = conv.conv4_apply_episodes(theta, xe)
    assert np.max(np.abs(ze[1] - conv.conv4_apply(theta, xe[1]))) < 1e-5
    tt = [tuple(np.stack([a, a]) for a in block) for block in theta]
    assert np.max(np.abs(conv.conv4_apply_tasks(tt, xe) - ze)) < 1e-5


def test_episodes_gradient_matches_finite_differences():
    rng = _rng(10)
    theta = _tiny_theta(rng)
    x = rng.random((3, 4, 6, 6))
    v = rng.standard_normal((3, 4, 3))
    assert _fd_check(lambda th: anp.sum(conv.conv4_apply_episodes(th, x) * v), theta) < FD_TOL


def test_bad_inputs_say_what_to_change():
    rng = _rng(11)
    theta = conv.conv4_init(rng)
    with pytest.raises(ValueError, match="shape"):
        conv.conv4_apply(theta, np.zeros((28, 28)))
    with pytest.raises(TypeError, match="numbers"):
        conv.conv4_apply(theta, np.zeros((2, 28, 28), dtype=object))
    with pytest.raises(TypeError, match="list of"):
        conv.conv4_apply({"W": 1}, np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="do not chain|input channels"):
        conv.conv4_apply(theta[1:], np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="too small"):
        conv.conv4_apply(theta, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="tasks"):
        conv.conv4_apply_tasks([tuple(a[None] for a in b) for b in theta], np.zeros((2, 3, 28, 28)))


def _population_reference(theta, x):
    """Block by block: BatchNorm statistics over all of x, then normalise, ReLU, pool (float64 loops)."""
    h, stats = x[..., None], []
    for W, gamma, beta in theta:
        y = _conv_reference(h[None], W[None])[0]
        mu, var = y.mean(axis=(0, 1, 2)), y.var(axis=(0, 1, 2))
        stats.append((mu, var))
        z = gamma * (y - mu) / np.sqrt(var + conv.BN_EPS) + beta
        n, H, Wd, C = z.shape
        h = np.maximum(z[:, :H // 2 * 2, :Wd // 2 * 2].reshape(n, H // 2, 2, Wd // 2, 2, C).max(axis=(2, 4)), 0)
    return stats, h.reshape(len(x), -1)


def test_population_stats_are_batchnorm_over_all_images_in_any_chunks():
    rng = _rng(12)
    theta = _tiny_theta(rng)
    x = rng.random((11, 6, 6))
    ref_stats, ref_z = _population_reference(theta, x)
    for chunk in (1, 4, 11, 500):
        stats = conv.conv4_population_stats(theta, x, chunk=chunk)
        for (mu, var), (rmu, rvar) in zip(stats, ref_stats):
            assert mu.dtype == np.float64 and np.max(np.abs(mu - rmu)) < EXACT and np.max(np.abs(var - rvar)) < EXACT
    # applied to the same images, the fixed statistics give batch mode's numbers
    assert np.max(np.abs(conv.conv4_apply(theta, x, stats=stats) - conv.conv4_apply(theta, x))) < EXACT
    assert np.max(np.abs(conv.conv4_apply(theta, x, stats=stats) - ref_z)) < EXACT


def test_with_population_stats_each_image_is_embedded_on_its_own():
    rng = _rng(13)
    theta = conv.conv4_init(rng)
    x = rng.random((40, 28, 28)).astype(np.float32)
    stats = conv.conv4_population_stats(theta, x, chunk=16)
    z = conv.conv4_apply(theta, x[:6], stats=stats)
    alone = np.concatenate([conv.conv4_apply(theta, x[i:i + 1], stats=stats) for i in range(6)])
    assert z.dtype == np.float32 and np.max(np.abs(z - alone)) < 1e-5
    ze = conv.conv4_apply_episodes(theta, x[:6].reshape(2, 3, 28, 28), stats=stats)
    assert np.max(np.abs(ze.reshape(6, -1) - z)) < 1e-5
    # batch mode is not: an image's embedding moves with the others of its call
    assert np.max(np.abs(conv.conv4_apply(theta, x[:6])[:1] - conv.conv4_apply(theta, x[:1]))) > 1e-3


def test_population_stats_mode_gradient_matches_finite_differences():
    rng = _rng(14)
    theta = _tiny_theta(rng)
    x = rng.random((5, 6, 6))
    stats = conv.conv4_population_stats(theta, rng.random((9, 6, 6)))
    v = rng.standard_normal((5, 3))
    assert _fd_check(lambda th: anp.sum(anp.tanh(conv.conv4_apply(th, x, stats=stats)) * v), theta) < FD_TOL


def test_bad_population_stats_say_what_to_change():
    rng = _rng(15)
    theta = conv.conv4_init(rng)
    x = np.zeros((2, 28, 28), dtype=np.float32)
    stats = conv.conv4_population_stats(theta, rng.random((4, 28, 28)))
    with pytest.raises(ValueError, match="one \\(mu, var\\) pair for each of theta's 4 blocks"):
        conv.conv4_apply(theta, x, stats=stats[:3])
    with pytest.raises(ValueError, match="shape \\(64,\\)"):
        conv.conv4_apply(theta, x, stats=[(m[:5], v[:5]) for m, v in stats])
    with pytest.raises(ValueError, match=">= 0"):
        conv.conv4_apply(theta, x, stats=[(m, -v) for m, v in stats])
    with pytest.raises(ValueError, match="no images"):
        conv.conv4_population_stats(theta, np.zeros((0, 28, 28)))
    with pytest.raises(TypeError, match="not differentiable"):
        grad(lambda th: anp.sum(conv.conv4_population_stats(th, x)[0][0]))(theta)
