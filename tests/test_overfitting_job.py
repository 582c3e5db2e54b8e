"""The meta-overfitting job at tiny sizes, the task pool and the gap: what the notebook 07 runs rely on."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlcourse import maml, nets, taskpool, tasks
from mlcourse.experiments import overfitting_job


def test_pool_draws_only_its_own_tasks_with_fresh_points():
    pool = taskpool.TaskPool.draw(np.random.default_rng(0), 3)
    rng = np.random.default_rng(1)
    a, b = pool.sample(rng, 40, 5, 7), pool.sample(rng, 40, 5, 7)
    assert set(np.round(a.params["amplitude"], 12)) <= set(np.round(pool.amplitude, 12))
    assert a.x_support.shape == (40, 5, 1) and a.x_query.shape == (40, 7, 1)
    assert not np.allclose(a.x_support, b.x_support)
    i = a.params["index"][0]
    np.testing.assert_allclose(a.y_query[0], pool.amplitude[i] * np.sin(a.x_query[0] - pool.phase[i]))


def test_augmentation_makes_new_tasks_within_its_ranges():
    pool = taskpool.TaskPool([1.0], [0.5], amplitude_scale=(0.5, 1.5), phase_shift=(-0.2, 0.2))
    b = pool.sample(np.random.default_rng(2), 200, 2, 2)
    assert pool.augmented and not pool.without_augmentation().augmented
    assert 0.5 <= b.params["amplitude"].min() < b.params["amplitude"].max() <= 1.5
    assert len(np.unique(b.params["phase"])) == 200 and np.all(np.abs(b.params["phase"] - 0.5) <= 0.2)


def test_gap_and_early_stopping_from_given_losses():
    g = taskpool.generalisation_gap([0.1, 0.3], [1.0, 2.0, 3.0])
    assert g["train"] == pytest.approx(0.2) and g["test"] == pytest.approx(2.0) and g["gap"] == pytest.approx(1.8)
    assert g["ci95"] == pytest.approx(1.96 * np.sqrt(0.02 / 2 + 1.0 / 3))
    assert taskpool.generalisation_gap([0.5], [0.5])["ci95"] == 0.0
    assert taskpool.early_stopping_index([3.0, 1.0, 2.0, 1.0]) == 1
    with pytest.raises(ValueError, match="non-empty 1-D"):
        taskpool.generalisation_gap([], [1.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        taskpool.early_stopping_index([1.0, np.nan])


def test_empty_pool_and_bad_sizes_say_what_to_change(tmp_path):
    with pytest.raises(ValueError, match="task pool is empty"):
        taskpool.TaskPool([], [])
    with pytest.raises(ValueError, match="size >= 1"):
        taskpool.TaskPool.draw(np.random.default_rng(0), 0)
    with pytest.raises(ValueError, match="same length"):
        taskpool.TaskPool([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="pool_sizes is empty"):
        overfitting_job.run(tmp_path / "a", pool_sizes=(), progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="at least one task"):
        overfitting_job.run(tmp_path / "b", pool_sizes=(0, 4), progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="not among pool_sizes"):
        overfitting_job.run(tmp_path / "c", pool_sizes=(4,), augment_pool_sizes=(2,), progress=False)
    with pytest.raises(ValueError, match="unknown setting"):
        overfitting_job.run(tmp_path / "d", pool_size=4)


def test_quick_run_writes_what_the_notebook_loads(tmp_path):
    out = tmp_path / "run"
    s = overfitting_job.run(out, progress=False, log=lambda *a: None, **overfitting_job.QUICK)
    names = [r["name"] for r in s["pools"]]
    assert names == ["pool2", "pool2_augmented", "pool8", "fresh"]
    for r in s["pools"]:
        assert len(r["iteration"]) == len(r["train"]) == len(r["test"]) == len(r["validation"]) == 4
        assert r["final"]["gap"] == pytest.approx(r["final"]["test"] - r["final"]["train"])
        assert r["early_stopping_iteration"] == r["iteration"][int(np.argmin(r["validation"]))]
    loaded = overfitting_job.load_shipped(out)
    assert set(loaded["params"]) == {n for name in names for n in (name, name + "_early_stopped")}
    # the stored final theta gives the stored final gap
    cfg = s["config"]
    theta = loaded["params"]["pool2"]
    pool = taskpool.TaskPool(s["pools"][0]["pool"]["amplitude"], s["pools"][0]["pool"]["phase"])
    assert overfitting_job.final_gap(theta, pool, cfg) == s["pools"][0]["final"]
    assert [r["alpha"] for r in s["alpha_sweep"]] == [0.01, 0.1] and [r["inner_steps"] for r in s["steps_sweep"]] == [1, 2]
    assert s["alpha_sweep"][0] is s["steps_sweep"][0] or s["alpha_sweep"][0] == s["steps_sweep"][0]
    w = s["within_task"]["runs"][0]
    assert w["k_shot"] == 2 and len(w["support"]) == len(w["steps"]) == 3
    with pytest.raises(FileExistsError, match="--overwrite"):
        overfitting_job.run(out, progress=False, **overfitting_job.QUICK)
    with pytest.raises(ValueError, match="inside the mlcourse package"):
        overfitting_job.run(os.path.join(os.path.dirname(overfitting_job.__file__), "results", "x"), progress=False)


def test_command_line_quick_run(tmp_path):
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "mlcourse", "train", "overfitting", "--quick", "--no-progress",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "meta-train" in r.stdout and json.loads((out / "summary.json").read_text())["config"]["iterations"] == 60
    bad = subprocess.run([sys.executable, "-m", "mlcourse", "train", "overfitting", "--quick", "--pool-sizes", "0",
                          "--out", str(tmp_path / "bad")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "at least one task" in bad.stderr and "Traceback" not in bad.stderr


def test_figures_and_widgets_draw_from_a_quick_run(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("ipywidgets")
    from mlcourse import metasgd
    from mlcourse.viz import overfitting as viz
    out = tmp_path / "run"
    overfitting_job.run(out, progress=False, log=lambda *a: None, **dict(overfitting_job.QUICK, within_k=(5,)))
    loaded = overfitting_job.load_shipped(out)
    s = loaded["summary"]
    for fig in (viz.pool_curves_figure(s), viz.gap_figure(s), viz.within_task_figure(s, k_shot=5), viz.sweep_figure(s)):
        assert fig.axes
    w = viz.pool_widget(loaded)
    w.controls["early"].value = True
    assert w.state["result"] == s["pools"][0]["early_stopped"]
    sw = viz.sweep_widget(s)
    sw.controls["sweep"].value = "inner steps"
    sw.controls["inner_steps"].value = 2
    assert sw.state["run"]["inner_steps"] == 2
    theta = nets.mlp_init(np.random.default_rng(0), [1, 8, 8, 1], dtype=np.float32)
    ww = viz.within_task_widget(theta, num_tasks=5, max_steps=20)
    ww.controls["steps"].value = 20
    assert ww.state["steps"][-1] == 20 and len(ww.state["query"]) == len(ww.state["steps"])
    params = metasgd.metasgd_init(np.random.default_rng(1), [1, 4, 1])
    per = viz.alpha_per_layer(params)
    assert list(per) == ["W1", "b1", "W2", "b2"] and per["W1"].size == 4
    assert viz.alpha_figure(params).axes
