"""The shipped navigation run (mlcourse/experiments/results/navigation): what its checkpoints give, and the
targets it must meet (MAML after one step at least as good as -15 and ahead of the pretrained policy by
more than both 95% intervals)."""
import numpy as np
import pytest

from mlcourse.experiments import navigation_job, shipped


@pytest.fixture(scope="module")
def run():
    return shipped.load("navigation")


def test_summary_has_every_method_step_and_the_paper_protocol(run):
    s = run["summary"]
    assert set(s["results"]) == set(navigation_job.METHODS) == set(run["theta"])
    cfg = s["config"]
    assert cfg["alpha"] == navigation_job.PAPER["alpha"] and cfg["meta_batch_size"] == 20
    assert cfg["num_trajectories"] == 20 and cfg["eval_trajectories"] == 40 and cfg["hidden"] == [100, 100]
    for r in s["results"].values():
        assert r["steps"] == [0, 1, 2, 3] and r["num_goals"] == cfg["eval_goals"] >= 40
        per_goal = np.array(r["per_goal"])
        assert per_goal.shape == (4, cfg["eval_goals"])
        np.testing.assert_allclose(r["return"], per_goal.mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(r["ci95"], 1.96 * per_goal.std(axis=1, ddof=1) / np.sqrt(per_goal.shape[1]),
                                   rtol=1e-6)
    assert s["paper"] == navigation_job.PAPER
    assert s["wall_seconds"] >= s["train_seconds"]["maml"] > 0


def test_summary_is_what_its_checkpoints_give_on_a_subset_of_goals(run):
    cfg = run["config"]
    idx = [0, 7, 13]
    for m in navigation_job.METHODS:
        again = navigation_job.evaluate(run["theta"][m], cfg, idx)
        np.testing.assert_allclose(again, np.array(run["summary"]["results"][m]["per_goal"])[:, idx], rtol=1e-3,
                                   atol=1e-3)


def test_random_initialisation_is_the_seeded_init(run):
    from mlcourse import tree
    theta, _ = navigation_job.initial_params("random", run["config"])
    np.testing.assert_array_equal(tree.flatten(theta)[0], tree.flatten(run["theta"]["random"])[0])


def test_maml_after_one_step_meets_the_targets(run):
    res = run["summary"]["results"]
    maml, pre = res["maml"], res["pretrained"]
    assert maml["return"][1] >= -15.0
    assert maml["return"][1] - pre["return"][1] > maml["ci95"][1] + pre["ci95"][1]
    assert maml["return"][1] > maml["return"][0] + 10        # one step adapts
    assert res["random"]["return"][1] < pre["return"][1]
