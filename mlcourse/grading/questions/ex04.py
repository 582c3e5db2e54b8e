"""ex04, full MAML vs first-order MAML: q8 inner_update, q9 maml_loss, q10 fomaml_grad, q23 the meta-gradient
through the learner's own maml_loss, q24 MAML - FOMAML as a Hessian-vector product."""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad as ag_grad

from ... import checks, maml, nets, tree
from ...tasks import TaskBatch
from ..blocking import INNER_LOOP
from ..spec import Question, Test, by_reference
from ._common_mistakes import attach
from ._inputs import sine

ASSIGNMENT = "ex04"
TITLE = "Full MAML vs first-order MAML"


def _strip_task_axis(theta_tasks):
    return [(W[0], b[0]) for W, b in theta_tasks]


def ref_inner_update(theta, xs, ys, alpha):
    return _strip_task_axis(maml.adapt(theta, xs[None], ys[None], alpha, 1))


def ref_maml_loss(theta, xs, ys, xq, yq, alpha, inner_steps):
    return maml.maml_loss(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)


def ref_fomaml_grad(theta, xs, ys, xq, yq, alpha, inner_steps):
    return maml.fomaml_grad(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)


def _questions():
    th, xs, ys, xq, yq = sine(50, 3, 5)
    th2, xs2, ys2, xq2, yq2 = sine(51, 4, 10, (1, 16, 1))
    return [
        Question("q8", ASSIGNMENT, "inner_update", "inner_update: one SGD step on one task's support set", forbids=INNER_LOOP,
                 hint="grad(lambda p: nets.mse(nets.mlp_apply(p, x_support), y_support))(theta) is the support "
                      "gradient, a list of (gW, gb) shaped like theta; step every W and b against it.", tests=(
            Test("1-8-8-1 MLP, 5 points", ((th, xs[0], ys[0], 0.01),), by_reference(ref_inner_update)),
            Test("1-16-1 MLP, alpha = 0.1", ((th2, xs2[1], ys2[1], 0.1),), by_reference(ref_inner_update)),
            Test("alpha = 0 leaves theta unchanged (hidden)", ((th, xs[2], ys[2], 0.0),),
                 by_reference(ref_inner_update), hidden=True),
        )),
        Question("q9", ASSIGNMENT, "maml_loss", "maml_loss: mean query loss after adaptation", forbids=INNER_LOOP + ("mlcourse.maml.maml_loss", "mlcourse.maml._maml_loss_autograd", "mlcourse.maml.multistep_loss", "mlcourse.maml.query_losses", "mlcourse.maml.maml_value_and_grad", "mlcourse.fastpath.maml_value_and_grad", "mlcourse.fastpath.multistep_value_and_grad"),
                 hint="Loop over the tasks (zip the four arrays); for each, start from theta, call inner_update "
                      "inner_steps times, and append the query MSE of the adapted parameters to a list. Return the "
                      "mean of the list.", tests=(
            Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_maml_loss)),
            Test("4 tasks, 3 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 3),), by_reference(ref_maml_loss)),
            Test("0 steps is the query loss at theta (hidden)", ((th, xs, ys, xq, yq, 0.01, 0),),
                 by_reference(ref_maml_loss), hidden=True),
        )),
        Question("q10", ASSIGNMENT, "fomaml_grad", "First-order MAML: the inner gradient's dependence on theta dropped", forbids=INNER_LOOP + ("mlcourse.maml.fomaml_grad", "mlcourse.maml.fomaml_value_and_grad", "mlcourse.fastpath.fomaml_value_and_grad"),
                 hint="Adapt each task as in maml_loss, then take grad of the query loss with respect to the adapted "
                      "parameters themselves (a function of theta'), not with respect to theta. Average the per-task "
                      "gradients leaf by leaf.", tests=(
            Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_fomaml_grad)),
            Test("4 tasks, 2 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 2),), by_reference(ref_fomaml_grad)),
            Test("4 tasks, alpha = 0.1 (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.1, 1),),
                 by_reference(ref_fomaml_grad), hidden=True),
        )),
        Question("q23", ASSIGNMENT, "maml_meta_gradient", "The exact meta-gradient: autograd through your maml_loss",
                 forbids=INNER_LOOP + META_GRADIENTS,
                 hint="One line: autograd's grad of your maml_loss with respect to its first argument, called on all "
                      "the arguments. If it comes out as FOMAML's direction, a step of maml_loss left autograd.", tests=(
            Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_maml_meta_gradient)),
            Test("4 tasks, 2 steps, alpha = 0.1", ((th2, xs2, ys2, xq2, yq2, 0.1, 2),),
                 by_reference(ref_maml_meta_gradient)),
            Test("4 tasks, 3 steps (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.05, 3),), by_reference(ref_maml_meta_gradient),
                 hidden=True),
        )),
        Question("q24", ASSIGNMENT, "maml_minus_fomaml", "MAML - FOMAML = -alpha H_s grad L_q(theta') by a Hessian-vector "
                 "product", forbids=INNER_LOOP + META_GRADIENTS + (
                     "mlcourse.checks.hessian_vector_product", "mlcourse.checks.support_hvp",
                     "mlcourse.checks.check_maml_vs_fomaml_hvp", "mlcourse.checks.finite_difference_hvp",
                     "mlcourse.fastpath.hvp"),
                 hint="Per task: v = grad of the query loss at theta' (a constant from here on); then H_s v is the "
                      "grad at theta of p -> sum of (grad L_s(p) * v) over the leaves. Scale by -alpha and average "
                      "over tasks.", tests=(
            Test("3 tasks, alpha = 0.1", ((th, xs, ys, xq, yq, 0.1),), by_reference(ref_maml_minus_fomaml)),
            Test("4 tasks, alpha = 0.3", ((th2, xs2, ys2, xq2, yq2, 0.3),), by_reference(ref_maml_minus_fomaml)),
            Test("alpha = 1e-18: the term itself, not a difference of two meta-gradients",
                 ((th, xs, ys, xq, yq, 1e-18),), by_reference(ref_maml_minus_fomaml)),
            Test("alpha = 0: no correction (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.0),),
                 by_reference(ref_maml_minus_fomaml), hidden=True),
        )),
    ]


def ref_maml_meta_gradient(theta, xs, ys, xq, yq, alpha, inner_steps):
    return maml.maml_grad(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)


def ref_maml_minus_fomaml(theta, xs, ys, xq, yq, alpha):
    """One inner step: MAML - FOMAML = -alpha mean_T H_s(theta) grad L_q(theta'_T), by Hessian-vector products.

    Computed as the term itself (never as a difference of the two meta-gradients, which keeps only rounding
    error when alpha is small); tests/test_grading.py checks it against that difference at moderate alpha.
    """
    batch = TaskBatch(xs, ys, xq, yq)
    T = batch.num_tasks
    theta_prime = maml.adapt(theta, xs, ys, alpha, 1)
    gq = ag_grad(lambda p: anp.sum(nets.mse(nets.mlp_apply(p, xq), yq)))(tree.tree_map(np.asarray, theta_prime))
    Hv = checks.support_hvp(tree.tile_tasks(theta, T), batch, gq)
    return tree.scale(-alpha, tree.tree_map(lambda a: np.mean(a, axis=0), Hv))


# the engine's meta-gradients (and their fast paths), which q23 and q24 ask the learner to compute
META_GRADIENTS = ("mlcourse.maml.maml_loss", "mlcourse.maml._maml_loss_autograd", "mlcourse.maml.maml_value_and_grad",
                  "mlcourse.maml.maml_grad", "mlcourse.maml.multistep_value_and_grad", "mlcourse.maml.fomaml_grad",
                  "mlcourse.maml.fomaml_value_and_grad", "mlcourse.fastpath.maml_value_and_grad",
                  "mlcourse.fastpath.multistep_value_and_grad", "mlcourse.fastpath.fomaml_value_and_grad")


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
