"""ex10, build it yourself: a Prototypical Network trained on Omniglot.  q30 protonet_loss (images in, through a
given convolutional embedding), q31 train_protonet (the episode loop, from the learner's own loss and autograd).

The loop is judged twice: two episodes on small synthetic images must follow the loop the notebook prescribes
(the engine's trainer gives the reference, so each common mistake is a different set of parameters; no data
needed), and a full run on Omniglot's background alphabets must reach the stated accuracy on held-out alphabets,
scored here (hidden: it needs the data and a few seconds).  While q30 and q31 are graded, the engine's ProtoNet
loss, its pieces and its trainer are unavailable.

The Omniglot images reach the learner's function as an argument: the grading process cannot read the data
folder, so the grader loads them (``exercise_data``) when the full-run test is first used.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import autograd.numpy as anp
import numpy as np
from autograd import grad as ag_grad

from ... import conv, protonet, tasks, train
from ...data import omniglot, protocol
from ..matching import summarize
from ..mistakes import Mistake, naming
from ..spec import Question, Test, by_reference, first_value

ASSIGNMENT = "ex10"
TITLE = "Build it yourself: train a Prototypical Network on Omniglot"

# the notebook's settings, which the full-run test uses too
IMAGE_SIZE = 14             # Omniglot downscaled 105 -> 14 pixels (area average)
CHANNELS, BLOCKS = 16, 3    # the embedding: conv.conv4_init(rng, CHANNELS, BLOCKS), 14 -> 7 -> 3 -> 1, 16 numbers
N_WAY, K_SHOT, K_QUERY = 20, 1, 2   # training episodes: 20-way 1-shot, 2 queries per class (60 images)
BETA = 0.004                # Adam's learning rate
EPISODES = 300              # training episodes (about 2 s of CPU time)
SEED = 0

# the stated target: mean accuracy on the first EVAL_EPISODES of the protocol's fixed 5-way 1-shot episodes
# (15 queries per class) drawn from the three alphabets of images_background_small2 that training never sees
TARGET_ACCURACY = 0.70
EVAL_EPISODES = 300

PROTONET = ("mlcourse.protonet.prototypes", "mlcourse.protonet.logits", "mlcourse.protonet.cross_entropy",
            "mlcourse.protonet.protonet_loss", "mlcourse.protonet._loss", "mlcourse.protonet.protonet_value_and_grad",
            "mlcourse.protonet.embed_episode", "mlcourse.protonet.predict", "mlcourse.protonet.accuracy")
TRAINER = ("mlcourse.train.meta_train",)


def embed(theta, x):
    """The given embedding: conv.conv4_apply, BatchNorm over the images of the call."""
    return conv.conv4_apply(theta, x)


# ---- the data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExerciseData:
    """images (136, 20, s, s) float32: small1's characters, 20 drawers each (ink = 1); heldout: the
    protocol's 5-way 1-shot episodes on the alphabets small1 lacks (``protocol.EpisodeSet``)."""

    images: np.ndarray
    heldout: object


@functools.lru_cache(maxsize=1)
def _load():
    train_split = omniglot.load_split(protocol.TRAIN_SPLIT, size=IMAGE_SIZE)
    heldout = protocol.evaluation_episodes(protocol.evaluation_data(size=IMAGE_SIZE))["b"].subset(EVAL_EPISODES)
    return ExerciseData(np.stack(train_split.classes).astype(np.float32), heldout)


def missing_splits():
    """The Omniglot splits this exercise needs that are not on this machine (names)."""
    out = []
    for split in (protocol.TRAIN_SPLIT, protocol.EVAL_SPLIT):
        try:
            omniglot.find_split(split)
        except (omniglot.MissingDataError, OSError):
            out.append(split)
    return out


def how_to_get(splits):
    """The one shell line that downloads the given splits."""
    return " && ".join(omniglot.download_command(s) for s in splits)


def exercise_data():
    """ExerciseData, or None after one printed note saying how to get Omniglot (the notebook carries on)."""
    missing = missing_splits()
    if not missing:
        try:
            return _load()
        except (omniglot.MissingDataError, PermissionError):   # a folder we may not read counts as missing
            missing = [protocol.TRAIN_SPLIT, protocol.EVAL_SPLIT]
    print("Omniglot is not on this machine, so the cells that train and score on it are skipped (the checks of your "
          "loss and of your loop still run). To get it, run in a terminal\n\n"
          f"    {how_to_get(missing)}\n\nthen restart the kernel and run the notebook again.")
    return None


def heldout_accuracy(theta, data=None):
    """Mean accuracy and its 95% interval over the held-out episodes (each embedded in one call)."""
    data = _load() if data is None else data
    acc = [protonet.accuracy(theta, data.heldout.episode(e), model=embed) for e in range(len(data.heldout))]
    s = protocol.score(acc)
    return s["accuracy"], s["ci95"]


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
        images = None if missing_splits() else _load().images
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


# ---- the mistakes -----------------------------------------------------------------------------------

def _class_means(z, y, n_way):
    onehot = (np.asarray(y)[:, None] == np.arange(n_way)[None, :]).astype(float)
    return anp.dot(onehot.T, z) / onehot.sum(axis=0)[:, None]


def _sq_dist(zq, c):
    return anp.sum((zq[:, None, :] - c[None, :, :]) ** 2, axis=2)


def _xent(logit, y, reduce=anp.mean):
    mx = np.max(logit._value if hasattr(logit, "_value") else logit, axis=1, keepdims=True)
    shifted = logit - mx
    lse = anp.log(anp.sum(anp.exp(shifted), axis=1))
    return reduce(lse - shifted[np.arange(len(y)), np.asarray(y)])


def _loss(theta, xs, ys, xq, yq, n_way, kind=None):
    """The ProtoNet loss, or the loss with one common mistake (kind)."""
    if kind == "separate":
        zs, zq = embed(theta, xs), embed(theta, xq)
    else:
        z = embed(theta, anp.concatenate([xs, xq]))
        zs, zq = z[:len(xs)], z[len(xs):]
    if kind == "swapped":
        zs, zq, ys, yq = zq, zs, yq, ys
    c = _class_means(zq if kind == "from_queries" else zs, yq if kind == "from_queries" else ys, n_way)
    d = _sq_dist(zq, c)
    logit = {"plus": d, "unsquared": -anp.sqrt(d + 1e-30)}.get(kind, -d)
    return _xent(logit, yq, anp.sum if kind == "sum" else anp.mean)


FROM_QUERIES = ("prototypes from the queries", "Prototypes are the class means of the *support* embeddings; "
                "the queries are what gets classified, so building prototypes from them lets the labels being "
                "predicted leak into the classifier.")
PLUS = ("logits without the minus sign", "The logit of class k is minus the squared distance to its prototype: "
        "nearer means more likely. Without the minus sign the softmax favours the farthest prototype.")
UNSQUARED = ("unsquared distances", "ProtoNet's logits use the squared Euclidean distance (Snell et al.), not "
             "the distance itself.")
SEPARATE = ("support and query embedded separately", "Embed the support and query images of an episode in one call "
            "of embed: BatchNorm normalises over the images of the call, so two calls give the two sets different "
            "statistics and embeddings that no longer compare.")
SWAPPED = ("support and query swapped", "Prototypes come from D_s (x_support, y_support) and the loss scores D_q "
           "(x_query, y_query), not the other way round.")
SUM = ("a sum where a mean was asked", "The loss is the *mean* cross-entropy over the query images, not their sum "
       "(a sum changes the scale with the number of queries).")

Q30_MISTAKES = tuple(Mistake(name, says, answer=functools.partial(lambda kind, *a: float(_loss(*a, kind=kind)), kind))
                     for (name, says), kind in ((FROM_QUERIES, "from_queries"), (PLUS, "plus"), (UNSQUARED, "unsquared"),
                                                (SEPARATE, "separate"), (SWAPPED, "swapped"), (SUM, "sum")))


def _loop(theta, images, seed, episodes, n_way, k_shot, k_query, beta, kind=None, reuse=False, ascent=False):
    """The prescribed loop on the loss with one mistake (kind), or with the loop itself broken."""
    rng = np.random.default_rng(seed)
    state = train.adam_init(theta)
    g_loss = ag_grad(_loss)
    ep = None
    for _ in range(int(episodes)):
        if ep is None or not reuse:
            ep = tasks.sample_episode(rng, images, n_way, k_shot, k_query)
        g = g_loss(theta, *ep[:4], n_way, kind)
        if ascent:
            g = [tuple(-a for a in block) for block in g]
        theta, state = train.adam_update(state, theta, g, beta)
    return [tuple(np.asarray(a) for a in block) for block in theta]


def _loop_mistake(words, **kw):
    return Mistake(words[0], words[1], answer=lambda *a: _loop(*a, **kw))


Q31_MISTAKES = (
    _loop_mistake(FROM_QUERIES, kind="from_queries"),
    _loop_mistake(PLUS, kind="plus"),
    _loop_mistake(SEPARATE, kind="separate"),
    _loop_mistake(UNSQUARED, kind="unsquared"),
    _loop_mistake(("one episode reused", "Draw a fresh episode from rng at every step: training on one episode "
                   "learns those few characters, not an embedding for new ones."), reuse=True),
    _loop_mistake(("gradient ascent", "Adam's update moves against the gradient (train.adam_update(state, theta, g, "
                   "beta) with g the gradient of the loss itself); this climbs the loss."), ascent=True),
)

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


def _toy(seed, classes, per_class, n_way, k_shot, k_query):
    """Synthetic 'characters' (classes, per_class, 14, 14) in [0, 1], a float64 embedding, and one episode."""
    rng = np.random.default_rng(seed)
    protos = rng.random((classes, 1, IMAGE_SIZE, IMAGE_SIZE)) < 0.3
    images = np.clip(protos + 0.4 * rng.standard_normal((classes, per_class, IMAGE_SIZE, IMAGE_SIZE)), 0, 1)
    theta = conv.conv4_init(rng, channels=CHANNELS, blocks=BLOCKS, dtype=np.float64)
    xs, ys, xq, yq, _ = tasks.sample_episode(rng, images, n_way, k_shot, k_query)
    order = rng.permutation(len(ys))   # support rows not sorted by class: the means must follow the labels
    return theta, images, (xs[order], ys[order], xq, yq)


def questions():
    th, images, (xs, ys, xq, yq) = _toy(100, 12, 6, 5, 1, 3)
    th2, images2, (xs2, ys2, xq2, yq2) = _toy(101, 8, 6, 3, 2, 2)
    th3, _, (xs3, ys3, xq3, yq3) = _toy(102, 24, 4, 20, 1, 2)

    def loss30():
        return naming(by_reference(ref_protonet_loss), *Q30_MISTAKES)

    def loop31():
        return naming(by_reference(ref_train_protonet, rtol=LOOP_RTOL, atol=LOOP_ATOL), *Q31_MISTAKES)
    return [
        Question("q30", ASSIGNMENT, "protonet_loss", "The ProtoNet loss of an episode of images, through embed",
                 forbids=PROTONET, tests=(
                     Test("5-way 1-shot, 3 queries per class", ((th, xs, ys, xq, yq, 5),), loss30()),
                     Test("3-way 2-shot, support rows shuffled", ((th2, xs2, ys2, xq2, yq2, 3),), loss30()),
                     Test("20-way 1-shot (hidden)", ((th3, xs3, ys3, xq3, yq3, 20),), loss30(), hidden=True),
                 )),
        Question("q31", ASSIGNMENT, "train_protonet", "The episode loop: train the embedding with Adam on your loss",
                 forbids=PROTONET + TRAINER, tests=(
                     Test("2 episodes from seed 0 follow the loop (5-way 1-shot, 12 synthetic characters)",
                          ((th, images, 0, 2, 5, 1, 3, BETA),), loop31()),
                     Test("3 episodes, 3-way 2-shot (hidden)", ((th2, images2, 5, 3, 3, 2, 2, 0.01),), loop31(),
                          hidden=True),
                     Test(f"{EPISODES} Omniglot episodes reach the target on held-out alphabets (hidden)",
                          _OmniglotCall(), _target, points=2.0, hidden=True),
                 )),
    ]


__all__ = ["ASSIGNMENT", "TITLE", "questions", "ExerciseData", "exercise_data", "heldout_accuracy", "embed",
           "TARGET_ACCURACY"]
