"""Common mistakes of the lesson's two prerequisites (deep learning, SGD), for the diagnostic skills.

The one catalogue of mistakes is ``mlcourse.grading.questions._common_mistakes``: it covers every
graded question, and the practice generators of the lesson's own skills use its tuples unchanged.
No graded question exercises the prerequisites, so the handful of mistakes below complete it for
them, in its format (``Mistake(name, says, answer=fn(*inputs))``); where the catalogue already has
the words (the inner step's sign, a sum where the mean is meant, the factor 2), they are its own.
"""
from __future__ import annotations

import numpy as np

from ..grading.mistakes import Mistake
from ..grading.questions._common_mistakes import Q19, SIGN, SUM_SUPPORT

__all__ = ["CHAIN_RULE", "MSE_GRADIENT", "SGD_STEP", "HESSIAN", "EXPECTATION", "THETA_STAR"]

FACTOR_2 = next((m.name, m.says) for m in Q19 if m.name == "the factor 2 lost")


def _m(words, answer):
    return Mistake(words[0], words[1], answer=answer)


# chain_rule: d/dtheta (g(theta) - y)^2 with g(theta) = p theta^2 + q theta; inputs (theta, p, q, y)
def _g(th, p, q):
    return p * th ** 2 + q * th


CHAIN_RULE = (
    _m(("the inner derivative dropped", "The chain rule multiplies the outer derivative, taken at the inner "
        "function's value, by the inner function's derivative: leaving the second factor out differentiates "
        "only the outer function."), lambda th, p, q, y: 2 * (_g(th, p, q) - y)),
    _m(("the outer derivative at the wrong point", "The outer function's derivative is evaluated at the inner "
        "function's value g(theta), not at theta itself."), lambda th, p, q, y: 2 * (th - y) * (2 * p * th + q)),
    _m(("the outer derivative dropped", "Only the inner function was differentiated: the outer function's "
        "derivative at g(theta) multiplies it."), lambda th, p, q, y: 2 * p * th + q),
)

# mse_gradient / sgd_step: L_s(theta) = mean_i (theta x_i - y_i)^2; inputs (theta, x, y) or (theta, x, y, alpha)
def _grad(th, x, y, factor=2.0, agg=np.mean, sign=1.0):
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(factor * agg(sign * (th * x - y) * x))


RESIDUAL = ("the residual's sign", "Differentiating (theta x - y)^2 brings down the residual theta x - y itself; "
            "writing y - theta x flips the gradient, which then points down the loss instead of up.")

MSE_GRADIENT = (
    _m(SUM_SUPPORT, lambda th, x, y: _grad(th, x, y, agg=np.sum)),
    _m(FACTOR_2, lambda th, x, y: _grad(th, x, y, factor=1.0)),
    _m(RESIDUAL, lambda th, x, y: _grad(th, x, y, sign=-1.0)),
)

SGD_STEP = (
    _m(SIGN, lambda th, x, y, al: th + al * _grad(th, x, y)),
    _m(SUM_SUPPORT, lambda th, x, y, al: th - al * _grad(th, x, y, agg=np.sum)),
    _m(FACTOR_2, lambda th, x, y, al: th - al * _grad(th, x, y, factor=1.0)),
)

# hessian_quadratic: L = p t1^2 + q t1 t2 + r t2^2 + s t1 + u t2; inputs (p, q, r, s, u)
HESSIAN = (
    _m(("the factor 2 of the squares lost", "d^2/dt^2 of p t^2 is 2p: the second derivative of a square keeps the "
        "factor its first derivative brought down."), lambda p, q, r, s, u: np.array([[p, q], [q, r]], float)),
    _m(("the mixed term counted twice", "The mixed term q t1 t2 gives d^2/dt1 dt2 = q once; the Hessian is "
        "symmetric, so q appears in both off-diagonal places, each equal to q."),
       lambda p, q, r, s, u: np.array([[2 * p, 2 * q], [2 * q, 2 * r]], float)),
    _m(("the mixed term halved", "The mixed term q t1 t2 gives d^2/dt1 dt2 = q, not q/2: halving belongs to a "
        "quadratic written as (1/2) t^T A t."), lambda p, q, r, s, u: np.array([[2 * p, q / 2], [q / 2, 2 * r]], float)),
)

# expectation: a takes values[i] with probability probs[i]; inputs (values, probs)
EXPECTATION = (
    _m(("an unweighted mean", "An expectation weighs each value by its probability: the plain mean of the values "
        "treats them as equally likely."), lambda v, p: float(np.mean(v))),
    _m(("the most likely value", "The expectation is the probability-weighted average of all values, not the "
        "single most likely one (the mode)."), lambda v, p: float(np.asarray(v, float)[int(np.argmax(p))])),
    _m(("the probabilities summed with the values", "Each value is multiplied by its probability before summing."),
       lambda v, p: float(np.sum(np.asarray(v, float) + np.asarray(p, float)) / len(v))),
)

# the lesson's hard practice problem: theta* = argmin E[(theta - a)^2] for a drawn uniformly from a list; inputs (slopes,)
THETA_STAR = (
    _m(("the mean of the distinct values", "Each entry of the list is one equally likely draw: a slope that appears "
        "twice is twice as likely, so count it twice."), lambda a: float(np.mean(np.unique(a)))),
    _m(("the middle of the range", "Minimising E[(theta - a)^2] gives the mean of a, not the midpoint between the "
        "smallest and the largest slope."), lambda a: float((np.min(a) + np.max(a)) / 2)),
    _m(("the median", "The median minimises E|theta - a|; the *squared* error is minimised by the mean."),
       lambda a: float(np.median(a))),
)
