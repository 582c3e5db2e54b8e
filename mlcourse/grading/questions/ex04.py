"""ex04, full MAML vs first-order MAML: q8 inner_update, q9 maml_loss, q10 fomaml_grad."""
from __future__ import annotations

from ... import maml
from ...tasks import TaskBatch
from ..spec import Question, Test, by_reference
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


def questions():
    th, xs, ys, xq, yq = sine(50, 3, 5)
    th2, xs2, ys2, xq2, yq2 = sine(51, 4, 10, (1, 16, 1))
    return [
        Question("q8", ASSIGNMENT, "inner_update", "inner_update: one SGD step on one task's support set", (
            Test("1-8-8-1 MLP, 5 points", ((th, xs[0], ys[0], 0.01),), by_reference(ref_inner_update)),
            Test("1-16-1 MLP, alpha = 0.1", ((th2, xs2[1], ys2[1], 0.1),), by_reference(ref_inner_update)),
            Test("alpha = 0 leaves theta unchanged (hidden)", ((th, xs[2], ys[2], 0.0),),
                 by_reference(ref_inner_update), hidden=True),
        )),
        Question("q9", ASSIGNMENT, "maml_loss", "maml_loss: mean query loss after adaptation", (
            Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_maml_loss)),
            Test("4 tasks, 3 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 3),), by_reference(ref_maml_loss)),
            Test("0 steps is the query loss at theta (hidden)", ((th, xs, ys, xq, yq, 0.01, 0),),
                 by_reference(ref_maml_loss), hidden=True),
        )),
        Question("q10", ASSIGNMENT, "fomaml_grad", "First-order MAML: grad L_q at theta', averaged over tasks", (
            Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_fomaml_grad)),
            Test("4 tasks, 2 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 2),), by_reference(ref_fomaml_grad)),
            Test("4 tasks, alpha = 0.1 (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.1, 1),),
                 by_reference(ref_fomaml_grad), hidden=True),
        )),
    ]
