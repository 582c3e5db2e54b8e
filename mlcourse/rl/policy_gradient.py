"""The policy gradient that serves as MAML's inner-loop loss: returns-to-go, baseline, REINFORCE.

    R_t   = sum_{t' >= t} gamma^(t'-t) r_t'                       discounted return-to-go
    b(s_t, t) = w . phi(s_t, t),  phi = (s, s^2, t/100, (t/100)^2, (t/100)^3, 1)   fitted per task
    A_t   = R_t - b(s_t, t), then standardised over the task's steps (mean 0, std 1)
    L(theta) = - (1 / #steps) sum_{trajectories, t} log pi_theta(a_t | s_t) A_t      (per task)

The baseline is rllab's LinearFeatureBaseline, which the MAML paper's code uses: ridge regression
(coefficient 1e-5) of the returns-to-go on phi, fitted to the task's own trajectories before
their advantages are computed.  The advantages are constants for differentiation, so
grad L = -(1/#steps) sum grad log pi A_t is the REINFORCE estimate of -grad E[return].
Arrays: rewards, mask, advantages (K, N, T); observations and actions (K, N, T, 2).
"""
from __future__ import annotations

import autograd.numpy as np
import numpy as onp

from . import policy
from .point_navigation import Rollouts, rollout, rollout_policy, sample_goals, sample_noise

__all__ = ["GAMMA", "returns_to_go", "baseline_features", "fit_baseline", "advantages_from", "advantages",
           "reinforce_surrogate", "surrogate_loss",
           "average_return", "pretrain_value_and_grad", "rollout_arrays"]

GAMMA = 0.99       # discount of the paper's code (rllab's default)
RIDGE = 1e-5       # LinearFeatureBaseline's regularisation, multiplied by 10 until the fit is finite


def returns_to_go(rewards, gamma=GAMMA):
    """R_t = sum_{t' >= t} gamma^(t'-t) r_t' along the last axis: (..., T) -> (..., T)."""
    rewards = onp.asarray(rewards)
    if not (onp.isfinite(gamma) and 0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must be a discount in [0, 1], got {gamma!r}.")
    T = rewards.shape[-1]
    k = onp.arange(T)
    lag = k[:, None] - k[None, :]                  # t' - t
    discount = onp.where(lag >= 0, float(gamma) ** onp.maximum(lag, 0), 0.0).astype(rewards.dtype)
    return rewards @ discount                      # (..., T') @ (T', T)


def baseline_features(obs, mask):
    """phi(s_t, t) = (s, s^2, t/100, (t/100)^2, (t/100)^3, 1), zero after the episode: (K, N, T, 8)."""
    o = onp.clip(obs, -10.0, 10.0)
    T = obs.shape[-2]
    t = (onp.arange(T, dtype=obs.dtype) / 100.0)[:, None] * onp.ones(obs.shape[:-1] + (1,), dtype=obs.dtype)
    phi = onp.concatenate([o, o * o, t, t * t, t ** 3, onp.ones_like(t)], axis=-1)
    return phi * mask[..., None]


def fit_baseline(obs, returns, mask):
    """Per-task ridge regression of returns-to-go on phi; the fitted values b(s_t, t): (K, N, T)."""
    phi = baseline_features(obs, mask)
    K, F = phi.shape[0], phi.shape[-1]
    X = phi.reshape(K, -1, F).astype(onp.float64)
    y = (returns * mask).reshape(K, -1, 1).astype(onp.float64)
    A, rhs = onp.einsum("kif,kig->kfg", X, X), onp.einsum("kif,kio->kfo", X, y)
    reg = RIDGE
    for _ in range(5):
        w = onp.linalg.solve(A + reg * onp.eye(F), rhs)
        if onp.all(onp.isfinite(w)):
            break
        reg *= 10.0
    return (onp.einsum("knf,kfo->kno", phi.reshape(K, -1, F).astype(onp.float64), w)
            .reshape(returns.shape).astype(returns.dtype) * mask)


def advantages_from(obs, rewards, mask, gamma=GAMMA, standardise=True):
    """A_t = R_t - b(s_t, t) from arrays: obs (K, N, T, 2), rewards and mask (K, N, T) -> (K, N, T).

    Standardised per task over its steps (mean 0, std 1; the paper's code), zero after the end.
    """
    obs, rewards, mask = (onp.asarray(a) for a in (obs, rewards, mask))
    if rewards.ndim != 3 or mask.shape != rewards.shape or obs.shape != rewards.shape + (2,):
        raise ValueError(f"expected obs (K, N, T, 2), rewards and mask (K, N, T); got {obs.shape}, {rewards.shape}, "
                         f"{mask.shape}.")
    R = returns_to_go(rewards * mask, gamma)
    A = (R - fit_baseline(obs, R, mask)) * mask
    if standardise:
        n = mask.sum(axis=(1, 2), keepdims=True)
        mean = A.sum(axis=(1, 2), keepdims=True) / n
        var = (((A - mean) * mask) ** 2).sum(axis=(1, 2), keepdims=True) / n
        A = (A - mean) / (onp.sqrt(var) + 1e-8) * mask
    return A


def advantages(rollouts: Rollouts, gamma=GAMMA, standardise=True):
    """advantages_from the rollouts' observations, rewards and mask: (K, N, T)."""
    return advantages_from(rollouts.observations, rollouts.rewards, rollouts.mask, gamma, standardise)


def reinforce_surrogate(log_probs, adv, mask):
    """-(1/#steps) sum_{n, t} log pi(a_t|s_t) A_t per task: log_probs, adv, mask (K, N, T) -> (K,).

    adv are constants (zero after an episode ended); #steps counts the steps that happened (mask).
    """
    return -np.sum(log_probs * adv * mask, axis=(1, 2)) / onp.sum(mask, axis=(1, 2))


def surrogate_loss(theta, rollouts: Rollouts, adv):
    """The REINFORCE surrogate per task: -(1/#steps) sum log pi_theta(a_t|s_t) A_t -> (K,).

    theta shared or per task; adv (K, N, T) are constants (zero after an episode ended).
    Its gradient is the policy-gradient estimate of -grad_theta E[return] on each task.
    """
    K, N, T, _ = rollouts.actions.shape
    obs = rollouts.observations.reshape(K, N * T, 2)
    lp = policy.log_prob(theta, obs, rollouts.actions.reshape(K, N * T, 2))
    return reinforce_surrogate(np.reshape(lp, (K, N, T)), adv, rollouts.mask)


def average_return(rollouts: Rollouts):
    """Mean undiscounted return over each task's trajectories: (K,)."""
    return rollouts.returns.mean(axis=1)


def pretrain_value_and_grad(theta, batch, gamma=GAMMA):
    """(-mean return, gradient) of plain REINFORCE on all the batch's goals with one shared policy.

    The pretrained baseline of the MAML paper: trained on the whole task distribution without
    adaptation, then fine-tuned at meta-test with the same inner steps as MAML.  batch is a
    maml_rl.MetaBatch (its first noise array is used); a value-and-grad for train.meta_train.
    """
    from autograd import grad
    policy.check_params(theta, per_task=False)
    ro = rollout_policy(theta, batch.goals, batch.noise[0])
    adv = advantages(ro, gamma)
    g = grad(lambda th: np.mean(surrogate_loss(th, ro, adv)))(theta)
    return -float(onp.mean(average_return(ro))), g


def rollout_arrays(seed, K, N, T, log_std=-0.5):
    """Trajectories of a small random policy on K random goals, as the arrays the functions above take.

    A policy with two hidden layers of 8 units (``policy.init``, log standard deviation log_std) runs
    N trajectories of at most T steps towards each goal; everything is drawn from
    ``np.random.default_rng(seed)``, so a seed gives the same arrays on every machine.
    Returns (obs (K, N, T, 2), actions (K, N, T, 2), rewards (K, N, T), mask (K, N, T),
    log_probs (K, N, T)): log_probs[k, n, t] = log pi(a_t | s_t), 0 after the episode's end (mask 0).
    """
    rng = onp.random.default_rng(seed)
    theta = policy.init(rng, (2, 8, 8, 2), log_std=log_std)
    goals = sample_goals(rng, K)
    ro = rollout(lambda s: policy.mean_action(theta, s), goals, sample_noise(rng, K, N, T), theta["log_std"])
    lp = policy.log_prob(theta, ro.observations.reshape(K, N * T, 2), ro.actions.reshape(K, N * T, 2))
    return ro.observations, ro.actions, ro.rewards, ro.mask, onp.reshape(lp, (K, N, T)) * ro.mask
