"""ex06, few-shot classification: q13 prototypes, q14 protonet_logits, q15 protonet_loss, q16 conv3x3_same."""
from __future__ import annotations

import numpy as np

from ... import conv, protonet
from ..spec import Question, Test, by_reference
from ._common_mistakes import attach

ASSIGNMENT = "ex06"
TITLE = "Few-shot classification: Prototypical Networks and the convolution"


def _episode(seed, n_way, k_shot, k_query, dim, noise=0.7):
    """Embeddings of one episode: z_support (N*K, d), y_support (N*K,), z_query (N*Q, d), y_query (N*Q,)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_way, dim))
    ys = np.repeat(np.arange(n_way), k_shot)
    yq = np.repeat(np.arange(n_way), k_query)
    zs = centres[ys] + noise * rng.standard_normal((len(ys), dim))
    zq = centres[yq] + noise * rng.standard_normal((len(yq), dim))
    order = rng.permutation(len(ys))   # support rows not sorted by class: the mean must follow the labels
    return zs[order], ys[order], zq, yq


def ref_prototypes(z_support, y_support, n_way):
    return protonet.prototypes(z_support, y_support, n_way)


def ref_logits(z_query, c):
    return protonet.logits(z_query, c)


def ref_loss(z_support, y_support, z_query, y_query, n_way):
    return float(protonet.cross_entropy(ref_logits(z_query, ref_prototypes(z_support, y_support, n_way)), y_query))


def ref_conv(x, W):
    return conv.conv3x3(np.asarray(x)[None], np.asarray(W)[None])[0]


def _questions():
    zs, ys, zq, yq = _episode(60, 5, 1, 3, 8)
    zs2, ys2, zq2, yq2 = _episode(61, 3, 5, 4, 16, noise=1.5)   # classes that overlap: a loss far from 0
    zs3, ys3, zq3, yq3 = _episode(62, 20, 2, 1, 64)
    # classes that overlap, scaled so that squared distances run to the hundreds of thousands: many queries
    # are nearer another class's prototype, so the loss is large (a naive softmax gives inf or nan)
    zs4, ys4, zq4, yq4 = (30 * a if a.dtype.kind == "f" else a for a in _episode(64, 20, 2, 2, 64, noise=2.0))
    c, c2 = ref_prototypes(zs, ys, 5), ref_prototypes(zs2, ys2, 3)
    rng = np.random.default_rng(63)
    x1, W1 = rng.standard_normal((2, 5, 5, 1)), rng.standard_normal((3, 3, 1, 2))
    x2, W2 = rng.standard_normal((3, 4, 6, 3)), rng.standard_normal((3, 3, 3, 4))
    x3, W3 = rng.standard_normal((1, 1, 1, 2)), rng.standard_normal((3, 3, 2, 3))
    return [
        Question("q13", ASSIGNMENT, "prototypes", "Prototypes: the mean support embedding of each class", forbids=("mlcourse.protonet.prototypes",),
                 hint="z_support[y_support == k] selects the rows of class k, wherever they are; average them over "
                      "the rows (axis 0) and stack the n_way means.", tests=(
            Test("5-way 1-shot, d = 8", ((zs, ys, 5),), by_reference(ref_prototypes)),
            Test("3-way 5-shot, support rows shuffled", ((zs2, ys2, 3),), by_reference(ref_prototypes)),
            Test("20-way 2-shot, d = 64 (hidden)", ((zs3, ys3, 20),), by_reference(ref_prototypes), hidden=True),
        )),
        Question("q14", ASSIGNMENT, "protonet_logits", "ProtoNet logits: minus the squared distance to each prototype", forbids=("mlcourse.protonet.logits",),
                 hint="The difference z_query[:, None, :] - c[None, :, :] has shape (M, N, d): square it, sum over the "
                      "last axis, and mind the sign.", tests=(
            Test("15 queries, 5 prototypes", ((zq, c),), by_reference(ref_logits)),
            Test("12 queries, 3 prototypes, d = 16", ((zq2, c2),), by_reference(ref_logits)),
            Test("a query on a prototype has logit 0 (hidden)", ((c2[:2], c2),), by_reference(ref_logits),
                 hidden=True),
        )),
        Question("q15", ASSIGNMENT, "protonet_loss", "ProtoNet loss: cross-entropy of the query set", forbids=("mlcourse.protonet.cross_entropy", "mlcourse.protonet.prototypes", "mlcourse.protonet.logits", "mlcourse.protonet.protonet_loss", "mlcourse.protonet._loss", "mlcourse.fastconv._protonet_head", "mlcourse.fastconv._softmax_minus_onehot"),
                 hint="Prototypes from the support set, logits of the queries; log p = logits - m - log(sum(exp(logits "
                      "- m))) with m each row's maximum; pick each query's true class with "
                      "log_p[np.arange(M), y_query].", tests=(
            Test("5-way 1-shot, 3 queries per class", ((zs, ys, zq, yq, 5),), by_reference(ref_loss)),
            Test("3-way 5-shot, 4 queries per class", ((zs2, ys2, zq2, yq2, 3),), by_reference(ref_loss)),
            Test("20-way, overlapping classes at large distances (hidden: a stable log-softmax)",
                 ((zs4, ys4, zq4, yq4, 20),), by_reference(ref_loss), hidden=True),
        )),
        Question("q16", ASSIGNMENT, "conv3x3_same", "A 3x3 'same' convolution with zero padding (im2col)", forbids=("mlcourse.conv.conv3x3", "mlcourse.conv._im2col", "mlcourse.fastconv._im2col"),
                 hint="np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))) pads with zeros; stack the nine views "
                      "x_pad[:, a:a+H, b:b+W, :] for a, b in 0..2 in the order W's first two axes have (a first), "
                      "so that the reshaped columns line up with W.reshape(9 * C, O).", tests=(
            Test("2 images 5x5, 1 -> 2 channels", ((x1, W1),), by_reference(ref_conv)),
            Test("3 images 4x6, 3 -> 4 channels", ((x2, W2),), by_reference(ref_conv)),
            Test("a 1x1 image sees only the centre tap (hidden)", ((x3, W3),), by_reference(ref_conv), hidden=True),
        )),
    ]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
