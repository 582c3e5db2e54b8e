"""The pretrained baseline: one network fitted to all tasks at once, no adaptation during training.

    L_pre(theta) = mean over tasks and all their points (support and query) of (f_theta(x) - y)^2

At meta-test it is fine-tuned with the same inner SGD as MAML (``maml.query_losses``).  On the
sinusoids its best fit to random phases is close to zero, which is why it adapts poorly.
"""
from __future__ import annotations

import numpy as np

from . import fastpath, maml, nets
from .tasks import TaskBatch

__all__ = ["pretrain_value_and_grad"]


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
