"""The shipped results: files present, consistent with their checkpoints, and meeting the paper's numbers."""
import json
import os

import numpy as np
import pytest

from mlcourse import results, sinusoid_job, tasks, train, tree

MSE_MATCH = 1e-5      # re-evaluating a checkpoint on the same tasks reproduces summary.json
PAPER_SLACK = 1.2     # our point estimate may exceed the paper's by at most 20% ...


@pytest.fixture(scope="module")
def sinusoid():
    return results.load("sinusoid")


def test_shipped_files_exist_inside_the_package():
    folder = results.path("sinusoid")
    for name in ("summary.json", "maml.npz", "fomaml.npz", "reptile.npz", "pretrain.npz", "sinusoid.png"):
        assert os.path.exists(os.path.join(folder, name)), name
    assert os.path.exists(results.path("directions"))
    assert set(results.available()) == {"sinusoid", "sinusoid_reptile5", "directions"}
    assert folder.startswith(os.path.dirname(os.path.abspath(results.__file__)))


def test_summary_has_every_method_and_the_paper_setup(sinusoid):
    s = sinusoid["summary"]
    assert set(s["results"]) == {"maml", "fomaml", "reptile", "pretrain"}
    cfg = s["config"]
    assert (cfg["meta_batch_size"], cfg["k_support"], cfg["alpha"], cfg["beta"], cfg["hidden"]) == (25, 5, 0.01, 1e-3, [40, 40])
    for r in s["results"].values():
        assert r["steps"] == list(range(11)) and r["num_tasks"] == 600
    for m, theta in sinusoid["theta"].items():
        assert [W.shape for W, _ in theta] == [(1, 40), (40, 40), (40, 1)], m
        assert sinusoid["hparams"][m]["method"] == m


def _at(result, steps):
    return np.array([result["mse"][result["steps"].index(k)] for k in steps]), \
        np.array([result["ci95"][result["steps"].index(k)] for k in steps])


def test_maml_meets_the_paper_within_its_interval(sinusoid):
    """MAML after 1 / 5 / 10 steps: the paper's 0.67 / 0.38 / 0.35 lie inside (or above) our 95% interval."""
    paper = sinusoid_job.PAPER
    mse, ci = _at(sinusoid["summary"]["results"]["maml"], paper["steps"])
    assert np.all(mse - ci <= np.array(paper["maml"])), (mse, ci)
    assert np.all(mse <= PAPER_SLACK * np.array(paper["maml"])), mse


def test_pretrained_baseline_adapts_poorly_like_the_paper(sinusoid):
    paper = sinusoid_job.PAPER
    res = sinusoid["summary"]["results"]
    pre, pre_ci = _at(res["pretrain"], paper["steps"])
    assert np.all(np.abs(pre - np.array(paper["pretrain"])) <= np.maximum(pre_ci, 0.2) + 0.3), pre
    mam, _ = _at(res["maml"], paper["steps"])
    fo, _ = _at(res["fomaml"], paper["steps"])
    assert np.all(mam < pre / 2) and np.all(fo < pre / 2)


def test_summary_is_what_its_checkpoints_give(sinusoid):
    """Re-evaluate every checkpoint on the same 600 tasks (same evaluation seed): same numbers."""
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


def test_reptile_needs_more_than_one_inner_step():
    """Reptile with one inner step is joint training; with five it meta-learns (notebook 05)."""
    one = results.load("sinusoid")["summary"]["results"]["reptile"]
    five = results.load("sinusoid_reptile5")
    r5 = five["summary"]["results"]["reptile"]
    assert five["summary"]["config"]["inner_steps"] == 5
    assert r5["mse"][10] < 0.5 * one["mse"][10]
    cfg = five["summary"]["config"]
    again = train.evaluate(five["theta"]["reptile"], tasks.Sinusoid(), rng=np.random.default_rng([cfg["seed"], 999]),
                           num_tasks=cfg["eval_tasks"], k_shot=cfg["k_support"], k_query=cfg["eval_k_query"],
                           alpha=cfg["alpha"], steps=cfg["eval_steps"])
    np.testing.assert_allclose(again["mse"], r5["mse"], rtol=MSE_MATCH)
