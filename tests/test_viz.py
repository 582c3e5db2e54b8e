"""mlcourse.viz: widgets build, callbacks change the output, the numbers shown are the engine's.

Redraw times are reported by ``python -m mlcourse.viz.widget_timing``, never asserted here.
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

def test_support_minimum_is_where_the_support_gradient_vanishes():
    batch = meta_gradient.example_task(0)
    t = meta_gradient.support_minimum(batch)
    p = checks.meta_gradient_steps(batch, t, 1.0, 1)           # one step with alpha = 1: t - L_s'(t)
    assert abs(float(p["theta_prime"]) - t) < 1e-10 and float(p["curvature"]) > 0
    grid = np.linspace(*meta_gradient.THETA_RANGE, 2001)
    assert checks.losses_on_grid(batch, [t])[0][0] <= checks.losses_on_grid(batch, grid)[0].min() + 1e-12
    # noise-free y = sin(omega x): the support loss is lowest (zero) at theta = omega
    assert t == pytest.approx(batch.params["omega"][0], abs=1e-8)


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


def test_static_figures_draw_the_engine_numbers():
    import matplotlib.pyplot as plt
    fig = welcome.loop_diagram(alpha=0.3, seed=0)
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    ends = np.array([a.xy for a in arrows])            # the inner steps' arrow heads, then the outer step's
    optima = np.random.default_rng(0).normal(size=(3, 2)) * 1.2 + np.array([1.5, 1.0])
    step = checks.quadratic_maml_step(np.array([-1.0, -0.8]), optima, 0.3)
    np.testing.assert_allclose(ends[:3], step["theta_prime"], rtol=RTOL)
    np.testing.assert_allclose(ends[3], np.array([-1.0, -0.8]) - 0.8 * step["meta_gradient"], rtol=RTOL)
    batch = meta_gradient.example_task()
    fig = meta_gradient.static_figure(batch, theta=0.3, alpha=0.3)
    grid = np.linspace(*meta_gradient.THETA_RANGE, 200)
    exact = {ln.get_label(): ln for ln in fig.axes[2].get_lines()}["exact (MAML)"]
    np.testing.assert_allclose(exact.get_ydata(), checks.meta_gradient_steps(batch, grid, 0.3, 1)["exact"], rtol=RTOL)
    marked = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("support minimum")]
    assert len(marked) == 1 and marked[0].get_xdata()[0] == meta_gradient.support_minimum(batch)
    tasks_ = geometry.example_tasks()
    fig = geometry.static_figure(tasks_, alpha=0.6, maml_runs=[(np.arange(3), np.array([0.0, 0.5, 1.0]))])
    dots = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}["θ′ after one step"]
    np.testing.assert_allclose(dots.get_xdata(), checks.check_worked_example_2(0.0, tasks_, 0.6)["engine"], rtol=RTOL)
    for f in (episodes.static_figure(0, None), episodes.static_figure(0, fake_omniglot())):
        assert [ax.get_title().split(":")[0] for ax in f.axes][:2] == ["sinusoid tasks", "linear-slope tasks"]
    plt.close("all")


# ---- notebook 03: geometry ----------------------------------------------------------------------

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
                               checks.linear_trajectories(0.0, 3.5, batch.x_support, batch.params["slope"], 4)[-1])
    assert checks.linear_regime(c.mean()) in an.readout.value
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


# ---- one BLAS thread in the notebooks -----------------------------------------------------------

def test_widget_modules_limit_openblas_to_one_thread_and_it_can_be_undone():
    import os
    import subprocess
    import sys
    from mlcourse import _blas
    if _blas.blas_threads() is None:
        pytest.skip("this NumPy is not linked to OpenBLAS")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    code = ("from mlcourse import _blas, checks, maml, train; _blas.limit_threads(2); a = _blas.blas_threads(); "
            "from mlcourse.viz import {}; print(a, _blas.blas_threads(), _blas.limit_threads(2), _blas.blas_threads())")
    for module in ("direction_plots", "adaptation", "meta_gradient", "geometry", "episodes"):
        out = subprocess.run([sys.executable, "-c", code.format(module)], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        # the engine leaves BLAS alone; the widget module sets one thread; a learner's undo restores two
        assert out == ["2", "1", "1", "2"], (module, out)
    with pytest.raises(ValueError, match="positive int"):
        _blas.limit_threads(0)
