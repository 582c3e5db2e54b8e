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

import numpy as np

from ... import baseline, build_maml, maml, nets, train
from ...tasks import Sinusoid, TaskBatch
from ..blocking import INNER_LOOP
from ..matching import summarize
from ..spec import Question, Test, by_reference, first_value
from ._common_mistakes import attach, whole_run
from ._inputs import sine

ASSIGNMENT = "ex09"
TITLE = "Build it yourself: meta-train MAML on sinusoids"

# the notebook's settings and targets (the notebook reads them from the same module)
SIZES, META_BATCH_SIZE, K_SHOT = build_maml.SIZES, build_maml.META_BATCH_SIZE, build_maml.K_SHOT
ALPHA, BETA, ITERATIONS, SEED = build_maml.ALPHA, build_maml.BETA, build_maml.ITERATIONS, build_maml.SEED
TARGET_MSE, TARGET_PRETRAIN_MSE = build_maml.TARGET_MSE, build_maml.TARGET_PRETRAIN_MSE
EVAL_TASKS, EVAL_SEED = build_maml.EVAL_TASKS, build_maml.EVAL_SEED
eval_tasks = build_maml.eval_tasks

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


# a loop differentiates autograd's computation of the learner's loss, the reference the engine's hand-derived
# one; Adam divides by the gradient's own size, so a few iterations agree to about 1e-9, not to 1e-12
LOOP_RTOL, LOOP_ATOL = 1e-6, 1e-8


# ---- judging a full run ----------------------------------------------------------------------------

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
    return whole_run(check)


def full_meta_train_args():
    return (nets.mlp_init(np.random.default_rng(SEED), list(SIZES)), SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT,
            ALPHA, BETA)


def full_pretrain_args():
    return (nets.mlp_init(np.random.default_rng(SEED), list(SIZES)), SEED, ITERATIONS, META_BATCH_SIZE, K_SHOT, BETA)


def _questions():
    th, xs, ys, xq, yq = sine(90, 4, 5)
    th2, xs2, ys2, xq2, yq2 = sine(91, 3, 10, (1, 16, 1))
    th3, xs3, ys3, xq3, yq3 = sine(92, 25, 10, (1, 40, 40, 1))
    small = nets.mlp_init(np.random.default_rng(93), [1, 8, 8, 1])
    small2 = nets.mlp_init(np.random.default_rng(94), [1, 16, 1])

    def loop_judge(reference):
        return by_reference(reference, rtol=LOOP_RTOL, atol=LOOP_ATOL)
    loss26 = lambda: by_reference(ref_maml_loss)   # noqa: E731
    loss27 = lambda: by_reference(ref_pretrain_loss)   # noqa: E731
    return [
        Question("q26", ASSIGNMENT, "maml_loss", "maml_loss for a whole meta-batch at once (one inner step)",
                 forbids=LOSSES,
                 hint="Copy theta once per task (np.repeat of each W and b on a new first axis): nets.mlp_apply "
                      "then runs every task's own copy, and one grad of the summed support losses gives every "
                      "task's inner gradient at once. No Python loop over tasks.", tests=(
                     Test("4 tasks, 1-8-8-1 MLP, alpha = 0.01", ((th, xs, ys, xq, yq, 0.01),), loss26()),
                     Test("3 tasks, 1-16-1 MLP, alpha = 0.1", ((th2, xs2, ys2, xq2, yq2, 0.1),), loss26()),
                     Test("25 tasks, the paper's 1-40-40-1 MLP (hidden)", ((th3, xs3, ys3, xq3, yq3, 0.01),),
                          loss26(), hidden=True),
                 )),
        Question("q27", ASSIGNMENT, "pretrain_loss", "The pretrained baseline's loss: every point, no adaptation",
                 forbids=BASELINE,
                 hint="Join each task's support and query points along the points axis (np.concatenate, axis=1) "
                      "and take the mean squared error of f_theta on all of them: no split, no step.", tests=(
                     Test("4 tasks, 1-8-8-1 MLP", ((th, xs, ys, xq, yq),), loss27()),
                     Test("3 tasks, 1-16-1 MLP", ((th2, xs2, ys2, xq2, yq2),), loss27()),
                     Test("25 tasks, 1-40-40-1 MLP (hidden)", ((th3, xs3, ys3, xq3, yq3),), loss27(), hidden=True),
                 )),
        Question("q28", ASSIGNMENT, "meta_train", "The outer loop: meta-train theta with Adam on your maml_loss",
                 forbids=LOSSES + BASELINE + TRAINER,
                 hint="Per iteration, in this order: one fresh batch from rng, autograd's grad of your maml_loss "
                      "with respect to theta on it, one train.adam_update. The rng is made once, before the loop, "
                      "from seed; the Adam state once too (train.adam_init).", tests=(
                     Test("3 iterations from seed 0 follow the loop (1-8-8-1 MLP, 4 tasks, K = 5)",
                          ((small, 0, 3, 4, 5, 0.01, 0.01),), loop_judge(ref_meta_train)),
                     Test(f"{ITERATIONS} iterations with the notebook's settings reach the target",
                          (full_meta_train_args(),), _full_run_judge(_meta_target, ref_meta_train), points=2.0),
                     Test("2 iterations, alpha = 0.05, 1-16-1 MLP (hidden)", ((small2, 7, 2, 3, 4, 0.05, 0.02),),
                          loop_judge(ref_meta_train), hidden=True),
                 )),
        Question("q29", ASSIGNMENT, "pretrain", "The baseline through the same loop: Adam on pretrain_loss",
                 forbids=LOSSES + BASELINE + TRAINER,
                 hint="The loop of meta_train with pretrain_loss in place of maml_loss: if fit takes the loss as "
                      "an argument, pretrain is one line.", tests=(
                     Test("3 iterations from seed 0 follow the loop (1-8-8-1 MLP, 4 tasks, K = 5)",
                          ((small, 0, 3, 4, 5, 0.01),), loop_judge(ref_pretrain)),
                     Test(f"{ITERATIONS} iterations with the notebook's settings fit the average task",
                          (full_pretrain_args(),), _full_run_judge(_pretrain_target, ref_pretrain)),
                     Test("2 iterations, 1-16-1 MLP (hidden)", ((small2, 7, 2, 3, 4, 0.02),),
                          loop_judge(ref_pretrain), hidden=True),
                 )),
    ]


__all__ = ["ASSIGNMENT", "TITLE", "questions", "query_mse", "eval_tasks", "TARGET_MSE", "TARGET_PRETRAIN_MSE"]


def questions():
    """The questions, each failed test of a short run naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
