"""The 2D point navigation tasks (MAML paper, section 5.3): dynamics, rewards, early end, vectorised rollouts,
and the policy's fast rollouts (rollout_policy) against the generic ones, on one thread and on two."""
import numpy as np
import pytest

from mlcourse import _blas, tree
from mlcourse.rl import point_navigation as nav
from mlcourse.rl import policy


def test_step_clips_the_velocity_and_rewards_minus_the_distance():
    pos, goal = np.zeros((1, 2)), np.array([[0.3, -0.4]])
    new, r, reached = nav.step(pos, np.array([[5.0, -0.5]]), goal)
    assert np.allclose(new, [[0.1, -0.05]])            # 0.1 * clip(a, -1, 1)
    assert r[0] == pytest.approx(-np.hypot(0.2, 0.35))
    assert not reached[0]
    _, _, reached = nav.step(np.array([[0.295, -0.405]]), np.zeros((1, 2)), goal)
    assert reached[0]                                     # within 0.01 in both coordinates


def test_goals_are_uniform_in_the_arena_and_checked():
    g = nav.sample_goals(np.random.default_rng(0), 5000)
    assert g.shape == (5000, 2) and np.all(np.abs(g) <= 0.5)
    assert abs(g.mean()) < 0.02 and abs(g.std() - 1 / np.sqrt(12)) < 0.01
    with pytest.raises(ValueError, match="outside the arena"):
        nav.check_goals([[0.1, 0.6]])
    with pytest.raises(ValueError, match=r"\[\[x, y\]\]"):
        nav.check_goals([0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        nav.check_goals([[np.nan, 0.0]])


def _loop_rollout(theta, goal, noise):
    """One trajectory, step by step, as the paper's environment runs it."""
    s, std = np.zeros(2), np.exp(theta["log_std"])
    rewards, positions = [], [s]
    for t in range(noise.shape[0]):
        a = policy.mean_action(theta, s[None, None])[0, 0] + std * noise[t]
        s = s + 0.1 * np.clip(a, -1, 1)
        d = s - goal
        rewards.append(-np.sqrt(d @ d))
        positions.append(s)
        if abs(d[0]) < 0.01 and abs(d[1]) < 0.01:
            break
    return np.array(rewards), np.array(positions)


def test_vectorised_rollout_equals_a_loop_over_tasks_and_trajectories():
    rng = np.random.default_rng(1)
    theta = policy.init(rng, (2, 8, 8, 2), log_std=-1.0)
    goals = nav.sample_goals(rng, 3)
    noise = nav.sample_noise(rng, 3, 4, 30)
    ro = nav.rollout(lambda s: policy.mean_action(theta, s), goals, noise, theta["log_std"])
    assert ro.positions.shape == (3, 4, 31, 2) and ro.rewards.shape == (3, 4, 30)
    for k in range(3):
        for n in range(4):
            r, pos = _loop_rollout(theta, goals[k], noise[k, n])
            L = len(r)
            assert np.allclose(ro.rewards[k, n, :L], r) and np.all(ro.rewards[k, n, L:] == 0)
            assert ro.mask[k, n].sum() == L and np.allclose(ro.positions[k, n, :L + 1], pos)


def test_episode_ends_at_the_goal_and_the_agent_stays_there():
    # a policy that heads straight for a goal at (0.3, 0): three steps of 0.1, then the episode ends
    goals = np.array([[0.3, 0.0]])
    mean_fn = lambda s: np.broadcast_to(np.array([1.0, 0.0]), s.shape)
    ro = nav.rollout(mean_fn, goals, np.zeros((1, 2, 10, 2)), np.log([1e-3, 1e-3]))
    assert ro.mask[0, 0].tolist() == [1, 1, 1] + [0] * 7
    assert np.allclose(ro.positions[0, 0, 3:], [0.3, 0.0])
    assert ro.returns[0, 0] == pytest.approx(-(0.2 + 0.1 + 0.0))


def test_rollout_rejects_noise_of_the_wrong_shape():
    with pytest.raises(ValueError, match="noise must have shape"):
        nav.rollout(lambda s: s, np.zeros((2, 2)), np.zeros((3, 1, 5, 2)), np.zeros(2))


def _rollouts_equal(a, b):
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("positions", "actions", "rewards", "mask", "goals"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rollout_policy_is_rollout_with_the_policys_mean(dtype):
    """rollout_policy (buffers, flat products, threads) samples the trajectories rollout samples with
    policy.mean_action: to the bit with per-task parameters, to rounding with shared ones."""
    rng = np.random.default_rng(2)
    theta = tree.astype(policy.init(rng, (2, 16, 16, 2), log_std=-1.0), dtype)
    per_task = tree.tile_tasks(theta, 5)
    per_task["mlp"] = [(W + dtype(0.05) * rng.standard_normal(W.shape).astype(dtype), b) for W, b in per_task["mlp"]]
    goals = nav.sample_goals(rng, 5)
    noise = nav.sample_noise(rng, 5, 6, 40, dtype)
    generic = lambda th: nav.rollout(lambda s: policy.mean_action(th, s), goals, noise, th["log_std"])
    assert _rollouts_equal(nav.rollout_policy(per_task, goals, noise), generic(per_task))
    fast, slow = nav.rollout_policy(theta, goals, noise), generic(theta)
    assert np.array_equal(fast.mask, slow.mask) and fast.mask.sum() > 0
    assert np.allclose(fast.positions, slow.positions, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.skipif(_blas.blas_threads() is None, reason="NumPy's BLAS is not OpenBLAS: one thread only")
def test_rollout_policy_on_two_threads_is_the_same_as_on_one():
    rng = np.random.default_rng(3)
    theta = tree.tile_tasks(policy.init(rng, (2, 100, 100, 2), log_std=-0.5), 8)
    goals, noise = nav.sample_goals(rng, 8), nav.sample_noise(rng, 8, 20, 100)
    previous = _blas.limit_threads(1)
    try:
        one = nav.rollout_policy(theta, goals, noise)
        _blas.limit_threads(2)
        two = nav.rollout_policy(theta, goals, noise)
    finally:
        _blas.limit_threads(previous)
    assert _rollouts_equal(one, two) and one.mask.sum() > 0


def test_rollout_policy_rejects_noise_of_the_wrong_shape():
    theta = policy.init(np.random.default_rng(0), (2, 4, 2))
    with pytest.raises(ValueError, match="noise must have shape"):
        nav.rollout_policy(theta, np.zeros((2, 2)), np.zeros((3, 1, 5, 2)))
