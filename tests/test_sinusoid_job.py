"""The main sinusoid job (``sinusoid_job``) and the pretrained baseline's tuned fine-tuning step
(``baseline.tune_step_size``), on tiny sizes: what each run writes and how its tables read."""

import numpy as np
import pytest

from mlcourse import baseline, maml, nets, tasks, train
from mlcourse.experiments import shipped, sinusoid_job

TINY = dict(iterations=3, pretrain_iterations=3, eval_tasks=10, validation_tasks=12, hidden=(6, 6))


def _theta(seed=0):
    return nets.mlp_init(np.random.default_rng(seed), [1, 6, 6, 1])


def test_tuned_step_is_the_argmin_of_the_validation_mse_on_the_same_tasks():
    theta, alphas = _theta(), (0.0, 0.003, 0.01, 0.03)
    best, scores = baseline.tune_step_size(theta, tasks.Sinusoid(), rng=np.random.default_rng(5), alphas=alphas,
                                           num_tasks=30, k_shot=5, k_query=20, steps=(1, 5))
    rng = np.random.default_rng(5)
    batches = [tasks.Sinusoid().sample(rng, 30, 5, 20, dtype=np.float64)]   # the same tasks, one chunk
    for a in alphas:
        assert scores[a] == pytest.approx(maml.query_losses(theta, batches[0], a, (1, 5)).mean(), rel=1e-12)
    assert best == min(alphas, key=scores.get)
    assert scores[0.0] == pytest.approx(maml.query_losses(theta, batches[0], 0.0, (0,)).mean(), rel=1e-12)


def test_a_diverging_step_scores_inf_and_no_fine_tuning_can_win():
    theta = _theta(1)
    best, scores = baseline.tune_step_size(theta, tasks.Sinusoid(), rng=np.random.default_rng(0), alphas=(1e4, 0.0),
                                           num_tasks=5, k_shot=5, k_query=10, steps=(30,))
    assert scores[1e4] == float("inf") and np.isfinite(scores[0.0]) and best == 0.0


@pytest.mark.parametrize("kw, words", [(dict(alphas=()), "alphas is empty"), (dict(alphas=(-0.1,)), "alpha"),
                                       (dict(steps=(5, 1)), "increasing"), (dict(num_tasks=0), "num_tasks")])
def test_tune_step_size_says_how_to_fix_the_call(kw, words):
    with pytest.raises((ValueError, TypeError), match=words):
        baseline.tune_step_size(_theta(), tasks.Sinusoid(), rng=np.random.default_rng(0), **kw)


def test_defaults_are_the_papers_protocol():
    d = sinusoid_job.DEFAULTS
    assert (d["k_support"], d["alpha"], d["inner_steps"], d["maml_loss"], d["meta_batch_size"], d["beta"]) == \
        (10, 0.01, 1, "last", 25, 1e-3)
    assert d["eval_k_shot"] == sinusoid_job.PAPER["k_shot"] == 5 and d["iterations"] == 30000
    assert "Table 2" in sinusoid_job.PAPER["table"]
    assert sinusoid_job.DEFAULT_METHODS == shipped.REFRESH_OPTIONS["sinusoid"]["methods"]
    # the paper's row, the multi-step objective, FOMAML on the paper's objective
    fn = sinusoid_job.training_method("maml", d)
    assert fn.func is maml.maml_value_and_grad and fn.keywords == {"alpha": 0.01, "inner_steps": 1}
    fn = sinusoid_job.training_method("maml_multistep", d)
    assert fn.func is maml.multistep_value_and_grad and fn.keywords == {"alpha": 0.01, "inner_steps": 2}
    fn = sinusoid_job.training_method("fomaml", d)
    assert fn.func is maml.fomaml_value_and_grad and fn.keywords == {"alpha": 0.01, "inner_steps": 1}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, sinusoid_job.run(out, progress=False, workers=1, log=lambda *a: None, **TINY)


def test_the_default_run_meta_tests_one_model_from_5_10_20_points(tiny_run):
    out, s = tiny_run
    assert tuple(s["results"]) == sinusoid_job.DEFAULT_METHODS
    cfg = s["config"]
    for m, r in s["results"].items():
        assert r["k_shot"] == 5 and r["steps"] == list(range(11)), m
        assert set(r["by_k"]) == {"5", "10", "20"}
        assert r["by_k"]["5"]["mse"] == [r["mse"][k] for k in (0, 1, 5, 10)]   # the headline tasks
        theta, hp, _ = train.load_checkpoint(out / f"{m}.npz")
        assert hp["k_support"] == 10 and hp["method"] == m
        again = sinusoid_job.evaluate_method(m, theta, cfg, rng=np.random.default_rng([0, 999, 20]), k_shot=20,
                                             steps=(0, 1, 5, 10))
        np.testing.assert_allclose(again["mse"], r["by_k"]["20"]["mse"], rtol=1e-6)


def test_the_pretrained_baseline_is_fine_tuned_with_a_step_chosen_on_validation_tasks(tiny_run):
    out, s = tiny_run
    cfg, tuned = s["config"], s["results"]["pretrain"]["tuned_step"]
    theta, _, _ = train.load_checkpoint(out / "pretrain.npz")
    for k in ("5", "10", "20"):
        best, scores = baseline.tune_step_size(theta, tasks.Sinusoid(), rng=sinusoid_job.validation_rng(cfg, int(k)),
                                               num_tasks=cfg["validation_tasks"], k_shot=int(k), k_query=100)
        assert tuned[k]["alpha"] == best and set(tuned[k]["validation"]) == {str(a) for a in baseline.STEP_SIZES}
        again = train.evaluate(theta, tasks.Sinusoid(), rng=sinusoid_job.meta_test_rng(cfg, int(k)), num_tasks=10,
                               k_shot=int(k), alpha=best, steps=tuned[k]["steps"])
        np.testing.assert_allclose(again["mse"], tuned[k]["mse"], rtol=1e-6)
    # tuning never sees the meta-test tasks
    a = sinusoid_job.validation_rng(cfg, 5).random(3)
    assert not np.allclose(a, sinusoid_job.meta_test_rng(cfg, 5).random(3))


def test_the_table_names_the_papers_table_and_sets_its_rows_beside_like_for_like(tiny_run):
    _, s = tiny_run
    text = sinusoid_job.format_table(s)
    assert "Finn et al. (2017), appendix C.1, Table 2" in text and "5-shot" in text
    rows = {label: paper for label, *_, paper in sinusoid_job.table_rows(s)}
    assert rows["MAML, 1 step, last-step loss"] == sinusoid_job.PAPER["maml"]
    assert rows["MAML, multi-step loss, 2 steps"] is None and rows["FOMAML, 1 step, last-step loss"] is None
    tuned = [label for label in rows if label.startswith("pretrained, tuned")]
    assert len(tuned) == 1 and rows[tuned[0]] == sinusoid_job.PAPER["pretrain"]
    assert rows["pretrained, alpha = 0"] is None and rows["pretrained, alpha = 0.01"] is None
    label0 = [r for r in sinusoid_job.table_rows(s) if r[0] == "pretrained, alpha = 0"][0]
    assert label0[1] == [s["results"]["pretrain"]["mse"][0]] * 4   # no fine-tuning: the 0-step MSE throughout
    assert "pretrained, tuned alpha" in sinusoid_job.format_k_table(s)
    # another objective for "maml": no paper row beside it
    other = dict(s, config=dict(s["config"], inner_steps=2, maml_loss="multistep"))
    rows = {label: paper for label, *_, paper in sinusoid_job.table_rows(other)}
    assert rows["MAML, 2 steps, multi-step loss"] is None


def test_parallel_workers_give_the_same_numbers(tmp_path, tiny_run):
    _, s = tiny_run
    par = sinusoid_job.run(tmp_path / "par", progress=False, workers=2, log=lambda *a: None,
                           methods=("pretrain", "maml"), **TINY)
    assert list(par["results"]) == ["pretrain", "maml"]
    for m in ("maml", "pretrain"):
        assert par["results"][m]["mse"] == s["results"][m]["mse"]
    assert par["results"]["pretrain"]["tuned_step"] == s["results"]["pretrain"]["tuned_step"]


def test_unknown_settings_and_methods_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="unknown setting"):
        sinusoid_job.run(tmp_path, k_shot=5)
    with pytest.raises(ValueError, match="unknown method"):
        sinusoid_job.run(tmp_path, methods=("maml", "mamll"))
    with pytest.raises(ValueError, match="multistep_inner_steps"):
        sinusoid_job.run(tmp_path, multistep_inner_steps=0)
    with pytest.raises(ValueError, match="eval_k_shot"):
        sinusoid_job.run(tmp_path, eval_k_shot=0)
