"""Widgets and figures of notebooks 04 and 05: they build, show the engine's numbers, and react to controls."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlcourse import directions, maml, nets, tasks  # noqa: E402
from mlcourse.experiments import direction_trace, shipped  # noqa: E402
from mlcourse.viz import adaptation, sinusoid  # noqa: E402
from mlcourse.viz import direction_plots as vcompare  # noqa: E402


@pytest.fixture(scope="module")
def thetas():
    return shipped.load("sinusoid")["theta"]


@pytest.fixture(scope="module")
def small_trace():
    return direction_trace.direction_trace(iterations=20, num_records=4, probe_tasks=4)


def test_adaptation_path_matches_query_losses(thetas):
    task = tasks.Sinusoid().sample(np.random.default_rng(7), 1, 5, 50)
    path = adaptation.adaptation_path(thetas["maml"], task, alpha=0.01, max_steps=10)
    expected = maml.query_losses(thetas["maml"], task.astype(np.float32), 0.01, list(range(11)))[:, 0]
    np.testing.assert_allclose(path["mse"], expected, rtol=1e-5)
    assert path["fits"].shape == (11, adaptation.X_GRID.size)
    # the fit after 0 steps is the meta-learned initialisation itself
    y0 = nets.mlp_apply(thetas["maml"], adaptation.X_GRID[:, None].astype(np.float32))[:, 0]
    np.testing.assert_allclose(path["fits"][0], y0, rtol=1e-6)
    with pytest.raises(ValueError, match="one task"):
        adaptation.adaptation_path(thetas["maml"], tasks.Sinusoid().sample(np.random.default_rng(0), 2, 5, 5))


def test_adaptation_widget_steps_and_new_task(thetas):
    w = adaptation.adaptation_widget(thetas, seed=3)
    image = w.children[-1]
    first, mse0 = image.value, dict(w.state["mse"])
    assert first[:4] == b"\x89PNG"
    w.controls["steps"].value = 10                       # the observer redraws
    assert image.value != first
    assert w.state["mse"]["maml"] < mse0["maml"]         # adaptation helps MAML on this task
    expected = maml.query_losses(thetas["maml"], w.state["task"].astype(np.float32), 0.01, [10])[0, 0]
    assert w.state["mse"]["maml"] == pytest.approx(expected, rel=1e-5)
    assert "MAML" in w.children[-2].value               # the text shows the numbers
    old_amplitude = w.state["task"].params["amplitude"][0]
    w.new_task()
    assert w.controls["seed"].value == 4
    assert w.state["task"].params["amplitude"][0] != old_amplitude
    w.controls["methods"].value = ("pretrain",)
    assert set(w.state["mse"]) == {"pretrain"}
    assert "pretrained" in w.children[-2].value and "MAML" not in w.children[-2].value


def test_direction_widget_reacts_and_matches_compare(small_trace):
    probe = direction_trace.probe_batch(probe_tasks=4)
    w = vcompare.direction_widget(small_trace, probe)
    image = w.children[-1]
    first = image.value
    w.controls["snapshot"].value = 0
    assert image.value != first
    theta0 = shipped.theta_from_flat(small_trace["theta_flat"][0], dtype=np.float64)
    s = directions.compare_directions(theta0, probe, alpha=0.01, inner_steps=1)
    assert w.stats["cos_fomaml"] == pytest.approx(s["cos_fomaml"], abs=1e-12)
    assert w.stats["cos_fomaml"] == pytest.approx(small_trace["cos_fomaml_1"][0], abs=1e-12)
    w.controls["inner_steps"].value = 5
    assert w.stats["cos_fomaml"] == pytest.approx(small_trace["cos_fomaml_5"][0], abs=1e-12)
    w.controls["alpha"].value = 0.001
    small = directions.compare_directions(theta0, probe, alpha=0.001, inner_steps=5)
    assert w.stats["cos_fomaml"] == pytest.approx(small["cos_fomaml"], abs=1e-12)
    assert f"{small['cos_fomaml']:.4f}" in w.children[-2].value
    assert np.hypot(*w.stats["plane"]["fomaml"]) == pytest.approx(small["norm_fomaml"], rel=1e-12)


def test_static_figures_draw_the_numbers_they_are_given(thetas, small_trace):
    batch = tasks.Sinusoid().sample(np.random.default_rng(1), 2, 5, 10)
    fig = adaptation.adaptation_figure({"maml": thetas["maml"], "pretrain": thetas["pretrain"]}, batch)
    assert fig.axes[0].get_title() == "after 0 steps (alpha = 0.01)" and len(fig.axes) == 2 * 3
    y0 = nets.mlp_apply(thetas["maml"], adaptation.X_GRID[:, None].astype(np.float32))[:, 0]
    maml_line = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("MAML")][0]
    np.testing.assert_allclose(maml_line.get_ydata(), y0, rtol=1e-6)
    plt.close(fig)
    fig = vcompare.directions_figure(small_trace)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    np.testing.assert_array_equal(lines["FOMAML, 1 step(s)"].get_ydata(), small_trace["cos_fomaml_1"])
    np.testing.assert_array_equal(lines["noise baseline: MAML on 2 probe batches, 5 step(s)"].get_ydata(),
                                  small_trace["cos_maml_probes_5"])
    plt.close(fig)
    probe = direction_trace.probe_batch(probe_tasks=4)
    fig = vcompare.alpha_sweep_figure(small_trace, probe, [0], alphas=[0.001, 0.01])
    theta0 = shipped.theta_from_flat(small_trace["theta_flat"][0], dtype=np.float64)
    first = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(first.get_ydata(), [directions.compare_directions(theta0, probe, a, 1)["cos_fomaml"]
                                                   for a in (0.001, 0.01)], rtol=1e-12)
    plt.close(fig)
    rows = [{"backend": "autograd", "method": "MAML (2nd order)", "inner_steps": s, "ms": 1.0, "peak_kib": 10.0 * s}
            for s in (1, 2)]
    fig = vcompare.memory_figure(rows)
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == [10.0, 20.0]
    plt.close(fig)
    fig = vcompare.cost_figure([{"backend": "numpy", "method": "FOMAML", "inner_steps": 1, "ms": 3.0, "peak_kib": 5.0}])
    assert [p.get_width() for p in fig.axes[0].patches] == [3.0] and [p.get_width() for p in fig.axes[1].patches] == [5.0]
    plt.close(fig)
    summary = shipped.load("sinusoid")["summary"]
    fig, ax = plt.subplots()
    sinusoid.mse_vs_steps(ax, summary)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_array_equal(lines["MAML"].get_ydata(), summary["results"]["maml"]["mse"])
    np.testing.assert_array_equal(lines["MAML (paper)"].get_ydata(), summary["paper"]["maml"])
    plt.close(fig)


def test_objective_figure_draws_each_run_and_marks_divergence():
    runs = {"one-step objective": {"steps": [0, 1, 2], "mse": [3.0, 0.6, float("inf")], "ci95": [0.1, 0.05, float("nan")]},
            "multi-step loss": {"steps": [0, 1, 2], "mse": [3.0, 0.7, 0.5], "ci95": [0.1, 0.05, 0.04]}}
    fig = adaptation.objective_figure(runs, paper={"steps": [1], "mse": [0.67]})
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["one-step objective"].get_xdata()) == [0, 1]        # the non-finite point is left out
    assert list(lines["multi-step loss"].get_ydata()) == [3.0, 0.7, 0.5]
    assert "MAML (paper)" in lines
    assert any(t.get_text() == "diverges" for t in ax.texts)
    plt.close(fig)
