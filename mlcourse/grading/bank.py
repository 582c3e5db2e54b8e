"""The question bank: every graded question, its tests, points and reference answer.

A question names the function the learner writes.  Each test holds its inputs as data (one or
more calls), its points, whether it is hidden (run by the grader only), and a judge that turns the
learner's outcomes into a fraction of the points.  Reference answers come from the engine
(``mlcourse.tasks``, ``checks``, ``maml``, ``reptile``); nothing is re-implemented here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import checks, maml, nets, reptile, tasks
from ..tasks import TaskBatch
from .codec import Seed, TanhLoss, roundtrip
from .matching import close, summarize

ASSIGNMENTS = {
    "ex01": "Tasks and episodes",
    "ex02": "The meta-gradient in 1D (and practice: easy, medium)",
    "ex03": "Geometry of a good initialisation (and practice: hard)",
    "ex04": "Full MAML vs first-order MAML",
    "ex05": "MAML on sinusoids: Reptile and meta-test adaptation",
}


@dataclass(frozen=True)
class Outcome:
    """What one call of the learner's function gave: a value, or the exception it raised."""

    value: object = None
    error: str | None = None      # exception type name, e.g. "ValueError"; None when a value came back
    message: str = ""


@dataclass(frozen=True)
class Test:
    name: str
    calls: tuple                  # tuple of argument tuples (data only)
    judge: object                 # judge(outcomes, calls) -> (fraction, message)
    points: float = 1.0
    hidden: bool = False

    def describe_input(self, fn_name):
        args = self.calls[0]
        shown = ", ".join(summarize(a, 4) if not isinstance(a, (Seed, TanhLoss)) else repr(a) for a in args)
        more = f" (and {len(self.calls) - 1} more call(s))" if len(self.calls) > 1 else ""
        return f"{fn_name}({shown}){more}"


@dataclass(frozen=True)
class Question:
    id: str
    assignment: str
    function: str
    title: str
    tests: tuple = field(default_factory=tuple)

    @property
    def points(self):
        return float(sum(t.points for t in self.tests))


def _first_value(outcomes):
    o = outcomes[0]
    if o.error is not None:
        return None, f"raised {o.error}: {o.message}"
    return o.value, None


def by_reference(reference, rtol=1e-6, atol=1e-9):
    """Judge: the single call's value must match reference(*inputs) (computed here, in the grader)."""
    cache = {}  # id(calls) -> (calls, reference value): the inputs are fixed, so is the answer

    def judge(outcomes, calls):
        got, err = _first_value(outcomes)
        if err:
            return 0.0, err
        if id(calls) not in cache or cache[id(calls)][0] is not calls:
            cache[id(calls)] = (calls, reference(*roundtrip(calls[0])))
        return close(got, cache[id(calls)][1], rtol, atol)
    judge.reference = reference  # for the instructor's tools and tests, never shown to learners
    return judge


def raises(error_name):
    """Judge: the call must raise error_name (a bad argument the function is asked to reject)."""
    def judge(outcomes, calls):
        o = outcomes[0]
        if o.error == error_name:
            return 1.0, f"raised {error_name} as required"
        got = f"raised {o.error}: {o.message}" if o.error else f"returned {summarize(o.value)}"
        return 0.0, f"expected a {error_name} for these arguments; {got}"
    return judge


# ---- inputs -------------------------------------------------------------------------------------

def _pool(num_classes, per_class):
    """Classes whose examples encode where they come from: row = [class index, example index]."""
    return [np.stack([np.full(per_class, c, float), np.arange(per_class, dtype=float)], axis=1)
            for c in range(num_classes)]


def _linear(seed, T, K):
    b = tasks.LinearSlope().sample(np.random.default_rng(seed), T, K, K)
    return b.x_support[..., 0], b.y_support[..., 0], b.x_query[..., 0], b.y_query[..., 0], b.params["slope"]


def _scalar(seed, K=5, Q=10):
    b = tasks.Scalar1D().sample(np.random.default_rng(seed), 1, K, Q)
    return b.x_support[0, :, 0], b.y_support[0, :, 0], b.x_query[0, :, 0], b.y_query[0, :, 0]


def _sine(seed, T, K, sizes=(1, 8, 8, 1)):
    rng = np.random.default_rng(seed)
    theta = nets.mlp_init(rng, list(sizes))
    b = tasks.Sinusoid().sample(rng, T, K, K)
    return theta, b.x_support, b.y_support, b.x_query, b.y_query


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


def ref_meta_gradient_1d(theta, xs, ys, xq, yq, alpha):
    return checks.check_worked_example_1(theta, tasks.batch_from_arrays(xs, ys, xq, yq), alpha)["closed_form"]


def _strip_task_axis(theta_tasks):
    return [(W[0], b[0]) for W, b in theta_tasks]


def ref_inner_update(theta, xs, ys, alpha):
    return _strip_task_axis(maml.adapt(theta, xs[None], ys[None], alpha, 1))


def ref_maml_loss(theta, xs, ys, xq, yq, alpha, inner_steps):
    return maml.maml_loss(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)


def ref_fomaml_grad(theta, xs, ys, xq, yq, alpha, inner_steps):
    return maml.fomaml_grad(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)


def ref_reptile_update(theta, xs, ys, alpha, inner_steps, epsilon):
    return reptile.reptile_update(theta, TaskBatch(xs, ys, xs, ys), alpha, inner_steps, epsilon)


def ref_adaptation_curve(theta, xs, ys, xq, yq, alpha, steps):
    return maml.query_losses(theta, TaskBatch(xs, ys, xq, yq), alpha, tuple(steps))


# ---- episode sampling is random: judge it by properties ---------------------------------------------

def _episode_problems(got, classes, n_way, k_shot, k_query):
    """List of (property, holds) for one returned episode."""
    if not isinstance(got, (list, tuple)) or len(got) != 5:
        return [("returns (x_support, y_support, x_query, y_query, chosen)", False)]
    xs, ys, xq, yq, chosen = (np.asarray(g) if not isinstance(g, (list, tuple)) else np.asarray(g, dtype=object)
                              for g in got)
    d = np.asarray(classes[0]).shape[1:]
    shapes = (xs.shape == (n_way * k_shot,) + d and ys.shape == (n_way * k_shot,)
              and xq.shape == (n_way * k_query,) + d and yq.shape == (n_way * k_query,) and chosen.shape == (n_way,))
    props = [("shapes (N*K, ...), (N*K,), (N*Q, ...), (N*Q,), (N,)", shapes)]
    if not shapes:
        return props
    labels = (np.array_equal(ys, np.repeat(np.arange(n_way), k_shot))
              and np.array_equal(yq, np.repeat(np.arange(n_way), k_query)))
    props.append(("labels are 0..N-1, grouped by class in order", labels))
    ints = chosen.dtype.kind in "iu" or (chosen.dtype.kind == "f" and np.all(chosen == np.round(chosen)))
    ok_chosen = bool(ints and len(set(chosen.tolist())) == n_way and np.all((chosen >= 0) & (chosen < len(classes))))
    props.append(("N distinct classes drawn from the pool", ok_chosen))
    rows_ok = False
    if ok_chosen and labels and xs.dtype.kind == "f" and xq.dtype.kind == "f":
        per = np.asarray(classes[0]).shape[0]
        src_s, src_q = xs[:, 0], xq[:, 0]
        rows_ok = (np.array_equal(src_s, chosen.astype(float)[ys]) and np.array_equal(src_q, chosen.astype(float)[yq])
                   and np.all((xs[:, 1] >= 0) & (xs[:, 1] < per)) and np.all((xq[:, 1] >= 0) & (xq[:, 1] < per)))
    props.append(("each example comes from the class its label names", bool(rows_ok)))
    pairs_s = {tuple(r) for r in np.asarray(xs).reshape(len(xs), -1).tolist()}
    pairs_q = {tuple(r) for r in np.asarray(xq).reshape(len(xq), -1).tolist()}
    props.append(("support and query are disjoint, no example repeated",
                  len(pairs_s) == len(xs) and len(pairs_q) == len(xq) and not (pairs_s & pairs_q)))
    return props


def episode_properties(outcomes, calls):
    got, err = _first_value(outcomes)
    if err:
        return 0.0, err
    _, classes, n_way, k_shot, k_query = calls[0]
    props = _episode_problems(got, classes, n_way, k_shot, k_query)
    bad = [p for p, ok in props if not ok]
    frac = (len(props) - len(bad)) / 5.0
    if not bad:
        return 1.0, "all 5 episode properties hold"
    return frac, "expected: " + "; ".join(bad) + f"; got {summarize(got)}"


def episode_determinism(outcomes, calls):
    errs = [o for o in outcomes if o.error]
    if errs:
        return 0.0, f"raised {errs[0].error}: {errs[0].message}"
    vals = [o.value for o in outcomes]
    same = _equal(vals[0], vals[1])
    varied = not all(_equal(vals[1], v) for v in vals[2:])
    if same and varied:
        return 1.0, "same seed gives the same episode, other seeds give other episodes"
    msg = []
    if not same:
        msg.append("two calls with np.random.default_rng(3) should return the same episode "
                   "(draw only from the rng argument, never from np.random directly)")
    if not varied:
        msg.append("different seeds should give different episodes")
    return 0.5 * (same + varied), "expected: " + "; ".join(msg)


def _equal(a, b):
    try:
        return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    except TypeError:
        return False


# ---- the questions -------------------------------------------------------------------------------

def _questions():
    Q = []
    pool8, pool20 = _pool(8, 6), _pool(20, 7)
    Q.append(Question("q1", "ex01", "sample_episode", "Sample an N-way K-shot episode", (
        Test("5-way 1-shot, 2 query", ((Seed(0), pool8, 5, 1, 2),), episode_properties),
        Test("3-way 2-shot, 3 query", ((Seed(1), pool8, 3, 2, 3),), episode_properties),
        Test("deterministic for a given rng", tuple((Seed(s), pool20, 5, 1, 2) for s in (3, 3, 4, 5)),
             episode_determinism),
        Test("n_way larger than the pool raises ValueError", ((Seed(2), pool8, 9, 1, 1),), raises("ValueError")),
        Test("20-way 3-shot (hidden)", ((Seed(7), pool20, 20, 3, 4),), episode_properties, hidden=True),
    )))

    def lin_call(seed, T, K, theta, alpha):
        xs, ys, xq, yq, _ = _linear(seed, T, K)
        return (theta, xs, ys, xq, yq, alpha)
    Q.append(Question("q2", "ex02", "meta_objective", "Practice (easy): the meta-objective with a query set", (
        Test("one task", (lin_call(10, 1, 5, 0.3, 0.1),), by_reference(ref_meta_objective)),
        Test("four tasks", (lin_call(11, 4, 5, 1.2, 0.05),), by_reference(ref_meta_objective)),
        Test("alpha = 0 is the plain query loss", (lin_call(12, 3, 4, -0.5, 0.0),), by_reference(ref_meta_objective)),
        Test("ten tasks, large step (hidden)", (lin_call(13, 10, 8, 2.0, 0.4),), by_reference(ref_meta_objective),
             hidden=True),
    )))

    def tanh_call(seed, n, d, alpha):
        loss, theta = _tanh_loss(seed, n, d)
        return (loss, theta, alpha)
    Q.append(Question("q3", "ex02", "dtheta_prime_dtheta", "Practice (medium): d theta'/d theta = I - alpha H", (
        Test("2 parameters", (tanh_call(20, 6, 2, 0.1),), by_reference(ref_dtheta_prime)),
        Test("3 parameters, alpha = 0.5", (tanh_call(21, 8, 3, 0.5),), by_reference(ref_dtheta_prime)),
        Test("alpha = 0 gives the identity", (tanh_call(22, 5, 4, 0.0),), by_reference(ref_dtheta_prime)),
        Test("5 parameters (hidden)", (tanh_call(23, 12, 5, 0.3),), by_reference(ref_dtheta_prime), hidden=True),
    )))

    def s1d_call(seed, theta, alpha):
        return (theta,) + _scalar(seed) + (alpha,)
    Q.append(Question("q4", "ex02", "meta_gradient_1d", "The 1D meta-gradient L_q'(theta')(1 - alpha L_s''(theta))", (
        Test("theta = 0.8, alpha = 0.1", (s1d_call(30, 0.8, 0.1),), by_reference(ref_meta_gradient_1d)),
        Test("theta = 1.4, alpha = 0.3", (s1d_call(31, 1.4, 0.3),), by_reference(ref_meta_gradient_1d)),
        Test("theta = -0.5, alpha = 0.05 (hidden)", (s1d_call(32, -0.5, 0.05),), by_reference(ref_meta_gradient_1d),
             hidden=True),
    )))

    xs3, _, _, _, a3 = _linear(40, 3, 5)
    xs6, _, _, _, a6 = _linear(41, 6, 10)
    Q.append(Question("q5", "ex03", "linear_c", "c = 2 alpha mean(x^2)", (
        Test("three tasks, alpha = 0.1", ((0.1, xs3),), by_reference(checks.linear_c)),
        Test("six tasks, alpha = 0.25", ((0.25, xs6),), by_reference(checks.linear_c)),
        Test("alpha = 0 (hidden)", ((0.0, xs6),), by_reference(checks.linear_c), hidden=True),
    )))
    Q.append(Question("q6", "ex03", "linear_inner_step", "theta' = (1 - c) theta + c a", (
        Test("three tasks", ((0.5, 0.1, xs3, a3),), by_reference(checks.linear_inner_step)),
        Test("six tasks, theta = 2", ((2.0, 0.25, xs6, a6),), by_reference(checks.linear_inner_step)),
        Test("c > 1 overshoots (hidden)", ((0.0, 3.0, xs6, a6),), by_reference(checks.linear_inner_step), hidden=True),
    )))
    slopes = np.random.default_rng(42).uniform(0.5, 2.5, size=50)
    Q.append(Question("q7", "ex03", "best_initialisation", "Practice (hard): theta* = E[a]", (
        Test("three slopes", ((np.array([0.5, 1.0, 3.0]),),), by_reference(checks.best_initialisation)),
        Test("fifty slopes from U[0.5, 2.5]", ((slopes,),), by_reference(checks.best_initialisation)),
        Test("one slope (hidden)", ((np.array([1.7]),),), by_reference(checks.best_initialisation), hidden=True),
    )))

    th, xs, ys, xq, yq = _sine(50, 3, 5)
    th2, xs2, ys2, xq2, yq2 = _sine(51, 4, 10, (1, 16, 1))
    Q.append(Question("q8", "ex04", "inner_update", "inner_update: one SGD step on one task's support set", (
        Test("1-8-8-1 MLP, 5 points", ((th, xs[0], ys[0], 0.01),), by_reference(ref_inner_update)),
        Test("1-16-1 MLP, alpha = 0.1", ((th2, xs2[1], ys2[1], 0.1),), by_reference(ref_inner_update)),
        Test("alpha = 0 leaves theta unchanged (hidden)", ((th, xs[2], ys[2], 0.0),), by_reference(ref_inner_update),
             hidden=True),
    )))
    Q.append(Question("q9", "ex04", "maml_loss", "maml_loss: mean query loss after adaptation", (
        Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_maml_loss)),
        Test("4 tasks, 3 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 3),), by_reference(ref_maml_loss)),
        Test("0 steps is the query loss at theta (hidden)", ((th, xs, ys, xq, yq, 0.01, 0),), by_reference(ref_maml_loss),
             hidden=True),
    )))
    Q.append(Question("q10", "ex04", "fomaml_grad", "First-order MAML: grad L_q at theta', averaged over tasks", (
        Test("3 tasks, 1 step", ((th, xs, ys, xq, yq, 0.01, 1),), by_reference(ref_fomaml_grad)),
        Test("4 tasks, 2 steps", ((th2, xs2, ys2, xq2, yq2, 0.05, 2),), by_reference(ref_fomaml_grad)),
        Test("4 tasks, alpha = 0.1 (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.1, 1),), by_reference(ref_fomaml_grad),
             hidden=True),
    )))
    Q.append(Question("q11", "ex05", "reptile_update", "Reptile: theta + epsilon (mean theta' - theta)", (
        Test("3 tasks, 1 step, epsilon = 0.1", ((th, xs, ys, 0.01, 1, 0.1),), by_reference(ref_reptile_update)),
        Test("4 tasks, 5 steps, epsilon = 0.5", ((th2, xs2, ys2, 0.02, 5, 0.5),), by_reference(ref_reptile_update)),
        Test("epsilon = 1 jumps to the mean theta' (hidden)", ((th2, xs2, ys2, 0.05, 2, 1.0),),
             by_reference(ref_reptile_update), hidden=True),
    )))
    Q.append(Question("q12", "ex05", "adaptation_curve", "Meta-test: query loss after 0, 1, 10 steps", (
        Test("steps (0, 1, 10)", ((th, xs, ys, xq, yq, 0.01, [0, 1, 10]),), by_reference(ref_adaptation_curve)),
        Test("steps (0, 2, 5)", ((th2, xs2, ys2, xq2, yq2, 0.05, [0, 2, 5]),), by_reference(ref_adaptation_curve)),
        Test("steps (1, 3) (hidden)", ((th2, xs2, ys2, xq2, yq2, 0.02, [1, 3]),), by_reference(ref_adaptation_curve),
             hidden=True),
    )))
    return Q


QUESTIONS = {q.id: q for q in _questions()}


def question(qid):
    """The Question with id qid ("q3"); a KeyError-free ValueError listing the ids otherwise."""
    key = str(qid).strip().lower()
    if key not in QUESTIONS:
        raise ValueError(f"unknown question {qid!r}; the questions are {', '.join(QUESTIONS)}.")
    return QUESTIONS[key]


def assignment_questions(assignment):
    """Questions of one assignment ("ex03"), in order."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; the assignments are {', '.join(ASSIGNMENTS)}.")
    return [q for q in QUESTIONS.values() if q.assignment == assignment]


def judge_test(test, outcomes):
    """(points earned, message) for one test; a judge that fails is reported, never raised."""
    if len(outcomes) != len(test.calls):
        return 0.0, "the function was not called on every input (see the notes above)"
    late = [o for o in outcomes if o.error == "Timeout"]
    if late:
        return 0.0, late[0].message
    nie = [o for o in outcomes if o.error == "NotImplementedError"]
    if nie:
        return 0.0, "not answered yet: the function raises NotImplementedError"
    try:
        frac, msg = test.judge(outcomes, test.calls)
    except Exception as e:  # a learner value the judge could not read (odd types, ragged lists)
        return 0.0, f"could not compare the returned value ({type(e).__name__}: {str(e)[:200]})"
    frac = float(min(max(frac, 0.0), 1.0)) if np.isfinite(frac) else 0.0
    return frac * test.points, msg
