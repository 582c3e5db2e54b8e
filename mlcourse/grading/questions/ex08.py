"""ex08, MAML for reinforcement learning: q20 returns_to_go, q21 reinforce_loss, q22 baseline_advantages."""
from __future__ import annotations

import numpy as np

from ...rl import policy_gradient
from ...rl.policy_gradient import rollout_arrays
from ..spec import Question, Test, by_reference
from ._common_mistakes import _advantages, attach

ASSIGNMENT = "ex08"
TITLE = "MAML for reinforcement learning: the policy gradient of the inner loop"


def early_end(seed=83, lengths=((10, 4, 7), (2, 10, 6))):
    """Trajectories that end before the horizon (lengths per goal and trajectory): obs, rewards, mask.

    The observations after an episode's end are left as the rollout made them (they never happened).
    """
    lengths = np.asarray(lengths)
    K, N = lengths.shape
    T = int(lengths.max())
    obs, _, rewards, _, _ = rollout_arrays(seed, K, N, T, log_std=0.0)
    mask = (np.arange(T) < lengths[..., None]).astype(float)
    return obs, rewards * mask, mask


def ref_returns_to_go(rewards, gamma):
    return policy_gradient.returns_to_go(np.asarray(rewards, dtype=float), gamma)


def ref_reinforce_loss(log_probs, advantages, mask):
    return policy_gradient.reinforce_surrogate(np.asarray(log_probs, float), np.asarray(advantages, float),
                                               np.asarray(mask, float))


def ref_baseline_advantages(obs, rewards, mask, gamma):
    return policy_gradient.advantages_from(np.asarray(obs, float), np.asarray(rewards, float),
                                           np.asarray(mask, float), gamma)


def sample_std_advantages(obs, rewards, mask, gamma):
    """The advantages standardised with the sample standard deviation (ddof=1): also accepted."""
    return _advantages(obs, rewards, mask, gamma, ddof=1)


DDOF = ("standardised with the sample standard deviation (ddof=1); the course divides by np.std's default (ddof=0, "
        "the population standard deviation). With tens of steps per task the two differ by about 1/(2n).")


def _garbage_after_end(rng, a, mask):
    """a with random values after each episode's end, where the mask is 0 (a function must ignore them)."""
    return a * mask + rng.standard_normal(a.shape) * (1.0 - mask)


def _questions():
    obs, _, r, m, lp = rollout_arrays(80, 2, 3, 12)
    obs2, _, r2, m2, lp2 = rollout_arrays(81, 3, 4, 20, log_std=0.0)
    obs3, r3, m3 = early_end()
    obs4, r4, m4 = early_end(84, ((12, 3, 9, 12), (5, 12, 12, 1), (7, 7, 2, 11)))
    adv = policy_gradient.advantages_from(obs, r, m)
    adv2 = policy_gradient.advantages_from(obs2, r2, m2)
    rng = np.random.default_rng(82)
    adv3, adv4 = policy_gradient.advantages_from(obs3, r3, m3), policy_gradient.advantages_from(obs4, r4, m4)
    lp3 = _garbage_after_end(rng, rng.standard_normal(m3.shape), m3)
    lp4 = _garbage_after_end(rng, rng.standard_normal(m4.shape), m4)
    adv3, adv4 = _garbage_after_end(rng, adv3, m3), _garbage_after_end(rng, adv4, m4)
    return [
        Question("q20", ASSIGNMENT, "returns_to_go", "Discounted returns-to-go R_t = sum_t' gamma^(t'-t) r_t'", forbids=("mlcourse.rl.policy_gradient.returns_to_go",),
                 hint="Start from the last step: the return-to-go there is its reward; going backwards, each step adds "
                      "its own reward to gamma times the next step's return-to-go. rewards[..., t] selects step t.", tests=(
            Test("2 goals x 3 trajectories x 12 steps, gamma = 0.99", ((r, 0.99),), by_reference(ref_returns_to_go)),
            Test("3 x 4 x 20, gamma = 0.5", ((r2, 0.5),), by_reference(ref_returns_to_go)),
            Test("gamma = 1: plain sums of the rest of the episode (hidden)", ((r2, 1.0),),
                 by_reference(ref_returns_to_go), hidden=True),
            Test("episodes that end early (rewards 0 after the end), gamma = 0.9", ((r3, 0.9),),
                 by_reference(ref_returns_to_go)),
            Test("gamma = 0: the rewards themselves (hidden)", ((r, 0.0),), by_reference(ref_returns_to_go),
                 hidden=True),
        )),
        Question("q21", ASSIGNMENT, "reinforce_loss", "REINFORCE surrogate: -(1/#steps) sum log pi A, per task", forbids=("mlcourse.rl.policy_gradient.reinforce_surrogate", "mlcourse.rl.policy_gradient.surrogate_loss"),
                 hint="Multiply log_probs, advantages and mask, sum over the trajectory and time axes (1, 2), and "
                      "divide by mask.sum(axis=(1, 2)). Mind the sign: the loss is minimised.", tests=(
            Test("2 goals x 3 trajectories x 12 steps", ((lp, adv, m),), by_reference(ref_reinforce_loss)),
            Test("3 x 4 x 20", ((lp2, adv2, m2),), by_reference(ref_reinforce_loss)),
            Test("episodes that end early, other values after the end", ((lp3, adv3, m3),),
                 by_reference(ref_reinforce_loss)),
            Test("3 goals x 4 trajectories of lengths 1 to 12 (hidden)", ((lp4, adv4, m4),),
                 by_reference(ref_reinforce_loss), hidden=True),
        )),
        Question("q22", ASSIGNMENT, "baseline_advantages", "Advantages R_t - b(s_t, t) with the linear feature "
                 "baseline, standardised per task", forbids=("mlcourse.rl.policy_gradient.advantages_from", "mlcourse.rl.policy_gradient.advantages", "mlcourse.rl.policy_gradient.fit_baseline", "mlcourse.rl.policy_gradient.baseline_features"),
                 hint="Per task: R from your returns_to_go of rewards * mask; on = mask[k] > 0 selects the steps that "
                      "happened, phi[on] (n, 8) and R[k][on] (n,) are the regression; np.linalg.solve(X.T @ X + 1e-5 "
                      "* np.eye(8), X.T @ y) gives w. Standardise the residuals over those same steps; everything else "
                      "stays 0.", tests=(
            Test("2 goals x 3 trajectories x 12 steps", ((obs, r, m, 0.99),), _adv_judge()),
            Test("3 x 4 x 20, gamma = 0.9", ((obs2, r2, m2, 0.9),), _adv_judge()),
            Test("episodes that end early", ((obs3, r3, m3, 0.99),), _adv_judge()),
            Test("3 goals x 4 trajectories of lengths 1 to 12 (hidden)", ((obs4, r4, m4, 0.95),), _adv_judge(),
                 hidden=True),
        )),
    ]


def _adv_judge():
    # rtol 1e-4: a float32 ridge fit on these features (t^3 / 10^6 beside 1) carries ~1e-5 relative error, while
    # the closest mistake the question names (ddof=1) is ~1e-2 away
    return by_reference(ref_baseline_advantages, rtol=1e-4, also=((sample_std_advantages, DDOF),))


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
