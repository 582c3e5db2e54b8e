"""MAML for reinforcement learning: the inner loop is a policy-gradient step, the query loss the
policy-gradient surrogate of the trajectories sampled after adaptation (MAML paper, section 5.3).

For each task k (a goal), with m inner steps (the paper: m = 1, alpha = 0.1, N = 20 trajectories):

    theta_0 = theta
    D_j     ~ pi_{theta_j} on task k                           (N trajectories, j = 0..m)
    theta_{j+1} = theta_j - alpha grad L(theta_j; D_j)         (L: policy_gradient.surrogate_loss)
    F(theta) = mean over tasks of L(theta_m(theta); D_m)       the Monte-Carlo meta-objective

The meta-gradient is grad F with every sampled trajectory D_0..D_m and its advantages held fixed,
differentiated through the inner updates (by the hand-derived rl.fastgrad, equal to autograd's gradient
of meta_objective; backend="autograd" runs the latter), so the gradient includes the second-order
terms (I - alpha Hess L(theta_j; D_j)) of each inner step, and the outer score-function term
grad log pi_{theta_m}(D_m) A_m.  It does NOT include the dependence of the sampling distributions
of D_0..D_{m-1} on theta (the score-function term sum grad log pi_{theta}(D_j) x post-adaptation
return that E-MAML, DiCE and ProMP add); the MAML paper's released code omits it too.  The first-order
variant (first_order=True) also drops the Hessians: it is the mean over tasks of
grad L(theta_m; D_m).  The same noise gives the same trajectories, so F is a fixed function of
theta once D_0..D_m are drawn, and grad F matches its central finite differences.

Batches: MetaBatch(goals (K, 2), noise (m + 1, K, N, T, 2)); the noise is drawn in advance, so a
batch and theta determine every trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass

import autograd.numpy as np
import numpy as onp
from autograd import grad
from autograd.tracer import getval

from .. import tree
from .._validate import check_alpha, check_count, check_rng
from . import fastgrad, policy
from .point_navigation import HORIZON, check_goals, rollout_policy, sample_goals, sample_noise
from .policy_gradient import GAMMA, advantages, average_return, surrogate_loss

__all__ = ["ALPHA", "MetaBatch", "meta_batches", "inner_step", "sample_phases", "meta_objective",
           "maml_rl_value_and_grad", "step_sizes", "adapt", "adaptation_returns"]

ALPHA = 0.1   # inner step size of the paper


@dataclass(frozen=True)
class MetaBatch:
    """goals (K, 2); noise (m + 1, K, N, T, 2): the exploration noise of phase j = 0 (before adaptation) .. m."""

    goals: onp.ndarray
    noise: onp.ndarray

    @property
    def num_tasks(self):
        return self.goals.shape[0]


def meta_batches(num_tasks=20, num_trajectories=20, inner_steps=1, horizon=HORIZON, dtype=onp.float64):
    """rng -> MetaBatch: num_tasks fresh goals and the noise of inner_steps + 1 sampling phases."""
    num_tasks = check_count(num_tasks, "num_tasks", 1)
    num_trajectories = check_count(num_trajectories, "num_trajectories", 1)
    inner_steps = check_count(inner_steps, "inner_steps", 0)

    def sample(rng):
        goals = sample_goals(rng, num_tasks, dtype)
        noise = onp.stack([sample_noise(rng, num_tasks, num_trajectories, horizon, dtype)
                           for _ in range(inner_steps + 1)])
        return MetaBatch(goals, noise)
    sample.__name__ = f"meta_batches(num_tasks={num_tasks}, num_trajectories={num_trajectories})"
    return sample


def _check_batch(batch, inner_steps):
    if not isinstance(batch, MetaBatch):
        raise TypeError(f"batch must be a maml_rl.MetaBatch (maml_rl.meta_batches(...)(rng)), got {type(batch).__name__}.")
    check_goals(batch.goals)
    if batch.noise.ndim != 5 or batch.noise.shape[1] != batch.num_tasks or batch.noise.shape[0] < inner_steps + 1:
        raise ValueError(f"batch.noise must have shape (>= inner_steps + 1 = {inner_steps + 1}, {batch.num_tasks}, N, T, 2), "
                         f"got {batch.noise.shape}; sample the batch with meta_batches(inner_steps={inner_steps}).")


def _task_grad(theta_tasks, rollouts, adv):
    """Per-task gradients of the surrogate: theta_tasks has a leading task axis, so d(sum_k L_k) is per task."""
    return grad(lambda th: np.sum(surrogate_loss(th, rollouts, adv)))(theta_tasks)


def inner_step(theta_tasks, rollouts, adv, alpha=ALPHA):
    """theta'_k = theta_k - alpha grad L_k(theta_k; D_k) for every task k (theta_tasks: leading task axis)."""
    return tree.sub(theta_tasks, tree.scale(alpha, fastgrad.surrogate_grad(theta_tasks, rollouts, adv)))


def sample_phases(theta, batch, alpha=ALPHA, inner_steps=1, gamma=GAMMA):
    """Sample D_0 .. D_m with the batch's noise, adapting in between: ([(rollouts, advantages)], theta_m per task).

    alpha: one step size, or one per inner step (step_sizes).
    """
    inner_steps = check_count(inner_steps, "inner_steps", 0)
    alphas = step_sizes(alpha, inner_steps)
    policy.check_params(theta, per_task=False)
    _check_batch(batch, inner_steps)
    th0 = tree.astype(theta, batch.noise.dtype)
    th = tree.tile_tasks(th0, batch.num_tasks)
    phases = []
    for j in range(inner_steps + 1):
        ro = rollout_policy(th0 if j == 0 else th, batch.goals, batch.noise[j])
        adv = advantages(ro, gamma)
        phases.append((ro, adv))
        if j < inner_steps:
            th = inner_step(th, ro, adv, alphas[j])
    return phases, th


def meta_objective(theta, phases, alpha=ALPHA, first_order=False):
    """F(theta) = mean_k L(theta_m(theta); D_m) with D_0..D_m fixed (see the module docstring).

    first_order=True stops the gradient through the inner updates' gradients (FOMAML).  Differentiated
    by autograd: the reference the hand-derived fast path (rl.fastgrad) is checked against.
    """
    alphas = step_sizes(alpha, len(phases) - 1)
    th = tree.tile_tasks(theta, phases[0][0].goals.shape[0])
    for (ro, adv), a in zip(phases[:-1], alphas):
        g = _task_grad(th, ro, adv)
        if first_order:
            g = tree.tree_map(getval, g)
        th = tree.sub(th, tree.scale(a, g))
    ro, adv = phases[-1]
    return np.mean(surrogate_loss(th, ro, adv))


def maml_rl_value_and_grad(theta, batch, alpha=ALPHA, inner_steps=1, gamma=GAMMA, first_order=False,
                           backend="auto"):
    """(-mean return after adaptation, meta-gradient grad F) for train.meta_train.

    Second order by default (through the inner updates, sampled trajectories fixed); first_order=True
    gives the first-order variant, mean_k grad L(theta_m; D_m), without differentiating the inner steps.
    alpha: one step size, or one per inner step.  backend "auto" runs the hand-derived rl.fastgrad
    (equal to autograd to 1e-10 in float64), "autograd" differentiates meta_objective with autograd.
    """
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' (the hand-derived fast path) or 'autograd', got {backend!r}.")
    inner_steps = check_count(inner_steps, "inner_steps", 0)
    alphas = step_sizes(alpha, inner_steps)
    dtype = tree.leaves(theta)[0].dtype
    if backend == "auto":
        policy.check_params(theta, per_task=False)
        _check_batch(batch, inner_steps)
        th0 = tree.astype(theta, batch.noise.dtype)

        def sample(j, th):   # as sample_phases does, so both paths see the same trajectories
            ro = rollout_policy(th, batch.goals, batch.noise[j])
            return ro, advantages(ro, gamma)
        ro, g = fastgrad.meta_gradient(th0, sample, alphas, first_order)
        return -float(onp.mean(average_return(ro))), tree.astype(g, dtype)
    phases, theta_m = sample_phases(theta, batch, alphas, inner_steps, gamma)
    loss = -float(onp.mean(average_return(phases[-1][0])))
    if first_order:
        g = tree.task_mean(_task_grad(theta_m, *phases[-1]))
        return loss, tree.astype(g, dtype)
    theta = tree.astype(theta, batch.noise.dtype)
    g = grad(meta_objective)(theta, phases, alphas, False)
    return loss, g


def step_sizes(alpha, steps):
    """alpha as one step size per step: a number (every step) or a sequence, its last entry repeated.

    The paper's evaluation: (0.1, 0.05) gives 0.1 for the first step and 0.05 for every later one.
    """
    if isinstance(alpha, (list, tuple, onp.ndarray)):
        if len(alpha) == 0 and steps > 0:
            raise ValueError("alpha must be a step size or a non-empty sequence of step sizes, e.g. (0.1, 0.05).")
        alphas = [check_alpha(a) for a in alpha]
        return (alphas[:steps] + [alphas[-1]] * max(0, steps - len(alphas))) if steps else []
    return [check_alpha(alpha)] * steps


def adapt(theta, goals, rng=None, alpha=ALPHA, steps=3, num_trajectories=40, gamma=GAMMA, noise=None):
    """Meta-test on new goals: `steps` policy-gradient steps, each from num_trajectories fresh trajectories.

    alpha: one step size, or one per step (a sequence whose last entry repeats; see step_sizes).

    noise: None (drawn from rng) or the exploration noise (steps + 1, K, N, T, 2), e.g. one stream
    per goal so that a subset of the goals gives the same numbers.
    Returns (rollouts, thetas): rollouts[j] were sampled with theta_j (j = 0..steps), thetas[j] is
    theta_j per goal (leading axis K); the return after j steps is the return of rollouts[j].
    """
    steps = check_count(steps, "steps", 0)
    alphas = step_sizes(alpha, steps)
    goals = check_goals(goals)
    policy.check_params(theta, per_task=False)
    K = goals.shape[0]
    if noise is None:
        check_rng(rng)
        dtype = tree.leaves(theta)[0].dtype
        noise = [sample_noise(rng, K, check_count(num_trajectories, "num_trajectories", 1), HORIZON, dtype)
                 for _ in range(steps + 1)]
    elif np.shape(noise)[:2] != (steps + 1, K):
        raise ValueError(f"noise must have shape (steps + 1 = {steps + 1}, num_goals = {K}, N, T, 2), "
                         f"got {np.shape(noise)}.")
    th = tree.tile_tasks(tree.astype(theta, noise[0].dtype), K)
    rollouts, thetas = [], [th]
    for j in range(steps + 1):
        ro = rollout_policy(th, goals, noise[j])
        rollouts.append(ro)
        if j < steps:
            th = inner_step(th, ro, advantages(ro, gamma), alphas[j])
            thetas.append(th)
    return rollouts, thetas


def adaptation_returns(theta, goals, rng=None, alpha=ALPHA, steps=3, num_trajectories=40, gamma=GAMMA, noise=None):
    """Average return per goal after 0..steps adaptation steps: (steps + 1, K)."""
    rollouts, _ = adapt(theta, goals, rng, alpha, steps, num_trajectories, gamma, noise)
    return onp.stack([average_return(ro) for ro in rollouts])
