"""ex05, MAML on sinusoids: q11 reptile_update, q12 adaptation_curve (the meta-test procedure), q25 one-step
Reptile as an ordinary gradient step (which loss, which learning rate: derived by the learner)."""
from __future__ import annotations

from ... import maml, reptile
from ...tasks import TaskBatch
from ..blocking import INNER_LOOP
from ..spec import Question, Test, by_reference
from ._common_mistakes import attach
from ._inputs import sine

ASSIGNMENT = "ex05"
TITLE = "MAML on sinusoids: Reptile and meta-test adaptation"


def ref_reptile_update(theta, xs, ys, alpha, inner_steps, epsilon):
    return reptile.reptile_update(theta, TaskBatch(xs, ys, xs, ys), alpha, inner_steps, epsilon)


def ref_adaptation_curve(theta, xs, ys, xq, yq, alpha, steps):
    return maml.query_losses(theta, TaskBatch(xs, ys, xq, yq), alpha, tuple(steps))


def ref_reptile_as_gradient_step(theta, xs, ys, alpha, epsilon):
    """(learning rate, gradient) of the joint-training step that one-step Reptile takes: (epsilon alpha, grad).

    The gradient is that of the joint loss mean_T L_s(theta): FOMAML with no inner step and query = support.
    """
    return float(epsilon * alpha), maml.fomaml_grad(theta, TaskBatch(xs, ys, xs, ys), 0.0, 0)


def _questions():
    th, xs, ys, xq, yq = sine(50, 3, 5)
    th2, xs2, ys2, xq2, yq2 = sine(51, 4, 10, (1, 16, 1))
    return [
        Question("q11", ASSIGNMENT, "reptile_update", "Reptile: theta + epsilon (mean theta' - theta)", forbids=INNER_LOOP + ("mlcourse.reptile.reptile_update", "mlcourse.reptile.reptile_direction", "mlcourse.reptile.reptile_pseudo_grad", "mlcourse.fastpath.reptile_direction"),
                 hint="Adapt each task with inner_steps calls of inner_update, average the adapted parameters leaf "
                      "by leaf over the tasks, and move theta a fraction epsilon of the way toward that average.", tests=(
            Test("3 tasks, 1 step, epsilon = 0.1", ((th, xs, ys, 0.01, 1, 0.1),), by_reference(ref_reptile_update)),
            Test("4 tasks, 5 steps, epsilon = 0.5", ((th2, xs2, ys2, 0.02, 5, 0.5),),
                 by_reference(ref_reptile_update)),
            Test("epsilon = 1 jumps to the mean theta' (hidden)", ((th2, xs2, ys2, 0.05, 2, 1.0),),
                 by_reference(ref_reptile_update), hidden=True),
        )),
        Question("q12", ASSIGNMENT, "adaptation_curve", "Meta-test: query loss after 0, 1, 10 steps", forbids=INNER_LOOP + ("mlcourse.maml.query_losses", "mlcourse.metasgd.query_losses", "mlcourse.anil.query_losses"),
                 hint="Per task keep theta' and the number of steps taken so far; for each count s in steps take "
                      "s - done more steps, record the query MSE in row j, and set done = s.", tests=(
            Test("steps (0, 1, 10)", ((th, xs, ys, xq, yq, 0.01, [0, 1, 10]),), by_reference(ref_adaptation_curve)),
            Test("steps (0, 2, 5)", ((th2, xs2, ys2, xq2, yq2, 0.05, [0, 2, 5]),),
                 by_reference(ref_adaptation_curve)),
            Test("steps (1, 3) (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.02, [1, 3]),),
                 by_reference(ref_adaptation_curve), hidden=True),
        )),
        Question("q25", ASSIGNMENT, "reptile_as_gradient_step", "One-step Reptile as a gradient step: which loss, which rate",
                 forbids=INNER_LOOP + ("mlcourse.reptile.reptile_update", "mlcourse.reptile.reptile_direction",
                                       "mlcourse.reptile.reptile_pseudo_grad", "mlcourse.fastpath.reptile_direction",
                                       "mlcourse.baseline.pretrain_value_and_grad", "mlcourse.maml.fomaml_grad",
                                       "mlcourse.maml.fomaml_value_and_grad",
                                       "mlcourse.fastpath.fomaml_value_and_grad"),
                 hint="Write theta'_T - theta for one inner step, average over the tasks, and multiply by epsilon: the "
                      "update is theta minus a number times a gradient. Which loss has that gradient at theta? No "
                      "task is adapted in it.",
                 spoilers=("epsilon * alpha", "epsilon alpha", "joint loss", "joint training", "joint-training", "mean_t l_s(theta)",
                           "pretrain"), tests=(
            Test("3 tasks, alpha = 0.01, epsilon = 0.1", ((th, xs, ys, 0.01, 0.1),),
                 by_reference(ref_reptile_as_gradient_step)),
            Test("4 tasks, alpha = 0.05, epsilon = 0.5", ((th2, xs2, ys2, 0.05, 0.5),),
                 by_reference(ref_reptile_as_gradient_step)),
            Test("epsilon = 1 (hidden)", ((th2, xs2, ys2, 0.02, 1.0),), by_reference(ref_reptile_as_gradient_step),
                 hidden=True),
        )),
    ]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
