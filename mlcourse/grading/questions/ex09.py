"""ex09, build it yourself: MAML on sinusoids end to end.  q26 maml_loss (vectorised over tasks),
q27 pretrain_loss, q28 meta_train (the outer loop, from the learner's own loss and autograd), q29 pretrain
(the baseline, through the same loop).

The loops are judged twice: a few iterations from a fixed seed must follow the loop the notebook
prescribes (the engine's trainer gives the reference, so each common mistake is a different set of
parameters), and a full run must reach the stated target, scored here on fresh tasks.  While q28 and
q29 are graded, the engine's trainer, meta-gradients and inner loop are unavailable: the learner's loop
must differentiate the learner's own loss.
"""
from __future__ import annotations

import functools

import autograd.numpy as anp
import numpy as np
from autograd import grad as ag_grad

from ... import baseline, maml, nets, train, tree
from ...tasks import Sinusoid, TaskBatch
from ..blocking import INNER_LOOP
from ..matching import summarize
from ..mistakes import Mistake, naming
from ..spec import Question, Test, by_reference, first_value
from ._inputs import sine

ASSIGNMENT = "ex09"
TITLE = "Build it yourself: meta-train MAML on sinusoids"

# the notebook's settings, which the full-run tests use too
SIZES = (1, 40, 40, 1)      # the MAML paper's MLP
META_BATCH_SIZE = 25        # tasks per meta-iteration
K_SHOT = 10                 # support points per task, and as many query points
ALPHA = 0.01                # inner step size
BETA = 0.02                 # Adam's outer learning rate
ITERATIONS = 500            # meta-iterations (about 4 s with a vectorised maml_loss)
SEED = 0

# the stated targets, scored on EVAL_TASKS fresh tasks (K_SHOT support points, 100 query points each)
TARGET_MSE = 1.2            # meta-trained: query MSE after one inner step at most this
TARGET_PRETRAIN_MSE = 3.5   # pretrained: query MSE with no adaptation at most this (predicting 0 gives about 4.2)
EVAL_TASKS = 1000
EVAL_SEED = 9009

# the engine functions these questions ask the learner to write
LOSSES = INNER_LOOP + ("mlcourse.maml.maml_loss", "mlcourse.maml._maml_loss_autograd", "mlcourse.maml.query_loss",
                       "mlcourse.maml.query_losses", "mlcourse.maml.maml_value_and_grad", "mlcourse.maml.maml_grad",
                       "mlcourse.maml.multistep_loss", "mlcourse.maml.multistep_value_and_grad",
                       "mlcourse.maml.fomaml_grad", "mlcourse.maml.fomaml_value_and_grad",
                       "mlcourse.fastpath.maml_value_and_grad", "mlcourse.fastpath.multistep_value_and_grad",
                       "mlcourse.fastpath.fomaml_value_and_grad", "mlcourse.fastpath.query_loss")
BASELINE = ("mlcourse.baseline.pretrain_value_and_grad",)
TRAINER = ("mlcourse.train.meta_train", "mlcourse.train.evaluate", "mlcourse.train.support_and_query_losses")


# ---- references (the engine) ------------------------------------------------------------------------

def _batch(xs, ys, xq, yq):
    return TaskBatch(xs, ys, xq, yq)


def ref_maml_loss(theta, xs, ys, xq, yq, alpha):
    return float(maml.maml_loss(theta, _batch(xs, ys, xq, yq), alpha, 1))


def ref_pretrain_loss(theta, xs, ys, xq, yq):
    return baseline.pretrain_value_and_grad(theta, _batch(xs, ys, xq, yq))[0]


def _engine_loop(value_and_grad, theta, seed, iterations, meta_batch_size, k_shot, beta):
    sample = train.task_batches(Sinusoid(), meta_batch_size=meta_batch_size, k_support=k_shot, k_query=k_shot)
    theta, _ = train.meta_train(theta, value_and_grad, sample, rng=np.random.default_rng(seed), iterations=iterations,
                                schedule=train.constant(beta), progress=False)
    return theta


def ref_meta_train(theta, seed, iterations, meta_batch_size, k_shot, alpha, beta):
    """The engine's trainer on the engine's exact meta-gradient: what the learner's loop must reproduce."""
    return _engine_loop(functools.partial(maml.maml_value_and_grad, alpha=alpha, inner_steps=1), theta, seed,
                        iterations, meta_batch_size, k_shot, beta)


def ref_pretrain(theta, seed, iterations, meta_batch_size, k_shot, beta):
    return _engine_loop(baseline.pretrain_value_and_grad, theta, seed, iterations, meta_batch_size, k_shot, beta)


# ---- the mistakes: the same loop with one thing wrong (autograd, vectorised over tasks) ---------------

def _adapted(theta, xs, ys, alpha):
    """theta'_T = theta - alpha grad L_s(theta) for every task at once: per-task parameters (T, ...)."""
    tiled = tree.tile_tasks(theta, np.shape(xs)[0])
    g = ag_grad(lambda p: anp.sum(nets.mse(nets.mlp_apply(p, xs), ys)))(tiled)
    return tree.sub(tiled, tree.scale(alpha, g))


def _maml(theta, xs, ys, xq, yq, alpha, reduce=anp.mean):
    return reduce(nets.mse(nets.mlp_apply(_adapted(theta, xs, ys, alpha), xq), yq))


def _fomaml_grad(theta, xs, ys, xq, yq, alpha):
    theta_prime = [(W, b) for W, b in _adapted(theta, xs, ys, alpha)]     # values only: a stop-gradient
    gq = ag_grad(lambda p: anp.mean(nets.mse(nets.mlp_apply(p, xq), yq)))(theta_prime)
    return [(anp.mean(gW, axis=0), anp.mean(gb, axis=0)) for gW, gb in gq]


def _at_theta(theta, xs, ys, xq, yq, alpha=None):
    return anp.mean(nets.mse(nets.mlp_apply(theta, xq), yq))


def _all_points(theta, xs, ys, xq, yq, reduce=anp.mean):
    x, y = anp.concatenate([xs, xq], axis=1), anp.concatenate([ys, yq], axis=1)
    return reduce(nets.mse(nets.mlp_apply(theta, x), y))


def _loop(gradient, theta, seed, iterations, meta_batch_size, k_shot, beta, *, reuse=False, ascent=False,
          from_prime=None):
    """The prescribed loop with a pluggable gradient (batch arrays -> grad) and three ways to break it."""
    rng = np.random.default_rng(seed)
    state = train.adam_init(theta)
    b = None
    for _ in range(int(iterations)):
        if b is None or not reuse:
            b = Sinusoid().sample(rng, meta_batch_size, k_shot, k_shot)
        arrays = (b.x_support, b.y_support, b.x_query, b.y_query)
        g = gradient(theta, *arrays)
        if ascent:
            g = tree.scale(-1.0, g)
        start = theta
        if from_prime is not None:   # the update applied to the adapted parameters, averaged over tasks
            start = [(np.mean(W, axis=0), np.mean(b_, axis=0)) for W, b_ in _adapted(theta, *arrays[:2], from_prime)]
        theta, state = train.adam_update(state, start, g, beta)
    return [(np.asarray(W), np.asarray(b_)) for W, b_ in theta]


def _maml_grad(alpha, **kw):
    return lambda th, xs, ys, xq, yq: ag_grad(_maml)(th, xs, ys, xq, yq, alpha, **kw)


def _mistaken_meta_train(kind):
    def answer(theta, seed, iterations, meta_batch_size, k_shot, alpha, beta):
        loop = functools.partial(_loop, theta=theta, seed=seed, iterations=iterations,
                                 meta_batch_size=meta_batch_size, k_shot=k_shot, beta=beta)
        if kind == "fomaml":
            return loop(lambda th, *a: _fomaml_grad(th, *a, alpha))
        if kind == "swapped":
            return loop(lambda th, xs, ys, xq, yq: ag_grad(_maml)(th, xq, yq, xs, ys, alpha))
        if kind == "sign":
            return loop(_maml_grad(-alpha))
        if kind == "at_theta":
            return loop(ag_grad(_at_theta))
        if kind == "reuse":
            return loop(_maml_grad(alpha), reuse=True)
        if kind == "ascent":
            return loop(_maml_grad(alpha), ascent=True)
        if kind == "from_prime":
            return loop(_maml_grad(alpha), from_prime=alpha)
        raise ValueError(kind)
    return answer


def _mistaken_pretrain(kind):
    def answer(theta, seed, iterations, meta_batch_size, k_shot, beta):
        loop = functools.partial(_loop, theta=theta, seed=seed, iterations=iterations,
                                 meta_batch_size=meta_batch_size, k_shot=k_shot, beta=beta)
        if kind == "support_only":
            return loop(ag_grad(lambda th, xs, ys, xq, yq: anp.mean(nets.mse(nets.mlp_apply(th, xs), ys))))
        if kind == "query_only":
            return loop(ag_grad(_at_theta))
        if kind == "maml":
            return loop(_maml_grad(ALPHA))
        if kind == "reuse":
            return loop(ag_grad(_all_points), reuse=True)
        if kind == "ascent":
            return loop(ag_grad(_all_points), ascent=True)
        raise ValueError(kind)
    return answer


SIGN = ("the inner step's sign", "theta' = theta - alpha grad L_s(theta) steps *down* the support loss; adding the "
        "gradient climbs it.")
AT_THETA = ("query loss at theta", "Evaluating the query loss at theta instead of theta'. That trains an ordinary "
            "model on query data, and no adaptation is learned: take the inner step first.")
QUERY_IN_INNER = ("adapting on the query set", "Leaking the query set into adaptation. The inner loop may only see "
                  "D_s; the query set only scores the adapted parameters.")
SWAPPED = ("support and query swapped", "Adapt on D_s (x_support, y_support) and score on D_q (x_query, y_query), "
           "not the other way round.")
SUM_TASKS = ("a sum where a mean was asked", "The expectation over tasks is estimated by the *mean* over the tasks "
             "given, not their sum (a sum changes the scale with the number of tasks).")


def _m(words, answer):
    return Mistake(words[0], words[1], answer=answer)


Q26_MISTAKES = (
    _m(SIGN, lambda th, xs, ys, xq, yq, a: float(_maml(th, xs, ys, xq, yq, -a))),
    _m(AT_THETA, lambda th, xs, ys, xq, yq, a: float(_at_theta(th, xs, ys, xq, yq))),
    _m(QUERY_IN_INNER, lambda th, xs, ys, xq, yq, a: float(_maml(th, xq, yq, xq, yq, a))),
    _m(SWAPPED, lambda th, xs, ys, xq, yq, a: float(_maml(th, xq, yq, xs, ys, a))),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq, a: float(_maml(th, xs, ys, xq, yq, a, reduce=anp.sum))),
)

Q27_MISTAKES = (
    Mistake("support points only", "The pretrained baseline fits every point of every task, support and query "
            "together: it is ordinary training on all the data, with no split and no adaptation.",
            answer=lambda th, xs, ys, xq, yq: float(anp.mean(nets.mse(nets.mlp_apply(th, xs), ys)))),
    Mistake("query points only", "The pretrained baseline fits every point of every task, support and query "
            "together; the split into D_s and D_q only matters once there is an inner step.",
            answer=lambda th, xs, ys, xq, yq: float(_at_theta(th, xs, ys, xq, yq))),
    _m(SUM_TASKS, lambda th, xs, ys, xq, yq: float(_all_points(th, xs, ys, xq, yq, reduce=anp.sum))),
    Mistake("an inner step taken", "The baseline has no inner loop: it is scored at theta itself. With an inner "
            "step first it is MAML's objective, not the baseline's.",
            answer=lambda th, xs, ys, xq, yq: float(_maml(th, xs, ys, xq, yq, ALPHA))),
)

_OUTER = ("the gradient must be computed through the inner step: autograd differentiates your maml_loss with "
          "respect to theta, second-order terms included.")
Q28_MISTAKES = (
    Mistake("first-order gradient", "This follows the gradient of the query loss at theta' (FOMAML's direction: the "
            "inner gradient detached), not the meta-gradient of maml_loss; " + _OUTER,
            answer=_mistaken_meta_train("fomaml")),
    Mistake("outer update applied to theta'", "The outer step updates the meta-parameters theta, "
            "theta <- theta - beta * (step direction), not the adapted theta' of the tasks: theta' is thrown away "
            "after it has been scored.", answer=_mistaken_meta_train("from_prime")),
    _m(SWAPPED, _mistaken_meta_train("swapped")),
    _m(SIGN, _mistaken_meta_train("sign")),
    Mistake("no inner step", "The loop follows the gradient of the query loss at theta (a pretrained model on query "
            "data), not of maml_loss: " + _OUTER, answer=_mistaken_meta_train("at_theta")),
    Mistake("one batch of tasks reused", "Draw a fresh meta-batch of tasks from rng at every iteration: training on "
            "one batch fits those few tasks, not the task distribution.", answer=_mistaken_meta_train("reuse")),
    Mistake("gradient ascent", "Adam's update moves against the gradient (train.adam_update(state, theta, g, beta) "
            "with g the gradient of the loss itself); this climbs the meta-loss.",
            answer=_mistaken_meta_train("ascent")),
)

Q29_MISTAKES = (
    Mistake("support points only", Q27_MISTAKES[0].says, answer=_mistaken_pretrain("support_only")),
    Mistake("query points only", Q27_MISTAKES[1].says, answer=_mistaken_pretrain("query_only")),
    Mistake("an inner step taken", Q27_MISTAKES[3].says, answer=_mistaken_pretrain("maml")),
    Mistake("one batch of tasks reused", Q28_MISTAKES[5].says, answer=_mistaken_pretrain("reuse")),
    Mistake("gradient ascent", Q28_MISTAKES[6].says, answer=_mistaken_pretrain("ascent")),
)

# a loop differentiates autograd's computation of the learner's loss, the reference the engine's hand-derived
# one; Adam divides by the gradient's own size, so a few iterations agree to about 1e-9, not to 1e-12
LOOP_RTOL, LOOP_ATOL = 1e-6, 1e-8


# ---- judging a full run ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def eval_tasks():
    """The EVAL_TASKS fresh tasks the full runs are scored on (K_SHOT support points, 100 query points)."""
    return Sinusoid().sample(np.random.default_rng(EVAL_SEED), EVAL_TASKS, K_SHOT, 100)


def query_mse(theta, steps=(0, 1), alpha=ALPHA):
    """Mean query MSE over the evaluation tasks after each number of inner steps (a list)."""
    return [float(v) for v in maml.query_losses(theta, eval_tasks(), alpha, steps).mean(axis=1)]


@functools.lru_cache(maxsize=1)
def _reference_runs():
    """(MAML, pretrained) trained by the engine's loop with the notebook's settings, scored: for the messages."""
    theta0 = nets.mlp_init(np.random.default_rng(SEED), list(SIZES))
    th_maml = ref_meta_train(theta0, SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT, ALPHA, BETA)
    th_pre = ref_pretrain(theta0, SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT, BETA)
    return query_mse(th_maml), query_mse(th_pre)


def _trained_mlp(outcomes, calls):
    """(theta as a list of (W, b) float64 arrays, None) or (None, message)."""
    got, err = first_value(outcomes)
    if err:
        return None, err
    theta0 = calls[0][0]
    want = "a list of (W, b) pairs shaped like theta (the trained parameters)"
    if not isinstance(got, (list, tuple)) or len(got) != len(theta0):
        return None, f"expected {want}; got {summarize(got)}"
    theta = []
    for l, (layer, (W0, b0)) in enumerate(zip(got, theta0)):
        try:
            W, b = (np.asarray(a, dtype=np.float64) for a in layer)
        except (TypeError, ValueError):
            return None, f"expected {want}; layer {l} is {summarize(layer)}"
        if W.shape != np.shape(W0) or b.shape != np.shape(b0):
            return None, f"expected {want}; layer {l} has shapes {W.shape}, {b.shape} instead of {np.shape(W0)}, {np.shape(b0)}"
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            return None, f"layer {l} of the returned theta holds NaN or infinite values (lower beta?)"
        theta.append((W, b))
    if all(np.array_equal(W, W0) and np.array_equal(b, b0) for (W, b), (W0, b0) in zip(theta, theta0)):
        return None, "returned theta unchanged: the loop applied no update (return the trained parameters)"
    return theta, None


def _meta_target(outcomes, calls):
    theta, err = _trained_mlp(outcomes, calls)
    if err:
        return 0.0, err
    mse0, mse1 = query_mse(theta)
    pre1 = _reference_runs()[1][1]
    said = (f"query MSE after one inner step {mse1:.3f} on {EVAL_TASKS} fresh tasks (target <= {TARGET_MSE}; "
            f"a pretrained baseline trained by the same loop gets {pre1:.2f})")
    if np.isfinite(mse1) and mse1 <= TARGET_MSE and mse1 < pre1:
        return 1.0, "reaches the target: " + said
    hint = ("" if mse0 > mse1 else "; one inner step does not improve on theta itself, so no adaptation was learned")
    return 0.0, f"does not reach the target: {said}{hint}"


def _pretrain_target(outcomes, calls):
    theta, err = _trained_mlp(outcomes, calls)
    if err:
        return 0.0, err
    mse0, mse1 = query_mse(theta)
    said = (f"query MSE with no adaptation {mse0:.3f} on {EVAL_TASKS} fresh tasks (target <= {TARGET_PRETRAIN_MSE}; "
            f"predicting 0 everywhere gives about 4.2); after one inner step {mse1:.3f}")
    if np.isfinite(mse0) and mse0 <= TARGET_PRETRAIN_MSE:
        return 1.0, "fits the average task: " + said
    return 0.0, "does not fit the average task: " + said


def _full_run_judge(check, reference):
    check.reference = reference   # for the instructor's tools and tests, never shown to learners
    return check


def full_meta_train_args():
    return (nets.mlp_init(np.random.default_rng(SEED), list(SIZES)), SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT,
            ALPHA, BETA)


def full_pretrain_args():
    return (nets.mlp_init(np.random.default_rng(SEED), list(SIZES)), SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT, BETA)


def questions():
    th, xs, ys, xq, yq = sine(90, 4, 5)
    th2, xs2, ys2, xq2, yq2 = sine(91, 3, 10, (1, 16, 1))
    th3, xs3, ys3, xq3, yq3 = sine(92, 25, 10, (1, 40, 40, 1))
    small = nets.mlp_init(np.random.default_rng(93), [1, 8, 8, 1])
    small2 = nets.mlp_init(np.random.default_rng(94), [1, 16, 1])

    def loop_judge(reference, ms):
        return naming(by_reference(reference, rtol=LOOP_RTOL, atol=LOOP_ATOL), *ms)
    loss26 = lambda: naming(by_reference(ref_maml_loss), *Q26_MISTAKES)   # noqa: E731
    loss27 = lambda: naming(by_reference(ref_pretrain_loss), *Q27_MISTAKES)   # noqa: E731
    return [
        Question("q26", ASSIGNMENT, "maml_loss", "maml_loss for a whole meta-batch at once (one inner step)",
                 forbids=LOSSES, tests=(
                     Test("4 tasks, 1-8-8-1 MLP, alpha = 0.01", ((th, xs, ys, xq, yq, 0.01),), loss26()),
                     Test("3 tasks, 1-16-1 MLP, alpha = 0.1", ((th2, xs2, ys2, xq2, yq2, 0.1),), loss26()),
                     Test("25 tasks, the paper's 1-40-40-1 MLP (hidden)", ((th3, xs3, ys3, xq3, yq3, 0.01),),
                          loss26(), hidden=True),
                 )),
        Question("q27", ASSIGNMENT, "pretrain_loss", "The pretrained baseline's loss: every point, no adaptation",
                 forbids=BASELINE, tests=(
                     Test("4 tasks, 1-8-8-1 MLP", ((th, xs, ys, xq, yq),), loss27()),
                     Test("3 tasks, 1-16-1 MLP", ((th2, xs2, ys2, xq2, yq2),), loss27()),
                     Test("25 tasks, 1-40-40-1 MLP (hidden)", ((th3, xs3, ys3, xq3, yq3),), loss27(), hidden=True),
                 )),
        Question("q28", ASSIGNMENT, "meta_train", "The outer loop: meta-train theta with Adam on your maml_loss",
                 forbids=LOSSES + BASELINE + TRAINER, tests=(
                     Test("3 iterations from seed 0 follow the loop (1-8-8-1 MLP, 4 tasks, K = 5)",
                          ((small, 0, 3, 4, 5, 0.01, 0.01),), loop_judge(ref_meta_train, Q28_MISTAKES)),
                     Test(f"{ITERATIONS} iterations with the notebook's settings reach the target",
                          (full_meta_train_args(),), _full_run_judge(_meta_target, ref_meta_train), points=2.0),
                     Test("2 iterations, alpha = 0.05, 1-16-1 MLP (hidden)", ((small2, 7, 2, 3, 4, 0.05, 0.02),),
                          loop_judge(ref_meta_train, Q28_MISTAKES), hidden=True),
                 )),
        Question("q29", ASSIGNMENT, "pretrain", "The baseline through the same loop: Adam on pretrain_loss",
                 forbids=LOSSES + BASELINE + TRAINER, tests=(
                     Test("3 iterations from seed 0 follow the loop (1-8-8-1 MLP, 4 tasks, K = 5)",
                          ((small, 0, 3, 4, 5, 0.01),), loop_judge(ref_pretrain, Q29_MISTAKES)),
                     Test(f"{ITERATIONS} iterations with the notebook's settings fit the average task",
                          (full_pretrain_args(),), _full_run_judge(_pretrain_target, ref_pretrain)),
                     Test("2 iterations, 1-16-1 MLP (hidden)", ((small2, 7, 2, 3, 4, 0.02),),
                          loop_judge(ref_pretrain, Q29_MISTAKES), hidden=True),
                 )),
    ]


__all__ = ["ASSIGNMENT", "TITLE", "questions", "query_mse", "eval_tasks", "TARGET_MSE", "TARGET_PRETRAIN_MSE"]
