"""Prototypical Networks: prototypes, logits, loss and gradient against finite differences."""
import numpy as np
import pytest

from mlcourse import checks, conv, protonet, tasks

from tolerances import EXACT, FD_TOL


def _theta(rng):
    theta = conv.conv4_init(rng, channels=3, blocks=2, dtype=np.float64)
    return [(W, g + 0.3 * rng.standard_normal(g.shape), b + 0.1 * rng.standard_normal(b.shape)) for W, g, b in theta]


def _episode(rng, n_way=3, k_shot=2, k_query=2, size=6):
    classes = [rng.random((6, size, size)) for _ in range(5)]
    return protonet.Episode.from_sample(tasks.sample_episode(rng, classes, n_way, k_shot, k_query))


def test_prototypes_are_class_means_and_logits_negative_squared_distances():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4))
    y = np.array([2, 0, 1, 0, 2, 1])
    c = protonet.prototypes(z, y, 3)
    for k in range(3):
        assert np.max(np.abs(c[k] - z[y == k].mean(axis=0))) < EXACT
    zq = rng.standard_normal((5, 4))
    lg = protonet.logits(zq, c)
    assert lg.shape == (5, 3)
    assert np.max(np.abs(lg - -((zq[:, None] - c[None]) ** 2).sum(-1))) < 1e-12


def test_loss_is_cross_entropy_of_the_logits():
    rng = np.random.default_rng(1)
    theta, ep = _theta(rng), _episode(rng)
    zs, zq = protonet.embed_episode(theta, ep)
    lg = protonet.logits(zq, protonet.prototypes(zs, ep.y_support, ep.n_way))
    p = np.exp(lg - lg.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(len(ep.y_query)), ep.y_query]))
    assert abs(protonet.protonet_loss(theta, ep) - expected) < EXACT


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    theta, ep = _theta(rng), _episode(rng)
    loss, g = protonet.protonet_value_and_grad(theta, ep)
    fd = checks.finite_difference_grad(lambda th: protonet.protonet_loss(th, ep), theta, eps=1e-6)
    assert checks.rel_error(g, fd) < FD_TOL
    assert abs(loss - protonet.protonet_loss(theta, ep)) < EXACT


def test_predict_and_accuracy_on_separable_embeddings():
    """With the identity as the model, queries equal to their prototypes are all classified right."""
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((3, 2, 2))
    ep = protonet.Episode(xs, np.arange(3), xs[[2, 0, 1]] + 1e-3, np.array([2, 0, 1]), 3)
    identity = lambda theta, x: x.reshape(len(x), -1)  # noqa: E731
    labels, lg = protonet.predict(None, ep.x_support, ep.y_support, ep.x_query, 3, model=identity)
    assert labels.tolist() == [2, 0, 1] and lg.shape == (3, 3)
    assert protonet.accuracy(None, ep, model=identity) == 1.0


def test_bad_episodes_say_what_to_change():
    rng = np.random.default_rng(4)
    ep = _episode(rng)
    with pytest.raises(ValueError, match="outside"):
        protonet.Episode(ep.x_support, ep.y_support + 5, ep.x_query, ep.y_query, ep.n_way).validate()
    with pytest.raises(ValueError, match="no support image"):
        protonet.Episode(ep.x_support, np.zeros_like(ep.y_support), ep.x_query, ep.y_query, ep.n_way).validate()
    with pytest.raises(ValueError, match="one integer label per image"):
        protonet.Episode(ep.x_support, ep.y_support[:-1], ep.x_query, ep.y_query, ep.n_way).validate()
    with pytest.raises(TypeError, match="integer"):
        protonet.Episode(ep.x_support, ep.y_support.astype(float), ep.x_query, ep.y_query, ep.n_way).validate()
    with pytest.raises(TypeError, match="OmniglotEpisodes"):
        protonet.protonet_loss(None, "episode")
