"""ex02, the meta-gradient in 1D: q2 meta_objective (practice, easy), q3 d theta'/d theta (practice,
medium), q4 the 1D meta-gradient through m inner steps (worked example 1, then derived for m steps)."""
from __future__ import annotations

import numpy as np

from ... import checks, maml, nets, tasks
from ..codec import TanhLoss
from ..blocking import INNER_LOOP
from ..spec import Question, Test, by_reference
from ._common_mistakes import attach
from ._inputs import linear

ASSIGNMENT = "ex02"
TITLE = "The meta-gradient in 1D (and practice: easy, medium)"


def _scalar(seed, K=5, Q=10):
    b = tasks.Scalar1D().sample(np.random.default_rng(seed), 1, K, Q)
    return b.x_support[0, :, 0], b.y_support[0, :, 0], b.x_query[0, :, 0], b.y_query[0, :, 0]


def _tanh_loss(seed, n, d):
    rng = np.random.default_rng(seed)
    return TanhLoss(rng.normal(size=(n, d)), rng.normal(size=n)), rng.normal(size=d)


# ---- references (the engine) ---------------------------------------------------------------------

def ref_meta_objective(theta, xs, ys, xq, yq, alpha):
    batch = tasks.batch_from_arrays(xs, ys, xq, yq)
    return maml.maml_loss(np.float64(theta), batch, alpha, 1, model=nets.linear_apply)


def ref_dtheta_prime(loss, theta, alpha):
    hvp = checks.hessian_vector_product(loss)
    d = np.size(theta)
    H = np.stack([hvp(np.asarray(theta, float), e) for e in np.eye(d)], axis=1)
    return np.eye(d) - alpha * H


def ref_meta_gradient_1d(theta, xs, ys, xq, yq, alpha, steps=1):
    """The chain rule through `steps` inner steps (the engine's product formula; one step: worked example 1)."""
    return float(checks.meta_gradient_steps(tasks.batch_from_arrays(xs, ys, xq, yq), theta, alpha, steps)["exact"])


def _questions():
    def lin_call(seed, T, K, theta, alpha):
        xs, ys, xq, yq, _ = linear(seed, T, K)
        return (theta, xs, ys, xq, yq, alpha)

    def tanh_call(seed, n, d, alpha):
        loss, theta = _tanh_loss(seed, n, d)
        return (loss, theta, alpha)

    def s1d_call(seed, theta, alpha, steps=1):
        return (theta,) + _scalar(seed) + (alpha, steps)
    return [
        Question("q2", ASSIGNMENT, "meta_objective", "Practice (easy): the meta-objective with a query set", forbids=INNER_LOOP + ("mlcourse.maml.maml_loss", "mlcourse.maml._maml_loss_autograd", "mlcourse.maml.multistep_loss", "mlcourse.maml.query_losses"),
                 hint="Write theta x - y and differentiate the mean squared error of one task by hand: dL_s/dtheta is "
                      "a mean over the task's support points. Keep one row per task (axis=1) until the final mean "
                      "over tasks.", tests=(
            Test("one task", (lin_call(10, 1, 5, 0.3, 0.1),), by_reference(ref_meta_objective)),
            Test("four tasks", (lin_call(11, 4, 5, 1.2, 0.05),), by_reference(ref_meta_objective)),
            Test("alpha = 0 is the plain query loss", (lin_call(12, 3, 4, -0.5, 0.0),),
                 by_reference(ref_meta_objective)),
            Test("ten tasks, large step (hidden)", (lin_call(13, 10, 8, 2.0, 0.4),), by_reference(ref_meta_objective),
                 hidden=True),
        )),
        Question("q3", ASSIGNMENT, "dtheta_prime_dtheta", "Practice (medium): d theta'/d theta for one inner step", forbids=("mlcourse.checks.hessian_vector_product", "mlcourse.checks.finite_difference_hvp", "mlcourse.checks.support_hvp", "mlcourse.fastpath.hvp"),
                 hint="theta' has two terms. The derivative of theta with respect to itself is the identity; the "
                      "derivative of a gradient is the matrix of second derivatives, autograd.hessian(loss)(theta). "
                      "Keep the constant in front of it, sign included.",
                 spoilers=("I - alpha H", "-alpha H", "-alpha * hessian", "-alpha grad^2"), tests=(
            Test("2 parameters", (tanh_call(20, 6, 2, 0.1),), by_reference(ref_dtheta_prime)),
            Test("3 parameters, alpha = 0.5", (tanh_call(21, 8, 3, 0.5),), by_reference(ref_dtheta_prime)),
            Test("alpha = 0 gives the identity", (tanh_call(22, 5, 4, 0.0),), by_reference(ref_dtheta_prime)),
            Test("5 parameters (hidden)", (tanh_call(23, 12, 5, 0.3),), by_reference(ref_dtheta_prime), hidden=True),
        )),
        Question("q4", ASSIGNMENT, "meta_gradient_1d", "The 1D meta-gradient through one and several inner steps", forbids=("mlcourse.checks.check_worked_example_1", "mlcourse.checks.meta_gradient_1d", "mlcourse.checks.meta_gradient_steps", "mlcourse.checks.meta_gradient_autograd"),
                 hint="Differentiate one step theta^(i+1) = theta^(i) - alpha L_s'(theta^(i)) with respect to "
                      "theta^(i), then chain the m steps: d theta^(m)/d theta is a product of the m one-step "
                      "derivatives. Keep the trajectory theta^(0), ..., theta^(m) and evaluate each factor at the "
                      "point its step started from.",
                 spoilers=("prod_i", "prod_(i", "l_s''(theta^(i))", "1 - alpha * grad(grad("), tests=(
            Test("theta = 0.8, alpha = 0.1", (s1d_call(30, 0.8, 0.1),), by_reference(ref_meta_gradient_1d)),
            Test("theta = 0.9, alpha = 0.3, 3 steps", (s1d_call(31, 0.9, 0.3, 3),), by_reference(ref_meta_gradient_1d)),
            Test("theta = -0.5, alpha = 0.05, 2 steps (hidden)", (s1d_call(32, -0.5, 0.05, 2),),
                 by_reference(ref_meta_gradient_1d), hidden=True),
        )),
    ]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
