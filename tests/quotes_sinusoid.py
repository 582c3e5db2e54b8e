"""Numbers quoted in notebook 05's prose and in the README's sinusoid section (see quoting.py).

Every value comes from the shipped main run (``shipped.load("sinusoid")``: the paper's protocol),
the Reptile run (``"sinusoid_reptile5"``), the engine (``tasks``, ``nets``, ``baseline``) or the
paper's numbers (``sinusoid_job.PAPER``, Finn et al. (2017), appendix C.1, Table 2).  Q holds them
by name; notebook 05's builder renders the same texts.
"""
import functools

import numpy as np
from quoting import Quote, _same_rounding

from mlcourse import baseline, nets, tasks, train
from mlcourse.experiments import shipped, sinusoid_job

NB05 = "notebooks/05_maml_sinusoid.ipynb"
README = "README.md"


@functools.lru_cache(maxsize=None)
def run(name="sinusoid"):
    return shipped.load(name)


def cfg():
    return run()["summary"]["config"]


def result(method, name="sinusoid"):
    return run(name)["summary"]["results"][method]


def mse(method, steps=(1, 5, 10), name="sinusoid"):
    r = result(method, name)
    return [r["mse"][r["steps"].index(k)] for k in steps]


def ci(method, steps=(1, 5, 10), name="sinusoid"):
    r = result(method, name)
    return [r["ci95"][r["steps"].index(k)] for k in steps]


def tuned(k="5"):
    return result("pretrain")["tuned_step"][k]


def tuned_mse(steps=(1, 5, 10), k="5"):
    t = tuned(k)
    return [t["mse"][t["steps"].index(s)] for s in steps]


def tuned_ci(steps=(1, 5, 10), k="5"):
    t = tuned(k)
    return [t["ci95"][t["steps"].index(s)] for s in steps]


def by_k(method, ks=("10", "20"), steps=(1, 10)):
    """The same model adapted from K = 10 and 20 points: [K10 1 step, K10 10, K20 1, K20 10]."""
    out = []
    for k in ks:
        r = result(method)["by_k"][k]
        out += [r["mse"][r["steps"].index(s)] for s in steps]
    return out


def tuned_by_k(ks=("10", "20"), steps=(1, 10)):
    out = []
    for k in ks:
        out += tuned_mse(steps, k)
    return out


def paper(method):
    return list(sinusoid_job.PAPER[method])


def pairs(values, cis):
    return [v for pair in zip(values, cis) for v in pair]


@functools.lru_cache(maxsize=None)
def per_task():
    """Section 5: per-task support and query MSE after 0, 1, 2, 5, 10 steps of both MAML objectives on the
    headline meta-test tasks, and the paired difference (multi-step minus one-step) per step count."""
    c = cfg()
    out = {}
    for m in ("maml", "maml_multistep"):
        s, q = train.support_and_query_losses(run()["theta"][m], tasks.Sinusoid(),
                                              rng=sinusoid_job.meta_test_rng(c, c["eval_k_shot"]),
                                              num_tasks=c["eval_tasks"], k_shot=c["eval_k_shot"],
                                              k_query=c["eval_k_query"], alpha=c["alpha"], steps=[0, 1, 2, 5, 10])
        out[m] = {"support": s, "query": q}
    d = out["maml_multistep"]["query"] - out["maml"]["query"]
    out["diff"] = d.mean(axis=1)
    out["diff_ci"] = 1.96 * d.std(axis=1, ddof=1) / np.sqrt(d.shape[1])
    return out


STEPS5 = [0, 1, 2, 5, 10]


def diff_at(k):
    j = STEPS5.index(k)
    return [per_task()["diff"][j], per_task()["diff_ci"][j]]


def support10(m):
    return per_task()[m]["support"][-1].mean()


def query10(m):
    return per_task()[m]["query"][-1].mean()


def worse10(m):
    q = per_task()[m]["query"]
    return 100 * np.mean(q[-1] > q[1])


def num_params():
    return nets.num_params(nets.mlp_init(np.random.default_rng(0), [1, *cfg()["hidden"], 1]))


def two(v):
    return f"{v:.2f}"


Q = {
    # the setup
    "amplitude": Quote(NB05, r"amplitude $A\sim U[<>, <>]$", lambda: list(tasks.Sinusoid().amplitude_range), ".1f"),
    "model": Quote(NB05, "| model | MLP 1-40-40-1, ReLU, <> parameters |", lambda: [num_params()], "d"),
    "sets": Quote(NB05, "K = <> support points and <> query points per task during meta-training; at meta-test K = <>, "
                  "<> or <> support points and <> query points",
                  lambda: [cfg()["k_support"], cfg()["k_query"], *sinusoid_job.EVAL_K_SHOTS, cfg()["eval_k_query"]], "d"),
    "outer": Quote(NB05, "meta-batch of <> tasks, **<> meta-iterations** (paper: <>)",
                   lambda: [cfg()["meta_batch_size"], cfg()["iterations"], sinusoid_job.PAPER["iterations"]], "d"),
    "metatest": Quote(NB05, "| meta-test | **<> fresh tasks** per K",
                      lambda: [cfg()["eval_tasks"]], "d"),
    "factor": Quote(NB05, "whose amplitude ranges over a factor of <>",
                    lambda: [tasks.Sinusoid().amplitude_range[1] / tasks.Sinusoid().amplitude_range[0]], ".0f"),
    "diff_iterations": Quote(NB05, "**<> meta-iterations instead of <>**, so that `mlcourse train sinusoid` trains and "
                             "meta-tests all four models side by side in <> s of wall time on two cores",
                             lambda: [cfg()["iterations"], sinusoid_job.PAPER["iterations"],
                                      run()["summary"]["wall_seconds"]], ("d", "d", ".0f")),
    "diff_tests": Quote(NB05, "<> fresh meta-test tasks per K with <> query points each, so that the 95% interval of "
                        "MAML's one-step MSE is about ±<>",
                        lambda: [cfg()["eval_tasks"], cfg()["eval_k_query"], ci("maml", [1])[0]], ("d", "d", ".2f")),
    "diff_tuning": Quote(NB05, "the best of <> step sizes from 0 to <> (`baseline.STEP_SIZES`), chosen per K on <> "
                         "validation tasks",
                         lambda: [len(baseline.STEP_SIZES), max(baseline.STEP_SIZES), cfg()["validation_tasks"]],
                         ("d", "g", "d")),
    "diff_pretrain_iterations": Quote(NB05, "trained for <> iterations, as many as MAML",
                                      lambda: [cfg()["pretrain_iterations"]], "d"),
    # section 4: the table beside Table 2
    "maml_vs_paper": Quote(NB05, "**MAML with the paper's objective gives <> / <> / <> after 1 / 5 / 10 steps, against "
                           "Table 2's <> / <> / <>**: at or below the paper's numbers, within our 95% intervals (±<>, "
                           "±<>, ±<>) after 5 and 10 steps",
                           lambda: mse("maml") + paper("maml") + ci("maml"), (".3f",) * 3 + (".2f",) * 3 + (".3f",) * 3),
    "pretrain_vs_paper": Quote(NB05, "chooses α = <> for K = 5 (<> for K = 10 and 20) and gives <> / <> / <> against "
                               "Table 2's <> / <> / <>, the same within our intervals (±<>)",
                               lambda: [tuned("5")["alpha"], tuned("10")["alpha"], *tuned_mse(), *paper("pretrain"),
                                        max(tuned_ci())], ("g", "g") + (".2f",) * 7),
    "alpha0": Quote(NB05, "Without fine-tuning (α = 0) it stays at <>", lambda: mse("pretrain", [0]), ".2f"),
    "zero_steps": Quote(NB05, "(MSE ≈ <> for both MAML models and the pretrained network; <> for FOMAML, whose "
                        "starting curve is a worse average fit)",
                        lambda: [_same_rounding([mse(m, [0])[0] for m in ("maml", "maml_multistep", "pretrain")], ".1f"),
                                 mse("fomaml", [0])[0]], ".1f"),
    "one_step": Quote(NB05, "**After one step MAML drops to ≈ <>**", lambda: mse("maml", [1]), ".1f"),
    "pretrain_moves": Quote(NB05, "(<> → <> → <> after 0, 1 and 10 steps)", lambda: tuned_mse([0, 1, 10]), ".1f"),
    "fomaml": Quote(NB05, "(<> / <> / <> against <> / <> / <>, each difference at least the sum of the two 95% intervals "
                    "after 1 and 5 steps)", lambda: mse("fomaml") + mse("maml"), ".3f"),
    "reptile": Quote(NB05, "**Reptile with five inner steps meta-learns** (<> / <> / <>)",
                     lambda: mse("reptile", name="sinusoid_reptile5"), ".2f"),
    "by_k": Quote(NB05, "MAML gets <> / <> after 1 / 10 steps from K = 10 points and <> / <> from K = 20; the pretrained "
                  "baseline with its tuned step <> / <> and <> / <>",
                  lambda: by_k("maml") + tuned_by_k(), ".2f"),
    # section 5: the two objectives
    "objectives_1": Quote(NB05, "**After one step the one-step objective is ahead** (<> ± <> against <> ± <>; paired over "
                          "the same tasks, the multi-step model is worse by <> ± <>)",
                          lambda: [mse("maml", [1])[0], ci("maml", [1])[0], mse("maml_multistep", [1])[0],
                                   ci("maml_multistep", [1])[0], *diff_at(1)], ".3f"),
    "objectives_510": Quote(NB05, "after 5 and 10 steps <> / <> against <> / <>, better by <> ± <> and <> ± <> paired",
                            lambda: mse("maml_multistep", [5, 10]) + mse("maml", [5, 10])
                            + [-diff_at(5)[0], diff_at(5)[1], -diff_at(10)[0], diff_at(10)[1]], ".3f"),
    "support": Quote(NB05, "(support MSE <> and <>), while the MSE on the rest of the curve stays <> and <> times higher",
                     lambda: [support10("maml"), support10("maml_multistep"),
                              *[query10(m) / support10(m) for m in ("maml", "maml_multistep")]],
                     (".3f", ".3f", ".0f", ".0f")),
    "worse": Quote(NB05, "For <>% of the one-step model's tasks and <>% of the multi-step model's, ten steps are *worse* "
                   "than one", lambda: [worse10("maml"), worse10("maml_multistep")], ".0f"),
    # answers, mistakes, takeaways
    "answer1": Quote(NB05, "the support MSE falling to <> and <> while the query MSE stays near <>",
                     lambda: [support10("maml"), support10("maml_multistep"),
                              _same_rounding([query10(m) for m in ("maml", "maml_multistep")], ".1f")],
                     (".2f", ".2f", ".1f")),
    "answer3": Quote(NB05, "(<> → <> after ten)", lambda: mse("maml", [1, 10]), ".2f"),
    "answer4": Quote(NB05, "with ≈ <> in section 4", lambda: mse("pretrain", [0]), ".1f"),
    "mistake_interval": Quote(NB05, "With 2000 tasks the 95% interval of MAML's 1-step MSE is ±<>", lambda: ci("maml", [1])),
    "mistake_tuned": Quote(NB05, "(here α = <> for K = 5 and <> for K = 10 and 20)",
                           lambda: [tuned("5")["alpha"], tuned("10")["alpha"]], "g"),
    "takeaway_gap": Quote(NB05, "(pretrained with its own tuned step: ≈ <> after 10 steps; MAML: ≈ <> after one step, "
                          "≈ <> after ten", lambda: tuned_mse([10]) + mse("maml", [1, 10]), ".1f"),
}

# README: the "Published numbers" table and the paragraphs under it
R = {
    "maml": Quote(README, "| MAML, this package (the paper's objective) | <> ± <> | <> ± <> | <> ± <> |",
                  lambda: pairs(mse("maml"), ci("maml")), ".3f"),
    "maml_paper": Quote(README, "| MAML, paper (Table 2) | <> | <> | <> |", lambda: paper("maml")),
    "multistep": Quote(README, "| MAML, this package, multi-step loss (2 inner steps) | <> ± <> | <> ± <> | <> ± <> |",
                       lambda: pairs(mse("maml_multistep"), ci("maml_multistep")), ".3f"),
    "fomaml": Quote(README, "| FOMAML, this package (the paper's objective) | <> ± <> | <> ± <> | <> ± <> |",
                    lambda: pairs(mse("fomaml"), ci("fomaml")), ".3f"),
    "tuned": Quote(README, "| pretrained, this package, step size tuned on validation tasks (α = <>) | <> ± <> | <> ± <> "
                   "| <> ± <> |", lambda: [tuned("5")["alpha"], *pairs(tuned_mse(), tuned_ci())], ("g",) + (".3f",) * 6),
    "alpha0": Quote(README, "| pretrained, this package, no fine-tuning (α = 0) | <> ± <> | <> ± <> | <> ± <> |",
                    lambda: pairs(mse("pretrain", [0]) * 3, ci("pretrain", [0]) * 3), ".3f"),
    "pretrain_paper": Quote(README, "| pretrained, paper (Table 2) | <> | <> | <> |", lambda: paper("pretrain")),
    "timing": Quote(README, "The shipped run took <> s of wall time on the 2-core development machine (its\n"
                    "`summary.json`: `wall_seconds`), MAML's <> meta-iterations <> s of it",
                    lambda: [run()["summary"]["wall_seconds"], cfg()["iterations"],
                             run()["summary"]["train_seconds"]["maml"]], (".0f", "d", ".0f")),
    "iterations": Quote(README, "<> meta-iterations per method instead of the paper's <>",
                        lambda: [cfg()["iterations"], sinusoid_job.PAPER["iterations"]], "d"),
    "tuning": Quote(README, "chosen per K among <> step sizes from 0 to <> on <> validation tasks",
                    lambda: [len(baseline.STEP_SIZES), max(baseline.STEP_SIZES), cfg()["validation_tasks"]],
                    ("d", "g", "d")),
    "tests": Quote(README, "<> meta-test tasks per K of <> query points",
                   lambda: [cfg()["eval_tasks"], cfg()["eval_k_query"]], "d"),
    "by_k": Quote(README, "MAML <> / <> (K = 10) and <> / <> (K = 20), the pretrained baseline with its tuned step\n"
                  "(α = <>) <> / <> and <> / <>.", lambda: by_k("maml") + [tuned("10")["alpha"]] + tuned_by_k(),
                  (".3f",) * 4 + ("g",) + (".3f",) * 4),
    "reptile": Quote(README, "Reptile with 5 inner steps <> / <> / <>", lambda: mse("reptile", name="sinusoid_reptile5"),
                     ".3f"),
}

QUOTED = list(Q.values()) + list(R.values())

# Literal decimals that are inputs, not results: alpha, beta's and the amplitude range's digits, the normal
# quantile, the paper's section.
INPUTS = {NB05: {"0.01", "0.1", "1.96", "5.1", "95%", "0.02"}, README: {"0.01", "5.1", "95%"}}
