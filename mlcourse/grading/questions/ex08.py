"""ex08, MAML for reinforcement learning: q20 returns_to_go, q21 reinforce_loss, q22 baseline_advantages."""
from __future__ import annotations

import numpy as np

from ...rl import point_navigation, policy, policy_gradient
from ..spec import Question, Test, by_reference

ASSIGNMENT = "ex08"
TITLE = "MAML for reinforcement learning: the policy gradient of the inner loop"


def rollout_arrays(seed, K, N, T, log_std=-0.5):
    """Trajectories of a small random policy on K goals: (obs (K, N, T, 2), actions, rewards (K, N, T), mask, log_probs)."""
    rng = np.random.default_rng(seed)
    theta = policy.init(rng, (2, 8, 8, 2), log_std=log_std)
    goals = point_navigation.sample_goals(rng, K)
    ro = point_navigation.rollout(lambda s: policy.mean_action(theta, s), goals,
                                  point_navigation.sample_noise(rng, K, N, T), theta["log_std"])
    lp = policy.log_prob(theta, ro.observations.reshape(K, N * T, 2), ro.actions.reshape(K, N * T, 2)).reshape(K, N, T)
    return ro.observations, ro.actions, ro.rewards, ro.mask, lp * ro.mask


def early_end():
    """Trajectories that end before the horizon (lengths 10, 4, 7 and 2, 10, 6): obs, rewards, mask."""
    obs, _, rewards, _, _ = rollout_arrays(83, 2, 3, 10, log_std=0.0)
    lengths = np.array([[10, 4, 7], [2, 10, 6]])
    mask = (np.arange(10) < lengths[..., None]).astype(float)
    return obs, rewards * mask, mask


def ref_returns_to_go(rewards, gamma):
    return policy_gradient.returns_to_go(np.asarray(rewards, dtype=float), gamma)


def ref_reinforce_loss(log_probs, advantages, mask):
    return policy_gradient.reinforce_surrogate(np.asarray(log_probs, float), np.asarray(advantages, float),
                                               np.asarray(mask, float))


def ref_baseline_advantages(obs, rewards, mask, gamma):
    return policy_gradient.advantages_from(np.asarray(obs, float), np.asarray(rewards, float),
                                           np.asarray(mask, float), gamma)


def questions():
    obs, _, r, m, lp = rollout_arrays(80, 2, 3, 12)
    obs2, _, r2, m2, lp2 = rollout_arrays(81, 3, 4, 20, log_std=0.0)
    obs3, r3, m3 = early_end()
    adv = policy_gradient.advantages_from(obs, r, m)
    adv2 = policy_gradient.advantages_from(obs2, r2, m2)
    rng = np.random.default_rng(82)
    lp3 = rng.standard_normal(m3.shape) * m3
    adv3 = policy_gradient.advantages_from(obs3, r3, m3)
    return [
        Question("q20", ASSIGNMENT, "returns_to_go", "Discounted returns-to-go R_t = sum_t' gamma^(t'-t) r_t'", forbids=("mlcourse.rl.policy_gradient.returns_to_go",), tests=(
            Test("2 goals x 3 trajectories x 12 steps, gamma = 0.99", ((r, 0.99),), by_reference(ref_returns_to_go)),
            Test("3 x 4 x 20, gamma = 0.5", ((r2, 0.5),), by_reference(ref_returns_to_go)),
            Test("gamma = 1: plain sums of the rest of the episode (hidden)", ((r2, 1.0),),
                 by_reference(ref_returns_to_go), hidden=True),
            Test("gamma = 0: the rewards themselves (hidden)", ((r, 0.0),), by_reference(ref_returns_to_go),
                 hidden=True),
        )),
        Question("q21", ASSIGNMENT, "reinforce_loss", "REINFORCE surrogate: -(1/#steps) sum log pi A, per task", forbids=("mlcourse.rl.policy_gradient.reinforce_surrogate", "mlcourse.rl.policy_gradient.surrogate_loss"), tests=(
            Test("2 goals x 3 trajectories x 12 steps", ((lp, adv, m),), by_reference(ref_reinforce_loss)),
            Test("3 x 4 x 20", ((lp2, adv2, m2),), by_reference(ref_reinforce_loss)),
            Test("episodes that end early: divide by the steps that happened (hidden)", ((lp3, adv3, m3),),
                 by_reference(ref_reinforce_loss), hidden=True),
        )),
        Question("q22", ASSIGNMENT, "baseline_advantages", "Advantages R_t - b(s_t, t) with the linear feature "
                 "baseline, standardised per task", forbids=("mlcourse.rl.policy_gradient.advantages_from", "mlcourse.rl.policy_gradient.advantages", "mlcourse.rl.policy_gradient.fit_baseline", "mlcourse.rl.policy_gradient.baseline_features"), tests=(
            Test("2 goals x 3 trajectories x 12 steps", ((obs, r, m, 0.99),), by_reference(ref_baseline_advantages)),
            Test("3 x 4 x 20, gamma = 0.9", ((obs2, r2, m2, 0.9),), by_reference(ref_baseline_advantages)),
            Test("episodes that end early (hidden)", ((obs3, r3, m3, 0.99),), by_reference(ref_baseline_advantages),
                 hidden=True),
        )),
    ]
