"""`mlcourse train omniglot`: a tiny run end to end, checkpoints, determinism, bad input, one-shot runs."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from mlcourse import cli, conv, train
from mlcourse.data import omniglot, protocol
from mlcourse.experiments import omniglot_job as job

pytestmark = pytest.mark.skipif(not os.environ.get(omniglot.ENV_VAR), reason="needs $MLCOURSE_OMNIGLOT (conftest.py)")

TINY = ["--episodes", "2", "--n-way", "5", "--k-query", "1", "--eval-episodes", "3", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("omniglot")
    assert cli.main(["train", "omniglot", "--method", "protonet", "--out", str(out), *TINY]) == 0
    return out


def test_tiny_run_writes_checkpoint_and_summary(tiny_run, capsys):
    summary = json.loads((tiny_run / "summary.json").read_text())
    e = summary["methods"]["protonet"]
    assert e["episodes_trained"] == 2 and not e["stopped_by_time_budget"]
    for k in "ab":
        assert e[k]["episodes"] == 3 and 0 <= e[k]["error"] <= 1 and e[k]["ci95"] >= 0
        assert abs(e[k]["accuracy"] - np.mean(e[k]["per_episode_accuracy"])) < 1e-6
    method, theta, hp = job.load_model(tiny_run / "protonet.npz")
    assert method == "protonet" and hp["n_way"] == 5 and theta[0][0].dtype == np.float32
    assert e["num_params"] == 111680 and summary["protocol"]["eval_seed"] == protocol.EVAL_SEED


def test_protonet_is_evaluated_with_the_population_stats_of_all_training_images(tiny_run):
    e = json.loads((tiny_run / "summary.json").read_text())["methods"]["protonet"]
    assert e["batchnorm_at_eval"]["statistics"] == "population" and e["batchnorm_at_eval"]["images"] == 544 * 20
    _, theta, hp = job.load_model(tiny_run / "protonet.npz")
    want = job.population_stats(theta, protocol.training_classes())
    assert len(hp["population_stats"]) == 4
    # the statistics are float64 sums of float32 convolution outputs: a recomputation on another BLAS
    # kernel agrees to about float32's precision (5e-8 measured), not to the last float64 bit; the
    # statistics of a subset or of other images differ by percents
    for (mu, var), (wmu, wvar) in zip(hp["population_stats"], want):
        np.testing.assert_allclose(mu, wmu, rtol=1e-5, atol=1e-5 * np.abs(wmu).max())
        np.testing.assert_allclose(var, wvar, rtol=1e-5, atol=1e-5 * np.abs(wvar).max())
    # the stored per-episode scores are the population-statistics ones, not the episodes' own statistics
    a = protocol.evaluation_episodes()["a"].subset(3)
    acc, _ = job.evaluate("protonet", theta, hp, a)
    np.testing.assert_allclose(acc, e["a"]["per_episode_accuracy"], atol=1e-6)
    z_pop = conv.conv4_apply(theta, a.arrays(0)[0], stats=hp["population_stats"])
    z_own = conv.conv4_apply(theta, a.arrays(0)[0])
    assert np.max(np.abs(z_pop - z_own)) > 1e-3


def test_episode_statistics_scores_are_added_beside_the_population_ones(tiny_run, tmp_path):
    import shutil
    for name in ("protonet.npz", "summary.json"):
        shutil.copy(tiny_run / name, tmp_path / name)
    own = job.score_with_episode_statistics(str(tmp_path), progress=False)
    e = json.loads((tmp_path / "summary.json").read_text())["methods"]["protonet"]
    assert e["episode_statistics"] == own and e["a"] == json.loads((tiny_run / "summary.json").read_text())[
        "methods"]["protonet"]["a"]
    _, theta, hp = job.load_model(tmp_path / "protonet.npz")
    hp.pop("population_stats")
    for k in "ab":
        assert own[k]["episodes"] == 3
        acc, _ = job.evaluate("protonet", theta, hp, protocol.evaluation_episodes()[k].subset(3))
        np.testing.assert_allclose(acc, own[k]["per_episode_accuracy"], atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no ProtoNet entry.*--method protonet"):
        job.score_with_episode_statistics(str(tmp_path / "empty"), progress=False)


def test_a_damaged_population_stats_entry_is_one_clear_error(tiny_run, tmp_path):
    theta, hp, history = train.load_checkpoint(tiny_run / "protonet.npz")
    hp["population_stats"] = hp["population_stats"][:2]
    train.save_checkpoint(tmp_path / "damaged.npz", theta, hp, history)
    with pytest.raises(ValueError, match="BatchNorm statistics are damaged.*train it again"):
        job.load_model(tmp_path / "damaged.npz")


def test_existing_checkpoint_is_not_overwritten(tiny_run, capsys):
    before = (tiny_run / "protonet.npz").read_bytes(), (tiny_run / "summary.json").read_bytes()
    assert cli.main(["train", "omniglot", "--method", "protonet", "--out", str(tiny_run), *TINY]) == 1
    assert "already exists" in capsys.readouterr().err
    assert ((tiny_run / "protonet.npz").read_bytes(), (tiny_run / "summary.json").read_bytes()) == before


def test_same_seed_same_checkpoint(tiny_run, tmp_path):
    assert cli.main(["train", "omniglot", "--method", "protonet", "--out", str(tmp_path), *TINY]) == 0
    a, _, _ = train.load_checkpoint(tiny_run / "protonet.npz")
    b, _, _ = train.load_checkpoint(tmp_path / "protonet.npz")
    assert all(np.array_equal(x, y) for bx, by in zip(a, b) for x, y in zip(bx, by))


def test_load_model_refuses_other_methods_sizes_and_files(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="not fomaml"):
        job.load_model(tiny_run / "protonet.npz", method="fomaml")
    with pytest.raises(ValueError, match="32x32"):
        job.load_model(tiny_run / "protonet.npz", image_size=32)
    other = tmp_path / "sinusoid.npz"
    train.save_checkpoint(other, [(np.zeros((1, 40)), np.zeros(40))], {"method": "maml"})
    with pytest.raises(ValueError, match="not an Omniglot checkpoint"):
        job.load_model(other)


@pytest.mark.parametrize("bad, message", [
    (["--episodes", "0"], "positive integer"),
    (["--alpha", "0.1"], "MAML/FOMAML setting"),
    (["--lr", "-1"], "positive number"),
    (["--time-budget", "-5"], "time-budget"),
    (["--k-query", "25"], "20 drawers"),
    (["--threads", "0"], "threads"),
])
def test_bad_settings_give_one_line_and_write_nothing(tmp_path, capsys, bad, message):
    args = ["train", "omniglot", "--method", "protonet", "--out", str(tmp_path / "o"), *TINY, *bad]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_time_budget_stops_early_and_says_so(tmp_path):
    data = protocol.training_classes()
    theta, hp, rec = job.train_method("protonet", data, hparams={"episodes": 50, "n_way": 5, "k_query": 1},
                                      time_budget=1e-3, progress=False)
    assert rec["stopped_by_time_budget"] and 1 <= rec["episodes_trained"] < 50


def test_fomaml_tiny_run_and_oneshot_runs(tmp_path):
    assert cli.main(["train", "omniglot", "--method", "fomaml", "--out", str(tmp_path), "--episodes", "1",
                     "--n-way", "3", "--k-query", "1", "--meta-batch", "1", "--inner-steps", "1", "--test-steps", "1",
                     "--eval-episodes", "2", "--no-progress"]) == 0
    e = json.loads((tmp_path / "summary.json").read_text())["methods"]["fomaml"]
    assert e["a"]["episodes"] == 2 and e["hparams"]["inner_steps"] == 1
    ev = protocol.evaluation_episodes(num_episodes=2)["a"]
    runs = []
    for i in range(2):
        xs, _, xq, yq = ev.arrays(i)
        perm = np.random.default_rng(i).permutation(20)
        runs.append(SimpleNamespace(name=f"run{i + 1:02d}", x_support=xs, x_query=xq[perm], y_query=yq[perm], n_way=20))
    res = job.evaluate_oneshot(runs, str(tmp_path / "fomaml.npz"))
    assert res["method"] == "fomaml" and len(res["errors"]) == 2 and all(0 <= x <= 1 for x in res["errors"])
    big = [SimpleNamespace(name="run01", x_support=np.zeros((20, 105, 105), np.float32),
                           x_query=np.zeros((20, 105, 105), np.float32), y_query=np.arange(20), n_way=20)]
    with pytest.raises(ValueError, match="105x105|28x28"):
        job.evaluate_oneshot(big, str(tmp_path / "fomaml.npz"))
    with pytest.raises(ValueError, match="no runs"):
        job.evaluate_oneshot([], str(tmp_path / "fomaml.npz"))
