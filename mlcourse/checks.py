"""Checks a learner can call: finite differences and the lesson's closed forms.

Each check returns a small dict (the quantities compared and the relative error) so a notebook
can print it; tests assert on ``rel_error``.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad as ag_grad

from . import maml, nets, tree
from ._validate import check_alpha
from .tasks import TaskBatch

__all__ = ["hessian_vector_product", "rel_error", "finite_difference_grad", "finite_difference_hvp", "check_grad", "check_hvp",
           "support_hvp", "check_maml_vs_fomaml_hvp", "meta_gradient_1d", "check_worked_example_1",
           "linear_c", "linear_inner_step", "check_worked_example_2", "best_initialisation",
           "check_best_initialisation"]


def hessian_vector_product(f):
    """theta, v -> H v for containers of arrays: the gradient of <grad f(theta), v> (Pearlmutter)."""
    g = ag_grad(f)
    return lambda theta, v: ag_grad(lambda p: tree.dot(g(p), v))(theta)


def rel_error(a, b):
    """max |a - b| / max(|a|, |b|, tiny) over the flattened containers."""
    va, vb = tree.flatten(a)[0], tree.flatten(b)[0]
    denom = max(np.max(np.abs(va), initial=0.0), np.max(np.abs(vb), initial=0.0), 1e-300)
    return float(np.max(np.abs(va - vb), initial=0.0) / denom)


def finite_difference_grad(f, theta, eps=1e-6):
    """Central differences (f(theta + eps e_i) - f(theta - eps e_i)) / 2 eps for every coordinate i."""
    vec, unflatten = tree.flatten(theta)
    g = np.zeros_like(vec, dtype=np.float64)
    for i in range(vec.size):
        e = np.zeros_like(vec)
        e[i] = eps
        g[i] = (float(f(unflatten(vec + e))) - float(f(unflatten(vec - e)))) / (2 * eps)
    return unflatten(g)


def finite_difference_hvp(f, theta, v, eps=1e-5):
    """H v ~ (grad f(theta + eps v) - grad f(theta - eps v)) / 2 eps, the gradient from autograd."""
    g = ag_grad(f)
    plus = g(tree.add(theta, tree.scale(eps, v)))
    minus = g(tree.sub(theta, tree.scale(eps, v)))
    return tree.scale(1.0 / (2 * eps), tree.sub(plus, minus))


def check_grad(f, theta, grad=None, eps=1e-6):
    """Compare an analytic gradient (default: autograd's) of scalar f with central differences."""
    analytic = ag_grad(f)(theta) if grad is None else grad
    fd = finite_difference_grad(f, theta, eps)
    return {"analytic": analytic, "finite_difference": fd, "rel_error": rel_error(analytic, fd)}


def check_hvp(f, theta, v, eps=1e-5):
    """Second order: autograd's Hessian-vector product against finite differences of the gradient."""
    exact = hessian_vector_product(f)(theta, v)
    fd = finite_difference_hvp(f, theta, v, eps)
    return {"analytic": exact, "finite_difference": fd, "rel_error": rel_error(exact, fd)}


def support_hvp(theta_tasks, batch: TaskBatch, v_tasks, model=nets.mlp_apply, loss=nets.mse):
    """Per-task H_s v: Hessian of each task's support loss at its own parameters times its own v."""
    def total(p):
        return anp.sum(loss(model(p, batch.x_support), batch.y_support))
    return hessian_vector_product(total)(theta_tasks, v_tasks)


def check_maml_vs_fomaml_hvp(theta, batch: TaskBatch, alpha=0.01, model=nets.mlp_apply, loss=nets.mse):
    """One inner step: MAML grad = FOMAML grad - alpha * mean_T H_s(theta) grad L_q(theta'_T)."""
    alpha = check_alpha(alpha)
    T = batch.num_tasks
    theta_prime = maml.adapt(theta, batch.x_support, batch.y_support, alpha, 1, model=model, loss=loss)
    gq = ag_grad(lambda p: anp.sum(loss(model(p, batch.x_query), batch.y_query)))(
        tree.tree_map(np.asarray, theta_prime))  # per-task grad L_q(theta'_T)
    Hv = support_hvp(tree.tile_tasks(theta, T), batch, gq, model, loss)
    fomaml = tree.tree_map(lambda a: np.mean(a, axis=0), gq)
    predicted = tree.sub(fomaml, tree.scale(alpha, tree.tree_map(lambda a: np.mean(a, axis=0), Hv)))
    exact = maml.maml_grad(theta, batch, alpha, 1, model=model, loss=loss)
    return {"maml": exact, "fomaml": fomaml, "fomaml_minus_alpha_hvp": predicted,
            "rel_error": rel_error(exact, predicted)}


# ---- worked example 1: the 1D meta-gradient ---------------------------------------------------

def meta_gradient_1d(dLq_at_theta_prime, d2Ls_at_theta, alpha):
    """dL_q(theta')/dtheta = L_q'(theta') (1 - alpha L_s''(theta))."""
    return dLq_at_theta_prime * (1.0 - alpha * d2Ls_at_theta)


def check_worked_example_1(theta, batch: TaskBatch, alpha=0.1, model=nets.sine_apply, loss=nets.mse):
    """For one task and a scalar theta: closed form vs autograd vs finite differences of L_q(theta'(theta))."""
    alpha = check_alpha(alpha)
    if batch.num_tasks != 1:
        raise ValueError(f"worked example 1 is about one task; pass batch.task(i), got {batch.num_tasks} tasks.")
    theta = float(theta)
    Ls = lambda t: loss(model(t, batch.x_support), batch.y_support)[0]  # noqa: E731
    Lq = lambda t: loss(model(t, batch.x_query), batch.y_query)[0]      # noqa: E731
    dLs, d2Ls, dLq = ag_grad(Ls), ag_grad(ag_grad(Ls)), ag_grad(Lq)
    theta_prime = theta - alpha * dLs(theta)
    closed = meta_gradient_1d(dLq(theta_prime), d2Ls(theta), alpha)
    meta = lambda t: Lq(t - alpha * dLs(t))  # noqa: E731
    auto = ag_grad(meta)(theta)
    eps = 1e-6
    fd = (meta(theta + eps) - meta(theta - eps)) / (2 * eps)
    return {"theta_prime": float(theta_prime), "closed_form": float(closed), "autograd": float(auto),
            "finite_difference": float(fd), "first_order": float(dLq(theta_prime)),
            "curvature": float(d2Ls(theta)), "rel_error": rel_error(closed, auto),
            "fd_rel_error": rel_error(closed, fd)}


# ---- worked example 2 and the "hard" practice problem -------------------------------------------

def linear_c(alpha, x_support):
    """c = 2 alpha mean(x^2) per task; x_support (T, K, 1) -> (T,)."""
    x = np.asarray(x_support)
    return 2.0 * alpha * np.mean(x ** 2, axis=tuple(range(1, x.ndim)))


def linear_inner_step(theta, alpha, x_support, slope):
    """theta' = (1 - c) theta + c a, c = 2 alpha mean(x^2): one SGD step on noiseless y = a x."""
    c = linear_c(alpha, x_support)
    return (1.0 - c) * theta + c * np.asarray(slope)


def check_worked_example_2(theta, batch: TaskBatch, alpha=0.1):
    """Closed form of worked example 2 against the engine's adapt with f_theta(x) = theta x."""
    alpha = check_alpha(alpha)
    if "slope" not in batch.params:
        raise ValueError("worked example 2 needs linear-slope tasks: sample them with tasks.LinearSlope().")
    engine = maml.adapt(np.float64(theta), batch.x_support, batch.y_support, alpha, 1, model=nets.linear_apply)
    closed = linear_inner_step(theta, alpha, batch.x_support, batch.params["slope"])
    return {"engine": np.asarray(engine), "closed_form": closed, "c": linear_c(alpha, batch.x_support),
            "rel_error": rel_error(np.asarray(engine), closed)}


def best_initialisation(slopes):
    """theta* = argmin_theta E[(theta - a)^2] = E[a]."""
    return float(np.mean(slopes))


def check_best_initialisation(slopes, lr=0.1, steps=2000):
    """Minimise J(theta) = mean (theta - a)^2 by gradient descent with autograd; compare with mean(a)."""
    a = np.asarray(slopes, dtype=np.float64)
    J = lambda t: anp.mean((t - a) ** 2)  # noqa: E731
    dJ, theta = ag_grad(J), 0.0
    for _ in range(steps):
        theta = theta - lr * dJ(theta)
    closed = best_initialisation(a)
    return {"gradient_descent": float(theta), "closed_form": closed, "rel_error": rel_error(theta, closed)}
