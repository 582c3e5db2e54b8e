"""The "minimal background" protocol: training classes, fixed evaluation episodes, intervals."""
import os

import numpy as np
import pytest

from mlcourse.data import omniglot, protocol

pytestmark = pytest.mark.skipif(not os.environ.get(omniglot.ENV_VAR), reason="needs $MLCOURSE_OMNIGLOT (conftest.py)")


@pytest.fixture(scope="module")
def eval_data():
    return protocol.evaluation_data()


def test_training_classes_are_small1_with_three_rotations():
    data = protocol.training_classes()
    assert data.num_classes == 544 and set(data.alphabets) == {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
    c = data.character_of.index(data.character_of[0].replace("_rot0", "") + "_rot90")
    assert np.array_equal(data.classes[c], np.rot90(data.classes[0], 1, axes=(1, 2)))


def test_evaluation_alphabets_are_the_three_not_in_small1(eval_data):
    counts = {a: len(c) for a, c in eval_data.by_alphabet().items()}
    assert counts == {"Japanese_(katakana)": 47, "Sanskrit": 42, "Tagalog": 17}


def test_within_alphabet_episodes_one_alphabet_two_drawers(eval_data):
    ev = protocol.evaluation_episodes(eval_data, num_episodes=50)["a"]
    for e in range(len(ev)):
        cls, dr = ev.classes[e], ev.drawers[e]
        assert len(set(cls.tolist())) == 20
        assert len({eval_data.alphabet_of[c] for c in cls}) == 1
        assert eval_data.alphabet_of[cls[0]] in protocol.WITHIN_ALPHABETS
        assert (dr[:, 0] == dr[0, 0]).all() and (dr[:, 1] == dr[0, 1]).all() and dr[0, 0] != dr[0, 1]
    xs, ys, xq, yq = ev.arrays(0)
    assert xs.shape == (20, 28, 28) and xq.shape == (20, 28, 28) and (ys == yq).all()
    c0, d0 = ev.classes[0][3], ev.drawers[0][3]
    assert np.array_equal(xs[3], eval_data.classes[c0][d0[0]]) and np.array_equal(xq[3], eval_data.classes[c0][d0[1]])


def test_pooled_episodes_five_classes_sixteen_distinct_drawers(eval_data):
    ev = protocol.evaluation_episodes(eval_data, num_episodes=50)["b"]
    assert ev.classes.shape == (50, 5) and ev.drawers.shape == (50, 5, 16)
    for e in range(len(ev)):
        assert len(set(ev.classes[e].tolist())) == 5
        assert all(len(set(d.tolist())) == 16 for d in ev.drawers[e])
    xs, ys, xq, yq = ev.batch(0, 3)
    assert xs.shape == (3, 5, 28, 28) and xq.shape == (3, 75, 28, 28) and yq.shape == (3, 75)


def test_episodes_are_fixed_by_the_seed(eval_data):
    a = protocol.evaluation_episodes(eval_data, num_episodes=20)
    b = protocol.evaluation_episodes(eval_data, num_episodes=20)
    c = protocol.evaluation_episodes(eval_data, seed=1, num_episodes=20)
    assert all(np.array_equal(a[k].classes, b[k].classes) and np.array_equal(a[k].drawers, b[k].drawers) for k in "ab")
    assert not np.array_equal(a["a"].classes, c["a"].classes)
    full = protocol.evaluation_episodes(eval_data)
    assert len(full["a"]) == len(full["b"]) == 1000
    assert np.array_equal(full["a"].subset(20).classes, a["a"].classes)


def test_score_interval_is_196_sd_over_sqrt_n():
    acc = np.array([1.0, 0.5, 0.75, 0.25])
    s = protocol.score(acc)
    assert s["accuracy"] == 0.625 and s["error"] == 0.375 and s["episodes"] == 4
    assert abs(s["ci95"] - 1.96 * acc.std(ddof=1) / 2) < 1e-12
    with pytest.raises(ValueError, match="non-empty"):
        protocol.score([])
