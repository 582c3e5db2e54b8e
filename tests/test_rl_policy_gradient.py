"""The policy gradient of the inner loop: returns-to-go, the linear feature baseline, advantages,
the Gaussian log-likelihood and the REINFORCE surrogate (against finite differences)."""
import numpy as np
import pytest
from autograd import grad

from mlcourse import tree
from mlcourse.rl import maml_rl, point_navigation as nav, policy, policy_gradient as pg
from tolerances import EXACT, FD_TOL


def _rollouts(seed=0, K=2, N=5, T=15):
    rng = np.random.default_rng(seed)
    theta = policy.init(rng, (2, 6, 6, 2), log_std=-0.5)
    theta["mlp"] = [(W, 0.1 * rng.standard_normal(b.shape)) for W, b in theta["mlp"]]
    ro = nav.rollout(lambda s: policy.mean_action(theta, s), nav.sample_goals(rng, K), nav.sample_noise(rng, K, N, T),
                     theta["log_std"])
    return rng, theta, ro


def test_returns_to_go_match_the_backward_recursion():
    r = np.random.default_rng(0).standard_normal((3, 4, 20))
    G, acc = np.zeros_like(r), np.zeros((3, 4))
    for t in reversed(range(20)):
        acc = r[..., t] + 0.9 * acc
        G[..., t] = acc
    assert np.allclose(pg.returns_to_go(r, 0.9), G, rtol=EXACT, atol=EXACT)
    assert np.allclose(pg.returns_to_go(r, 1.0)[..., 0], r.sum(-1))
    with pytest.raises(ValueError, match="gamma"):
        pg.returns_to_go(r, 1.5)


def test_linear_baseline_is_the_ridge_fit_of_each_task():
    _, _, ro = _rollouts(1)
    R = pg.returns_to_go(ro.rewards)
    b = pg.fit_baseline(ro.observations, R, ro.mask)
    phi = pg.baseline_features(ro.observations, ro.mask)
    assert phi.shape[-1] == 8
    for k in range(2):
        m = ro.mask[k].ravel() > 0
        X, y = phi[k].reshape(-1, 8)[m], R[k].ravel()[m]
        w = np.linalg.solve(X.T @ X + 1e-5 * np.eye(8), X.T @ y)
        assert np.allclose(b[k].ravel()[m], X @ w, atol=1e-8)


def test_advantages_are_standardised_per_task_and_zero_after_the_end():
    _, _, ro = _rollouts(2)
    A = pg.advantages(ro)
    for k in range(2):
        a = A[k][ro.mask[k] > 0]
        assert abs(a.mean()) < 1e-8 and abs(a.std() - 1) < 1e-6
    assert np.all(A[ro.mask == 0] == 0)


def test_log_prob_is_the_diagonal_gaussian_density():
    rng, theta, ro = _rollouts(3)
    obs, act = ro.observations[:, 0], ro.actions[:, 0]
    mu, sd = policy.mean_action(theta, obs), np.exp(theta["log_std"])
    want = np.sum(-0.5 * ((act - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi), axis=-1)
    assert np.allclose(policy.log_prob(theta, obs, act), want, rtol=EXACT, atol=EXACT)


def test_surrogate_gradient_matches_central_differences():
    rng, theta, ro = _rollouts(4)
    adv = pg.advantages(ro)
    f = lambda th: np.sum(pg.surrogate_loss(th, ro, adv))
    g = grad(f)(theta)
    for _ in range(3):
        v = tree.tree_map(lambda a: rng.standard_normal(a.shape), theta)
        eps = 1e-5
        fd = (f(tree.add(theta, tree.scale(eps, v))) - f(tree.sub(theta, tree.scale(eps, v)))) / (2 * eps)
        assert abs(tree.dot(g, v) - fd) <= FD_TOL * max(1.0, abs(fd))


def test_per_task_gradients_of_tiled_parameters_are_each_tasks_own():
    _, theta, ro = _rollouts(5)
    adv = pg.advantages(ro)
    g_tasks = maml_rl._task_grad(tree.tile_tasks(theta, 2), ro, adv)
    for k in range(2):
        one = nav.Rollouts(ro.positions[k:k + 1], ro.actions[k:k + 1], ro.rewards[k:k + 1], ro.mask[k:k + 1],
                           ro.goals[k:k + 1])
        g_k = grad(lambda th: np.sum(pg.surrogate_loss(th, one, adv[k:k + 1])))(theta)
        assert tree.norm(tree.sub(tree.tree_map(lambda a: a[k], g_tasks), g_k)) <= EXACT * tree.norm(g_k)


def test_pretrain_value_and_grad_is_reinforce_with_a_shared_policy():
    rng = np.random.default_rng(6)
    theta = policy.init(rng, (2, 5, 5, 2))
    batch = maml_rl.meta_batches(3, 4, inner_steps=0, horizon=10)(rng)
    loss, g = pg.pretrain_value_and_grad(theta, batch)
    _, g_maml0 = maml_rl.maml_rl_value_and_grad(theta, batch, inner_steps=0)
    assert loss > 0 and tree.norm(tree.sub(g, g_maml0)) <= EXACT * tree.norm(g)   # no inner step: the same


def test_rollout_arrays_are_the_policy_s_trajectories_from_one_seed():
    """The exercises' trajectories: shapes, the same arrays from the same seed, nothing after an episode's end,
    and log_probs the Gaussian log-likelihood of the actions (its mean over many steps is the closed form's)."""
    K, N, T, log_std = 4, 20, 50, -0.5
    obs, actions, rewards, mask, log_probs = pg.rollout_arrays(3, K, N, T, log_std=log_std)
    assert obs.shape == actions.shape == (K, N, T, 2) and rewards.shape == mask.shape == log_probs.shape == (K, N, T)
    again = pg.rollout_arrays(3, K, N, T, log_std=log_std)
    assert all(np.array_equal(a, b) for a, b in zip((obs, actions, rewards, mask, log_probs), again))
    assert not np.array_equal(pg.rollout_arrays(4, K, N, T)[0], obs)
    assert set(np.unique(mask)) <= {0.0, 1.0} and np.all(np.diff(mask, axis=-1) <= 0)   # alive, then ended
    assert np.all(log_probs[mask == 0] == 0) and np.all(rewards[mask == 0] == 0)
    # a = mu + exp(log_std) * noise: E[log pi(a|s)] = -2 log_std - log(2 pi) - 1 (two independent coordinates)
    mean_lp = log_probs[mask > 0].mean()
    assert abs(mean_lp - (-2 * log_std - np.log(2 * np.pi) - 1)) < 0.15, mean_lp
    assert 0 < mask.sum() < mask.size        # some episodes reach their goal before T, most steps happen
