"""mlcourse.viz.fewshot: the numbers behind notebook 06's figures and widget, on a small random embedding."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mlcourse import conv
from mlcourse.data import omniglot
from mlcourse.viz import fewshot


def fake_data(num_classes=8, drawers=6, seed=0):
    """Characters as random blobs: class c's drawers are noisy copies of one pattern."""
    rng = np.random.default_rng(seed)
    base = rng.random((num_classes, 28, 28)) < 0.15
    classes = tuple(np.clip(base[c] + 0.3 * rng.standard_normal((drawers, 28, 28)), 0, 1).astype(np.float32)
                    for c in range(num_classes))
    return omniglot.OmniglotData(classes, tuple("Alpha" if c < 4 else "Beta" for c in range(num_classes)),
                                 tuple(f"character{c + 1:02d}" for c in range(num_classes)), "fake")


@pytest.fixture(scope="module")
def setup():
    theta = conv.conv4_init(np.random.default_rng(1), channels=8)
    return theta, fake_data()


def test_analysis_is_prototypes_distances_and_argmin(setup):
    theta, data = setup
    ep = fewshot.sample_episode(data, n_way=4, k_shot=2, k_query=3, seed=5)
    a = fewshot.analyse(theta, ep, 4)
    z = conv.conv4_apply(theta, np.concatenate([ep[0], ep[2]]))   # one call: BatchNorm sees the whole episode
    np.testing.assert_allclose(a.z_support, z[:8], rtol=1e-5, atol=1e-6)
    for k in range(4):
        np.testing.assert_allclose(a.c[k], a.z_support[a.y_support == k].mean(axis=0), rtol=1e-6, atol=1e-6)
    brute = np.array([[np.sum((q - c) ** 2) for c in a.c] for q in a.z_query])
    np.testing.assert_allclose(a.d2, brute, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(a.y_pred, brute.argmin(axis=1))
    assert a.accuracy == np.mean(brute.argmin(axis=1) == a.y_query)
    assert a.classes == ep[4] and len(set(a.classes)) == 4


def test_episode_mosaic_frames_right_and_wrong_queries(setup):
    theta, data = setup
    a = fewshot.analyse(theta, fewshot.sample_episode(data, n_way=5, k_shot=1, k_query=4, seed=2), 5)
    img = fewshot.episode_rgb(a, pad=2, gap=6)
    cell = 28 + 4
    assert img.shape == (5 * cell, (1 + 1 + 4) * cell + 12, 3)
    for k in range(5):
        np.testing.assert_allclose(img[k * cell + 2:k * cell + 30, cell + 6 + 2:cell + 6 + 30, 0],
                                   1 - a.x_support[a.y_support == k].mean(axis=0))   # the mean support image
        for j, i in enumerate(np.flatnonzero(a.y_query == k)):
            corner = img[k * cell, (2 + j) * cell + 12]
            want = fewshot.RIGHT if a.y_pred[i] == k else fewshot.WRONG
            np.testing.assert_allclose(corner, want)


def test_figure_and_widget_follow_the_sliders(setup):
    pytest.importorskip("ipywidgets")
    theta, data = setup
    fig, a = fewshot.static_figure(theta, data, n_way=3, k_shot=1, seed=0)
    assert len(fig.axes) == 3
    w = fewshot.PrototypeExplorer(theta, data, n_way=3, k_shot=1, max_way=8)
    first = w.analysis
    w.n_way.value, w.k_shot.value = 6, 3
    assert w.analysis.n_way == 6 and len(w.analysis.x_support) == 18
    assert w.image.value[:4] == b"\x89PNG" and "accuracy" in w.readout.value
    w.seed.value = 7
    assert not np.array_equal(w.analysis.x_query, first.x_query)
    again = fewshot.analyse(theta, fewshot.sample_episode(data, 6, 3, 3, 7), 6)   # the widget computes the same
    np.testing.assert_array_equal(again.d2, w.analysis.d2)


def test_pairs_strip_puts_each_query_under_its_class():
    rng = np.random.default_rng(0)
    xs, xq = rng.random((4, 28, 28)), rng.random((4, 28, 28))
    yq = np.array([2, 0, 3, 1])   # query m shows class yq[m]
    strip = fewshot.pairs_strip(xs, xq, yq, pad=2)
    assert strip.shape == (2 * 32, 4 * 32)
    for k in range(4):
        np.testing.assert_allclose(strip[2:30, k * 32 + 2:k * 32 + 30], 1 - xs[k])
        np.testing.assert_allclose(strip[34:62, k * 32 + 2:k * 32 + 30], 1 - xq[np.flatnonzero(yq == k)[0]])


def test_with_population_stats_figure_and_widget_embed_each_image_on_its_own(setup):
    pytest.importorskip("ipywidgets")
    theta, data = setup
    stats = conv.conv4_population_stats(theta, np.concatenate(data.classes))
    ep = fewshot.sample_episode(data, n_way=4, k_shot=2, k_query=3, seed=5)
    a = fewshot.analyse(theta, ep, 4, stats)
    np.testing.assert_allclose(a.z_query, conv.conv4_apply(theta, ep[2], stats=stats), rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(a.z_query - fewshot.analyse(theta, ep, 4).z_query)) > 1e-3   # not the episode's statistics
    w = fewshot.PrototypeExplorer(theta, data, n_way=4, k_shot=2, k_query=3, seed=5, stats=stats)
    np.testing.assert_array_equal(w.analysis.d2, a.d2)
    _, b = fewshot.static_figure(theta, data, n_way=4, k_shot=2, k_query=3, seed=5, stats=stats)
    np.testing.assert_array_equal(b.d2, a.d2)
