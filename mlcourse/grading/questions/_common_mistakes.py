"""The lesson's common mistakes for q1-q12 and q23-q25, as wrong answers the engine computes.

``MISTAKES[qid]`` lists, for one question, the mistakes a learner's answer is compared with when
it fails (``mistakes.naming``): each computes, from the test's own inputs, what a function with
that mistake returns (the inner step's sign flipped, FOMAML where MAML was asked, a sum where a
mean was asked, support and query swapped, ...), and says in the course's words what went wrong,
never the right answer.  ``attach(questions)`` wraps every test of those questions.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from autograd import elementwise_grad
from autograd import grad as ag_grad

from ... import checks, maml, nets, tasks, tree
from ...tasks import TaskBatch
from ..mistakes import Mistake, naming

__all__ = ["MISTAKES", "attach"]


def attach(questions):
    """The questions, each test's judge naming the mistakes of MISTAKES[question id] (others unchanged)."""
    out = []
    for q in questions:
        ms = MISTAKES.get(q.id, ())
        if ms:
            q = dataclasses.replace(q, tests=tuple(dataclasses.replace(t, judge=naming(t.judge, *ms))
                                                   for t in q.tests))
        out.append(q)
    return out


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
SUM_TASKS = ("a sum where a mean was asked", "The expectation over tasks is estimated by the *mean* over the tasks "
             "given, not their sum (a sum changes the scale with the number of tasks).")


def _m(words, answer=None, matches=None):
    return Mistake(words[0], words[1], answer=answer, matches=matches)


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
    _m(("the sign of the Hessian term", "theta' = theta - alpha grad L_s(theta): differentiate the minus sign too, "
        "so the Hessian enters with -alpha."), lambda loss, th, al: np.eye(np.size(th)) + al * _hessian(loss, th)),
    _m(("the identity forgotten", "d theta/d theta = I contributes as well: the Hessian term is only the "
        "correction that the inner gradient's dependence on theta adds to it."),
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
    for t in points:
        factor = factor * (1.0 - alpha * float(d2(t)[0]))
    return float(d1q(path[-1] if grad_at == "end" else path[0])[0]) * factor


def _q4(**how):
    return lambda th, xs, ys, xq, yq, al, m=1: _sine_chain(th, xs, ys, xq, yq, al, m, **how)


Q4 = (
    _m(("theta' treated as a constant", "Treating theta' as a constant gives FOMAML's L_q'(theta') alone: it drops "
        "the factors that the inner gradient's dependence on theta contributes (one 1 - alpha L_s'' per step)."),
       _q4(curvature="none")),
    _m(("the curvature at the wrong point", "Taking the curvature at the wrong point: each factor uses L_s'' at the "
        "point where that step's inner gradient was taken (the *pre-update* theta^(i)), not after the step."),
       _q4(curvature="next")),
    _m(("the curvature only at theta", "For m steps the curvature is taken at each theta^(i) along the inner "
        "trajectory, one factor per step, not only at the starting theta."), _q4(curvature="first_each")),
    _m(("one factor for several steps", "Every inner step contributes its own factor 1 - alpha L_s''(theta^(i)): the "
        "chain rule multiplies one per step."), _q4(curvature="first")),
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
    _m(("a sum where a mean was asked", "L_s is the *mean* squared error over the K support points, so c uses "
        "the mean over the support set, not the sum."), lambda al, xs: 2 * al * np.sum(np.asarray(xs) ** 2, axis=1)),
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
    _m(("the query inputs left out", "The query MSE after the step is (theta' - a)^2 times the mean of x^2 over "
        "the *query* points: a task whose query inputs are larger weighs more."),
       lambda al, xs, xq, a: _weighted((1 - 2 * al * _x2(xs)) ** 2, a)),
)


# ---- ex04: q8 inner_update, q9 maml_loss, q10 fomaml_grad, q23 maml_meta_gradient, q24 maml_minus_fomaml ----

def _one(theta_tasks):
    return [(W[0], b[0]) for W, b in theta_tasks]


Q8 = (
    _m(SIGN, lambda th, xs, ys, al: _one(_steps(th, xs[None], ys[None], -al, 1))),
    _m(("a sum where a mean was asked", "L_s is the *mean* squared error over the support points (nets.mse): the "
        "gradient of the sum is K times larger."), lambda th, xs, ys, al: _one(_steps(th, xs[None], ys[None],
                                                                                      al * len(xs), 1))),
    _m(("returned the gradient", "inner_update returns the adapted parameters theta', not the gradient."),
       lambda th, xs, ys, al: [tuple(p) for p in ag_grad(lambda p: nets.mse(nets.mlp_apply(p, xs), ys))(th)]),
)


def _mloss(th, xs, ys, xq, yq, al, m, sign=1.0):
    return float(_query(_steps(th, xs, ys, sign * al, m), xq, yq))


Q9 = (
    _m(AT_THETA, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq, al, 0)),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xq, yq, xq, yq, al, m)),
    _m(SWAPPED, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xq, yq, xs, ys, al, m)),
    _m(SIGN, lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq, al, m, -1.0)),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, al, m: len(xs) * _mloss(th, xs, ys, xq, yq, al, m)),
    _m(("only one inner step", "Each of the inner_steps steps starts from the previous theta': loop over the "
        "steps, feeding theta' back into inner_update."), lambda th, xs, ys, xq, yq, al, m: _mloss(th, xs, ys, xq, yq,
                                                                                                  al, min(m, 1))),
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
)

DETACHED = ("a detached inner gradient (FOMAML)", "Treating theta' as a constant: a detached or stop-gradient-ed "
            "inner gradient (converting to plain NumPy, float(), np.array of autograd values ...) silently turns "
            "the MAML meta-gradient into FOMAML's direction. Keep every operation of maml_loss in autograd.numpy.")

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
    _m(("the learning rate without alpha", "One Reptile step moves theta by epsilon (theta' - theta), and theta' - "
        "theta = -alpha grad L_s(theta): both step sizes multiply."),
       lambda th, xs, ys, al, eps: (float(eps), _joint(th, xs, ys))),
    _m(("the learning rate without epsilon", "Reptile then moves only a fraction epsilon of the way to the mean "
        "theta': both step sizes multiply."), lambda th, xs, ys, al, eps: (float(al), _joint(th, xs, ys))),
    _m(("the direction's sign", "A gradient step is theta - lr * g: the gradient points *up* the joint loss, and "
        "Reptile's move theta' - theta points down it."),
       lambda th, xs, ys, al, eps: (float(eps * al), tree.scale(-1.0, _joint(th, xs, ys)))),
    _m(SUM_TASKS, lambda th, xs, ys, al, eps: (float(eps * al), tree.scale(len(xs), _joint(th, xs, ys)))),
)

MISTAKES = {"q1": Q1, "q2": Q2, "q3": Q3, "q4": Q4, "q5": Q5, "q6": Q6, "q7": Q7, "q8": Q8, "q9": Q9,
            "q10": Q10, "q11": Q11, "q12": Q12, "q23": Q23, "q24": Q24, "q25": Q25}
