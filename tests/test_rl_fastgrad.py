"""The hand-derived MAML-RL meta-gradient (rl.fastgrad) against autograd (maml_rl.meta_objective) in float64:
equal to 1e-10 on fixed rollouts (1 and 2 inner steps, episodes that end early, per-step step sizes), its
Hessian-vector products equal autograd's, it agrees with central finite differences, the public
maml_rl_value_and_grad uses it, and its result does not depend on the number of threads."""
import functools

import numpy as np
import pytest
from autograd import grad

from mlcourse import _blas, _threads, tree
from mlcourse.rl import fastgrad, maml_rl, policy
from mlcourse.rl.point_navigation import Rollouts
from mlcourse.rl.policy_gradient import surrogate_loss
from tolerances import EXACT, FD_TOL


def _policy(rng, sizes=(2, 7, 6, 2)):
    theta = policy.init(rng, sizes)
    theta["mlp"] = [(W, 0.1 * rng.standard_normal(b.shape)) for W, b in theta["mlp"]]   # off the ReLU kinks
    theta["log_std"] = np.array([-0.3, 0.2])
    return theta


def _phase(rng, K=3, N=4, T=9):
    """Fixed rollouts with episodes of every length (mask a prefix of ones) and standardised-looking advantages."""
    lengths = rng.integers(1, T + 1, size=(K, N))
    lengths[0, 0] = T
    mask = (np.arange(T) < lengths[..., None]).astype(float)
    positions = rng.uniform(-0.5, 0.5, size=(K, N, T + 1, 2))
    actions = rng.standard_normal((K, N, T, 2)) * mask[..., None]
    adv = rng.standard_normal((K, N, T)) * mask
    ro = Rollouts(positions, actions, -rng.uniform(size=(K, N, T)) * mask, mask, rng.uniform(-0.5, 0.5, (K, 2)))
    return ro, adv


def _fast(theta, phases, alphas, first_order=False):
    return fastgrad.meta_gradient(theta, lambda j, th: phases[j], alphas, first_order)[1]


def _rel(a, b):
    return tree.norm(tree.sub(a, b)) / tree.norm(b)


@pytest.mark.parametrize("alphas", [[], [0.1], [0.1, 0.05], [0.3, 0.2, 0.1]])
def test_fast_meta_gradient_equals_autograd_on_fixed_rollouts(alphas):
    rng = np.random.default_rng(len(alphas))
    theta = _policy(rng)
    phases = [_phase(rng) for _ in range(len(alphas) + 1)]
    g_auto = grad(maml_rl.meta_objective)(theta, phases, alphas)
    assert _rel(_fast(theta, phases, alphas), g_auto) <= EXACT
    g_auto_fo = grad(maml_rl.meta_objective)(theta, phases, alphas, True)
    assert _rel(_fast(theta, phases, alphas, first_order=True), g_auto_fo) <= EXACT


def test_fast_hvp_equals_autograd_hessian_vector_product():
    rng = np.random.default_rng(11)
    theta = tree.tile_tasks(_policy(rng), 3)
    ro, adv = _phase(rng)
    v = tree.tree_map(lambda a: rng.standard_normal(a.shape), theta)
    g = lambda th: grad(lambda t: np.sum(surrogate_loss(t, ro, adv)))(th)
    hv_auto = grad(lambda th: tree.dot(g(th), v))(theta)
    obs, actions, w = fastgrad.pack(ro.observations, ro.actions, adv, ro.mask)
    mu, hs, masks = fastgrad.forward(theta, obs)
    g_fast, deltas, r, e = fastgrad.backward(theta, hs, masks, mu, actions, w)
    assert _rel(g_fast, g(theta)) <= EXACT
    assert _rel(fastgrad.hvp(theta, hs, masks, deltas, r, e, w, v), hv_auto) <= EXACT


def test_pack_keeps_each_tasks_steps_in_order_and_drops_the_rest():
    rng = np.random.default_rng(12)
    ro, adv = _phase(rng)
    obs, actions, w = fastgrad.pack(ro.observations, ro.actions, adv, ro.mask)
    K = adv.shape[0]
    assert obs.shape[1] == int(ro.mask.reshape(K, -1).sum(axis=1).max()) < ro.mask[0].size
    for k in range(K):
        keep = ro.mask[k].ravel() > 0
        n = int(keep.sum())
        np.testing.assert_array_equal(obs[k, :n], ro.observations[k].reshape(-1, 2)[keep])
        np.testing.assert_allclose(w[k, :n], adv[k].ravel()[keep] / n)
        assert np.all(w[k, n:] == 0)


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_public_meta_gradient_is_the_fast_path_equal_to_autograd_and_finite_differences(inner_steps, monkeypatch):
    rng = np.random.default_rng(20 + inner_steps)
    theta = _policy(rng)
    batch = maml_rl.meta_batches(num_tasks=3, num_trajectories=4, inner_steps=inner_steps, horizon=15)(rng)
    alpha = [0.1, 0.05][:inner_steps]
    loss_a, g_auto = maml_rl.maml_rl_value_and_grad(theta, batch, alpha, inner_steps, backend="autograd")
    calls = []
    real = fastgrad.meta_gradient
    monkeypatch.setattr(fastgrad, "meta_gradient", lambda *a, **k: calls.append(1) or real(*a, **k))
    loss_f, g_fast = maml_rl.maml_rl_value_and_grad(theta, batch, alpha, inner_steps)
    assert calls and loss_f == loss_a and _rel(g_fast, g_auto) <= EXACT
    phases, _ = maml_rl.sample_phases(theta, batch, alpha, inner_steps)
    F = functools.partial(maml_rl.meta_objective, phases=phases, alpha=alpha)
    for _ in range(3):
        v = tree.tree_map(lambda a: rng.standard_normal(a.shape), theta)
        eps = 1e-5
        fd = (F(tree.add(theta, tree.scale(eps, v))) - F(tree.sub(theta, tree.scale(eps, v)))) / (2 * eps)
        assert abs(tree.dot(g_fast, v) - fd) <= FD_TOL * max(1.0, abs(fd))


def test_float32_fast_path_tracks_float64():
    rng = np.random.default_rng(30)
    theta = _policy(rng, (2, 16, 16, 2))
    batch = maml_rl.meta_batches(num_tasks=4, num_trajectories=5, horizon=20)(rng)
    _, g64 = maml_rl.maml_rl_value_and_grad(theta, batch)
    b32 = maml_rl.MetaBatch(batch.goals.astype(np.float32), batch.noise.astype(np.float32))
    _, g32 = maml_rl.maml_rl_value_and_grad(tree.astype(theta, np.float32), b32)
    assert all(a.dtype == np.float32 for a in tree.leaves(g32))
    assert _rel(tree.astype(g32, np.float64), g64) <= 1e-3


def test_unknown_backend_is_a_clear_error():
    rng = np.random.default_rng(31)
    theta = _policy(rng)
    batch = maml_rl.meta_batches(num_tasks=2, num_trajectories=2, horizon=5)(rng)
    with pytest.raises(ValueError, match="backend must be 'auto'"):
        maml_rl.maml_rl_value_and_grad(theta, batch, backend="torch")


@pytest.mark.skipif(_blas.blas_threads() is None, reason="NumPy's BLAS is not OpenBLAS: one thread only")
def test_one_thread_and_two_threads_give_the_same_bits():
    """The tasks run in chunks on the threads; the chunks and the order of their sums do not depend on the count."""
    rng = np.random.default_rng(5)
    theta = _policy(rng, (2, 64, 64, 2))
    phases = [_phase(rng, K=12, N=10, T=50) for _ in range(3)]
    assert 12 * fastgrad._task_bytes(theta, phases[0][0]) >= _threads.PARALLEL_BYTES   # the threads do run
    previous = _blas.limit_threads(1)
    try:
        one = _fast(theta, phases, [0.1, 0.05])
        _blas.limit_threads(2)
        two = _fast(theta, phases, [0.1, 0.05])
    finally:
        _blas.limit_threads(previous)
    assert all(np.array_equal(a, b) for a, b in zip(tree.leaves(one), tree.leaves(two)))
    g_auto = grad(maml_rl.meta_objective)(theta, phases, [0.1, 0.05])
    assert _rel(two, g_auto) <= EXACT
