"""The pretrained baseline: one network fitted to all tasks at once, no adaptation during training.

    L_pre(theta) = mean over tasks and all their points (support and query) of (f_theta(x) - y)^2

At meta-test it is fine-tuned with SGD (``maml.query_losses``): with MAML's alpha, or with a step
size of its own chosen on validation tasks (``tune_step_size``; the MAML paper's pretrained
baseline is fine-tuned "using an automatically tuned step size").  On the sinusoids its best fit
to random phases is close to zero, which is why it adapts poorly.
"""
from __future__ import annotations

import numpy as np

from . import fastpath, maml, nets
from ._validate import check_alpha, check_count, check_rng
from .tasks import TaskBatch

__all__ = ["pretrain_value_and_grad", "tune_step_size", "STEP_SIZES"]

# The candidate fine-tuning step sizes of tune_step_size: 0 (no fine-tuning) and a log grid around MAML's 0.01.
STEP_SIZES = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def pretrain_value_and_grad(theta, batch: TaskBatch):
    """(loss, gradient) of the plain multi-task regression loss, the gradient shaped like theta.

    A value-and-grad function (params, batch) as ``train.meta_train`` takes it: no inner loop,
    so no alpha or inner steps to bind.
    """
    maml._check_batch(batch)
    nets.check_mlp_params(theta, batch.x_support.shape[-1], batch.y_support.shape[-1])
    b = maml._cast(batch, theta)
    x = np.concatenate([b.x_support, b.x_query], axis=1)
    y = np.concatenate([b.y_support, b.y_query], axis=1)
    # Shared theta, so the per-task gradients are summed: use the full (T*K) set as one task.
    loss, grads, _ = fastpath.support_grad(theta, x.reshape(1, -1, x.shape[-1]), y.reshape(1, -1, y.shape[-1]))
    return float(loss[0]), [(gW[0], gb[0]) for gW, gb in grads]


def tune_step_size(theta, task_dist, *, rng, alphas=STEP_SIZES, num_tasks=500, k_shot=5, k_query=100,
                   steps=(1, 5, 10)):
    """The fine-tuning step size chosen on validation tasks: (best alpha, {alpha: score}).

        score(alpha) = mean over `steps` of the mean query MSE on num_tasks tasks after that many
                       SGD steps of size alpha on their k_shot support points

    Every alpha is scored on the same tasks (drawn from rng: use a generator the meta-test never
    uses); a step size whose steps diverge scores inf; ties go to the smaller alpha.  alpha = 0
    (no fine-tuning) is a candidate when it is in `alphas`.
    """
    check_rng(rng)
    alphas = sorted(check_alpha(a) for a in alphas)
    if not alphas:
        raise ValueError("alphas is empty; pass the candidate step sizes, e.g. baseline.STEP_SIZES.")
    steps = [check_count(s, "steps") for s in steps]
    if not steps or steps != sorted(set(steps)):
        raise ValueError(f"steps must be increasing step counts such as (1, 5, 10), got {steps}.")
    num_tasks, k_shot = check_count(num_tasks, "num_tasks", 1), check_count(k_shot, "k_shot", 1)
    nets.check_mlp_params(theta)
    dtype = np.asarray(theta[0][0]).dtype
    batches = [task_dist.sample(rng, min(100, num_tasks - i), k_shot, k_query, dtype=dtype)
               for i in range(0, num_tasks, 100)]
    scores = {}
    with np.errstate(all="ignore"):   # a diverging step size is scored inf below, not reported here
        for a in alphas:
            per_task = np.concatenate([maml.query_losses(theta, b, a, steps) for b in batches], axis=1)
            score = float(per_task.mean())
            scores[a] = score if np.isfinite(score) else float("inf")
    best = min(alphas, key=lambda a: scores[a])   # min keeps the first (smallest) of equal scores
    return best, scores
