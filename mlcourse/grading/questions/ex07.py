"""ex07, meta-overfitting and practical variants: q17 metasgd_step, q18 meta_gap, q19 anil_head_step."""
from __future__ import annotations

import numpy as np

from ... import maml, metasgd, taskpool, tree
from ..blocking import INNER_LOOP
from ..spec import Question, Test, by_reference, raises
from ._common_mistakes import attach
from ._inputs import sine

ASSIGNMENT = "ex07"
TITLE = "Meta-overfitting and practical variants: Meta-SGD, the generalisation gap, ANIL"


def ref_metasgd_step(theta, alpha, x_support, y_support):
    out = metasgd.metasgd_step(theta, alpha, x_support[None], y_support[None])
    return [(W[0], b[0]) for W, b in out]


def ref_meta_gap(train_losses, test_losses):
    g = taskpool.generalisation_gap(train_losses, test_losses)
    return np.array([g["train"], g["test"], g["gap"], g["ci95"]])


def ref_anil_head_step(W, b, phi_support, y_support, alpha):
    (W1, b1), = maml.adapt([(W, b)], phi_support[None], y_support[None], alpha, 1)
    return W1[0], b1[0]


def _alpha(seed, theta, low=0.005, high=0.1):
    return metasgd.init_alpha(np.random.default_rng(seed), theta, low, high)


def _questions():
    th, xs, ys, _, _ = sine(70, 1, 5)
    th2, xs2, ys2, _, _ = sine(71, 1, 10, (1, 12, 12, 1))
    a, a2 = _alpha(0, th), _alpha(1, th2, 0.001, 0.3)
    same = tree.tree_map(lambda w: np.full_like(w, 0.02), th2)
    negative = tree.tree_map(lambda w: np.full_like(w, 0.01), th)
    negative[1] = (-negative[1][0], negative[1][1])
    rng = np.random.default_rng(72)
    tr, te = rng.gamma(2.0, 0.2, size=30), rng.gamma(2.0, 1.0, size=50)
    tr2, te2 = rng.gamma(1.0, 0.5, size=200), rng.gamma(1.5, 0.6, size=7)
    rng = np.random.default_rng(73)
    phi, y = np.maximum(rng.normal(size=(5, 6)), 0), rng.normal(size=(5, 1))
    W, b = rng.normal(size=(6, 1)) * 0.3, rng.normal(size=1) * 0.1
    phi2, y2 = np.maximum(rng.normal(size=(8, 4)), 0), rng.normal(size=(8, 2))
    W2, b2 = rng.normal(size=(4, 2)) * 0.3, np.zeros(2)
    return [
        Question("q17", ASSIGNMENT, "metasgd_step", "Meta-SGD: theta - alpha * grad L_s(theta), alpha per entry", forbids=INNER_LOOP,
                 hint="Check alpha first (any entry < 0: ValueError). Then zip theta, alpha and the support gradient "
                      "layer by layer and step every W and b with its own alpha array.", tests=(
            Test("1-8-8-1 MLP, K = 5, alpha in [0.005, 0.1]", ((th, a, xs[0], ys[0]),), by_reference(ref_metasgd_step)),
            Test("1-12-12-1 MLP, K = 10, alpha in [0.001, 0.3]", ((th2, a2, xs2[0], ys2[0]),),
                 by_reference(ref_metasgd_step)),
            Test("a negative step size raises ValueError (hidden)", ((th, negative, xs[0], ys[0]),), raises("ValueError"),
                 hidden=True),
            Test("alpha = 0.02 everywhere is MAML's step (hidden)", ((th2, same, xs2[0], ys2[0]),),
                 by_reference(ref_metasgd_step), hidden=True),
        )),
        Question("q18", ASSIGNMENT, "meta_gap", "The meta-train / meta-test gap and its 95% interval", forbids=("mlcourse.taskpool.generalisation_gap",),
                 hint="np.var(a, ddof=1) / a.size is the squared standard error of a mean; the variances of two "
                      "independent means add.", tests=(
            Test("30 meta-train and 50 meta-test losses", ((tr, te),), by_reference(ref_meta_gap)),
            Test("200 meta-train and 7 meta-test losses", ((tr2, te2),), by_reference(ref_meta_gap)),
            Test("an empty list of losses raises ValueError (hidden)", ((np.zeros(0), te),), raises("ValueError"),
                 hidden=True),
            Test("swapped sides give the opposite gap (hidden)", ((te, tr),), by_reference(ref_meta_gap), hidden=True),
        )),
        Question("q19", ASSIGNMENT, "anil_head_step", "ANIL: one SGD step of the linear head on fixed features", forbids=INNER_LOOP,
                 hint="r = phi_support @ W + b - y_support has shape (K, d); phi_support.T @ r has W's shape and "
                      "r.sum(axis=0) has b's. Both gradients carry the same factor.", tests=(
            Test("6 features, 1 output, K = 5", ((W, b, phi, y, 0.1),), by_reference(ref_anil_head_step)),
            Test("4 features, 2 outputs, K = 8", ((W2, b2, phi2, y2, 0.05),), by_reference(ref_anil_head_step)),
            Test("alpha = 0 leaves the head unchanged (hidden)", ((W2, b2, phi2, y2, 0.0),),
                 by_reference(ref_anil_head_step), hidden=True),
        )),
    ]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
