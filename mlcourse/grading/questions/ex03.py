"""ex03, geometry of a good initialisation: q5 c, q6 the linear inner step, q7 the best initialisation
(practice, hard, made exact: c varies with the task, and the answer is not E[a])."""
from __future__ import annotations

import numpy as np

from ... import checks, maml, nets, tasks
from ..spec import Question, Test, by_reference
from ._common_mistakes import attach
from ._inputs import linear

ASSIGNMENT = "ex03"
TITLE = "Geometry of a good initialisation (and practice: hard)"


def ref_best_initialisation(alpha, x_support, x_query, slopes):
    """The minimiser over theta of the engine's MAML loss for y = a x, f(x) = theta x, one step.

    That loss is quadratic in theta, so two meta-gradients give its minimiser: -g(0) / (g(1) - g(0)).
    """
    a = np.asarray(slopes, float)[:, None]
    batch = tasks.batch_from_arrays(x_support, a * x_support, x_query, a * x_query)
    g0, g1 = (float(maml.maml_grad(np.float64(t), batch, alpha, 1, model=nets.linear_apply)) for t in (0.0, 1.0))
    return -g0 / (g1 - g0)


def _questions():
    xs3, _, _, _, a3 = linear(40, 3, 5)
    xs6, _, xq6, _, a6 = linear(41, 6, 10)
    xs50, _, xq50, _, a50 = linear(42, 50, 5)
    same_s, same_q = np.tile(xs3[:1], (3, 1)), np.tile(linear(43, 1, 5)[2], (3, 1))
    return [
        Question("q5", ASSIGNMENT, "linear_c", "The step factor c of one inner step on y = a x (derived)", forbids=("mlcourse.checks.linear_c",),
                 hint="theta x_i - y_i = (theta - a) x_i. Differentiate (1/K) sum_i ((theta - a) x_i)^2 with respect to "
                      "theta and read off the number that multiplies (theta - a) in alpha times that gradient.",
                 spoilers=("2 alpha", "2.0 * alpha", "alpha * 2", "2 * alpha"), tests=(
            Test("three tasks, alpha = 0.1", ((0.1, xs3),), by_reference(checks.linear_c)),
            Test("six tasks, alpha = 0.25", ((0.25, xs6),), by_reference(checks.linear_c)),
            Test("alpha = 0 (hidden)", ((0.0, xs6),), by_reference(checks.linear_c), hidden=True),
        )),
        Question("q6", ASSIGNMENT, "linear_inner_step", "One inner step on y = a x in closed form", forbids=("mlcourse.checks.linear_inner_step", "mlcourse.checks.linear_trajectories", "mlcourse.checks.linear_c"),
                 hint="Call your linear_c and apply theta' = theta - c (theta - a) to every task at once (c and the "
                      "slopes are arrays of shape (num_tasks,)).",
                 spoilers=("(1 - c) theta + c a", "(1.0 - c) * theta + c", "theta + c (a - theta)"), tests=(
            Test("three tasks", ((0.5, 0.1, xs3, a3),), by_reference(checks.linear_inner_step)),
            Test("six tasks, theta = 2", ((2.0, 0.25, xs6, a6),), by_reference(checks.linear_inner_step)),
            Test("c > 1 overshoots (hidden)", ((0.0, 3.0, xs6, a6),), by_reference(checks.linear_inner_step),
                 hidden=True),
        )),
        Question("q7", ASSIGNMENT, "best_initialisation",
                 "Practice (hard), made exact: the best initialisation when c varies with the task",
                 forbids=("mlcourse.checks.best_initialisation", "mlcourse.checks.check_best_initialisation",
                          "mlcourse.maml.maml_loss", "mlcourse.maml.maml_grad", "mlcourse.maml.maml_value_and_grad"),
                 hint="For one task, theta' x_j - a x_j = (theta' - a) x_j and theta' - a = (1 - c)(theta - a), so its "
                      "query loss is a task-dependent weight times (theta - a)^2. Minimising a mean of w_T (theta - "
                      "a_T)^2 over theta is a weighted average of the slopes.",
                 spoilers=("mean(x_q^2)", "mean(xq^2", "mean(np.asarray(x_query)^2", "e[wa]/e[w]", "/np.sum(w)",
                           "sum(w a)/sum(w)"),
                 tests=(
            Test("one c shared by all tasks (the lesson's case)", ((0.1, same_s, same_q, np.array([0.5, 1.0, 3.0])),),
                 by_reference(ref_best_initialisation)),
            Test("c varies with the task", ((0.25, xs6, xq6, a6),), by_reference(ref_best_initialisation)),
            Test("fifty tasks, some with c > 1 (hidden)", ((1.2, xs50, xq50, a50),),
                 by_reference(ref_best_initialisation), hidden=True),
        )),
    ]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
