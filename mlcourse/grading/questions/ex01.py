"""ex01, tasks and episodes: q1 sample_episode, judged by the properties of the episode it returns."""
from __future__ import annotations

import numpy as np

from ..codec import Seed
from ..matching import summarize
from ..spec import Question, Test, first_value, raises
from ._common_mistakes import attach

ASSIGNMENT = "ex01"
TITLE = "Tasks and episodes"


def _pool(num_classes, per_class):
    """Classes whose examples encode where they come from: row = [class index, example index]."""
    return [np.stack([np.full(per_class, c, float), np.arange(per_class, dtype=float)], axis=1)
            for c in range(num_classes)]


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
    got, err = first_value(outcomes)
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


def _questions():
    pool8, pool20 = _pool(8, 6), _pool(20, 7)
    return [Question("q1", ASSIGNMENT, "sample_episode", "Sample an N-way K-shot episode", forbids=("mlcourse.tasks.sample_episode",),
        hint="rng.choice(len(classes), size=n_way, replace=False) draws the classes; for each, one permutation of its "
             "examples gives K + Q distinct ones, the first K for the support set and the next Q for the query set. "
             "The label is the class's position in the draw (0 .. N-1), not its index in the pool.", tests=(
        Test("5-way 1-shot, 2 query", ((Seed(0), pool8, 5, 1, 2),), episode_properties),
        Test("3-way 2-shot, 3 query", ((Seed(1), pool8, 3, 2, 3),), episode_properties),
        Test("deterministic for a given rng", tuple((Seed(s), pool20, 5, 1, 2) for s in (3, 3, 4, 5)),
             episode_determinism),
        Test("n_way larger than the pool raises ValueError", ((Seed(2), pool8, 9, 1, 1),), raises("ValueError")),
        Test("20-way 3-shot (hidden)", ((Seed(7), pool20, 20, 3, 4),), episode_properties, hidden=True),
    ))]


def questions():
    """The questions, each failed test naming the common mistake it matches (``_common_mistakes``)."""
    return attach(_questions())
