"""mlcourse.tree: arithmetic on parameter containers, outside and inside autograd."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from mlcourse import tree

from tolerances import EXACT


def _theta(seed=0, dtype=np.float64):
    """An MLP-shaped container [(W1, b1), (W2, b2)] with distinct values everywhere."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(2, 3)).astype(dtype), rng.normal(size=3).astype(dtype)),
            (rng.normal(size=(3, 1)).astype(dtype), rng.normal(size=1).astype(dtype))]


def _same(a, b):
    """Same structure (container types, keys, order) and equal leaves."""
    if isinstance(a, (list, tuple, dict)):
        assert type(a) is type(b), (type(a), type(b))
        assert len(a) == len(b)
        if isinstance(a, dict):
            assert list(a) == list(b)
            a, b = list(a.values()), list(b.values())
        for x, y in zip(a, b):
            _same(x, y)
    else:
        np.testing.assert_allclose(a, b, rtol=EXACT, atol=0)
        assert np.shape(a) == np.shape(b)


def test_tree_map_keeps_the_structure_and_applies_leafwise():
    a = {"enc": [(np.ones(2), np.arange(3.0))], "head": (np.full((2, 2), 3.0),)}
    b = {"enc": [(np.full(2, 2.0), np.ones(3))], "head": (np.eye(2),)}
    out = tree.tree_map(lambda x, y: x * 10 + y, a, b)
    _same(out, {"enc": [(np.full(2, 12.0), np.arange(3.0) * 10 + 1)], "head": (np.full((2, 2), 30.0) + np.eye(2),)})
    assert type(out["enc"][0]) is tuple and type(out["head"]) is tuple


def test_leaves_in_order():
    th = _theta()
    assert [np.shape(x) for x in tree.leaves(th)] == [(2, 3), (3,), (3, 1), (1,)]
    assert tree.leaves(th)[2] is th[1][0]
    assert [float(x) for x in tree.leaves({"b": 2.0, "a": [1.0, 3.0]})] == [2.0, 1.0, 3.0]  # dict order kept
    assert [float(x) for x in tree.leaves(np.float64(0.5))] == [0.5]


def test_add_sub_scale_interpolate():
    a, b = _theta(0), _theta(1)
    _same(tree.add(a, b), [(Wa + Wb, ba + bb) for (Wa, ba), (Wb, bb) in zip(a, b)])
    _same(tree.sub(a, b), [(Wa - Wb, ba - bb) for (Wa, ba), (Wb, bb) in zip(a, b)])
    _same(tree.scale(-2.5, a), [(-2.5 * W, -2.5 * bb) for W, bb in a])
    _same(tree.interpolate(a, b, 0.0), a)
    _same(tree.interpolate(a, b, 1.0), b)
    _same(tree.interpolate(a, b, 0.25), [(0.75 * Wa + 0.25 * Wb, 0.75 * ba + 0.25 * bb)
                                         for (Wa, ba), (Wb, bb) in zip(a, b)])


def test_operations_return_new_containers_and_never_write_into_inputs():
    a, b = _theta(0), _theta(1)
    a0, b0 = [(W.copy(), c.copy()) for W, c in a], [(W.copy(), c.copy()) for W, c in b]
    outs = [tree.add(a, b), tree.sub(a, b), tree.scale(3.0, a), tree.interpolate(a, b, 0.5), tree.zeros_like(a),
            tree.astype(a, np.float32), tree.task_mean(tree.tile_tasks(a, 2))]
    _same(a, a0)
    _same(b, b0)
    for out in outs:
        assert all(x is not y for x, y in zip(tree.leaves(out), tree.leaves(a)))


def test_dot_and_norm():
    a, b = _theta(0), _theta(1)
    flat_a = np.concatenate([np.ravel(x) for x in tree.leaves(a)])
    flat_b = np.concatenate([np.ravel(x) for x in tree.leaves(b)])
    assert abs(tree.dot(a, b) - flat_a @ flat_b) < EXACT
    assert abs(tree.norm(a) - np.linalg.norm(flat_a)) < EXACT
    assert isinstance(tree.norm(a), float)
    assert tree.norm(tree.zeros_like(a)) == 0.0


def test_flatten_round_trip():
    a = _theta(0)
    vec, unflatten = tree.flatten(a)
    assert vec.shape == (2 * 3 + 3 + 3 * 1 + 1,)
    np.testing.assert_array_equal(vec, np.concatenate([np.ravel(x) for x in tree.leaves(a)]))
    _same(unflatten(vec), a)
    _same(unflatten(2 * vec), tree.scale(2.0, a))


def test_zeros_like_and_astype_keep_shapes():
    a = _theta(0, np.float32)
    z = tree.zeros_like(a)
    assert [x.shape for x in tree.leaves(z)] == [x.shape for x in tree.leaves(a)]
    assert all(x.dtype == np.float32 and not np.any(x) for x in tree.leaves(z))
    d = tree.astype(a, np.float64)
    assert all(x.dtype == np.float64 for x in tree.leaves(d))
    _same(d, tree.astype(a, np.float64))
    np.testing.assert_array_equal(tree.leaves(d)[0], tree.leaves(a)[0].astype(np.float64))


def test_tile_tasks_and_task_mean():
    a = _theta(0, np.float32)
    tiled = tree.tile_tasks(a, 4)
    assert [x.shape for x in tree.leaves(tiled)] == [(4, 2, 3), (4, 3), (4, 3, 1), (4, 1)]
    assert all(x.dtype == np.float32 for x in tree.leaves(tiled))
    for t in range(4):
        _same([(W[t], b[t]) for W, b in tiled], a)
    _same(tree.task_mean(tiled), a)
    per_task = [(np.stack([W * (t + 1) for t in range(3)]), np.stack([b + t for t in range(3)])) for W, b in a]
    _same(tree.task_mean(per_task), [(2 * W, b + 1) for W, b in a])   # mean of 1, 2, 3 is 2; of 0, 1, 2 is 1
    assert tree.tile_tasks(np.float64(0.8), 3).shape == (3,)          # a scalar theta gets a task axis too


def test_is_traced_only_inside_autograd():
    a = _theta(0)
    assert not tree.is_traced(a)
    seen = []

    def f(th):
        seen.append(tree.is_traced(th))
        return tree.dot(th, th)
    grad(f)(a)
    assert seen == [True]


def test_autograd_differentiates_through_tree_operations():
    a = _theta(0)
    # f(theta) = <2 theta, theta + 0.5 ((theta - theta) - theta)> = |theta|^2, with every differentiable operation
    f = lambda th: tree.dot(tree.scale(2.0, th), tree.interpolate(th, tree.sub(th, th), 0.5))  # noqa: E731
    _same(grad(f)(a), tree.scale(2.0, a))
    h = lambda th: tree.dot(tree.add(th, th), th)  # noqa: E731   2 |theta|^2
    _same(grad(h)(a), tree.scale(4.0, a))
    # through a task axis and back: mean over 3 identical copies of theta, then |.|^2 summed over leaves
    g = lambda th: sum(anp.sum(x ** 2) for x in tree.leaves(tree.task_mean(tree.tile_tasks(th, 3))))  # noqa: E731
    _same(grad(g)(a), tree.scale(2.0, a))
    # dict containers are boxed as a whole (DictBox) and read like plain dicts
    d = {"w": np.array([1.0, -2.0]), "b": np.array(3.0)}
    _same(grad(lambda p: tree.dot(tree.sub(p, tree.scale(0.5, p)), p))(d), {"w": d["w"], "b": d["b"]})


def test_mismatched_leaves_raise():
    a = _theta(0)
    wrong = [(np.ones((2, 4)), np.ones(4)), (np.ones((4, 1)), np.ones(1))]
    with pytest.raises(ValueError):
        tree.add(a, wrong)            # leaf shapes that do not broadcast
    with pytest.raises(ValueError, match="keys"):
        tree.sub({"w": np.ones(2)}, {"v": np.ones(2)})


def test_containers_of_different_lengths_raise():
    a = _theta(0)
    with pytest.raises(ValueError, match="2 entries"):
        tree.add(a, a[:1])


def test_zeros_like_inside_autograd():
    a = _theta(0)
    _same(grad(lambda th: tree.dot(tree.add(th, tree.zeros_like(th)), th))(a), tree.scale(2.0, a))
