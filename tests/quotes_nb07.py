"""Numbers quoted in notebook 07's prose and in the README's Meta-SGD / ANIL section (see quoting.py).

Every value comes from the shipped results (``shipped.load("overfitting")``,
``shipped.load("sinusoid_variants")``), the engine (``metasgd.ALPHA_INIT``) or the paper's numbers
(``sinusoid_job.PAPER_METASGD``).  Q holds them by name; notebook 07's builder renders the same texts.
"""
import functools

import numpy as np
from quoting import Quote

from mlcourse import metasgd
from mlcourse.experiments import shipped, sinusoid_job

NB07 = "notebooks/07_meta_overfitting.ipynb"
README = "README.md"


@functools.lru_cache(maxsize=None)
def of():
    return shipped.load("overfitting")["summary"]


@functools.lru_cache(maxsize=None)
def variants():
    return shipped.load("sinusoid_variants")


def pool(name):
    return next(r for r in of()["pools"] if r["name"] == name)


def plain():
    return [r for r in of()["pools"] if not r["augmented"]]


def mse(method, steps=(1, 5, 10)):
    r = variants()["summary"]["results"][method]
    return [r["mse"][r["steps"].index(k)] for k in steps]


def ci(method, steps=(1, 5, 10)):
    r = variants()["summary"]["results"][method]
    return [r["ci95"][r["steps"].index(k)] for k in steps]


def ms_per_iteration(method):
    s = variants()["summary"]
    return 1e3 * s["train_seconds"][method] / s["config"]["iterations"]


def bench_ms(path, steps):
    (row,) = [r for r in shipped.load("overfitting")["speed"]["rows"] if r["key"] == path and r["inner_steps"] == steps]
    return row["ms"]


def within(k_shot, alpha, noise):
    return next(r for r in of()["within_task"]["runs"]
                if r["k_shot"] == k_shot and r["alpha"] == alpha and r["noise"] == noise)


def within_lowest(k_shot, alpha, noise):
    """(lowest query MSE, the step count where it is) along the inner loop, from one step on."""
    r = within(k_shot, alpha, noise)
    j = 1 + int(np.argmin(r["query"][1:]))
    return r["query"][j], r["steps"][j]


def first_diverged(k_shot, alpha, noise):
    r = within(k_shot, alpha, noise)
    return next(s for s, v in zip(r["steps"], r["query"]) if v is None or v > 1e3)


def sweep_mse(kind, key, value, steps):
    r = next(r for r in of()[kind] if r[key] == value)
    return r["mse"][r["steps"].index(steps)]


def alpha_stats():
    a = np.concatenate(list(_alpha_layers().values()))
    return [float(a.min()), float(a.max()), float(np.median(a))]


@functools.lru_cache(maxsize=None)
def _alpha_layers():
    alpha = metasgd.alpha_of(variants()["theta"]["metasgd"])
    return {f"{n}{l + 1}": np.ravel(a) for l, layer in enumerate(alpha) for n, a in zip(("W", "b"), layer)}


def _gaps():
    out = []
    for r in plain():
        out += [r["final"]["gap"], r["final"]["ci95"]]
    return out


Q = {
    "pool2": Quote(NB07, "With a pool of <> tasks, meta-training ends at a meta-train MSE of <> and a meta-test MSE of <>",
                   lambda: [pool("pool2")["pool_size"], pool("pool2")["final"]["train"], pool("pool2")["final"]["test"]],
                   ("d", ".2f", ".2f")),
    "gaps": Quote(NB07, "the gap is <> ± <> for 2 tasks, <> ± <> for 8, <> ± <> for 32, <> ± <> for 128 and <> ± <> on "
                  "fresh tasks", _gaps, ".2f"),
    "fresh": Quote(NB07, "MAML trained on fresh tasks reaches <> on new tasks after one step",
                   lambda: [pool("fresh")["final"]["test"]], ".2f"),
    "early": Quote(NB07, "for the pool of 2 it keeps θ from iteration <> (gap <> instead of <>), for the pool of 8 from "
                   "iteration <> (gap <> instead of <>, meta-test MSE <> instead of <>)",
                   lambda: [pool("pool2")["early_stopping_iteration"], pool("pool2")["early_stopped"]["gap"],
                            pool("pool2")["final"]["gap"], pool("pool8")["early_stopping_iteration"],
                            pool("pool8")["early_stopped"]["gap"], pool("pool8")["final"]["gap"],
                            pool("pool8")["early_stopped"]["test"], pool("pool8")["final"]["test"]],
                   ("d", ".2f", ".2f", "d", ".2f", ".2f", ".2f", ".2f")),
    "augment": Quote(NB07, "augmentation takes the gap of the pool of 2 from <> to <> and of the pool of 8 from <> to <>; "
                     "the meta-test MSE goes from <> to <> and from <> to <>",
                     lambda: [pool("pool2")["final"]["gap"], pool("pool2_augmented")["final"]["gap"],
                              pool("pool8")["final"]["gap"], pool("pool8_augmented")["final"]["gap"],
                              pool("pool2")["final"]["test"], pool("pool2_augmented")["final"]["test"],
                              pool("pool8")["final"]["test"], pool("pool8_augmented")["final"]["test"]], ".2f"),
    "within": Quote(NB07, "From K = 5 points whose labels carry noise of standard deviation 1.0, with α = 0.01, the support "
                    "MSE falls from <> after one step to <> after 500 steps, while the query MSE falls to <> after <> "
                    "steps and then rises to <>",
                    lambda: [within(5, 0.01, 1.0)["support"][1], within(5, 0.01, 1.0)["support"][-1],
                             *within_lowest(5, 0.01, 1.0), within(5, 0.01, 1.0)["query"][-1]],
                    (".2f", ".2f", ".2f", "d", ".2f")),
    "within_half": Quote(NB07, "with noise 0.5 the query MSE is lowest after <> steps (<>) and <> after 500",
                         lambda: [within_lowest(5, 0.01, 0.5)[1], within_lowest(5, 0.01, 0.5)[0],
                                  within(5, 0.01, 0.5)["query"][-1]], ("d", ".2f", ".2f")),
    "within_clean": Quote(NB07, "with exact labels the same 500 steps take the query MSE from <> down to <>",
                          lambda: [within(5, 0.01, 0.0)["query"][1], within(5, 0.01, 0.0)["query"][-1]], ".2f"),
    "within_big": Quote(NB07, "with α = 0.02 the inner loop diverges (query MSE above a thousand) by step <> even on "
                        "exact labels", lambda: [first_diverged(5, 0.02, 0.0)], "d"),
    "alpha_sweep": Quote(NB07, "after one test step: <> (α = 0.001), <> (0.003), <> (0.01), <> (0.03) and <> (0.1)",
                         lambda: [sweep_mse("alpha_sweep", "alpha", a, 1) for a in (0.001, 0.003, 0.01, 0.03, 0.1)],
                         ".2f"),
    "steps_sweep": Quote(NB07, "m = 1, 2, 3, 5 give <> / <> / <> / <> after one test step and <> / <> / <> / <> after ten",
                         lambda: [sweep_mse("steps_sweep", "inner_steps", m, s) for s in (1, 10) for m in (1, 2, 3, 5)],
                         ".2f"),
    "metasgd": Quote(NB07, "Meta-SGD reaches <> ± <> after one step against MAML's <> ± <>",
                     lambda: [mse("metasgd")[0], ci("metasgd")[0], mse("maml")[0], ci("maml")[0]], ".3f"),
    "metasgd_more": Quote(NB07, "after 5 and 10 steps <> / <> against <> / <>",
                          lambda: [*mse("metasgd")[1:], *mse("maml")[1:]], ".3f"),
    "anil": Quote(NB07, "ANIL, adapting only the 41 parameters of the head, gives <> ± <> after one step and <> / <> after "
                  "5 / 10", lambda: [mse("anil")[0], ci("anil")[0], *mse("anil")[1:]], ".2f"),
    "anil_ci": Quote(NB07, "its interval after 10 steps is ± <>", lambda: [ci("anil")[2]], ".2f"),
    "bench": Quote(NB07, "MAML <> ms, Meta-SGD <> ms, ANIL <> ms with one inner step; with five <>, <> and <> ms",
                   lambda: [bench_ms(p, m) for m in (1, 5) for p in ("maml", "metasgd", "anil")], ".2f"),
    "bench_autograd": Quote(NB07, "Through autograd the same meta-iterations take <>, <> and <> ms with one inner step",
                            lambda: [bench_ms(p, 1) for p in ("maml_autograd", "metasgd_autograd", "anil_autograd")],
                            ".2f"),
    "bench_ratio": Quote(NB07, "ANIL takes <>× the time of MAML with one inner step and <>× with five",
                         lambda: [bench_ms("anil", m) / bench_ms("maml", m) for m in (1, 5)], ".2f"),
    "alpha_range": Quote(NB07, "the learned step sizes run from <> to <> (median <>)", alpha_stats, ".1e"),
    "alpha_init": Quote(NB07, "drawn once per entry from U[<>, <>]", lambda: list(metasgd.ALPHA_INIT), ".3f"),
    "paper": Quote(NB07, "Li et al. report <> for Meta-SGD against <> for MAML",
                   lambda: [sinusoid_job.PAPER_METASGD["metasgd"], sinusoid_job.PAPER_METASGD["maml"]], ".2f"),
    # README
    "readme_table": Quote(README, "| MAML | <> ± <> | <> ± <> | <> ± <> | <> (autograd: <>) |\n"
                          "| Meta-SGD | <> ± <> | <> ± <> | <> ± <> | <> (autograd: <>) |\n"
                          "| ANIL | <> ± <> | <> ± <> | <> ± <> | <> (autograd: <>) |",
                          lambda: [v for m in ("maml", "metasgd", "anil") for v in
                                   [x for pair in zip(mse(m), ci(m)) for x in pair]
                                   + [bench_ms(m, 1), bench_ms(f"{m}_autograd", 1)]],
                          ((".3f",) * 6 + (".2f", ".2f")) * 3),
    "readme_paper": Quote(README, "the paper reports <> against MAML's <>",
                          lambda: [sinusoid_job.PAPER_METASGD["metasgd"], sinusoid_job.PAPER_METASGD["maml"]], ".2f"),
    "readme_gap": Quote(README, "a pool of 2 tasks leaves a meta-train / meta-test gap of <> ± <> (fresh tasks: <> ± <>); "
                        "early stopping brings it to <>, task augmentation to <>",
                        lambda: [pool("pool2")["final"]["gap"], pool("pool2")["final"]["ci95"], pool("fresh")["final"]["gap"],
                                 pool("fresh")["final"]["ci95"], pool("pool2")["early_stopped"]["gap"],
                                 pool("pool2_augmented")["final"]["gap"]], ".2f"),
}
QUOTED = list(Q.values())

# Inputs stated in the prose: settings (alpha values, ranges), the normal quantile.
INPUTS = {
    NB07: {"0.01", "0.001", "0.003", "0.03", "0.1", "0.5", "-0.5", "1.5", "1.96", "95%", "0.02", "1.0"},
    README: {"0.01", "95%"},
}
