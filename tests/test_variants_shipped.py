"""Audit of the shipped results of notebook 07: the Meta-SGD / ANIL run and the meta-overfitting job.

* summary.json is what the checkpoints give (re-evaluated on the same tasks);
* the targets: Meta-SGD below MAML after one step with non-overlapping 95% intervals, under the
  same training budget; the meta-train / meta-test gap grows as the pool shrinks and shrinks under
  each mitigation the notebook shows (early stopping, task augmentation, a larger pool).
"""
import functools

import numpy as np
import pytest

from mlcourse import metasgd, taskpool, tree
from mlcourse.experiments import overfitting_job, shipped, sinusoid_job

MSE_MATCH = 1e-5


@functools.lru_cache(maxsize=None)
def variants():
    return shipped.load("sinusoid_variants")


@functools.lru_cache(maxsize=None)
def overfitting():
    return shipped.load("overfitting")


def test_variant_summary_is_what_its_checkpoints_give():
    run = variants()
    s, cfg = run["summary"], run["summary"]["config"]
    assert set(s["results"]) == {"maml", "metasgd", "anil"}
    for m, params in run["theta"].items():
        again = sinusoid_job.evaluate_method(m, params, cfg, rng=np.random.default_rng([cfg["seed"], 999]),
                                             k_shot=cfg["k_support"], steps=cfg["eval_steps"])
        np.testing.assert_allclose(again["mse"], s["results"][m]["mse"], rtol=MSE_MATCH, err_msg=m)


def test_variants_have_their_own_stated_setting():
    """The comparison keeps a setting of its own (shipped.VARIANTS_SETTINGS), not the main job's: its MAML is
    reproduced by the job's MAML training with that setting (the first 1000 iterations' loss history)."""
    cfg = variants()["summary"]["config"]
    for k, v in shipped.VARIANTS_SETTINGS.items():   # (a summary written before eval_k_shot existed tested at K)
        assert cfg.get(k, cfg["k_support"] if k == "eval_k_shot" else None) == v, k
    assert all(r["k_shot"] == 5 for r in variants()["summary"]["results"].values())
    assert shipped.REFRESH_OPTIONS["sinusoid_variants"] == dict(methods=("maml", "metasgd", "anil"),
                                                                **shipped.VARIANTS_SETTINGS)
    run_cfg = dict(sinusoid_job.DEFAULTS, **dict(shipped.VARIANTS_SETTINGS, iterations=1000))
    _, _, hist, _ = sinusoid_job._train_one((0, "maml", run_cfg), False)
    np.testing.assert_allclose(hist.loss, variants()["summary"]["results"]["maml"]["history"]["loss"][:10], rtol=1e-2)


def test_metasgd_beats_maml_after_one_step_with_the_same_budget():
    s = variants()["summary"]
    r = s["results"]
    j = r["maml"]["steps"].index(1)
    assert r["metasgd"]["mse"][j] + r["metasgd"]["ci95"][j] < r["maml"]["mse"][j] - r["maml"]["ci95"][j]
    assert s["config"]["iterations"] == 30000 and s["config"]["eval_tasks"] >= 2000
    hp = variants()["hparams"]
    assert hp["metasgd"]["iterations"] == hp["maml"]["iterations"] == hp["anil"]["iterations"]


def test_learned_step_sizes_are_valid_and_moved_from_their_initialisation():
    params = variants()["theta"]["metasgd"]
    metasgd.check_params(params)
    a = np.concatenate([np.ravel(x) for x in tree.leaves(metasgd.alpha_of(params))])
    assert np.all(a > 0) and (a.min() < metasgd.ALPHA_INIT[0] or a.max() > metasgd.ALPHA_INIT[1])


def _pools(augmented=False):
    return [r for r in overfitting()["summary"]["pools"] if r["augmented"] == augmented]


def test_gap_grows_as_the_pool_shrinks():
    plain = _pools()
    sizes = [r["pool_size"] for r in plain]
    assert sizes[-1] is None and sizes[:-1] == sorted(sizes[:-1])
    gaps = [r["final"]["gap"] for r in plain]
    # the smallest pools: gaps ordered, each beyond its interval; the largest pool and fresh tasks: no gap
    assert gaps[0] > gaps[1] > gaps[2]
    for r in plain[:2]:
        assert r["final"]["gap"] > r["final"]["ci95"]
    assert abs(plain[-1]["final"]["gap"]) < 3 * plain[-1]["final"]["ci95"]


def test_each_mitigation_shrinks_the_gap():
    plain = {r["pool_size"]: r for r in _pools()}
    aug = _pools(True)
    assert aug
    for r in aug:   # task augmentation, against the same pool without it
        assert r["final"]["gap"] < plain[r["pool_size"]]["final"]["gap"]
    for size in overfitting()["summary"]["config"]["augment_pool_sizes"]:   # early stopping on meta-validation
        r = plain[size]
        assert r["early_stopped"]["gap"] < r["final"]["gap"]
        assert r["early_stopping_iteration"] == r["iteration"][int(np.argmin(r["validation"]))]


def test_overfitting_summary_is_what_its_parameters_give():
    run = overfitting()
    s = run["summary"]
    r = next(r for r in s["pools"] if r["name"] == "pool2")
    pool = taskpool.TaskPool(r["pool"]["amplitude"], r["pool"]["phase"])
    for key, name in (("final", "pool2"), ("early_stopped", "pool2_early_stopped")):
        got = overfitting_job.final_gap(run["params"][name], pool, s["config"])
        for k in ("train", "test", "gap"):
            assert got[k] == pytest.approx(r[key][k], rel=1e-5), (key, k)
