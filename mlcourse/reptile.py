"""Reptile (Nichol, Achiam & Schulman, 2018): move theta toward the adapted parameters.

    theta <- theta + epsilon (mean_T theta'_T - theta)

No derivative of the inner loop is taken: theta' comes from plain SGD on each task's data.
"""
from __future__ import annotations

from . import fastpath, maml, nets, tree
from ._validate import check_alpha

__all__ = ["reptile_direction", "reptile_update", "reptile_pseudo_grad"]


def reptile_direction(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """mean over tasks of (theta'_T - theta), theta' from `inner_steps` SGD steps on the support set."""
    if maml._use_fastpath(theta, model, loss):  # MLP + MSE: the mean over tasks without stacking theta'
        alpha, inner_steps, batch = maml._prepare(theta, batch, alpha, inner_steps, model)
        b = maml._cast(batch, theta)
        return fastpath.reptile_direction(theta, b.x_support, b.y_support, alpha, inner_steps)
    theta_prime = maml.adapt(theta, batch.x_support, batch.y_support, alpha, inner_steps, model=model, loss=loss)
    return tree.sub(tree.task_mean(theta_prime), theta)


def reptile_update(theta, batch, alpha=0.01, inner_steps=1, epsilon=0.1, *, model=nets.mlp_apply, loss=nets.mse):
    """New theta = theta + epsilon (mean theta' - theta).  Returns a new container."""
    epsilon = check_alpha(epsilon, "epsilon")
    return tree.add(theta, tree.scale(epsilon, reptile_direction(theta, batch, alpha, inner_steps,
                                                                 model=model, loss=loss)))


def reptile_pseudo_grad(theta, batch, alpha=0.01, inner_steps=1, *, model=nets.mlp_apply, loss=nets.mse):
    """(meta-loss after adaptation, theta - mean theta'): a descent direction for an outer optimiser.

    Divided by alpha * inner_steps so that its scale matches a gradient (with one step it equals the
    mean support gradient at theta); Adam is insensitive to the scale anyway.
    """
    theta_prime = maml.adapt(theta, batch.x_support, batch.y_support, alpha, inner_steps, model=model, loss=loss)
    value = maml.query_loss(theta_prime, batch, model=model, loss=loss)  # same theta', adapted once
    s = -1.0 / (alpha * max(inner_steps, 1)) if alpha > 0 else -1.0
    return value, tree.scale(s, tree.sub(tree.task_mean(theta_prime), theta))
