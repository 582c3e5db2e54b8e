"""The lesson's common mistakes for every question of ex01-ex10, as wrong answers the engine computes.

``MISTAKES[qid]`` lists, for one question, the mistakes a learner's answer is compared with when
it fails (``mistakes.naming``): each computes, from the test's own inputs, what a function with
that mistake returns (the inner step's sign flipped, FOMAML where MAML was asked, a sum where a
mean was asked, support and query swapped, ...), and says in the course's words what went wrong,
never the right answer.  ``attach(questions)`` wraps every test of those questions.

The catalogue's format (a new assignment's questions follow it): one tuple per question, named after
it (``Q13 = (...)``), of at least three ``Mistake``s made with ``_m((name, says), answer=...)`` or
``_m((name, says), matches=...)``; ``answer(*inputs)`` takes a test's inputs in the order of the
function's arguments and returns what a function with that mistake returns; ``matches(value, inputs)``
recognises a value by its properties, with ``example(*inputs)`` (a value showing the mistake, for the
tests) when it has no ``answer``.  ``says`` explains, in the course's words, what went wrong and why,
never the right formula; a mistake shared by several questions is one (name, says) constant here
(SIGN, SUM_TASKS, ...), so that it reads the same everywhere; a question built on an earlier answer adds
``_via(Q5, "q5", build)`` ("a mistake of q5 carried over").  Register the tuple in ``MISTAKES`` and
end the question file with ``return attach(_questions())``.
"""
from __future__ import annotations

import dataclasses
import functools

import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad
from autograd import grad as ag_grad
from autograd.tracer import getval

from ... import build_maml, build_protonet, checks, conv, maml, nets, protonet, taskpool, tasks, train, tree
from ...rl import policy_gradient
from ...tasks import TaskBatch
from ..matching import close
from ..mistakes import Mistake, naming

__all__ = ["MISTAKES", "attach", "whole_run"]


def attach(questions):
    """The questions, each test's judge naming the mistakes of MISTAKES[question id] (others unchanged).

    A test judged by ``whole_run`` keeps its judge: its inputs are a whole training run, and each mistake would
    be a whole run of its own in the grader; the short runs of the same question name the mistakes.
    """
    out = []
    for q in questions:
        ms = MISTAKES.get(q.id, ())
        if ms:
            q = dataclasses.replace(q, tests=tuple(
                t if getattr(t.judge, "whole_run", False) else dataclasses.replace(t, judge=naming(t.judge, *ms))
                for t in q.tests))
        out.append(q)
    return out


def whole_run(judge):
    """Mark a judge that scores a whole training run (a target reached): ``attach`` names no mistake on it."""
    judge.whole_run = True
    return judge


# ---- shared pieces ----------------------------------------------------------------------------------

def _steps(theta, xs, ys, alpha, steps, model=nets.mlp_apply):
    """Per-task theta' after `steps` SGD steps of size alpha (any sign: a mistake may climb the loss)."""
    th = tree.tile_tasks(theta, np.shape(xs)[0])
    for _ in range(int(steps)):
        th = maml.inner_update(th, xs, ys, alpha, model)
    return th


def _query(theta_prime, xq, yq, model=nets.mlp_apply):
    """Mean over tasks of the query MSE at per-task parameters."""
    return np.mean(nets.mse(model(theta_prime, xq), yq))


def _batch(xs, ys, xq, yq):
    return tasks.batch_from_arrays(xs, ys, xq, yq)


def _mlp_batch(xs, ys, xq, yq):
    return TaskBatch(xs, ys, xq, yq)


SIGN = ("the inner step's sign", "theta' = theta - alpha grad L_s(theta) steps *down* the support loss; "
        "adding the gradient climbs it.")
AT_THETA = ("query loss at theta", "Evaluating the query loss at theta instead of theta'. That trains an ordinary "
            "model on query data, and no adaptation is learned: take the inner step first.")
QUERY_IN_INNER = ("adapting on the query set", "Leaking the query set into adaptation. The inner loop may only see "
                  "D_s; the query set only scores the adapted parameters.")
SWAPPED = ("support and query swapped", "Adapt on D_s (x_support, y_support) and score on D_q (x_query, y_query), "
           "not the other way round.")
SUM_TASKS = ("a sum over tasks where the mean is meant", "The expectation over tasks is estimated by the *mean* "
             "over the tasks given, not their sum (a sum changes the scale with the number of tasks).")
SUM_SUPPORT = ("a sum over the support points where the mean is meant", "L_s is the *mean* squared error over "
               "the support points, as nets.mse computes it: a sum makes the step K times larger.")


def _m(words, answer=None, matches=None, example=None):
    return Mistake(words[0], words[1], answer=answer, matches=matches, example=example)


def _via(earlier, qid, build):
    """A Mistake: the value is what the right computation gives on top of one of `earlier`'s mistaken answers.

    For a question that builds on the learner's answer to an earlier one (q6 on linear_c, q15 on prototypes, q22 on
    returns_to_go): build(inputs, wrong_fn) -> the value with the earlier function replaced by wrong_fn.
    """
    def matches(value, inputs):
        for m in earlier:
            if m.answer is None:
                continue
            try:
                if close(value, build(inputs, m.answer), rtol=1e-4)[0] >= 1.0:
                    return True
            except Exception:
                continue
        return False
    return Mistake(f"a mistake of {qid} carried over",
                   f"This function builds on your answer to {qid}, and that answer looks like one of {qid}'s common "
                   f"mistakes: run check('{qid}') and fix it first.", matches=matches,
                   example=lambda *inputs: build(inputs, earlier[-1].answer))


# ---- q1 sample_episode (judged by properties: the mistakes are properties too) -------------------------

def _episode(value):
    if not isinstance(value, (list, tuple)) or len(value) != 5:
        return None
    try:
        return [np.asarray(v) for v in value]
    except Exception:
        return None


def _not_relabelled(value, inputs):
    _, classes, n_way, k_shot, k_query = inputs
    ep = _episode(value)
    if ep is None:
        return False
    xs, ys, xq, yq, chosen = ep
    return (ys.shape == (n_way * k_shot,) and chosen.shape == (n_way,)
            and not np.array_equal(np.asarray(chosen), np.arange(n_way))
            and (np.array_equal(ys, np.repeat(chosen, k_shot)) or set(ys.tolist()) <= set(chosen.tolist()))
            and not set(ys.tolist()) <= set(range(n_way)))


def _shared_examples(value, inputs):
    _, classes, n_way, k_shot, k_query = inputs
    ep = _episode(value)
    if ep is None:
        return False
    xs, _, xq, _, _ = ep
    if xs.ndim < 1 or xq.ndim < 1 or len(xs) == 0 or len(xq) == 0:
        return False
    s = [tuple(np.ravel(r).tolist()) for r in xs]
    q = [tuple(np.ravel(r).tolist()) for r in xq]
    return len(set(s)) < len(s) or len(set(q)) < len(q) or bool(set(s) & set(q))


def _k_is_support_size(value, inputs):
    _, classes, n_way, k_shot, k_query = inputs
    ep = _episode(value)
    if ep is None or n_way == 1:
        return False
    xs, ys, xq, yq, _ = ep
    return xs.ndim >= 1 and (len(xs) == k_shot or len(xq) == k_query)


Q1 = (
    _m(("labels read globally", "Reading labels globally. Episode labels are 0 ... N-1 in the order the classes "
        "were drawn: relabel each episode's classes, so that a model cannot memorise 'label 3 = some character'."),
       matches=_not_relabelled),
    _m(("support and query share examples", "Support and query never share an example (and no example is drawn "
        "twice): take K + Q *distinct* examples of each class and split them, so that the query set scores the "
        "adapted model on examples it has not seen."), matches=_shared_examples),
    _m(("K confused with the support size", "Confusing K with the support size. K-shot is per class, so an N-way "
        "K-shot support set holds N*K examples (and the query set N*Q)."), matches=_k_is_support_size),
)


# ---- ex02: q2 meta_objective, q3 dtheta_prime_dtheta, q4 meta_gradient_1d -----------------------------

def _lin_loss(theta, xs, ys, xq, yq, alpha, model=nets.linear_apply):
    b = _batch(xs, ys, xq, yq)
    return float(_query(_steps(np.float64(theta), b.x_support, b.y_support, alpha, 1, model),
                        b.x_query, b.y_query, model))


Q2 = (
    _m(AT_THETA, lambda th, xs, ys, xq, yq, al: _lin_loss(th, xs, ys, xq, yq, 0.0)),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, al: _lin_loss(th, xq, yq, xq, yq, al)),
    _m(SWAPPED, lambda th, xs, ys, xq, yq, al: _lin_loss(th, xq, yq, xs, ys, al)),
    _m(SIGN, lambda th, xs, ys, xq, yq, al: _lin_loss(th, xs, ys, xq, yq, -al)),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, al: len(xs) * _lin_loss(th, xs, ys, xq, yq, al)),
)


def _hessian(loss, theta):
    hvp = checks.hessian_vector_product(loss)
    d = np.size(theta)
    return np.stack([hvp(np.asarray(theta, float), e) for e in np.eye(d)], axis=1)


Q3 = (
    _m(("the sign of the Hessian term", "Differentiate theta - alpha grad L_s(theta) term by term and keep the sign "
        "that stands in front of the gradient term."),
       lambda loss, th, al: np.eye(np.size(th)) + al * _hessian(loss, th)),
    _m(("the identity forgotten", "theta' contains theta itself, whose derivative contributes too: the second "
        "derivatives are only what the inner gradient's dependence on theta adds."),
       lambda loss, th, al: -al * _hessian(loss, th)),
    _m(("FOMAML's approximation", "That is FOMAML's d theta'/d theta ~ I: it drops the dependence of the inner "
        "gradient on theta (a stop-gradient). The question asks for the exact Jacobian, where the Hessian appears."),
       lambda loss, th, al: np.eye(np.size(th))),
)


def _sine_chain(theta, xs, ys, xq, yq, alpha, steps, grad_at="end", curvature="each", sign=1.0, loss="support"):
    """Worked example 1's chain rule for f(x) = sin(theta x) and m steps, with one piece done the mistaken way.

    grad_at: "end" (L_q' at theta^(m)) or "start" (at theta); curvature: "each" (L'' at theta^(0..m-1)), "next"
    (at theta^(1..m)), "first" (at theta only, once), "first_each" (at theta, m times) or "none"; loss: whose L''.
    """
    Ls, Lq = checks.scalar_losses(_batch(xs[None], ys[None], xq[None], yq[None]))
    d1s = elementwise_grad(Ls)
    d2 = elementwise_grad(elementwise_grad(Ls if loss == "support" else Lq))
    d1q = elementwise_grad(Lq)
    path = [np.array([float(theta)])]
    for _ in range(int(steps)):
        path.append(path[-1] - sign * alpha * d1s(path[-1]))
    points = {"each": path[:-1], "next": path[1:], "first": path[:1], "first_each": path[:1] * int(steps),
              "none": []}[curvature]
    factor = 1.0
    if points:   # every curvature in one call, multiplied in order
        for c in d2(np.concatenate(points)):
            factor = factor * (1.0 - alpha * float(c))
    return float(d1q(path[-1] if grad_at == "end" else path[0])[0]) * factor


def _q4(**how):
    return lambda th, xs, ys, xq, yq, al, m=1: _sine_chain(th, xs, ys, xq, yq, al, m, **how)


Q4 = (
    _m(("FOMAML's direction (the inner gradient detached)", "That is FOMAML's L_q'(theta') alone: a stop-gradient "
        "on the inner gradient L_s' (theta' - theta treated as a constant) drops what the inner gradient's "
        "dependence on theta contributes at each step. The question asks for the exact meta-gradient."),
       _q4(curvature="none")),
    _m(("the curvature at the wrong point", "Taking the curvature at the wrong point: each step's factor belongs to "
        "the point that step *started* from, not to the point it reached."),
       _q4(curvature="next")),
    _m(("the curvature only at theta", "For m steps the curvature changes along the inner trajectory: each step's "
        "factor has its own point, not the starting theta for all of them."), _q4(curvature="first_each")),
    _m(("one factor for several steps", "Every inner step contributes its own factor: the chain rule through m "
        "steps multiplies m of them, not one for all."), _q4(curvature="first")),
    _m(("the curvature of the wrong loss", "Taking the curvature of the wrong loss: the factors come from the "
        "*support* loss, the loss of the inner steps, not from the query loss."), _q4(loss="query")),
    _m(AT_THETA, _q4(grad_at="start")),
    _m(SIGN, _q4(sign=-1.0)),
)


# ---- ex03: q5 linear_c, q6 linear_inner_step, q7 best_initialisation ----------------------------------

def _x2(x):
    return np.mean(np.asarray(x, float) ** 2, axis=1)


Q5 = (
    _m(("the factor 2 lost", "d/dtheta (theta - a)^2 x^2 brings down a factor 2: keep it in c."),
       lambda al, xs: al * _x2(xs)),
    _m(SUM_SUPPORT[:1] + ("L_s is the *mean* squared error over the K support points: c comes from the mean over "
                          "the support set, not the sum.",),
       lambda al, xs: 2 * al * np.sum(np.asarray(xs) ** 2, axis=1)),
    _m(("squared the mean of x", "Every point contributes its own x_i^2 to the gradient: average the squares, "
        "do not square the average."), lambda al, xs: 2 * al * np.mean(np.asarray(xs), axis=1) ** 2),
)


def _step(th, al, xs, a, sign=1.0):
    c = 2 * al * _x2(xs)
    return th - sign * c * (th - np.asarray(a))


Q6 = (
    _m(SIGN, lambda th, al, xs, a: _step(th, al, xs, a, -1.0)),
    _m(("theta and a swapped", "With a small step (c near 0) theta' must stay near the starting theta and move "
        "toward the task's slope a, not the other way round."),
       lambda th, al, xs, a: (1 - 2 * al * _x2(xs)) * np.asarray(a) + 2 * al * _x2(xs) * th),
    _m(("the factor 2 lost", "d/dtheta (theta - a)^2 x^2 brings down a factor 2: keep it in c."),
       lambda th, al, xs, a: _step(th, al, xs, a) + al * _x2(xs) * (th - np.asarray(a))),
    _via(Q5, "q5", lambda inputs, c_fn: (lambda th, al, xs, a: th - c_fn(al, xs) * (th - np.asarray(a)))(*inputs)),
)


def _weighted(weights, a):
    w = np.asarray(weights, float)
    return float(np.sum(w * np.asarray(a)) / np.sum(w))


Q7 = (
    _m(("meta-learning is not averaging", "\"Meta-learning = the best model for the average task.\" theta* is the "
        "best *starting point* for one step: a task's error after its step depends on its own c and query inputs, "
        "so the tasks do not count equally. Minimise the query loss after the step, not before it."),
       lambda al, xs, xq, a: float(np.mean(a))),
    _m(("the factor not squared", "The error after the step is theta' - a = (1 - c)(theta - a): the squared error "
        "squares this factor too."),
       lambda al, xs, xq, a: _weighted((1 - 2 * al * _x2(xs)) * _x2(xq), a)),
    _m(SWAPPED[:1] + ("c comes from the support points (the inner step sees D_s) and the error is measured on the "
                      "query points: swapping them weighs the tasks wrongly.",),
       lambda al, xs, xq, a: _weighted((1 - 2 * al * _x2(xq)) ** 2 * _x2(xs), a)),
    _m(("the query inputs left out", "The query loss after the step depends on the task's *query* inputs too: a "
        "task whose query inputs are larger weighs more."),
       lambda al, xs, xq, a: _weighted((1 - 2 * al * _x2(xs)) ** 2, a)),
)


# ---- ex04: q8 inner_update, q9 maml_loss, q10 fomaml_grad, q23 maml_meta_gradient, q24 maml_minus_fomaml ----

def _one(theta_tasks):
    return [(W[0], b[0]) for W, b in theta_tasks]


Q8 = (
    _m(SIGN, lambda th, xs, ys, al: _one(_steps(th, xs[None], ys[None], -al, 1))),
    _m(SUM_SUPPORT, lambda th, xs, ys, al: _one(_steps(th, xs[None], ys[None], al * len(xs), 1))),
    _m(("returned the gradient", "inner_update returns the adapted parameters theta', not the gradient."),
       lambda th, xs, ys, al: [tuple(p) for p in ag_grad(lambda p: nets.mse(nets.mlp_apply(p, xs), ys))(th)]),
)


def _mloss(th, xs, ys, xq, yq, al, m, sign=1.0):
    return float(_query(_steps(th, xs, ys, sign * al, m), xq, yq))


def _adapted(update, th, xs, ys, al, m):
    """theta' of each task after m calls of update(theta, x_support, y_support, alpha) (a learner's inner_update)."""
    out = []
    for x, y in zip(xs, ys):
        p = th
        for _ in range(int(m)):
            p = update(p, x, y, al)
        out.append(p)
    return out


def _loss_with(update):
    return lambda th, xs, ys, xq, yq, al, m: float(np.mean([nets.mse(nets.mlp_apply(p, q), r) for p, q, r in
                                                            zip(_adapted(update, th, xs, ys, al, m), xq, yq)]))


def _fomaml_with(update):
    def fo(th, xs, ys, xq, yq, al, m):
        gs = [ag_grad(lambda p: nets.mse(nets.mlp_apply(p, q), r))([tuple(map(np.asarray, l)) for l in p])
              for p, q, r in zip(_adapted(update, th, xs, ys, al, m), xq, yq)]
        return [tuple(np.mean([g[i][j] for g in gs], axis=0) for j in range(2)) for i in range(len(th))]
    return fo


Q9 = (
    _m(AT_THETA, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq, al, 0)),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xq, yq, xq, yq, al, m)),
    _m(SWAPPED, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xq, yq, xs, ys, al, m)),
    _m(SIGN, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq, al, m, -1.0)),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, al, m: len(xs) * _mloss(th, xs, ys, xq, yq, al, m)),
    _m(("only one inner step", "Each of the inner_steps steps starts from the previous theta': loop over the "
        "steps, feeding theta' back into inner_update."), lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq,
                                                                                                  al, min(m, 1))),
    _via(Q8, "q8", lambda inputs, update: _loss_with(update)(*inputs)),
)


def _fo(th, xs, ys, xq, yq, al, m):
    return maml.fomaml_grad(th, _mlp_batch(xs, ys, xq, yq), al, m)


def _exact(th, xs, ys, xq, yq, al, m):
    return maml.maml_grad(th, _mlp_batch(xs, ys, xq, yq), al, m)


def _signed_meta_grad(th, xs, ys, xq, yq, al, m):
    return ag_grad(lambda p: _query(_steps(p, xs, ys, -al, m), xq, yq))(th)


def _fo_signed(th, xs, ys, xq, yq, al, m):
    theta_prime = _steps(th, xs, ys, -al, m)
    g = ag_grad(lambda tp: np.sum(nets.mse(nets.mlp_apply(tp, xq), yq)))(tree.tree_map(np.asarray, theta_prime))
    return tree.scale(1.0 / len(xs), tree.tree_map(lambda a: np.sum(a, axis=0), g))


Q10 = (
    _m(("MAML where FOMAML was asked", "That is the exact meta-gradient, differentiated through the inner step. "
        "FOMAML stops the gradient at the inner gradient (its dependence on theta is dropped), so no second "
        "derivative appears."), _exact),
    _m(AT_THETA[:1] + ("The first-order direction is the query gradient at the *adapted* theta', not at theta.",),
       lambda th, xs, ys, xq, yq, al, m: _fo(th, xs, ys, xq, yq, al, 0)),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, al, m: tree.scale(len(xs), _fo(th, xs, ys, xq, yq, al, m))),
    _m(SIGN, _fo_signed),
    _via(Q8, "q8", lambda inputs, update: _fomaml_with(update)(*inputs)),
)

DETACHED = ("a detached inner gradient (FOMAML)", "A detached (stop-gradient-ed) inner gradient makes theta' - theta "
            "a constant for autograd, which silently turns the MAML meta-gradient into FOMAML's direction. Converting "
            "to plain NumPy, float(), np.array of autograd values ... detaches it: keep every operation of maml_loss "
            "in autograd.numpy.")

Q23 = (
    _m(DETACHED, _fo),
    _m(AT_THETA, lambda th, xs, ys, xq, yq, al, m: _exact(th, xs, ys, xq, yq, al, 0)),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, al, m: tree.scale(len(xs), _exact(th, xs, ys, xq, yq, al, m))),
    _m(SIGN, _signed_meta_grad),
)


def _hvp_term(th, xs, ys, xq, yq, al, at_prime=False, hessian_of_query=False):
    """-alpha mean_T H v_T with v_T = grad L_q(theta'_T), H of the chosen loss at the chosen point."""
    T = len(xs)
    theta_prime = _steps(th, xs, ys, al, 1)
    v = ag_grad(lambda tp: np.sum(nets.mse(nets.mlp_apply(tp, xq), yq)))(tree.tree_map(np.asarray, theta_prime))
    point = theta_prime if at_prime else tree.tile_tasks(th, T)
    b = _mlp_batch(xq, yq, xq, yq) if hessian_of_query else _mlp_batch(xs, ys, xq, yq)
    Hv = checks.support_hvp(point, b, v)
    return tree.scale(-al, tree.tree_map(lambda a: np.mean(a, axis=0), Hv))


def _rounding_level(value, theta):
    """value shaped like theta with every entry at the level of float64 rounding (what q23 - q10 gives for tiny alpha)."""
    leaves = [np.asarray(a, float) for pair in value for a in pair]
    return (len(leaves) == 2 * len(theta) and all(a.shape == np.shape(t) for a, t in
                                                  zip(leaves, [t for pair in theta for t in pair]))
            and max(float(np.max(np.abs(a), initial=0.0)) for a in leaves) < 1e-12)


Q24 = (
    _m(("the sign of the correction", "MAML = (I - alpha H_s) grad L_q(theta'), so MAML - FOMAML = -alpha H_s "
        "grad L_q(theta'): the correction enters with a minus sign."),
       lambda *a: tree.scale(-1.0, _hvp_term(*a))),
    _m(("the Hessian at the wrong point", "The Hessian is that of the support loss at the *pre-update* theta "
        "(d theta'/d theta = I - alpha H_s(theta)), while the vector is grad L_q at theta'."),
       lambda *a: _hvp_term(*a, at_prime=True)),
    _m(("the Hessian of the wrong loss", "The Hessian comes from the support loss, the loss of the inner step; the "
        "query loss only gives the vector it multiplies."), lambda *a: _hvp_term(*a, hessian_of_query=True)),
    _m(SUM_TASKS, lambda *a: tree.scale(len(a[1]), _hvp_term(*a))),
    _m(("two meta-gradients subtracted", "Subtracting the two meta-gradients (q23 - q10) is what the question rules "
        "out: with a small alpha they are nearly equal, and their difference keeps only rounding error. Compute "
        "the correction term itself, with Hessian-vector products."),
       matches=lambda value, inputs: float(inputs[5]) < 1e-6 and _rounding_level(value, inputs[0]),
       example=lambda th, xs, ys, xq, yq, al: tree.sub(_exact(th, xs, ys, xq, yq, al, 1), _fo(th, xs, ys, xq, yq, al, 1))),
)


# ---- ex05: q11 reptile_update, q12 adaptation_curve, q25 reptile_as_gradient_step ----------------------

def _rep(th, xs, ys, al, m, eps, scale_dir=1.0, sign=1.0):
    d = tree.sub(tree.task_mean(_steps(th, xs, ys, sign * al, m)), th)
    return tree.add(th, tree.scale(eps * scale_dir, d))


Q11 = (
    _m(("moved away from theta'", "Reptile moves theta *toward* the adapted parameters: theta + epsilon (mean "
        "theta' - theta), not theta - epsilon (...)."),
       lambda th, xs, ys, al, m, eps: _rep(th, xs, ys, al, m, eps, -1.0)),
    _m(("epsilon forgotten", "The interpolation step epsilon decides how far theta moves toward the mean theta'; "
        "without it theta jumps all the way (epsilon = 1)."),
       lambda th, xs, ys, al, m, eps: _rep(th, xs, ys, al, m, 1.0)),
    _m(SUM_TASKS, lambda th, xs, ys, al, m, eps: _rep(th, xs, ys, al, m, eps, float(len(xs)))),
    _m(SIGN, lambda th, xs, ys, al, m, eps: _rep(th, xs, ys, al, m, eps, sign=-1.0)),
)


def _curve(th, xs, ys, xq, yq, al, steps):
    return maml.query_losses(th, _mlp_batch(xs, ys, xq, yq), al, tuple(int(s) for s in steps))


Q12 = (
    _m(("scored on the support set", "The meta-test curve scores the adapted model on the *query* set: the support "
        "loss keeps falling with more steps even where the query loss does not."),
       lambda th, xs, ys, xq, yq, al, steps: _curve(th, xs, ys, xs, ys, al, steps)),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, al, steps: _curve(th, xq, yq, xq, yq, al, steps)),
    _m(("steps counted from the previous count", "steps lists the *total* number of steps for each point of the "
        "curve: advance from the previous count to the next one (s - done more steps), not by s more steps."),
       lambda th, xs, ys, xq, yq, al, steps: _curve(th, xs, ys, xq, yq, al, np.cumsum(steps))),
)


def _joint(th, xs, ys):
    """Gradient of the joint (multi-task) training loss mean_T L_s(theta): FOMAML with no step, support = query."""
    return maml.fomaml_grad(th, _mlp_batch(xs, ys, xs, ys), 0.0, 0)


Q25 = (
    _m(("the learning rate without alpha", "The learning rate leaves alpha out: theta'_T - theta is itself a step "
        "of size alpha, of which Reptile then moves a fraction."),
       lambda th, xs, ys, al, eps: (float(eps), _joint(th, xs, ys))),
    _m(("the learning rate without epsilon", "The learning rate leaves epsilon out: Reptile moves only a fraction "
        "epsilon of the way to the mean theta'."), lambda th, xs, ys, al, eps: (float(al), _joint(th, xs, ys))),
    _m(("the direction's sign", "A gradient step is theta - lr * g: the gradient points *up* its loss, and "
        "Reptile's move theta' - theta points down it."),
       lambda th, xs, ys, al, eps: (float(eps * al), tree.scale(-1.0, _joint(th, xs, ys)))),
    _m(SUM_TASKS, lambda th, xs, ys, al, eps: (float(eps * al), tree.scale(len(xs), _joint(th, xs, ys)))),
)

# ---- ex06: q13 prototypes, q14 protonet_logits, q15 protonet_loss, q16 conv3x3_same ---------------------

def _protos(zs, ys, n_way, how="mean"):
    zs, ys = np.asarray(zs, float), np.asarray(ys)
    if how == "sorted":   # rows assumed grouped by class, in label order
        return zs.reshape(n_way, -1, zs.shape[1]).mean(axis=1)
    if how == "all":
        return np.tile(zs.mean(axis=0), (n_way, 1))
    agg = np.sum if how == "sum" else np.mean
    return np.stack([agg(zs[ys == k], axis=0) for k in range(n_way)])


def _logits(zq, c, how="exact"):
    d = np.asarray(zq, float)[:, None, :] - np.asarray(c, float)[None, :, :]
    sq = (d ** 2).sum(axis=-1)
    return {"exact": -sq, "plus": sq, "unsquared": -np.sqrt(sq), "mean": -(d ** 2).mean(axis=-1),
            "dot": np.asarray(zq, float) @ np.asarray(c, float).T}[how]


def _ce(logits, yq, naive=False, reduce=np.mean, sign=1.0):
    if naive:
        with np.errstate(all="ignore"):
            p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            return float(-sign * reduce(np.log(p[np.arange(len(yq)), yq])))
    m = logits.max(axis=1, keepdims=True)
    log_p = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return float(-sign * reduce(log_p[np.arange(len(yq)), np.asarray(yq)]))


def _pn_loss(zs, ys, zq, yq, n_way, protos_from="support", logits="exact", **ce):
    c = _protos(zq, yq, n_way) if protos_from == "query" else _protos(zs, ys, n_way)
    return _ce(_logits(zq, c, logits), np.asarray(yq), **ce)


def _nonfinite(value, inputs):
    return not np.all(np.isfinite(np.asarray(value, dtype=float)))


PLUS = ("the minus sign missing on the logits", "The logit is *minus* the squared distance: the nearest prototype "
        "must get the largest logit, and without the minus the farthest one does.")
UNSQUARED = ("unsquared distances", "ProtoNets use the *squared* Euclidean distance (a Bregman divergence, which makes "
             "the classifier linear in the embedding); the plain distance is another model.")
FROM_QUERIES = ("prototypes from the queries", "Prototypes come from the *support* set only; the query set is what "
                "the episode's loss scores. Building them from the queries lets the answer leak into the classifier.")
SUM_QUERIES = ("a sum over queries where the mean is meant", "The episode's loss is the *mean* cross-entropy over its "
               "queries: a sum grows with the number of queries.")

Q13 = (
    _m(("rows assumed sorted by class", "The support rows come in any order: select each class's rows by their label "
        "(y_support == k), do not reshape them into blocks."), lambda zs, ys, n: _protos(zs, ys, n, "sorted")),
    _m(("a sum where the mean is meant", "A prototype is the *mean* of its class's support embeddings; a sum grows "
        "with K and moves the prototype away from the class."), lambda zs, ys, n: _protos(zs, ys, n, "sum")),
    _m(("one mean for all classes", "Each class has its own prototype, the mean over *its* support examples only, not "
        "over the whole support set."), lambda zs, ys, n: _protos(zs, ys, n, "all")),
)

Q14 = (
    _m(PLUS, lambda zq, c: _logits(zq, c, "plus")),
    _m(UNSQUARED, lambda zq, c: _logits(zq, c, "unsquared")),
    _m(("a mean over dimensions where the sum is meant", "The squared distance sums the squared differences over "
        "the d embedding dimensions; a mean divides it by d."), lambda zq, c: _logits(zq, c, "mean")),
    _m(("a dot product instead of a distance", "ProtoNet logits are minus squared distances, not dot products "
        "z . c_k (those ignore the prototypes' norms)."), lambda zq, c: _logits(zq, c, "dot")),
)

Q15 = (
    _m(FROM_QUERIES, lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, protos_from="query")),
    _m(("a naive softmax", "exp of logits in the thousands under- or overflows: compute log-softmax stably, subtracting "
        "each row's maximum before exp (log-sum-exp)."), matches=_nonfinite,
       example=lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, naive=True)),
    _m(PLUS, lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, logits="plus")),
    _m(UNSQUARED, lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, logits="unsquared")),
    _m(SUM_QUERIES, lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, reduce=np.sum)),
    _m(("the sign of the cross-entropy", "The loss is *minus* the mean log-probability of the true class: a loss to "
        "minimise is never negative."), lambda zs, ys, zq, yq, n: _pn_loss(zs, ys, zq, yq, n, sign=-1.0)),
    _via(Q13, "q13", lambda inputs, protos: (lambda zs, ys, zq, yq, n: _ce(_logits(zq, protos(zs, ys, n)),
                                                                          np.asarray(yq)))(*inputs)),
)


def _conv(x, W, flip=False, pad="zeros"):
    x, W = np.asarray(x, float), np.asarray(W, float)
    n, H, Wd, C = x.shape
    if flip:
        W = W[::-1, ::-1]
    if pad == "end":      # both padding rows and columns after the image: the output shifts by one pixel
        xp = np.pad(x, ((0, 0), (0, 2), (0, 2), (0, 0)))
    else:
        xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge" if pad == "edge" else "constant")
    return np.einsum("nhwabc,abco->nhwo",
                     np.stack([np.stack([xp[:, a:a + H, b:b + Wd] for b in range(3)], axis=3) for a in range(3)],
                              axis=3), W)


def _valid_shape(value, inputs):
    x, W = inputs
    n, H, Wd, _ = np.shape(x)
    return np.shape(value) == (n, H - 2, Wd - 2, np.shape(W)[3])


def _conv_valid(x, W):
    """The unpadded ('valid') output, or None for an image smaller than the kernel (no such output)."""
    return _conv(np.asarray(x), W)[:, 1:-1, 1:-1] if min(np.shape(x)[1:3]) > 2 else None


Q16 = (
    _m(("a flipped kernel", "Deep-learning 'convolutions' are cross-correlations: W[a, b] multiplies x_pad[i + a, j + b] "
        "as written. Flipping the kernel (the textbook convolution) gives another layer."),
       lambda x, W: _conv(x, W, flip=True)),
    _m(("padding on one side only", "'same' pads one row and one column of zeros on *every* side; all the padding on "
        "one side shifts the output by a pixel."), lambda x, W: _conv(x, W, pad="end")),
    _m(("the edge repeated instead of zeros", "The padding is zeros: repeating the border pixels (np.pad's 'edge' "
        "mode) changes every output on the border."), lambda x, W: _conv(x, W, pad="edge")),
    _m(("no padding ('valid')", "Without padding the output shrinks by 2 in height and width: 'same' pads the input "
        "first so that the output keeps the image's size."), matches=_valid_shape, example=_conv_valid),
)


# ---- ex07: q17 metasgd_step, q18 meta_gap, q19 anil_head_step ------------------------------------------

def _msgd(th, al, xs, ys, sign=1.0, scale=1.0, mean_alpha=False):
    g = ag_grad(lambda p: nets.mse(nets.mlp_apply(p, xs), ys))(th)
    if mean_alpha:
        m = float(np.mean(np.concatenate([np.ravel(a) for pair in al for a in pair])))
        al = tree.tree_map(lambda a: np.full_like(np.asarray(a, float), m), al)
    return [(W - sign * scale * aW * gW, b - sign * scale * ab * gb) for (W, b), (aW, ab), (gW, gb) in zip(th, al, g)]


def _negative_accepted(value, inputs):
    _, al, _, _ = inputs
    return (any(np.any(np.asarray(a) < 0) for pair in al for a in pair)
            and isinstance(value, (list, tuple)))


Q17 = (
    _m(SIGN, lambda th, al, xs, ys: _msgd(th, al, xs, ys, sign=-1.0)),
    _m(SUM_SUPPORT, lambda th, al, xs, ys: _msgd(th, al, xs, ys, scale=float(len(xs)))),
    _m(("one step size for all", "Meta-SGD's alpha has one entry per parameter, multiplied entry by entry with the "
        "gradient; one shared (average) step size is MAML's step."),
       lambda th, al, xs, ys: _msgd(th, al, xs, ys, mean_alpha=True)),
    _m(("a negative step size accepted", "A negative entry of alpha climbs the support loss: the function must "
        "reject it with a ValueError, not take the step."), matches=_negative_accepted,
       example=lambda th, al, xs, ys: _msgd(th, al, xs, ys)),
)


def _gap(tr, te, ddof=1, sign=1.0, se=True, add_se=False):
    tr, te = np.asarray(tr, float), np.asarray(te, float)
    if tr.size == 0 or te.size == 0:   # such a function computes means of nothing: nan, as NumPy gives
        return np.full(4, np.nan)

    def var(a):
        return float(np.var(a, ddof=ddof)) / (a.size if se else 1) if a.size > 1 else 0.0
    half = 1.96 * (np.sqrt(var(tr)) + np.sqrt(var(te)) if add_se else np.sqrt(var(tr) + var(te)))
    return np.array([tr.mean(), te.mean(), sign * (te.mean() - tr.mean()), half])


Q18 = (
    _m(("the variance with ddof=0", "The interval uses the *sample* variance (ddof=1), as the question says: with few "
        "tasks, ddof=0 understates the uncertainty."), lambda tr, te: _gap(tr, te, ddof=0)),
    _m(("the gap's sign", "The gap is meta-test minus meta-train: overfitting across tasks shows as a *positive* "
        "gap."), lambda tr, te: _gap(tr, te, sign=-1.0)),
    _m(("the spread of the losses instead of the error of the means", "The interval is for the difference of two "
        "*means*: divide each variance by its number of tasks (s^2 / n), or the interval does not shrink with more "
        "tasks."), lambda tr, te: _gap(tr, te, se=False)),
    _m(("standard errors added instead of variances", "For independent means the *variances* add; adding the two "
        "standard errors overstates the interval."), lambda tr, te: _gap(tr, te, add_se=True)),
)


def _anil(W, b, phi, y, al, sign=1.0, denom="Kd", bias=True):
    W, b, phi, y = (np.asarray(a, float) for a in (W, b, phi, y))
    K, d = y.shape
    n = {"Kd": K * d, "K": K, "1": 1}[denom]
    r = phi @ W + b - y
    return W - sign * al * 2.0 / n * phi.T @ r, (b - sign * al * 2.0 / n * r.sum(axis=0)) if bias else b


def _anil_no2(W, b, phi, y, al):
    W, b, phi, y = (np.asarray(a, float) for a in (W, b, phi, y))
    K, d = y.shape
    r = phi @ W + b - y
    return W - al / (K * d) * phi.T @ r, b - al / (K * d) * r.sum(axis=0)


Q19 = (
    _m(SIGN, lambda W, b, phi, y, al: _anil(W, b, phi, y, al, sign=-1.0)),
    _m(("the mean over examples only", "The mean squared error averages over the K examples *and* the d outputs: the "
        "gradient divides by K d."), lambda W, b, phi, y, al: _anil(W, b, phi, y, al, denom="K")),
    _m(("the factor 2 lost", "d/dW of a squared residual brings down a factor 2: keep it."), _anil_no2),
    _m(("the bias left out", "The head is phi W + b: its bias takes the step too."),
       lambda W, b, phi, y, al: _anil(W, b, phi, y, al, bias=False)),
)


# ---- ex08: q20 returns_to_go, q21 reinforce_loss, q22 baseline_advantages --------------------------------

def _rtg(r, gamma, how="exact"):
    r = np.asarray(r, float)
    T = r.shape[-1]
    t = np.arange(T)
    if how == "undiscounted":
        gamma = 1.0
    if how == "forward":      # the sum up to t, not from t
        w = np.where(t[None, :] <= t[:, None], float(gamma) ** np.abs(t[:, None] - t[None, :]), 0.0)
    elif how == "from_start":  # gamma^t' instead of gamma^(t'-t)
        w = np.where(t[None, :] >= t[:, None], float(gamma) ** t[None, :].astype(float), 0.0)
    else:
        w = np.where(t[None, :] >= t[:, None], float(gamma) ** np.clip(t[None, :] - t[:, None], 0, None), 0.0)
    out = r @ w.T
    if how == "off_by_one":   # from the next step on
        out = np.concatenate([out[..., 1:], np.zeros(r.shape[:-1] + (1,))], axis=-1)
    return out


Q20 = (
    _m(("returns-to-go off by one", "R_t includes the reward of step t itself: the sum runs over t' >= t, not t' > t."),
       lambda r, g: _rtg(r, g, "off_by_one")),
    _m(("undiscounted returns-to-go", "Each later reward is discounted by gamma once per step of delay; without the "
        "discount gamma plays no part."), lambda r, g: _rtg(r, g, "undiscounted")),
    _m(("the rewards before t summed", "The return-to-go is what the trajectory collects from step t *on*: the "
        "rewards already received do not depend on the action at t."), lambda r, g: _rtg(r, g, "forward")),
    _m(("discounted from the episode's start", "The discount counts the delay from t (gamma^(t' - t)), not from the "
        "start of the episode."), lambda r, g: _rtg(r, g, "from_start")),
)


def _reinforce(lp, adv, mask, sign=1.0, denom="steps", masked=True):
    lp, adv, mask = (np.asarray(a, float) for a in (lp, adv, mask))
    terms = lp * adv * (mask if masked else 1.0)
    if denom == "trajectory":
        per = terms.sum(axis=2) / np.maximum(mask.sum(axis=2), 1.0)
        return -sign * per.mean(axis=1)
    n = mask.sum(axis=(1, 2)) if denom == "steps" else float(mask.shape[1] * mask.shape[2])
    return -sign * terms.sum(axis=(1, 2)) / n


Q21 = (
    _m(("the REINFORCE loss with the wrong sign", "Gradient *descent* on the surrogate must climb the expected return: "
        "the loss is minus the advantage-weighted log-probability."), lambda lp, a, m: _reinforce(lp, a, m, sign=-1.0)),
    _m(("divided by all N*T steps", "Episodes can end before the horizon: divide by the number of steps that "
        "happened (the sum of the mask), not by N*T."), lambda lp, a, m: _reinforce(lp, a, m, denom="all")),
    _m(("the mask ignored", "Steps after an episode's end never happened: whatever log_probs and advantages hold "
        "there, only the steps with mask 1 count."), lambda lp, a, m: _reinforce(lp, a, m, masked=False)),
    _m(("a mean of per-trajectory means", "Every step that happened weighs the same: average over the task's steps, "
        "not per trajectory first (trajectories of different lengths would weigh alike)."),
       lambda lp, a, m: _reinforce(lp, a, m, denom="trajectory")),
)


def _advantages(obs, rewards, mask, gamma, ddof=0, baseline=True, standardise="task", fit_masked=True, rtg=_rtg):
    """q22's advantages, one piece done the mistaken way (or, with the defaults, done right: tests compare it)."""
    obs, rewards, mask = (np.asarray(a, float) for a in (obs, rewards, mask))
    K, N, T = rewards.shape
    R = np.asarray(rtg(rewards * mask, gamma), float)
    on_all = mask > 0 if fit_masked else np.ones_like(mask, bool)
    t = np.broadcast_to((np.arange(T) / 100.0)[:, None], (N, T, 1))
    A = np.zeros_like(R)
    for k in range(K):
        s = np.clip(obs[k], -10, 10)
        phi = np.concatenate([s, s ** 2, t, t ** 2, t ** 3, np.ones((N, T, 1))], axis=-1)
        on = on_all[k]
        w = np.linalg.solve(phi[on].T @ phi[on] + 1e-5 * np.eye(8), phi[on].T @ R[k][on])
        A[k] = R[k] - (phi @ w if baseline else 0.0)
    out = np.zeros_like(A)
    if standardise == "task":
        for k in range(K):
            on = on_all[k]
            out[k][on] = (A[k][on] - A[k][on].mean()) / (A[k][on].std(ddof=ddof) + 1e-8)
    elif standardise == "all":
        out[on_all] = (A[on_all] - A[on_all].mean()) / (A[on_all].std(ddof=ddof) + 1e-8)
    else:
        out[on_all] = A[on_all]
    return out


Q22 = (
    _m(("not standardised", "The last step standardises each task's advantages: subtract their mean and divide by "
        "their standard deviation (plus 1e-8)."), lambda o, r, m, g: _advantages(o, r, m, g, standardise="none")),
    _m(("the baseline not subtracted", "The advantage is the return-to-go *minus* the fitted baseline b(s_t, t): "
        "standardising the returns alone keeps their variance from the state and time."),
       lambda o, r, m, g: _advantages(o, r, m, g, baseline=False)),
    _m(("standardised over all tasks together", "Each task is standardised over its *own* steps: tasks have rewards "
        "of different scales, and one task's advantages must not shift another's."),
       lambda o, r, m, g: _advantages(o, r, m, g, standardise="all")),
    _m(("the steps after an episode's end counted", "Only the steps that happened (mask 1) enter the fit and the "
        "standardisation; the advantage is 0 after the end."),
       lambda o, r, m, g: _advantages(o, r, m, g, fit_masked=False)),
    _via(Q20, "q20", lambda inputs, rtg: _advantages(*inputs, rtg=rtg)),
)


# ---- ex09 (build MAML yourself): q26 maml_loss, q27 pretrain_loss, q28 meta_train, q29 pretrain -----------
# Each loop mistake is the prescribed loop (Adam on a fresh sinusoid batch per iteration) with one thing wrong,
# its gradient by autograd and vectorised over tasks as in the notebook.

def _adapted_all(theta, xs, ys, alpha):
    """theta'_T = theta - alpha grad L_s(theta) for every task at once: per-task parameters (T, ...)."""
    tiled = tree.tile_tasks(theta, np.shape(xs)[0])
    g = ag_grad(lambda p: anp.sum(nets.mse(nets.mlp_apply(p, xs), ys)))(tiled)
    return tree.sub(tiled, tree.scale(alpha, g))


def _maml(theta, xs, ys, xq, yq, alpha, reduce=anp.mean):
    return reduce(nets.mse(nets.mlp_apply(_adapted_all(theta, xs, ys, alpha), xq), yq))


def _fomaml_outer(theta, xs, ys, xq, yq, alpha):
    theta_prime = [(W, b) for W, b in _adapted_all(theta, xs, ys, alpha)]     # values only: a stop-gradient
    gq = ag_grad(lambda p: anp.mean(nets.mse(nets.mlp_apply(p, xq), yq)))(theta_prime)
    return [(anp.mean(gW, axis=0), anp.mean(gb, axis=0)) for gW, gb in gq]


def _query_at_theta(theta, xs, ys, xq, yq, alpha=None):
    return anp.mean(nets.mse(nets.mlp_apply(theta, xq), yq))


def _support_at_theta(theta, xs, ys, xq, yq):
    return anp.mean(nets.mse(nets.mlp_apply(theta, xs), ys))


def _all_points(theta, xs, ys, xq, yq, reduce=anp.mean):
    x, y = anp.concatenate([xs, xq], axis=1), anp.concatenate([ys, yq], axis=1)
    return reduce(nets.mse(nets.mlp_apply(theta, x), y))


def _sine_loop(gradient, theta, seed, iterations, meta_batch_size, k_shot, beta, *, reuse=False, ascent=False,
               from_prime=None):
    """The prescribed loop with a pluggable gradient (batch arrays -> grad) and three ways to break it."""
    rng = np.random.default_rng(seed)
    state = train.adam_init(theta)
    b = None
    for _ in range(int(iterations)):
        if b is None or not reuse:
            b = tasks.Sinusoid().sample(rng, meta_batch_size, k_shot, k_shot)
        arrays = (b.x_support, b.y_support, b.x_query, b.y_query)
        g = gradient(theta, *arrays)
        if ascent:
            g = tree.scale(-1.0, g)
        start = theta
        if from_prime is not None:   # the update applied to the adapted parameters, averaged over tasks
            start = [(np.mean(W, axis=0), np.mean(b_, axis=0)) for W, b_ in _adapted_all(theta, *arrays[:2], from_prime)]
        theta, state = train.adam_update(state, start, g, beta)
    return [(np.asarray(W), np.asarray(b_)) for W, b_ in theta]


def _maml_outer(alpha, **kw):
    return lambda th, xs, ys, xq, yq: ag_grad(_maml)(th, xs, ys, xq, yq, alpha, **kw)


def _meta_train_with(kind):
    def answer(theta, seed, iterations, meta_batch_size, k_shot, alpha, beta):
        loop = functools.partial(_sine_loop, theta=theta, seed=seed, iterations=iterations,
                                 meta_batch_size=meta_batch_size, k_shot=k_shot, beta=beta)
        return {
            "fomaml": lambda: loop(lambda th, *a: _fomaml_outer(th, *a, alpha)),
            "swapped": lambda: loop(lambda th, xs, ys, xq, yq: ag_grad(_maml)(th, xq, yq, xs, ys, alpha)),
            "sign": lambda: loop(_maml_outer(-alpha)),
            "at_theta": lambda: loop(ag_grad(_query_at_theta)),
            "reuse": lambda: loop(_maml_outer(alpha), reuse=True),
            "ascent": lambda: loop(_maml_outer(alpha), ascent=True),
            "from_prime": lambda: loop(_maml_outer(alpha), from_prime=alpha),
        }[kind]()
    return answer


def _pretrain_with(kind):
    def answer(theta, seed, iterations, meta_batch_size, k_shot, beta):
        loop = functools.partial(_sine_loop, theta=theta, seed=seed, iterations=iterations,
                                 meta_batch_size=meta_batch_size, k_shot=k_shot, beta=beta)
        return {
            "support_only": lambda: loop(ag_grad(_support_at_theta)),
            "query_only": lambda: loop(ag_grad(_query_at_theta)),
            "maml": lambda: loop(_maml_outer(build_maml.ALPHA)),
            "reuse": lambda: loop(ag_grad(_all_points), reuse=True),
            "ascent": lambda: loop(ag_grad(_all_points), ascent=True),
        }[kind]()
    return answer


SUPPORT_ONLY = ("support points only", "The pretrained baseline fits every point of every task, support and query "
                "together: it is ordinary training on all the data, with no split and no adaptation.")
QUERY_ONLY = ("query points only", "The pretrained baseline fits every point of every task, support and query "
              "together; the split into D_s and D_q only matters once there is an inner step.")
INNER_STEP_TAKEN = ("an inner step taken", "The baseline has no inner loop: it is scored at theta itself. With an "
                    "inner step first it is MAML's objective, not the baseline's.")
_OUTER = ("the gradient must be computed through the inner step: autograd differentiates your maml_loss with "
          "respect to theta, second-order terms included.")
NO_INNER_STEP = ("no inner step", "The loop follows the gradient of the query loss at theta (a pretrained model on "
                 "query data), not of maml_loss: " + _OUTER)
OUTER_ON_PRIME = ("outer update applied to theta'", "The outer step updates the meta-parameters theta, not the "
                  "adapted theta' of the tasks: theta' is thrown away after it has been scored.")
REUSED_BATCH = ("one batch of tasks reused", "Draw a fresh meta-batch of tasks from rng at every iteration: training "
                "on one batch fits those few tasks, not the task distribution.")
ASCENT = ("gradient ascent", "Adam's update moves against the gradient (train.adam_update(state, theta, g, beta) with g "
          "the gradient of the loss itself); a step along minus the gradient climbs the loss.")

Q26 = (
    _m(SIGN, lambda th, xs, ys, xq, yq, a: float(_maml(th, xs, ys, xq, yq, -a))),
    _m(AT_THETA, lambda th, xs, ys, xq, yq, a: float(_query_at_theta(th, xs, ys, xq, yq))),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, a: float(_maml(th, xq, yq, xq, yq, a))),
    _m(SWAPPED, lambda th, xs, ys, xq, yq, a: float(_maml(th, xq, yq, xs, ys, a))),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, a: float(_maml(th, xs, ys, xq, yq, a, reduce=anp.sum))),
)

Q27 = (
    _m(SUPPORT_ONLY, lambda th, xs, ys, xq, yq: float(_support_at_theta(th, xs, ys, xq, yq))),
    _m(QUERY_ONLY, lambda th, xs, ys, xq, yq: float(_query_at_theta(th, xs, ys, xq, yq))),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq: float(_all_points(th, xs, ys, xq, yq, reduce=anp.sum))),
    _m(INNER_STEP_TAKEN, lambda th, xs, ys, xq, yq: float(_maml(th, xs, ys, xq, yq, build_maml.ALPHA))),
)

Q28 = (
    _m(DETACHED, _meta_train_with("fomaml")),
    _m(OUTER_ON_PRIME, _meta_train_with("from_prime")),
    _m(SWAPPED, _meta_train_with("swapped")),
    _m(SIGN, _meta_train_with("sign")),
    _m(NO_INNER_STEP, _meta_train_with("at_theta")),
    _m(REUSED_BATCH, _meta_train_with("reuse")),
    _m(ASCENT, _meta_train_with("ascent")),
)

Q29 = (
    _m(SUPPORT_ONLY, _pretrain_with("support_only")),
    _m(QUERY_ONLY, _pretrain_with("query_only")),
    _m(INNER_STEP_TAKEN, _pretrain_with("maml")),
    _m(REUSED_BATCH, _pretrain_with("reuse")),
    _m(ASCENT, _pretrain_with("ascent")),
)


# ---- ex10 (build a ProtoNet yourself): q30 protonet_loss of images, q31 train_protonet -----------------------

def _class_means(z, y, n_way):
    onehot = (np.asarray(y)[:, None] == np.arange(n_way)[None, :]).astype(float)
    return anp.dot(onehot.T, z) / onehot.sum(axis=0)[:, None]


def _image_loss(theta, xs, ys, xq, yq, n_way, kind=None):
    """The ProtoNet loss of an episode of images through the given embedding, or with one mistake (kind)."""
    embed = build_protonet.embed
    if kind == "separate":
        zs, zq = embed(theta, xs), embed(theta, xq)
    else:
        z = embed(theta, anp.concatenate([xs, xq]))
        zs, zq = z[:len(xs)], z[len(xs):]
    if kind == "swapped":
        zs, zq, ys, yq = zq, zs, yq, ys
    c = _class_means(zq, yq, n_way) if kind == "from_queries" else _class_means(zs, ys, n_way)
    d = anp.sum((zq[:, None, :] - c[None, :, :]) ** 2, axis=2)
    logit = {"plus": d, "unsquared": -anp.sqrt(d + 1e-30)}.get(kind, -d)
    top = np.max(getval(logit), axis=1, keepdims=True)
    lse = anp.log(anp.sum(anp.exp(logit - top), axis=1))
    per_query = lse - (logit - top)[np.arange(len(yq)), np.asarray(yq)]
    return anp.sum(per_query) if kind == "sum" else anp.mean(per_query)


def _episode_loop(theta, images, seed, episodes, n_way, k_shot, k_query, beta, kind=None, reuse=False, ascent=False):
    """The prescribed episode loop on the loss with one mistake (kind), or with the loop itself broken."""
    rng = np.random.default_rng(seed)
    state = train.adam_init(theta)
    g_loss = ag_grad(_image_loss)
    ep = None
    for _ in range(int(episodes)):
        if ep is None or not reuse:
            ep = tasks.sample_episode(rng, images, n_way, k_shot, k_query)
        g = g_loss(theta, *ep[:4], n_way, kind)
        if ascent:
            g = [tuple(-a for a in block) for block in g]
        theta, state = train.adam_update(state, theta, g, beta)
    return [tuple(np.asarray(a) for a in block) for block in theta]


SEPARATE = ("support and query embedded separately", "Embed the support and query images of an episode in one call "
            "of embed: BatchNorm normalises over the images of the call, so two calls give the two sets different "
            "statistics and embeddings that no longer compare.")
ROLES_SWAPPED = ("support and query roles swapped", "Prototypes come from D_s (x_support, y_support) and the loss "
                 "scores D_q (x_query, y_query), not the other way round.")
REUSED_EPISODE = ("one episode reused", "Draw a fresh episode from rng at every step: training on one episode learns "
                  "those few characters, not an embedding for new ones.")


def _image_loss_with(kind):
    return lambda th, xs, ys, xq, yq, n: float(_image_loss(th, xs, ys, xq, yq, n, kind))


def _loop_with(**kw):
    return lambda *inputs: _episode_loop(*inputs, **kw)


Q30 = (
    _m(FROM_QUERIES, _image_loss_with("from_queries")),
    _m(PLUS, _image_loss_with("plus")),
    _m(UNSQUARED, _image_loss_with("unsquared")),
    _m(SEPARATE, _image_loss_with("separate")),
    _m(ROLES_SWAPPED, _image_loss_with("swapped")),
    _m(SUM_QUERIES, _image_loss_with("sum")),
)

Q31 = (
    _m(FROM_QUERIES, _loop_with(kind="from_queries")),
    _m(PLUS, _loop_with(kind="plus")),
    _m(SEPARATE, _loop_with(kind="separate")),
    _m(UNSQUARED, _loop_with(kind="unsquared")),
    _m(REUSED_EPISODE, _loop_with(reuse=True)),
    _m(ASCENT, _loop_with(ascent=True)),
)


MISTAKES = {"q1": Q1, "q2": Q2, "q3": Q3, "q4": Q4, "q5": Q5, "q6": Q6, "q7": Q7, "q8": Q8, "q9": Q9,
            "q10": Q10, "q11": Q11, "q12": Q12, "q23": Q23, "q24": Q24, "q25": Q25,
            "q13": Q13, "q14": Q14, "q15": Q15, "q16": Q16, "q17": Q17, "q18": Q18, "q19": Q19,
            "q20": Q20, "q21": Q21, "q22": Q22,
            "q26": Q26, "q27": Q27, "q28": Q28, "q29": Q29, "q30": Q30, "q31": Q31}
