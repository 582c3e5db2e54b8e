"""The shipped results: files present, consistent with their checkpoints, and meeting the paper's numbers."""
import json
import os

import numpy as np
import pytest

from mlcourse import tasks, train, tree
from mlcourse.experiments import shipped as results, sinusoid_job

MSE_MATCH = 1e-5      # re-evaluating a checkpoint on the same tasks reproduces summary.json
PRETRAIN_SLACK = 0.3  # the pretrained baseline's point estimate lies within its interval + this of the paper's


@pytest.fixture(scope="module")
def sinusoid():
    return results.load("sinusoid")


def test_shipped_files_exist_inside_the_package():
    folder = results.path("sinusoid")
    for name in ("summary.json", "maml.npz", "fomaml.npz", "reptile.npz", "pretrain.npz", "sinusoid.png"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert os.path.exists(results.path("directions"))
    assert set(results.available()) == {"sinusoid", "sinusoid_reptile5", "sinusoid_maml1step", "directions"}
    for name in ("sinusoid_reptile5", "sinusoid_maml1step"):
        assert os.path.exists(os.path.join(results.path(name), "summary.json")), name
    assert folder.startswith(os.path.dirname(os.path.abspath(results.__file__)))


def test_summary_has_every_method_and_the_paper_setup(sinusoid):
    s = sinusoid["summary"]
    assert set(s["results"]) == {"maml", "fomaml", "reptile", "pretrain"}
    cfg = s["config"]
    assert (cfg["meta_batch_size"], cfg["k_support"], cfg["alpha"], cfg["beta"], cfg["hidden"]) == (25, 5, 0.01, 1e-3, [40, 40])
    # the main job's settings (sinusoid_job.DEFAULTS): what notebook 05 says differs from the paper
    assert (cfg["inner_steps"], cfg["maml_loss"], cfg["iterations"], cfg["eval_tasks"]) == (2, "multistep", 30000, 2000)
    assert {k: cfg[k] for k in sinusoid_job.DEFAULTS} == {k: (list(v) if isinstance(v, tuple) else v)
                                                          for k, v in sinusoid_job.DEFAULTS.items()}
    for r in s["results"].values():
        assert r["steps"] == list(range(11)) and r["num_tasks"] == 2000
    for m, theta in sinusoid["theta"].items():
        assert [W.shape for W, _ in theta] == [(1, 40), (40, 40), (40, 1)], m
        assert sinusoid["hparams"][m]["method"] == m


def _at(result, steps):
    return np.array([result["mse"][result["steps"].index(k)] for k in steps]), \
        np.array([result["ci95"][result["steps"].index(k)] for k in steps])


def test_maml_is_at_or_below_the_papers_numbers(sinusoid):
    """MAML after 1 / 5 / 10 steps: at or below the paper's 0.67 / 0.38 / 0.35 (point estimates)."""
    paper = sinusoid_job.PAPER
    mse, ci = _at(sinusoid["summary"]["results"]["maml"], paper["steps"])
    assert np.all(mse <= np.array(paper["maml"])), (mse, ci)
    assert np.all(np.diff(mse) < 0), mse                  # more test-time steps keep helping


def test_pretrained_baseline_adapts_poorly_like_the_paper(sinusoid):
    paper = sinusoid_job.PAPER
    res = sinusoid["summary"]["results"]
    pre, pre_ci = _at(res["pretrain"], paper["steps"])
    assert np.all(np.abs(pre - np.array(paper["pretrain"])) <= pre_ci + PRETRAIN_SLACK), (pre, pre_ci)
    table = sinusoid_job.format_table(sinusoid["summary"])   # what notebook 05 prints: ours beside the paper's
    assert "pretrain (paper)" in table and "maml (paper)" in table and "2.41" in table and "0.67" in table
    mam, _ = _at(res["maml"], paper["steps"])
    fo, _ = _at(res["fomaml"], paper["steps"])
    assert np.all(mam < pre / 2) and np.all(fo < pre / 2)


def test_summary_is_what_its_checkpoints_give(sinusoid):
    """Re-evaluate every checkpoint on the same 2000 tasks (same evaluation seed): same numbers."""
    s = sinusoid["summary"]
    cfg = s["config"]
    for m, theta in sinusoid["theta"].items():
        again = train.evaluate(theta, tasks.Sinusoid(), rng=np.random.default_rng([cfg["seed"], 999]),
                               num_tasks=cfg["eval_tasks"], k_shot=cfg["k_support"], k_query=cfg["eval_k_query"],
                               alpha=cfg["alpha"], steps=cfg["eval_steps"])
        np.testing.assert_allclose(again["mse"], s["results"][m]["mse"], rtol=MSE_MATCH, err_msg=m)


def test_direction_trace_is_the_shipped_maml_run(sinusoid):
    tr = results.load("directions")
    assert tr["iterations"][-1] == sinusoid["summary"]["config"]["iterations"]
    np.testing.assert_array_equal(tr["theta_flat"][-1], tree.flatten(sinusoid["theta"]["maml"])[0])
    assert tr["cos_fomaml_1"][0] > 0.9        # early: first order is a good approximation
    assert tr["config"]["probe_tasks"] == "100"
    cfg = sinusoid["summary"]["config"]         # the main job's run: 2 inner steps, multi-step loss
    assert (tr["config"]["inner_steps"], tr["config"]["maml_loss"]) == (str(cfg["inner_steps"]), cfg["maml_loss"])


def test_unknown_names_and_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="available"):
        results.load("omniglot-zero-shot")
    with pytest.raises(FileNotFoundError, match="mlcourse train sinusoid"):
        results.load_sinusoid(str(tmp_path))
    with pytest.raises(ValueError, match="sizes"):
        results.theta_from_flat(np.zeros(10))


def test_theta_from_flat_inverts_flatten(sinusoid):
    theta = sinusoid["theta"]["fomaml"]
    back = results.theta_from_flat(tree.flatten(theta)[0])
    for a, b in zip(tree.leaves(theta), tree.leaves(back)):
        np.testing.assert_array_equal(a, b)


def test_summary_is_plain_json():
    with open(os.path.join(results.path("sinusoid"), "summary.json")) as f:
        s = json.load(f)
    assert s["paper"] == sinusoid_job.PAPER


def _reevaluate(run, method):
    cfg = run["summary"]["config"]
    return train.evaluate(run["theta"][method], tasks.Sinusoid(), rng=np.random.default_rng([cfg["seed"], 999]),
                          num_tasks=cfg["eval_tasks"], k_shot=cfg["k_support"], k_query=cfg["eval_k_query"],
                          alpha=cfg["alpha"], steps=cfg["eval_steps"])


def test_reptile_meta_learns_more_with_more_inner_steps(sinusoid):
    """Reptile with 2 inner steps (main job) and with 5 (notebook 05): both checked against their checkpoints."""
    two = sinusoid["summary"]["results"]["reptile"]
    five = results.load("sinusoid_reptile5")
    r5 = five["summary"]["results"]["reptile"]
    assert five["summary"]["config"]["inner_steps"] == 5
    assert r5["mse"][10] < two["mse"][10] < sinusoid["summary"]["results"]["pretrain"]["mse"][10]
    np.testing.assert_allclose(_reevaluate(five, "reptile")["mse"], r5["mse"], rtol=MSE_MATCH)


def test_maml_one_step_objective_is_the_papers_and_consistent():
    """sinusoid_maml1step: the paper's objective (1 inner step, last-step loss), same seed and evaluation tasks."""
    one = results.load("sinusoid_maml1step")
    s, main = one["summary"], results.load("sinusoid")["summary"]
    cfg = s["config"]
    assert set(s["results"]) == {"maml"} and one["hparams"]["maml"]["method"] == "maml"
    assert (cfg["inner_steps"], cfg["maml_loss"]) == (1, "last")
    same = {k: v for k, v in cfg.items() if k not in ("inner_steps", "maml_loss")}
    assert same == {k: v for k, v in main["config"].items() if k not in ("inner_steps", "maml_loss")}
    np.testing.assert_allclose(_reevaluate(one, "maml")["mse"], s["results"]["maml"]["mse"], rtol=MSE_MATCH)
    r1, multi = s["results"]["maml"], main["results"]["maml"]
    assert r1["num_tasks"] == multi["num_tasks"] == 2000


def test_multistep_loss_beats_the_one_step_objective_beyond_one_step():
    """The point of notebook 05's section on the inner loop: scoring every inner step helps at 5 and 10 steps."""
    r1 = results.load("sinusoid_maml1step")["summary"]["results"]["maml"]
    multi = results.load("sinusoid")["summary"]["results"]["maml"]
    for k in (5, 10):
        assert multi["mse"][k] + multi["ci95"][k] < r1["mse"][k], k
