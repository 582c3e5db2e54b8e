"""Audit of the shipped Omniglot results (mlcourse/experiments/results/omniglot, `mlcourse refresh-results omniglot`).

The summary is what its checkpoints give: a prefix of the protocol's fixed episodes is re-scored
from the shipped checkpoints and compared with the per-episode accuracies stored in summary.json;
the shipped runs fit their time budget, and the benchmark's ratio and loader speed-up are as the README
states.
"""
import os

import numpy as np
import pytest

from mlcourse.data import omniglot, protocol
from mlcourse.experiments import omniglot_job as job
from mlcourse.experiments import shipped
from quoting import prose

FOLDER = os.path.join(shipped.RESULTS_DIR, "omniglot")
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(FOLDER, "summary.json")),
                                reason="no shipped Omniglot results yet")
needs_data = pytest.mark.skipif(not os.environ.get(omniglot.ENV_VAR), reason="needs $MLCOURSE_OMNIGLOT (conftest.py)")
SUBSET = {"protonet": 40, "fomaml": 10, "maml": 10}


@pytest.fixture(scope="module")
def res():
    return shipped.load("omniglot")


def test_summary_numbers_follow_from_the_per_episode_scores(res):
    for method, e in res["summary"]["methods"].items():
        for k in "ab":
            acc = np.asarray(e[k]["per_episode_accuracy"])
            assert len(acc) == e[k]["episodes"] == protocol.NUM_EPISODES
            assert abs(e[k]["accuracy"] - acc.mean()) < 1e-6 and abs(e[k]["error"] - (1 - acc.mean())) < 1e-6
            assert abs(e[k]["ci95"] - 1.96 * acc.std(ddof=1) / np.sqrt(len(acc))) < 1e-6


def test_checkpoints_are_small_float32_and_of_their_method(res):
    for method in res["summary"]["methods"]:
        path = os.path.join(FOLDER, f"{method}.npz")
        assert os.path.getsize(path) < 600_000
        got, theta, hp = job.load_model(path, method)
        assert all(a.dtype == np.float32 for block in theta for a in block)


@needs_data
def test_summary_is_what_the_checkpoints_give(res):
    episodes = protocol.evaluation_episodes()
    for method, e in res["summary"]["methods"].items():
        _, theta, hp = job.load_model(os.path.join(FOLDER, f"{method}.npz"), method)
        for k in "ab":
            n = SUBSET[method]
            acc, _ = job.evaluate(method, theta, hp, episodes[k].subset(n))
            stored = np.asarray(e[k]["per_episode_accuracy"][:n])
            # float32 sums may round differently with another BLAS thread count: allow a rare flipped query
            assert np.mean(np.abs(acc - stored) < 1e-5) >= 0.9 and abs(acc.mean() - stored.mean()) < 0.02


def test_shipped_runs_fit_the_time_budget(res):
    p = res["summary"]["methods"]["protonet"]
    assert p["wall_seconds"] <= 15 * 60                       # the whole command, evaluation included
    if p["stopped_by_time_budget"]:                           # then `--episodes N` reproduces it on any machine
        assert p["episodes_trained"] < p["hparams"]["episodes"] and p["train_seconds"] >= p["time_budget"]
    else:
        assert p["episodes_trained"] == p["hparams"]["episodes"]
    # the shipped ProtoNet is the command's defaults: `mlcourse train omniglot --method protonet` reproduces it
    assert p["hparams"] == job.DEFAULTS["protonet"]
    others = [m for m in res["summary"]["methods"] if m in ("maml", "fomaml")]
    assert others, "MAML or FOMAML is reported beside ProtoNet"
    for m in others:
        assert res["summary"]["methods"][m]["train_seconds"] <= 15 * 60


def test_shipped_protonet_meets_the_protocol_targets(res):
    # issue targets: (a) within-alphabet 20-way 1-shot error at most 29%, (b) 5-way 1-shot accuracy at least 93.5%
    p = res["summary"]["methods"]["protonet"]
    assert p["a"]["error"] <= 0.29 and p["b"]["accuracy"] >= 0.935, (p["a"]["error"], p["b"]["accuracy"])
    # scored with the population statistics its checkpoint holds, over every training image
    assert p["batchnorm_at_eval"] == {**p["batchnorm_at_eval"], "statistics": "population", "images": 544 * 20}
    assert len(res["hparams"]["protonet"]["population_stats"]) == 4


@needs_data
def test_episode_statistics_move_the_scores_by_less_than_their_intervals(res):
    # what the README says of scoring the shipped ProtoNet with each episode's own BatchNorm statistics
    p = res["summary"]["methods"]["protonet"]
    for k in "ab":
        own = p["episode_statistics"][k]
        acc = np.asarray(own["per_episode_accuracy"])
        assert len(acc) == own["episodes"] == p[k]["episodes"] and abs(own["accuracy"] - acc.mean()) < 1e-6
        assert abs(own["accuracy"] - p[k]["accuracy"]) < p[k]["ci95"], (k, own["accuracy"], p[k]["accuracy"])


@needs_data
def test_episode_statistics_scores_are_what_the_checkpoint_gives(res):
    # a prefix re-scored with each episode's own statistics, against the stored per-episode scores
    p = res["summary"]["methods"]["protonet"]
    _, theta, hp = job.load_model(os.path.join(FOLDER, "protonet.npz"), "protonet")
    own = {k: v for k, v in hp.items() if k != "population_stats"}
    n = SUBSET["protonet"]
    for k, es in protocol.evaluation_episodes().items():
        acc, _ = job.evaluate("protonet", theta, own, es.subset(n))
        stored = np.asarray(p["episode_statistics"][k]["per_episode_accuracy"][:n])
        assert np.mean(np.abs(acc - stored) < 1e-5) >= 0.9 and abs(acc.mean() - stored.mean()) < 0.02


def test_benchmark_ratio_memory_gradients_and_loader(res):
    b = res["bench"]
    assert b is not None and b["torch_skipped"] is None
    readme = " ".join(prose("README.md").split())
    # the README quotes each ratio (test_shipped_results) and says in words which step is slower than PyTorch's
    slower = {"protonet": "the ProtoNet training episode is slower than PyTorch's",
              "fomaml": "the FOMAML meta-step is slower than PyTorch's"}
    for path in ("protonet", "fomaml"):
        row = b["rows"][path]
        assert (slower[path] in readme) == (row["ratio_numpy_over_torch"] > 1.0), path
        assert row["numpy"]["peak_mib"] < row["torch"]["peak_mib"], path
        assert row["gradient_check"]["rel_error"] < 1e-8, path      # float64 on both sides: rounding only
    assert b["loader"]["speedup"] >= 10
