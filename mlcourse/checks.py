"""Checks a learner can call: finite differences and the lesson's closed forms.

Each check returns a small dict (the quantities compared and the relative error) so a notebook
can print it; tests assert on ``rel_error``.  Beside them sit the small computations the
notebooks teach and draw (``mlcourse.viz`` only draws them):

    worked example 1, m steps   scalar_losses, losses_on_grid, meta_gradient_steps, meta_gradient_autograd
    worked example 2            linear_c, linear_inner_step, linear_trajectories, linear_regime
    notebook 00's picture       quadratic_maml_step  (bowl-shaped tasks, theta'_i and the meta-gradient)
    meta-test adaptation        adaptation_path      (fits and query MSE after 0..m SGD steps)
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad
from autograd import grad as ag_grad

from . import maml, nets, tree
from ._validate import check_alpha
from .tasks import TaskBatch

__all__ = ["hessian_vector_product", "rel_error", "finite_difference_grad", "finite_difference_hvp", "check_grad", "check_hvp",
           "support_hvp", "check_maml_vs_fomaml_hvp", "meta_gradient_1d", "check_worked_example_1",
           "linear_c", "linear_inner_step", "check_worked_example_2", "best_initialisation",
           "check_best_initialisation", "scalar_losses", "losses_on_grid", "meta_gradient_steps",
           "meta_gradient_autograd", "linear_trajectories", "linear_regime", "quadratic_maml_step",
           "adaptation_path"]


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


def _one_task(batch, what):
    if batch.num_tasks != 1:
        raise ValueError(f"{what} is about one task; pass batch.task(i), got {batch.num_tasks} tasks.")


def scalar_losses(batch, model=nets.sine_apply, loss=nets.mse):
    """(L_s, L_q) of a one-task batch as functions of many scalar thetas at once: (G,) -> (G,).

    Each entry of the argument is its own scalar theta (the task's data are broadcast over it),
    so one call evaluates a whole grid; autograd's elementwise_grad then gives L_s', L_s'', ...
    """
    _one_task(batch, "a scalar loss")

    def make(x, y):
        def L(thetas):
            xs = anp.broadcast_to(x, (thetas.shape[0],) + x.shape[1:])
            ys = anp.broadcast_to(y, (thetas.shape[0],) + y.shape[1:])
            return loss(model(thetas, xs), ys)
        return L
    return make(batch.x_support, batch.y_support), make(batch.x_query, batch.y_query)


def losses_on_grid(batch, thetas, model=nets.sine_apply, loss=nets.mse):
    """(L_s(theta), L_q(theta)) for every theta in the 1-D array thetas: two arrays shaped like thetas."""
    Ls, Lq = scalar_losses(batch, model, loss)
    thetas = np.atleast_1d(np.asarray(thetas, dtype=float))
    return Ls(thetas), Lq(thetas)


def meta_gradient_steps(batch, theta, alpha, steps=1, model=nets.sine_apply, loss=nets.mse):
    """The chain rule through m = steps inner steps, for a scalar theta (or a 1-D array of them).

        theta^(i+1) = theta^(i) - alpha L_s'(theta^(i)),   theta' = theta^(m)
        dL_q(theta')/dtheta = L_q'(theta') prod_{i<m} (1 - alpha L_s''(theta^(i)))

    Returns a dict of arrays shaped like theta: theta_prime, exact (the product formula),
    first_order (L_q'(theta'), what FOMAML keeps), factor (the product), curvature (L_s''(theta)).
    """
    alpha = check_alpha(alpha)
    Ls, Lq = scalar_losses(batch, model, loss)
    dLs, d2Ls, dLq = elementwise_grad(Ls), elementwise_grad(elementwise_grad(Ls)), elementwise_grad(Lq)
    t = np.atleast_1d(np.asarray(theta, dtype=float))
    factor = np.ones_like(t)
    curvature = d2Ls(t)
    for _ in range(int(steps)):
        factor = factor * (1.0 - alpha * d2Ls(t))
        t = t - alpha * dLs(t)
    first = dLq(t)
    shape = np.shape(theta)
    out = {"theta_prime": t, "exact": first * factor, "first_order": first, "factor": factor,
           "curvature": curvature}
    return {k: v.reshape(shape) for k, v in out.items()}


def meta_gradient_autograd(batch, theta, alpha, steps=1, eps=1e-6, model=nets.sine_apply, loss=nets.mse):
    """(autograd, central finite difference) derivative of theta -> L_q(theta^(m)(theta)) at a scalar theta."""
    alpha = check_alpha(alpha)
    Ls, Lq = scalar_losses(batch, model, loss)
    dLs = ag_grad(lambda t: Ls(anp.reshape(t, (1,)))[0])

    def meta(t):
        for _ in range(int(steps)):
            t = t - alpha * dLs(t)
        return Lq(anp.reshape(t, (1,)))[0]
    theta = float(theta)
    return float(ag_grad(meta)(theta)), float((meta(theta + eps) - meta(theta - eps)) / (2 * eps))


def check_worked_example_1(theta, batch: TaskBatch, alpha=0.1, model=nets.sine_apply, loss=nets.mse):
    """For one task and a scalar theta: closed form vs autograd vs finite differences of L_q(theta'(theta))."""
    alpha = check_alpha(alpha)
    _one_task(batch, "worked example 1")
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


def linear_trajectories(theta, alpha, x_support, slope, steps):
    """theta^(k) for k = 0..steps and every task, by iterating the closed form: array (steps + 1, T).

    theta^(k) - a = (1 - c)^k (theta - a): converges for 0 < c < 2, bounces at c = 2, diverges beyond.
    """
    path = [np.full(np.shape(slope), float(theta))]
    for _ in range(int(steps)):
        path.append(linear_inner_step(path[-1], alpha, x_support, slope))
    return np.stack(path)


def linear_regime(c):
    """What one step with this c does (the table of notebook 03), as a sentence."""
    c = float(c)
    if c <= 0:
        return "c = 0: no step at all (α = 0)"
    if c < 1:
        return "0 < c < 1: θ′ lands between θ and a (a convex combination)"
    if c == 1:
        return "c = 1: one step lands exactly on a"
    if c < 2:
        return "1 < c < 2: overshoots a, but |1 − c| < 1 so repeated steps still converge"
    if c == 2:
        return "c = 2: bounces between θ and its mirror image around a forever"
    return "c > 2: every step overshoots further: divergence"


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


# ---- notebook 00's picture: bowl-shaped tasks ---------------------------------------------------

def quadratic_maml_step(theta, optima, alpha):
    """Tasks L_i(theta) = |theta - theta*_i|^2 (support = query loss), one inner step each.

        theta'_i = theta - alpha 2 (theta - theta*_i)
        meta-gradient = mean_i (1 - 2 alpha) 2 (theta'_i - theta*_i)     (I - alpha H) grad, H = 2 I

    theta (d,), optima (T, d) -> {"theta_prime": (T, d), "meta_gradient": (d,)}.
    """
    alpha = check_alpha(alpha)
    theta, optima = np.asarray(theta, dtype=float), np.asarray(optima, dtype=float)
    if optima.ndim != 2 or theta.shape != optima.shape[1:]:
        raise ValueError(f"optima must be (tasks, d) and theta (d,); got {optima.shape} and {theta.shape}.")
    theta_prime = theta - alpha * 2 * (theta - optima)
    meta_gradient = np.mean(2 * (1 - 2 * alpha) * (theta_prime - optima), axis=0)
    return {"theta_prime": theta_prime, "meta_gradient": meta_gradient}


# ---- meta-test adaptation of an MLP, step by step -----------------------------------------------

def adaptation_path(theta, task, alpha=0.01, max_steps=10, x_grid=None):
    """The fit and the query MSE after 0..max_steps SGD steps of size alpha on one task's support set.

    theta: MLP parameters; task: a one-task TaskBatch; x_grid: 1-D inputs where the fit is drawn
    (default 200 points on [-5, 5]).  Returns {"fits": (max_steps + 1, G), "mse": (max_steps + 1,)}.
    """
    alpha = check_alpha(alpha)
    if task.num_tasks != 1:
        raise ValueError(f"adaptation_path takes one task; pass batch.task(i), got {task.num_tasks} tasks.")
    x_grid = np.linspace(-5, 5, 200) if x_grid is None else np.asarray(x_grid)
    dtype = theta[0][0].dtype
    task = task.astype(dtype)
    xg = x_grid[:, None].astype(dtype)
    fits, mse = [], []
    th = theta
    for s in range(int(max_steps) + 1):
        if s > 0:  # one more SGD step from the current parameters (task axis of length 1 dropped)
            th = [(W[0], b[0]) for W, b in maml.adapt(th, task.x_support, task.y_support, alpha, 1)]
        fits.append(nets.mlp_apply(th, xg)[:, 0])
        mse.append(float(nets.mse(nets.mlp_apply(th, task.x_query[0]), task.y_query[0])))
    return {"fits": np.array(fits), "mse": np.array(mse)}
