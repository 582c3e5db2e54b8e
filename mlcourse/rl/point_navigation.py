"""2D point navigation, the reinforcement-learning task family of the MAML paper (section 5.3).

A point agent starts at the origin; a task is a goal g drawn uniformly from the arena
[-0.5, 0.5]^2.  At each step t the policy's action a_t in R^2 moves the agent by the velocity

    v_t = MAX_SPEED * clip(a_t, -1, 1)        (per coordinate, so |v_t| <= 0.1 per coordinate)
    s_{t+1} = s_t + v_t,      r_t = -||s_{t+1} - g||_2

for at most HORIZON = 100 steps; the episode ends after the step at which the agent is within
TOLERANCE = 0.01 of the goal in both coordinates.  (The paper's code scales the policy's
actions from [-1, 1] to the velocity bounds, as here.)  The goal is not observed: the
observation is the position s_t, so a policy has to find the goal from the rewards.

Rollouts are vectorised over tasks and trajectories; only the time steps are a Python loop.
Arrays: goals (K, 2); noise and actions (K, N, T, 2); rewards and mask (K, N, T), where K is the
number of tasks, N the trajectories per task and T the horizon.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_count, check_rng

__all__ = ["ARENA", "MAX_SPEED", "HORIZON", "TOLERANCE", "Rollouts", "sample_goals", "check_goals",
           "step", "rollout", "rollout_policy", "sample_noise"]

ARENA = 0.5        # goals in [-ARENA, ARENA]^2
MAX_SPEED = 0.1    # velocity bound per coordinate
HORIZON = 100      # steps per episode
TOLERANCE = 0.01   # the episode ends once |s - g| < TOLERANCE in both coordinates


def check_goals(goals):
    """goals as a float array (K, 2) inside the arena; a ValueError that says what to change otherwise."""
    g = np.asarray(goals)
    if g.dtype.kind not in "iuf":
        raise TypeError(f"goals must be a numeric array of shape (num_goals, 2), got dtype {g.dtype}.")
    if g.ndim == 1 and g.shape == (2,):
        raise ValueError("goals must have shape (num_goals, 2); for one goal pass [[x, y]].")
    if g.ndim != 2 or g.shape[1] != 2 or g.shape[0] < 1:
        raise ValueError(f"goals must have shape (num_goals, 2) with num_goals >= 1, got {g.shape}.")
    if not np.all(np.isfinite(g)):
        raise ValueError("goals contain NaN or infinite values; pass finite coordinates in [-0.5, 0.5].")
    outside = np.any(np.abs(g) > ARENA, axis=1)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"goal {i} = {g[i].tolist()} lies outside the arena [-{ARENA}, {ARENA}]^2; "
                         f"move it inside (each coordinate between -{ARENA} and {ARENA}).")
    return g if g.dtype.kind == "f" else g.astype(np.float64)


def sample_goals(rng, num_goals, dtype=np.float64):
    """Goals uniform in the arena: (num_goals, 2)."""
    check_rng(rng)
    num_goals = check_count(num_goals, "num_goals", 1)
    return rng.uniform(-ARENA, ARENA, size=(num_goals, 2)).astype(dtype)


def sample_noise(rng, num_tasks, num_trajectories, horizon=HORIZON, dtype=np.float64):
    """Standard normal exploration noise for rollout: (num_tasks, num_trajectories, horizon, 2)."""
    check_rng(rng)
    shape = (check_count(num_tasks, "num_tasks", 1), check_count(num_trajectories, "num_trajectories", 1),
             check_count(horizon, "horizon", 1), 2)
    return rng.standard_normal(shape).astype(dtype)


def step(position, action, goal):
    """One step of the environment: (new position, reward, reached), broadcast over leading axes.

    position, action, goal (..., 2); reward = -||new position - goal||; reached is True where the
    agent is within TOLERANCE of the goal in both coordinates (the episode ends there).
    """
    new = np.clip(action, -1.0, 1.0)
    new *= MAX_SPEED
    new += position
    d = new - goal
    d0, d1 = d[..., 0], d[..., 1]          # the two coordinates spelled out: reductions over an axis of 2 are slow
    return new, -np.sqrt(d0 * d0 + d1 * d1), (np.abs(d0) < TOLERANCE) & (np.abs(d1) < TOLERANCE)


@dataclass(frozen=True)
class Rollouts:
    """Trajectories of K tasks x N trajectories, padded to the horizon T.

    positions (K, N, T+1, 2): s_0 = 0 ... s_T (frozen after the episode ended)
    actions   (K, N, T, 2):   the policy's actions a_t (before clipping; what log pi scores)
    rewards   (K, N, T):      r_t, zero after the episode ended
    mask      (K, N, T):      1.0 for the steps that happened, 0.0 after the end
    goals     (K, 2)
    """

    positions: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mask: np.ndarray
    goals: np.ndarray

    @property
    def observations(self):
        """s_t for t = 0..T-1: (K, N, T, 2)."""
        return self.positions[:, :, :-1, :]

    @property
    def returns(self):
        """Undiscounted return of each trajectory, sum_t r_t: (K, N)."""
        return self.rewards.sum(axis=-1)


def _check_goals_noise(goals, noise):
    goals = check_goals(goals)
    noise = np.asarray(noise)
    if noise.ndim != 4 or noise.shape[0] != goals.shape[0] or noise.shape[-1] != 2:
        raise ValueError(f"noise must have shape (num_goals={goals.shape[0]}, num_trajectories, horizon, 2), "
                         f"got {noise.shape}; draw it with sample_noise(rng, ...).")
    return goals, noise


def rollout(mean_fn, goals, noise, log_std):
    """Run the Gaussian policy a_t = mean_fn(s_t) + exp(log_std) * noise_t on every goal: Rollouts.

    mean_fn  (K, N, 2) positions -> (K, N, 2) mean actions (policy.mean_action bound to parameters,
             shared or one set per task)
    goals    (K, 2) inside the arena;   noise (K, N, T, 2) standard normal (fixed noise gives the same
             trajectories for the same policy)
    log_std  (2,) shared or (K, 2) per task
    """
    goals, noise = _check_goals_noise(goals, noise)
    std = np.exp(np.asarray(log_std, dtype=noise.dtype))
    return _sample(mean_fn, goals, noise * (std[:, None, None, :] if std.ndim == 2 else std))


def rollout_policy(theta, goals, noise):
    """The trajectories of the Gaussian MLP policy (rl.policy) theta: Rollouts.

    The same as rollout(functools.partial(policy.mean_action, theta), goals, noise, theta["log_std"])
    (equal to the bit with per-task parameters; with shared ones up to the rounding of the products),
    faster: the policy's layers are written into buffers reused from step to step, and shared parameters
    multiply all K N positions in one product.  It runs on the calling thread: spreading the tasks over
    Python threads does not pay, because each time step is too short a piece of work to share.

    theta   the policy dict {"mlp": [(W, b)], "log_std"}, shared or one set per task (leading axis K)
    goals   (K, 2) inside the arena;   noise (K, N, T, 2) standard normal
    """
    goals, noise = _check_goals_noise(goals, noise)
    K, N, _, _ = noise.shape
    mlp, log_std = theta["mlp"], np.asarray(theta["log_std"])
    per_task = log_std.ndim == 2
    std = np.exp(log_std.astype(noise.dtype))
    dt = np.result_type(noise.dtype, *(W.dtype for W, _ in mlp))
    rows = (K, N) if per_task else (K * N,)                             # shared weights: one flat product
    bufs = [np.empty(rows + (np.shape(W)[-1],), dt) for W, _ in mlp]
    biases = [b[:, None, :] if per_task else b for _, b in mlp]

    def mean(pos):   # mu_theta(s) for every position, into the buffers
        h = pos if per_task else pos.reshape(K * N, 2)
        for l, (W, _) in enumerate(mlp):
            z = np.matmul(h, W, out=bufs[l])
            z += biases[l]
            if l < len(mlp) - 1:
                np.maximum(z, 0, out=z)
            h = z
        return h.reshape(K, N, 2)
    return _sample(mean, goals, noise * (std[:, None, None, :] if per_task else std))


def _sample(mean, goals, scaled):
    """The time loop of both rollouts: a_t = mean(s_t) + scaled_t, scaled = exp(log_std) noise (K, N, T, 2)."""
    K, N, T, _ = scaled.shape
    dtype = scaled.dtype
    goal = goals.astype(dtype)[:, None, :]
    positions = np.zeros((K, N, T + 1, 2), dtype=dtype)
    actions = np.zeros((K, N, T, 2), dtype=dtype)
    rewards = np.zeros((K, N, T), dtype=dtype)
    mask = np.zeros((K, N, T), dtype=dtype)
    pos = positions[:, :, 0, :]
    alive = np.ones((K, N), dtype=bool)
    for t in range(T):
        a = mean(pos) + scaled[:, :, t, :]
        new, r, reached = step(pos, a, goal)
        new = np.where(alive[..., None], new, pos)
        actions[:, :, t] = a
        rewards[:, :, t] = np.where(alive, r, 0.0)
        mask[:, :, t] = alive
        positions[:, :, t + 1] = new
        pos = new
        alive &= ~reached
        if not alive.any():
            positions[:, :, t + 2:] = pos[:, :, None, :]
            break
    return Rollouts(positions, actions, rewards, mask, goals)
