"""mlcourse.viz: widgets build, callbacks change the output, the numbers shown are the engine's.

Redraw times are measured and printed (``pytest -s tests/test_viz.py``), never asserted.
"""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlcourse import checks, maml, nets, tasks  # noqa: E402
from mlcourse.data import omniglot  # noqa: E402
from mlcourse.viz import episodes, geometry, meta_gradient, welcome  # noqa: E402

RTOL = 1e-9


def fake_omniglot(num_alphabets=2, chars=6, drawers=8, size=28, seed=0):
    rng = np.random.default_rng(seed)
    classes = tuple((rng.random((drawers, size, size)) > 0.9).astype(np.float32) for _ in range(num_alphabets * chars))
    alph = tuple(f"A{i // chars}" for i in range(len(classes)))
    char = tuple(f"character{i % chars + 1:02d}" for i in range(len(classes)))
    return omniglot.OmniglotData(classes, alph, char, "fake")


# ---- notebook 02: the 1D meta-gradient ----------------------------------------------------------

def test_meta_gradient_steps_is_the_engine_meta_gradient():
    batch = meta_gradient.example_task(3)
    for theta, alpha, steps in ((0.3, 0.3, 1), (1.2, 0.1, 2), (-0.4, 0.5, 3)):
        p = meta_gradient.meta_gradient_steps(batch, theta, alpha, steps)
        engine = maml.maml_grad(np.float64(theta), batch, alpha, steps, model=nets.sine_apply)
        assert float(p["exact"]) == pytest.approx(float(engine), rel=RTOL, abs=1e-12)
        tp = maml.adapt(np.float64(theta), batch.x_support, batch.y_support, alpha, steps, model=nets.sine_apply)
        assert float(p["theta_prime"]) == pytest.approx(float(np.ravel(tp)[0]), rel=RTOL)
        if steps == 1:
            ref = checks.check_worked_example_1(theta, batch, alpha)
            assert float(p["exact"]) == pytest.approx(ref["closed_form"], rel=RTOL)
            assert float(p["first_order"]) == pytest.approx(ref["first_order"], rel=RTOL)
    grid = np.linspace(-1, 3, 7)   # vectorised over theta = one call per theta
    vec = meta_gradient.meta_gradient_steps(batch, grid, 0.2, 2)["exact"]
    one = [float(meta_gradient.meta_gradient_steps(batch, t, 0.2, 2)["exact"]) for t in grid]
    np.testing.assert_allclose(vec, one, rtol=1e-12)


def test_meta_gradient_explorer_shows_the_engine_numbers():
    batch = meta_gradient.example_task(0)
    ex = meta_gradient.MetaGradientExplorer(batch, theta=0.3, alpha=0.3)
    img0, html0 = ex.image.value, ex.readout.value
    assert img0[:8] == b"\x89PNG\r\n\x1a\n"
    ex.theta.value = 0.35                       # what a keyboard ArrowRight does (step 0.05)
    assert ex.image.value != img0 and ex.readout.value != html0
    ref = checks.check_worked_example_1(0.35, batch, 0.3)
    assert ex.values["exact"] == pytest.approx(ref["closed_form"], rel=RTOL)
    assert ex.values["autograd"] == pytest.approx(ref["autograd"], rel=RTOL)
    assert f"{ref['closed_form']:+.6f}" in ex.readout.value
    ex.steps.value = 3
    assert ex.values["exact"] == pytest.approx(
        float(maml.maml_grad(np.float64(0.35), batch, 0.3, 3, model=nets.sine_apply)), rel=RTOL)
    assert ex.values["finite_difference"] == pytest.approx(ex.values["exact"], rel=1e-5)


def test_static_figures_build():
    import matplotlib.pyplot as plt
    figs = [welcome.loop_diagram(), meta_gradient.static_figure(meta_gradient.example_task()),
            episodes.static_figure(0, None), episodes.static_figure(0, fake_omniglot()),
            geometry.static_figure(geometry.example_tasks(), maml_runs=[(np.arange(3), np.array([0.0, 0.5, 1.0]))])]
    assert all(len(f.axes) >= 1 for f in figs)
    plt.close("all")


# ---- notebook 03: geometry ----------------------------------------------------------------------

def test_trajectories_follow_the_closed_form_and_the_engine():
    batch = geometry.example_tasks(1, num_tasks=6)
    a, c = batch.params["slope"], checks.linear_c(0.4, batch.x_support)
    path = geometry.trajectories(0.2, 0.4, batch.x_support, a, 3)
    np.testing.assert_allclose(path[3] - a, (1 - c) ** 3 * (0.2 - a), rtol=1e-10)
    np.testing.assert_allclose(path[1], checks.check_worked_example_2(0.2, batch, 0.4)["engine"], rtol=1e-10)


def test_regimes():
    assert "convex" in geometry.regime(0.5)
    assert "exactly" in geometry.regime(1.0)
    assert "overshoots" in geometry.regime(1.5)
    assert "forever" in geometry.regime(2.0)
    assert "divergence" in geometry.regime(2.5)


def test_geometry_animation_controls():
    batch = geometry.example_tasks(0)
    an = geometry.GeometryAnimation(batch, theta=0.0, alpha=0.6, steps=4)
    assert an.play.max == an.frame.max == 4 * geometry.SUBFRAMES
    img = an.image.value
    an.step_once()
    assert an.frame.value == geometry.SUBFRAMES and an.image.value != img
    np.testing.assert_allclose(an.values["positions"], checks.check_worked_example_2(0.0, batch, 0.6)["engine"],
                               rtol=1e-10)
    an.speed.value = "0.25x"
    assert an.play.interval == 4 * geometry.BASE_INTERVAL_MS
    an.speed.value = "1x"
    assert an.play.interval == geometry.BASE_INTERVAL_MS
    an.alpha.value = 3.5        # c > 2 for these inputs: shown live
    c = checks.linear_c(3.5, batch.x_support)
    assert f"{c.mean():.3f}" in an.readout.value and an.values["c_mean"] == pytest.approx(c.mean())
    before = an.image.value
    an.zoom.value = 0.5
    assert an.image.value != before
    an.frame.value = an.frame.max
    np.testing.assert_allclose(an.values["positions"],
                               geometry.trajectories(0.0, 3.5, batch.x_support, batch.params["slope"], 4)[-1])
    with pytest.raises(ValueError, match="LinearSlope"):
        geometry.GeometryAnimation(tasks.Sinusoid().sample(np.random.default_rng(0), 2, 3, 3))


def test_maml_on_the_linear_family_finds_the_mean_slope():
    it, path = geometry.maml_on_linear_family(3.0, seed=5, iterations=200)
    assert len(it) == len(path) == 200
    assert abs(path[-50:].mean() - tasks.LinearSlope().mean_slope) < 0.1


# ---- notebook 01: episodes ----------------------------------------------------------------------

def test_episode_viewer_families():
    v = episodes.EpisodeViewer(None)
    assert "Omniglot" not in v.family.options
    assert "x_support (3, 5, 1)" in v.readout.value
    img = v.image.value
    v.seed.value = 7
    assert v.image.value != img
    v.family.value = "linear slope"
    assert "slope" in v.readout.value
    data = fake_omniglot()
    v = episodes.EpisodeViewer(data, family="Omniglot", k_shot=2, n_way=4)
    assert "x_support (8, 28, 28)" in v.readout.value and "x_query (12, 28, 28)" in v.readout.value
    ep = v.episode
    np.testing.assert_array_equal(ep[1], np.repeat(np.arange(4), 2))


def test_episode_mosaic_layout():
    data = fake_omniglot()
    xs, ys, xq, yq, _ = omniglot.OmniglotEpisodes(data, n_way=3, k_shot=2, k_query=1).sample(np.random.default_rng(0))
    m = episodes.episode_mosaic(xs, ys, xq, yq, 3, gap=4)
    assert m.shape == (3 * 30, 3 * 30 + 4)
    np.testing.assert_array_equal(m[1:29, 1:29], 1.0 - xs[0])


def test_missing_omniglot_prints_and_returns_none(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(omniglot.ENV_VAR, str(tmp_path))
    monkeypatch.setenv("MLCOURSE_CACHE", str(tmp_path / "cache"))
    assert episodes.try_load_omniglot() is None
    assert omniglot.ENV_VAR in capsys.readouterr().out


# ---- callback times (printed, not asserted) ------------------------------------------------------

def test_report_callback_times(monkeypatch, tmp_path):
    from mlcourse.viz import widget_timing as bench
    monkeypatch.setenv("MLCOURSE_CACHE", str(tmp_path / "cache"))
    res = bench.measure(repeats=5)
    print("\nwidget callback times (median / max seconds over 5 moves):")
    for k, (med, mx) in res.items():
        print(f"  {k:<32} {med:.3f} / {mx:.3f}")
    assert all(np.isfinite(v[0]) for v in res.values())
