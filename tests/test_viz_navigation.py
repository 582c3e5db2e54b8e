"""Notebook 08's figure and widget: they compute through the engine (maml_rl.adapt) and draw."""
import numpy as np
import pytest

from mlcourse.rl import maml_rl, policy

pytest.importorskip("matplotlib")


def _thetas():
    rng = np.random.default_rng(0)
    return {"maml": policy.init(rng, (2, 8, 8, 2)), "random": policy.init(rng, (2, 8, 8, 2))}


def test_adapted_paths_are_the_mean_paths_of_the_adapted_policies():
    from mlcourse.viz import navigation as viz
    th = _thetas()["maml"]
    goals = np.array([[0.3, 0.2], [-0.1, -0.4]])
    paths, R = viz.adapted_paths(th, goals, steps=2, num_trajectories=5, seed=3)
    assert paths.shape == (3, 2, 101, 2) and R.shape == (3, 2)
    want = maml_rl.adaptation_returns(th, goals, np.random.default_rng(3), steps=2, num_trajectories=5)
    np.testing.assert_allclose(R, want)
    assert np.all(paths[:, :, 0] == 0)                     # every path starts at the origin
    with pytest.raises(ValueError, match="outside the arena"):
        viz.adapted_paths(th, np.array([[0.9, 0.0]]))


def test_figure_and_widget_draw():
    pytest.importorskip("ipywidgets")
    import matplotlib
    matplotlib.use("Agg")
    from mlcourse.viz import navigation as viz
    thetas = _thetas()
    fig = viz.trajectories_figure(thetas, np.array([[0.3, 0.2]]), methods=("maml", "random"))
    assert len(fig.axes) == 2
    w = viz.navigation_widget(thetas, num_trajectories=5)
    w.controls["goal_x"].value = -0.4
    assert len(w.state["returns"]) == 4 and w.children[-1].value[:4] == b"\x89PNG"
    w.controls["method"].value = "random"
    assert np.isfinite(w.state["seconds"])
