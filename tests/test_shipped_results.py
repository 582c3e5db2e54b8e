"""Every audit of the shipped results, in one place.

* the files are present inside the package;
* each summary.json is what its checkpoints give (re-evaluated on the same tasks);
* the direction trace is the shipped MAML run, and the notebook 05 demo reproduces that run's start;
* the numbers quoted in the notebooks' prose and in the README (QUOTED below): each quoted text is
  present in its file and shows the value computed from the shipped results, the engine or the
  paper's numbers (``sinusoid_job.PAPER``, their one home), rounded as written.  Every decimal
  number in the notebooks' prose is either quoted here or an input listed in INPUTS.
"""
import functools
import importlib
import json
import os
import re

import numpy as np
import pytest
from quoting import Quote, _same_rounding, floor2, prose  # noqa: F401
from tolerances import EXACT

from mlcourse import checks, directions, nets, tasks, train, tree
from mlcourse.experiments import direction_trace, sinusoid_job
from mlcourse.experiments import shipped as results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
    assert set(results.available()) == {*results.SINUSOID_RUNS, "directions", "speed", *results.EXTERNAL}
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
    rows = {int(line.split("|")[0]): line for line in table.splitlines() if line.split("|")[0].strip().isdigit()}
    for k, p_maml, p_pre in zip(paper["steps"], paper["maml"], paper["pretrain"]):   # the paper's on its own step's row
        assert [c.strip() for c in rows[k].split("|")[-2:]] == [f"{p_maml:.2f}", f"{p_pre:.2f}"], rows[k]
    assert rows[0].split("|")[-1].strip() == "" and f"{res['maml']['mse'][1]:.3f}" in rows[1]
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


def test_summary_is_plain_json_with_every_evaluated_step():
    with open(os.path.join(results.path("sinusoid"), "summary.json")) as f:
        s = json.load(f)
    for m, r in s["results"].items():
        assert len(r["mse"]) == len(r["ci95"]) == len(s["config"]["eval_steps"]), m
        assert all(isinstance(v, float) and v > 0 for v in r["mse"] + r["ci95"]), m
        assert r["by_k"][str(s["config"]["k_support"])]["mse"][1] == r["mse"][1], m   # the same K = 5 evaluation


def _reevaluate(run, method):
    cfg = run["summary"]["config"]
    return train.evaluate(run["theta"][method], tasks.Sinusoid(), rng=np.random.default_rng([cfg["seed"], 999]),
                          num_tasks=cfg["eval_tasks"], k_shot=cfg["k_support"], k_query=cfg["eval_k_query"],
                          alpha=cfg["alpha"], steps=cfg["eval_steps"])


def test_reptile_meta_learns_and_five_inner_steps_adapt_faster(sinusoid):
    """Reptile with 2 inner steps (main job) and with 5 (notebook 05): both far better than the pretrained
    baseline; 5 inner steps is better after 1 and 5 test steps, level (inside the intervals) after 10."""
    two = sinusoid["summary"]["results"]["reptile"]
    five = results.load("sinusoid_reptile5")
    r5 = five["summary"]["results"]["reptile"]
    pre = sinusoid["summary"]["results"]["pretrain"]
    assert five["summary"]["config"]["inner_steps"] == 5
    for k in (1, 5):
        assert r5["mse"][k] < two["mse"][k] < pre["mse"][k] / 2, k
    assert abs(r5["mse"][10] - two["mse"][10]) < min(r5["ci95"][10], two["ci95"][10])
    assert max(r5["mse"][10], two["mse"][10]) < pre["mse"][10] / 2
    np.testing.assert_allclose(_reevaluate(five, "reptile")["mse"], r5["mse"], rtol=MSE_MATCH)


def test_fomaml_is_behind_maml_after_one_step_and_level_after_five_and_ten(sinusoid):
    """What notebook 05 says of FOMAML against MAML, on the shipped summary."""
    res = sinusoid["summary"]["results"]
    fo, ma = res["fomaml"], res["maml"]
    assert fo["mse"][1] - ma["mse"][1] > fo["ci95"][1] + ma["ci95"][1]
    for k in (5, 10):
        assert abs(fo["mse"][k] - ma["mse"][k]) < min(fo["ci95"][k], ma["ci95"][k]), k


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
    # the README: at or below the paper's numbers, but after 5 and 10 steps by less than the 95% interval
    paper = sinusoid_job.PAPER
    for k, p in zip(paper["steps"], paper["maml"]):
        assert r1["mse"][k] <= p, k
        if k in (5, 10):
            assert p - r1["mse"][k] < r1["ci95"][k], k


def test_multistep_loss_beats_the_one_step_objective_beyond_one_step():
    """The point of notebook 05's section on the inner loop: scoring every inner step helps at 5 and 10 steps."""
    r1 = results.load("sinusoid_maml1step")["summary"]["results"]["maml"]
    multi = results.load("sinusoid")["summary"]["results"]["maml"]
    for k in (5, 10):
        assert multi["mse"][k] + multi["ci95"][k] < r1["mse"][k], k


def test_the_first_demo_iterations_reproduce_the_shipped_maml_run(sinusoid):
    """Notebook 05's demo: the main job's MAML training, stopped after 1000 iterations, has the
    shipped run's loss history so far (float32: equal on the machine that made it, ~equal elsewhere)."""
    cfg = dict(sinusoid_job.DEFAULTS, iterations=1000)
    _, _, hist, _ = sinusoid_job._train_one((0, "maml", cfg), False)
    shipped_loss = sinusoid["summary"]["results"]["maml"]["history"]["loss"]
    assert len(hist.loss) == 10
    np.testing.assert_allclose(hist.loss, shipped_loss[:len(hist.loss)], rtol=1e-2)


# ---- numbers quoted in prose: one home each ------------------------------------------------------
#
# A Quote is (file, text, values, fmt): `text` is the quoted passage with "<>" where each number
# stands; `values()` computes the numbers (from the shipped results, the engine or PAPER); `fmt`
# formats them as written (a format spec for all, a tuple of specs, or a function).  The digits
# themselves live only in the quoted file.  To add a README number, add a Quote with file "README.md".

@functools.lru_cache(maxsize=None)
def run(name="sinusoid"):
    return results.load(name)["summary"]


def mse(method, steps=(1, 5, 10), name="sinusoid"):
    r = run(name)["results"][method]
    return [r["mse"][r["steps"].index(k)] for k in steps]


def ci(method, steps=(1, 5, 10), name="sinusoid"):
    r = run(name)["results"][method]
    return [r["ci95"][r["steps"].index(k)] for k in steps]


def by_k(method, ks=("10", "20"), steps=(1, 10)):
    """The main job's meta-test of one model from K = 10 and 20 support points: [K10 1 step, K10 10, K20 1, K20 10]."""
    out = []
    for k in ks:
        r = run()["results"][method]["by_k"][k]
        out += [r["mse"][r["steps"].index(s)] for s in steps]
    return out


@functools.lru_cache(maxsize=None)
def speed():
    return results.load("speed")


SPEED_ROWS = (("maml", "MAML, exact second order: `maml.maml_grad` (hand-derived fast path)"),
              ("fomaml", "FOMAML: `maml.fomaml_grad`"), ("reptile", "Reptile: `reptile.reptile_direction`"),
              ("maml_autograd", "MAML, autograd, whole meta-batch vectorised"),
              ("maml_loop", "MAML, autograd, a Python loop over the 25 tasks"),
              ("jax", "JAX `jit` + `vmap` (reference)"), ("torch", "PyTorch `torch.func` + `vmap` (reference)"))


def speed_row(key, steps):
    (row,) = [r for r in speed()["rows"] if r["key"] == key and r["inner_steps"] == steps]
    return row


def speed_cells(key):
    """One README row: ms, times JAX, peak RSS (MiB) at 1 inner step, then the same at 5."""
    return [v for s in (1, 5) for v in (speed_row(key, s)["ms"], speed_row(key, s)["x_jax"],
                                        speed_row(key, s)["peak_rss_mib"])]


def speed_ratio(slow, fast):
    """slow / fast at 1 and at 5 inner steps."""
    return [speed_row(slow, s)["ms"] / speed_row(fast, s)["ms"] for s in (1, 5)]


def times(v):
    """A ratio as written: two decimals below 10, whole numbers above."""
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def ms3(v):
    """Milliseconds to three significant digits (0.372, 6.27, 192)."""
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def paper(method):
    return list(sinusoid_job.PAPER[method])


@functools.lru_cache(maxsize=None)
def trace():
    return results.load("directions")


def trace_at(key, since=None, upto=None):
    """The trace's values of `key` at the stored iterations in [since, upto]."""
    it = trace()["iterations"]
    sel = (it >= (since or 0)) & (it <= (upto if upto is not None else it[-1]))
    return trace()[key][sel]


LATER = 1223     # the prose's "from iteration 1223 on": a stored iteration (checked below)


@functools.lru_cache(maxsize=None)
def final_directions(alpha, inner_steps=1):
    """directions.compare_directions at the trace's final snapshot on its probe batch (notebook 04)."""
    theta = results.theta_from_flat(trace()["theta_flat"][-1], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return directions.compare_directions(theta, direction_trace.probe_batch(), alpha, inner_steps)


@functools.lru_cache(maxsize=None)
def support_query():
    """Notebook 05, section 5: per-task support and query MSE after 1 and 10 steps, both MAML runs."""
    out = {}
    for name in ("sinusoid_maml1step", "sinusoid"):
        cfg = run(name)["config"]
        s, q = train.support_and_query_losses(results.load(name)["theta"]["maml"], tasks.Sinusoid(),
                                              rng=np.random.default_rng([cfg["seed"], 999]), num_tasks=cfg["eval_tasks"],
                                              k_shot=cfg["k_support"], k_query=cfg["eval_k_query"], alpha=cfg["alpha"],
                                              steps=[1, 10])
        out[name] = {"support10": s[1].mean(), "query10": q[1].mean(), "worse": np.mean(q[1] > q[0])}
    return out


def first_iteration(key, test):
    it = trace()["iterations"]
    return int(it[np.argmax(test(trace()[key]))])


NB02, NB03, NB04, NB05 = (f"notebooks/{n}.ipynb" for n in
                          ("02_meta_gradient_1d", "03_geometry_init", "04_maml_vs_fomaml", "05_maml_sinusoid"))
MLP = [1, 40, 40, 1]

QUOTED = [
    # notebook 02: the curvature at the notebook's theta
    Quote(NB02, r"($\mathcal{L}_s'' \approx <>$)", lambda: [checks.check_worked_example_1(
        0.3, tasks.Scalar1D().sample(np.random.default_rng(0), 1, 5, 15), 0.3)["curvature"]], ".1f"),
    # notebook 03: E[a] and the check-yourself answers
    Quote(NB03, r"$\theta = <>$ is the wrong slope", lambda: [tasks.LinearSlope().mean_slope], ".1f"),
    Quote(NB03, r"Try $\theta$ = <> (the mean slope)", lambda: [tasks.LinearSlope().mean_slope], ".1f"),
    Quote(NB03, "**speed** <> or <>", lambda: list(importlib.import_module("mlcourse.viz.geometry").SPEEDS), "s"),
    Quote(NB03, r"so $c = 2 \cdot 0.25 \cdot 1 = <>$ and $\theta' = <>\,\theta + <>\,a$",
          lambda: [float(checks.linear_c(0.25, np.array([[1.0, -1.0]]))[0])] * 3, ".1f"),
    Quote(NB03, r"$\theta^* = \mathbb{E}[a] = <>$.", lambda: [checks.best_initialisation([0.5, 1.0, 3.0])], ".1f"),
    Quote(NB03, r"\alpha = 1/(2\overline{x^2}) = <>$", lambda: [0.25 / float(checks.linear_c(0.25, np.array([[1.0, -1.0]]))[0])],
          ".1f"),
    # notebook 04: the network, the trace and the alpha sweep
    Quote(NB04, r"$P = <>$ parameters, so $H_s$ has $P^2\approx <>$ million entries",
          lambda: [nets.num_params(nets.mlp_init(np.random.default_rng(0), MLP))] * 2, ("d", lambda p: f"{p * p / 1e6:.1f}")),
    Quote(NB04, "At <> log-spaced iterations", lambda: [len(trace()["iterations"])], "d"),
    Quote(NB04, "on a fixed probe batch of <> tasks", lambda: [int(trace()["config"]["probe_tasks"])], "d"),
    Quote(NB04, "2 inner steps, the multi-step loss that scores the query loss after every inner step, <> meta-iterations",
          lambda: [int(trace()["config"]["iterations"])], "d"),
    Quote(NB04, "(cosine ≥ <> up to iteration <>)",
          lambda: [trace_at("cos_fomaml_1", upto=600).min(),
                   int(trace()["iterations"][np.argmax(trace()["cos_fomaml_1"] < 0.98) - 1])], (floor2, "d")),
    Quote(NB04, "From iteration <> on, the one-step cosine jumps between <> and <> from one snapshot to the next (<> at the end), "
          "and with five inner steps between <> and <> (<> at the end)",
          lambda: [LATER, *[f(trace_at("cos_fomaml_1", LATER)) for f in (np.min, np.max)], trace()["cos_fomaml_1"][-1],
                   *[f(trace_at("cos_fomaml_5", LATER)) for f in (np.min, np.max)], trace()["cos_fomaml_5"][-1]],
          ("d",) + (".2f",) * 6),
    Quote(NB04, "its cosine with MAML is negative from iteration <> to iteration <> and wanders between <> and <> later",
          lambda: [first_iteration("cos_reptile_1", lambda c: c < 0),
                   int(trace()["iterations"][np.argmax((trace()["cos_reptile_1"] >= 0)
                                                       & (trace()["iterations"] > 11)) - 1]),
                   trace_at("cos_reptile_1", LATER).min(), trace_at("cos_reptile_1", LATER).max()], ("d", "d", ".2f", ".2f")),
    Quote(NB04, "(α = <>: cosine <> even at the end of training)", lambda: [0.001, final_directions(0.001)["cos_fomaml"]],
          ("g", ".2f")),
    Quote(NB04, "the dropped term is <> times as long as the FOMAML direction itself (cosine <>), at α = <> <> times",
          lambda: [final_directions(0.01)["norm_dropped"] / final_directions(0.01)["norm_fomaml"],
                   final_directions(0.01)["cos_fomaml"], 0.05,
                   final_directions(0.05)["norm_dropped"] / final_directions(0.05)["norm_fomaml"]], (".1f", ".2f", "g", ".1f")),
    Quote(NB04, "(the trace's 5-step cosine at the end: <>)", lambda: [trace()["cos_fomaml_5"][-1]]),
    Quote(NB04, "it is checked against autograd to <> in the engine's tests",
          lambda: [EXACT], ".0e"),
    Quote(NB04, "(cosines between <> and <> after iteration <>, instead of ≈ <> early)",
          lambda: [trace_at("cos_fomaml_1", LATER).min(), trace_at("cos_fomaml_1", LATER).max(), LATER,
                   np.median(trace_at("cos_fomaml_1", upto=600))], (".2f", ".2f", "d", ".2f")),
    # notebook 05: the setup
    Quote(NB05, r"amplitude $A\sim U[<>, <>]$", lambda: list(tasks.Sinusoid().amplitude_range), ".1f"),
    Quote(NB05, "| model | MLP 1-40-40-1, ReLU, <> parameters |",
          lambda: [nets.num_params(nets.mlp_init(np.random.default_rng(0), [1, *run()["config"]["hidden"], 1]))], "d"),
    Quote(NB05, "K = <> points / <> points of the same task (<> at meta-test)",
          lambda: [run()["config"][k] for k in ("k_support", "k_query", "eval_k_query")], "d"),
    Quote(NB05, "meta-batch of <> tasks, **<> meta-iterations** (paper: 70000)",
          lambda: [run()["config"]["meta_batch_size"], run()["config"]["iterations"]], "d"),
    Quote(NB05, "| meta-test | **<> fresh tasks**, K = <>", lambda: [run()["config"]["eval_tasks"], run()["config"]["k_support"]], "d"),
    Quote(NB05, "the 95% interval of MAML's one-step MSE is about ±<>", lambda: ci("maml", [1])),
    Quote(NB05, "whose amplitude ranges over a factor of <>",
          lambda: [tasks.Sinusoid().amplitude_range[1] / tasks.Sinusoid().amplitude_range[0]], ".0f"),
    Quote(NB05, "(<> meta-iterations per method, <> for the pretrained baseline",
          lambda: [run()["config"]["iterations"], run()["config"]["pretrain_iterations"]], "d"),
    # notebook 05: the full runs against the paper
    Quote(NB05, "**MAML's <> / <> / <> after 1 / 5 / 10 steps are at or below the paper's <> / <> / <>**, and so are the upper "
          "ends of our 95% intervals (<> / <> / <>), with fewer meta-iterations than the paper (<> instead of 70000)",
          lambda: mse("maml") + paper("maml") + list(np.add(mse("maml"), ci("maml"))) + [run()["config"]["iterations"]],
          (".2f",) * 9 + ("d",)),
    Quote(NB05, "The pretrained baseline gives <> / <> / <> against the paper's <> / <> / <>, the same within our intervals (±<>)",
          lambda: mse("pretrain") + paper("pretrain") + [max(ci("pretrain"))]),
    Quote(NB05, "equally bad** (MSE ≈ <> for every model)",
          lambda: [_same_rounding([mse(m, [0])[0] for m in run()["results"]], ".1f")], ".1f"),
    Quote(NB05, "**After one step MAML drops to ≈ <>**", lambda: mse("maml", [1]), ".1f"),
    Quote(NB05, "(<> → <> → <> after 0, 1 and 10 steps)", lambda: mse("pretrain", [0, 1, 10]), ".1f"),
    Quote(NB05, "(<> / <> / <> against <> / <> / <>; after 5 and 10 steps", lambda: mse("fomaml") + mse("maml")),
    Quote(NB05, "**Reptile with two inner steps meta-learns** (<> / <> / <>)", lambda: mse("reptile")),
    Quote(NB05, "With five inner steps it gets to <> / <> / <>.", lambda: mse("reptile", name="sinusoid_reptile5")),
    # notebook 05, section 5: the two objectives
    Quote(NB05, "(<> ± <> against <> ± <>): the one-step objective",
          lambda: [mse("maml", [1], "sinusoid_maml1step")[0], ci("maml", [1], "sinusoid_maml1step")[0],
                   mse("maml", [1])[0], ci("maml", [1])[0]], ".3f"),
    Quote(NB05, "after 5 and 10 steps <> / <> against <> / <>, differences larger than both intervals",
          lambda: mse("maml", [5, 10], "sinusoid_maml1step") + mse("maml", [5, 10]), ".3f"),
    Quote(NB05, "the one-step objective lands on the paper's numbers (<> / <> / <> against <> / <> / <>)",
          lambda: mse("maml", name="sinusoid_maml1step") + paper("maml")),
    Quote(NB05, "(support MSE <> and <>), while the MSE on the rest of the curve stays about <> times higher",
          lambda: [support_query()["sinusoid_maml1step"]["support10"], support_query()["sinusoid"]["support10"],
                   _same_rounding([support_query()[n]["query10"] / support_query()[n]["support10"]
                                   for n in support_query()], ".0f")],
          (".3f", ".3f", ".0f")),
    Quote(NB05, "For <>%–<>% of the tasks, ten steps are *worse* than one",
          lambda: sorted(100 * support_query()[n]["worse"] for n in support_query()), ".0f"),
    Quote(NB05, "so that all four methods train side by side in <> s of wall time on two cores",
          lambda: [run()["wall_seconds"]], ".0f"),
    # notebook 05: answers, mistakes, takeaways
    Quote(NB05, "the support MSE falling to about <> while the query MSE stays near <>",
          lambda: [_same_rounding([support_query()[n]["support10"] for n in support_query()], ".2f"),
                   np.mean([support_query()[n]["query10"] for n in support_query()])], (".2f", ".1f")),
    Quote(NB05, "(<> → <> after ten)", lambda: mse("maml", [1, 10])),
    Quote(NB05, "with ≈ <> in section 4", lambda: mse("pretrain", [0]), ".1f"),
    Quote(NB05, "With 2000 tasks the 95% interval of MAML's 1-step MSE is ±<>", lambda: ci("maml", [1])),
    Quote(NB05, "it meta-learns (<> / <> / <>); the 5-step run gets <> / <> / <>",
          lambda: mse("reptile") + mse("reptile", name="sinusoid_reptile5")),
    Quote(NB05, "(pretrained: ≈ <> after 10 steps)", lambda: mse("pretrain", [10]), ".1f"),
    Quote(NB05, "(MAML: ≈ <> after one step, ≈ <> after ten", lambda: mse("maml", [1, 10]), ".1f"),
    # README: the "Published numbers" table and the paragraph under it
    Quote("README.md", "| MAML, this package | <> ± <> | <> ± <> | <> ± <> |",
          lambda: [v for pair in zip(mse("maml"), ci("maml")) for v in pair], ".3f"),
    Quote("README.md", "| MAML, paper | <> | <> | <> |", lambda: paper("maml")),
    Quote("README.md", "| pretrained on all tasks, this package | <> ± <> | <> ± <> | <> ± <> |",
          lambda: [v for pair in zip(mse("pretrain"), ci("pretrain")) for v in pair], ".3f"),
    Quote("README.md", "| pretrained, paper | <> | <> | <> |", lambda: paper("pretrain")),
    # README: the speed table (speed.json, written by `mlcourse refresh-results speed`)
    Quote("README.md", "jax <>, PyTorch <> and numpy <>:",
          lambda: [speed()["versions"][k] for k in ("jax", "torch", "numpy")], "s"),
    *[Quote("README.md", f"| {label} | <> | <> | <> | <> | <> | <> |", functools.partial(speed_cells, key),
            (ms3, times, ".0f") * 2) for key, label in SPEED_ROWS],
    Quote("README.md", "autograd <>× (1 inner step) and <>× (5) faster than a loop over the\ntasks, and the "
          "hand-derived fast path another <>× and <>×", lambda: [*speed_ratio("maml_loop", "maml_autograd"),
                                                                *speed_ratio("maml_autograd", "maml")], ".0f"),
    Quote("README.md", "The shipped four-method run below took <> s of\nwall time on the 2-core development machine, "
          "MAML's <> meta-iterations <> s of it",
          lambda: [run()["wall_seconds"], run()["config"]["iterations"], run()["train_seconds"]["maml"]],
          (".0f", "d", ".0f")),
    Quote("README.md", "for <> iterations instead of <>.", lambda: [run()["config"]["iterations"],
                                                                  sinusoid_job.PAPER["iterations"]], "d"),
    Quote("README.md", "the same <> iterations give\n<> / <> / <>: at or below the paper's numbers too",
          lambda: [run("sinusoid_maml1step")["config"]["iterations"], *mse("maml", name="sinusoid_maml1step")],
          ("d", ".3f", ".3f", ".3f")),
    Quote("README.md", "MAML <> / <> (K = 10) and <> / <> (K = 20), the pretrained baseline <> / <> and <> / <>.",
          lambda: by_k("maml") + by_k("pretrain"), ".3f"),
    Quote("README.md", "FOMAML <> / <> / <>,\nReptile (2 inner steps) <> / <> / <>.",
          lambda: mse("fomaml") + mse("reptile"), ".3f"),
]

# Decimal numbers in the notebooks' prose that are inputs or constants, not results: the settings a
# sentence states (alpha, ranges), check-yourself questions' data, the normal quantile, a section number.
INPUTS = {
    NB03: {"0.25", "0.5", "1.0", "3.0", "0.6", "2.3"},
    NB04: {"0.01"},
    NB05: {"0.01", "0.1", "1.96", "5.1", "95%"},
    "README.md": {"0.01", "0.1", "5.1", "95%", "3.10"},   # alpha, the amplitude range, the paper's section, Python
}
# The later notebooks' quotes, each topic in tests/quotes_<topic>.py (see quoting.py).
for _name in sorted(f[:-3] for f in os.listdir(os.path.dirname(os.path.abspath(__file__)))
                    if f.startswith("quotes_") and f.endswith(".py")):
    _mod = importlib.import_module(_name)
    QUOTED += _mod.QUOTED
    for _file, _inputs in _mod.INPUTS.items():
        INPUTS[_file] = INPUTS.get(_file, set()) | set(_inputs)

DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])|\d+%")


@pytest.mark.parametrize("quote", QUOTED, ids=[f"{os.path.basename(q.file)}: {q.text[:48]}" for q in QUOTED])
def test_quoted_number_is_the_computed_value(quote):
    text, expected = prose(quote.file), quote.rendered()
    if expected in text:
        return
    pattern = re.escape(quote.text).replace("<>", r"(-?[\d.]+%?|[\d.]+e-?\d+|[^\s/|()]+)")
    found = re.search(pattern, text)
    assert found, f"{quote.file}: the quoted passage is gone or reworded; update QUOTED.\n  expected: {expected}"
    raise AssertionError(f"{quote.file} quotes {found.group(0)!r}\n  the results give {expected!r}")


def test_later_is_a_stored_iteration():
    assert LATER in trace()["iterations"]


@pytest.mark.parametrize("file", ["README.md"] + sorted(f"notebooks/{f}" for f in os.listdir(os.path.join(ROOT, "notebooks"))
                                                        if f.endswith(".ipynb")))
def test_every_decimal_in_the_prose_is_quoted_or_an_input(file):
    text = prose(file)
    for q in QUOTED:
        if q.file == file:
            text = text.replace(q.rendered(), " ")
    stray = sorted(set(DECIMAL.findall(text)) - INPUTS.get(file, set()))
    assert not stray, (f"{file}: numbers in the prose that no cell prints and QUOTED does not check: {stray}. "
                       "Print them from a cell, or add a Quote (or, for an input, INPUTS).")
