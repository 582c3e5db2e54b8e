"""The hand-derived Conv-4 gradients (fastconv) against autograd and finite differences, in float64."""
import numpy as np
import pytest

from mlcourse import _blas, checks, classification as cl, conv, fastconv, protonet, tasks

from tolerances import EXACT, FD_TOL


def _theta(rng, channels=4, blocks=3, dtype=np.float64):
    """Random gamma of both signs (max- and min-pooling channels) and nonzero beta."""
    theta = conv.conv4_init(rng, channels=channels, blocks=blocks, dtype=dtype)
    return [(W, (g * rng.choice([-1.0, 1.0], g.shape) + 0.3 * rng.standard_normal(g.shape)).astype(dtype),
             (b + 0.1 * rng.standard_normal(b.shape)).astype(dtype)) for W, g, b in theta]


def _classes(rng, size, n=7, blank=0.5, channels=None):
    """Images with blank areas (exact zeros: the pooling windows there are ties)."""
    shape = (6, size, size) + ((channels,) if channels else ())
    return [rng.random(shape) * (rng.random(shape) > blank) for _ in range(n)]


def _episode(rng, size=13, n_way=3, k_shot=2, k_query=2, channels=None):
    return protonet.Episode.from_sample(tasks.sample_episode(rng, _classes(rng, size, channels=channels), n_way,
                                                             k_shot, k_query))


def _batch(rng, T=2, size=13, n_way=3, k_query=2):
    return cl.ClassificationBatch.from_episodes([_episode(rng, size, n_way, 1, k_query) for _ in range(T)])


def _close(a, b):
    return checks.rel_error(a, b) < EXACT


# sizes: 13 -> 6 -> 3 -> 1 (odd sizes: the last row and column of 13 and 3 are in no pooling window);
# with more than 9 x (input channels) output channels the first block's convolution is recomputed, not kept
@pytest.mark.parametrize("size,blocks,channels,width", [(13, 3, None, 4), (8, 2, 2, 4), (28, 4, None, 12)])
def test_protonet_equals_autograd(size, blocks, channels, width):
    rng = np.random.default_rng(size)
    theta = _theta(rng, channels=width, blocks=blocks)
    if channels:
        W, g, b = theta[0]
        theta[0] = (rng.uniform(-0.3, 0.3, W.shape[:2] + (channels,) + W.shape[3:]), g, b)
    ep = _episode(rng, size, channels=channels)
    loss, g = protonet.protonet_value_and_grad(theta, ep)
    loss_ag, g_ag = protonet.protonet_value_and_grad(theta, ep, backend="autograd")
    assert abs(loss - loss_ag) < EXACT and _close(g, g_ag)
    assert type(g) is list and all(type(blk) is tuple and len(blk) == 3 for blk in g)
    assert all(a.shape == b.shape and a.dtype == np.float64 for ga, ta in zip(g, theta) for a, b in zip(ga, ta))


def test_protonet_matches_finite_differences():
    rng = np.random.default_rng(1)
    theta, ep = _theta(rng, channels=3, blocks=2), _episode(rng, 7)
    loss, g = protonet.protonet_value_and_grad(theta, ep)
    fd = checks.finite_difference_grad(lambda th: protonet.protonet_loss(th, ep), theta, eps=1e-6)
    assert checks.rel_error(g, fd) < FD_TOL


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_fomaml_equals_autograd(steps):
    rng = np.random.default_rng(10 + steps)
    theta, batch = _theta(rng, channels=12), _batch(rng)
    loss, g = cl.fomaml_value_and_grad(theta, batch, alpha=0.5, inner_steps=steps)
    loss_ag, g_ag = cl.fomaml_value_and_grad(theta, batch, alpha=0.5, inner_steps=steps, backend="autograd")
    assert abs(loss - loss_ag) < EXACT
    if steps == 0:     # the zero head: no gradient reaches the embedding
        assert all(np.all(a == 0) for blk in g for a in blk) and all(np.all(a == 0) for blk in g_ag for a in blk)
    else:
        assert _close(g, g_ag)


def test_fomaml_matches_finite_differences_of_the_query_loss_at_fixed_adapted_parameters():
    rng = np.random.default_rng(2)
    theta, batch = _theta(rng, channels=3, blocks=2), _batch(rng, T=1, size=7)
    _, g = cl.fomaml_value_and_grad(theta, batch, alpha=0.5, inner_steps=2)
    body, head = cl.adapt(theta, batch, 0.5, 2)
    body0 = [tuple(a[0] for a in blk) for blk in body]

    def query_loss(b):
        params = ([tuple(a[None] for a in blk) for blk in b], head)
        return float(cl.task_cross_entropy(cl.classifier_apply_tasks(params, batch.x_query), batch.y_query)[0])
    fd = checks.finite_difference_grad(query_loss, body0, eps=1e-6)
    assert checks.rel_error(g, fd) < FD_TOL


def test_the_public_functions_choose_the_fast_path_and_leave_blas_threads_as_they_were(monkeypatch):
    rng = np.random.default_rng(3)
    theta, ep, batch = _theta(rng, blocks=2), _episode(rng, 8), _batch(rng, size=8)
    calls = []
    for name in ("protonet_value_and_grad", "fomaml_value_and_grad"):
        real = getattr(fastconv, name)
        monkeypatch.setattr(fastconv, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    before = _blas.blas_threads()
    protonet.protonet_value_and_grad(theta, ep)
    cl.fomaml_value_and_grad(theta, batch, alpha=0.1, inner_steps=1)
    assert calls == ["protonet_value_and_grad", "fomaml_value_and_grad"] and _blas.blas_threads() == before
    # another embedding model, or parameters of mixed dtypes, go through autograd
    protonet.protonet_value_and_grad(theta, ep, model=lambda th, x: conv.conv4_apply(th, x))
    mixed = [(W.astype(np.float32), g, b) for W, g, b in theta]
    protonet.protonet_value_and_grad(mixed, ep)
    assert len(calls) == 2 and not fastconv.usable(mixed) and fastconv.usable(theta)
    with pytest.raises(ValueError, match="backend must be"):
        protonet.protonet_value_and_grad(theta, ep, backend="numpy")
    with pytest.raises(ValueError, match="backend must be"):
        cl.fomaml_value_and_grad(theta, batch, backend="numpy")


@pytest.mark.skipif(_blas.blas_threads() is None, reason="NumPy's BLAS is not OpenBLAS: one thread only")
def test_one_thread_and_two_threads_give_the_same_bits():
    rng = np.random.default_rng(4)
    theta, ep = _theta(rng, channels=8, blocks=4), _episode(rng, 28, n_way=7, k_query=4)   # 42 images: shared work
    previous = _blas.limit_threads(1)
    try:
        one = protonet.protonet_value_and_grad(theta, ep)
        _blas.limit_threads(2)
        two = protonet.protonet_value_and_grad(theta, ep)
        assert _blas.blas_threads() == 2
    finally:
        _blas.limit_threads(previous)
    assert one[0] == two[0] and all(np.array_equal(a, b) for ba, bb in zip(one[1], two[1]) for a, b in zip(ba, bb))


def test_float32_is_float64_to_float32_precision():
    """float32 parameters give float32 gradients close to the float64 ones (not equal bit for bit:
    summation orders and BLAS kernels differ)."""
    rng = np.random.default_rng(5)
    theta64 = _theta(rng, channels=16, blocks=4)
    theta32 = [tuple(a.astype(np.float32) for a in blk) for blk in theta64]
    theta64 = [tuple(a.astype(np.float64) for a in blk) for blk in theta32]
    ep = _episode(rng, 28, n_way=5)
    ep = protonet.Episode(ep.x_support.astype(np.float32), ep.y_support, ep.x_query.astype(np.float32), ep.y_query,
                          ep.n_way)
    l32, g32 = protonet.protonet_value_and_grad(theta32, ep)
    l64, g64 = protonet.protonet_value_and_grad(theta64, ep)
    assert all(a.dtype == np.float32 for blk in g32 for a in blk)
    assert abs(l32 - l64) < 1e-4 * abs(l64) and checks.rel_error(g32, g64) < 1e-3
