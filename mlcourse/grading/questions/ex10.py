"""ex10, build it yourself: a Prototypical Network trained on Omniglot.  q30 protonet_loss (images in, through a
given convolutional embedding), q31 train_protonet (the episode loop, from the learner's own loss and autograd).

The loop is judged twice: two episodes on small synthetic images must follow the loop the notebook prescribes
(the engine's trainer gives the reference, so each common mistake is a different set of parameters; no data
needed), and a full run on Omniglot's background alphabets must reach the stated accuracy on held-out alphabets,
scored here (hidden: it needs the data and a few seconds).  While q30 and q31 are graded, the engine's ProtoNet
loss, its pieces and its trainer are unavailable.

The Omniglot images reach the learner's function as an argument: the grading process cannot read the data
folder, so the grader loads them (``build_protonet.load``) when the full-run test is first used, and packs
them into the call's input file in its own process.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ... import build_protonet, conv, protonet, tasks, train
from ..matching import summarize
from ..spec import Question, Test, by_reference, first_value
from ._common_mistakes import attach, whole_run

ASSIGNMENT = "ex10"
TITLE = "Build it yourself: train a Prototypical Network on Omniglot"

# the notebook's settings, its target, the given embedding and the data (the notebook reads them from the same module)
IMAGE_SIZE, CHANNELS, BLOCKS = build_protonet.IMAGE_SIZE, build_protonet.CHANNELS, build_protonet.BLOCKS
N_WAY, K_SHOT, K_QUERY = build_protonet.N_WAY, build_protonet.K_SHOT, build_protonet.K_QUERY
BETA, EPISODES, SEED = build_protonet.BETA, build_protonet.EPISODES, build_protonet.SEED
TARGET_ACCURACY, EVAL_EPISODES = build_protonet.TARGET_ACCURACY, build_protonet.EVAL_EPISODES
embed, ExerciseData, exercise_data = build_protonet.embed, build_protonet.ExerciseData, build_protonet.exercise_data
heldout_accuracy, how_to_get = build_protonet.heldout_accuracy, build_protonet.how_to_get


def missing_splits():
    """The Omniglot splits the exercise needs that are not on this machine (names)."""
    return build_protonet.missing_splits()


PROTONET = ("mlcourse.protonet.prototypes", "mlcourse.protonet.logits", "mlcourse.protonet.cross_entropy",
            "mlcourse.protonet.protonet_loss", "mlcourse.protonet._loss", "mlcourse.protonet.protonet_value_and_grad",
            "mlcourse.protonet.embed_episode", "mlcourse.protonet.predict", "mlcourse.protonet.accuracy",
            "mlcourse.fastconv.protonet_value_and_grad", "mlcourse.fastconv._protonet_head",
            "mlcourse.fastconv._softmax_minus_onehot")
TRAINER = ("mlcourse.train.meta_train",)


class _OmniglotCall(Sequence):
    """A test's calls, the Omniglot images loaded when the test is first used (never at import).

    Without the data the images are None and the judge says how to get them.
    """

    def __len__(self):
        return 1

    def __getitem__(self, i):
        if i not in (0, -1):
            raise IndexError(i)
        return self._args()

    @functools.lru_cache(maxsize=1)
    def _args(self):
        images = None if missing_splits() else build_protonet.load().images
        theta0 = conv.conv4_init(np.random.default_rng(SEED), channels=CHANNELS, blocks=BLOCKS)
        return (theta0, images, SEED, EPISODES, N_WAY, K_SHOT, K_QUERY, BETA)

    def __repr__(self):
        return "(Omniglot background images, loaded when graded)"


# ---- references (the engine) ------------------------------------------------------------------------

def _episode(xs, ys, xq, yq, n_way):
    return protonet.Episode(np.asarray(xs), np.asarray(ys), np.asarray(xq), np.asarray(yq), int(n_way))


def ref_protonet_loss(theta, xs, ys, xq, yq, n_way):
    return float(protonet.protonet_loss(theta, _episode(xs, ys, xq, yq, n_way), model=embed))


def ref_train_protonet(theta, images, seed, episodes, n_way, k_shot, k_query, beta):
    """The engine's trainer on the engine's ProtoNet loss: what the learner's loop must reproduce."""
    def sample(rng):
        return protonet.Episode.from_sample(tasks.sample_episode(rng, images, n_way, k_shot, k_query))
    theta, _ = train.meta_train(theta, functools.partial(protonet.protonet_value_and_grad, model=embed), sample,
                                rng=np.random.default_rng(seed), iterations=episodes, schedule=train.constant(beta),
                                progress=False)
    return theta


# autograd's computation of the learner's loss against the engine's; Adam divides by the gradient's size
LOOP_RTOL, LOOP_ATOL = 1e-6, 1e-8


# ---- judging the full run ----------------------------------------------------------------------------

def _target(outcomes, calls):
    if missing_splits():
        return 0.0, ("Omniglot is not on the grading machine, so the trained embedding could not be scored; "
                     f"whoever grades should run `{how_to_get(missing_splits())}` and grade again")
    got, err = first_value(outcomes)
    if err:
        return 0.0, err
    theta0 = calls[0][0]
    want = "a list of (W, gamma, beta) blocks shaped like theta (the trained parameters)"
    if not isinstance(got, (list, tuple)) or len(got) != len(theta0):
        return 0.0, f"expected {want}; got {summarize(got)}"
    theta = []
    for i, (block, block0) in enumerate(zip(got, theta0)):
        try:
            arrays = tuple(np.asarray(a, dtype=np.float32) for a in block)
        except (TypeError, ValueError):
            return 0.0, f"expected {want}; block {i} is {summarize(block)}"
        if len(arrays) != 3 or any(a.shape != np.shape(a0) for a, a0 in zip(arrays, block0)):
            return 0.0, f"expected {want}; block {i} has shapes {[a.shape for a in arrays]}"
        if not all(np.all(np.isfinite(a)) for a in arrays):
            return 0.0, f"block {i} of the returned theta holds NaN or infinite values (lower beta?)"
        theta.append(arrays)
    if all(np.array_equal(a, a0) for b, b0 in zip(theta, theta0) for a, a0 in zip(b, b0)):
        return 0.0, "returned theta unchanged: the loop applied no update (return the trained parameters)"
    acc, ci = heldout_accuracy(theta)
    said = (f"accuracy {acc:.1%} ± {ci:.1%} on {EVAL_EPISODES} 5-way 1-shot episodes of held-out alphabets "
            f"(target >= {TARGET_ACCURACY:.0%})")
    if acc >= TARGET_ACCURACY:
        return 1.0, "reaches the target: " + said
    return 0.0, "does not reach the target: " + said


_target.reference = ref_train_protonet   # for the instructor's tools and tests, never shown to learners
whole_run(_target)


def _toy(seed, classes, per_class, n_way, k_shot, k_query):
    """Synthetic 'characters' (classes, per_class, 14, 14) in [0, 1], a float64 embedding, and one episode."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, 1, IMAGE_SIZE, IMAGE_SIZE)) < 0.3
    images = np.clip(protos + 0.4 * rng.standard_normal((classes, per_class, IMAGE_SIZE, IMAGE_SIZE)), 0, 1)
    theta = conv.conv4_init(rng, channels=CHANNELS, blocks=BLOCKS, dtype=np.float64)
    xs, ys, xq, yq, _ = tasks.sample_episode(rng, images, n_way, k_shot, k_query)
    order = rng.permutation(len(ys))   # support rows not sorted by class: the means must follow the labels
    return theta, images, (xs[order], ys[order], xq, yq)


def _questions():
    th, images, (xs, ys, xq, yq) = _toy(100, 12, 6, 5, 1, 3)
    th2, images2, (xs2, ys2, xq2, yq2) = _toy(101, 8, 6, 3, 2, 2)
    th3, _, (xs3, ys3, xq3, yq3) = _toy(102, 24, 4, 20, 1, 2)

    def loss30():
        return by_reference(ref_protonet_loss)

    def loop31():
        return by_reference(ref_train_protonet, rtol=LOOP_RTOL, atol=LOOP_ATOL)
    return [
        Question("q30", ASSIGNMENT, "protonet_loss", "The ProtoNet loss of an episode of images, through embed",
                 forbids=PROTONET,
                 hint="One embed call on np.concatenate([x_support, x_query]), then split the rows back. A class's "
                      "prototype is the mean of its support rows (a one-hot matrix of y_support does every class at "
                      "once); compute the log-softmax stably, subtracting each row's maximum.", tests=(
                     Test("5-way 1-shot, 3 queries per class", ((th, xs, ys, xq, yq, 5),), loss30()),
                     Test("3-way 2-shot, support rows shuffled", ((th2, xs2, ys2, xq2, yq2, 3),), loss30()),
                     Test("20-way 1-shot (hidden)", ((th3, xs3, ys3, xq3, yq3, 20),), loss30(), hidden=True),
                 )),
        Question("q31", ASSIGNMENT, "train_protonet", "The episode loop: train the embedding with Adam on your loss",
                 forbids=PROTONET + TRAINER,
                 hint="Per episode, in this order: tasks.sample_episode(rng, images, n_way, k_shot, k_query), "
                      "autograd's grad of your protonet_loss with respect to theta, one train.adam_update. The rng "
                      "and the Adam state are made once, before the loop.", tests=(
                     Test("2 episodes from seed 0 follow the loop (5-way 1-shot, 12 synthetic characters)",
                          ((th, images, 0, 2, 5, 1, 3, BETA),), loop31()),
                     Test("3 episodes, 3-way 2-shot (hidden)", ((th2, images2, 5, 3, 3, 2, 2, 0.01),), loop31(),
                          hidden=True),
                     Test(f"{EPISODES} Omniglot episodes reach the target on held-out alphabets (hidden)",
                          _OmniglotCall(), _target, points=2.0, hidden=True),
                 )),
    ]


def questions():
    """The questions, each failed test of a short run naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())


__all__ = ["ASSIGNMENT", "TITLE", "questions", "ExerciseData", "exercise_data", "heldout_accuracy", "embed",
           "TARGET_ACCURACY"]
