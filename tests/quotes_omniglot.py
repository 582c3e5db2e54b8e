"""Numbers the README quotes about few-shot classification on Omniglot (see quoting.py).

Every value comes from the shipped results of `mlcourse refresh-results omniglot`
(``shipped.load("omniglot")``: summary.json and the benchmark's bench.json).
"""
import functools

from quoting import Quote

from mlcourse.experiments import shipped

README = "README.md"


@functools.lru_cache(maxsize=None)
def res():
    return shipped.load("omniglot")


def m(method):
    return res()["summary"]["methods"][method]


def row(method):
    e = m(method)
    return [100 * e["a"]["error"], 100 * e["a"]["ci95"], 100 * e["b"]["accuracy"], 100 * e["b"]["ci95"],
            e["episodes_trained"], e["train_seconds"], 1e3 * e["adapt_seconds_per_episode"]["a"]]


def bench(path):
    r = res()["bench"]["rows"][path]
    return [r["numpy"]["seconds"], r["torch"]["seconds"], r["ratio_numpy_over_torch"]]


ROW_FMT = (".1f", ".1f", ".1f", ".1f", "d", ".0f", ".0f")
QUOTED = [
    Quote(README, "| ProtoNet (60-way 1-shot training episodes, 5 queries per class) | <>% ± <>% | <>% ± <>% | "
          "<> episodes, <> s | <> ms |", lambda: row("protonet"), ROW_FMT),
    Quote(README, "| FOMAML (20-way 1-shot, meta-batch 2, 5 inner steps) | <>% ± <>% | <>% ± <>% | "
          "<> episodes, <> s | <> ms |", lambda: row("fomaml"), ROW_FMT),
    Quote(README, "each block's mean and variance over all <> training images",
          lambda: [m("protonet")["batchnorm_at_eval"]["images"]], ",d"),
    Quote(README, "the whole command, evaluation included: <> s of wall time", lambda: [m("protonet")["wall_seconds"]],
          ".0f"),
    Quote(README, "training finished all <> of its episodes in <> s, inside the budget",
          lambda: [m("protonet")["episodes_trained"], m("protonet")["train_seconds"]], ("d", ".0f")),
    Quote(README, "takes <> s with this engine against <> s in PyTorch with the same architecture (ratio <>)",
          lambda: bench("protonet"), (".2f", ".2f", ".2f")),
    Quote(README, "a FOMAML meta-step on the same episode (5 inner steps) <> s against <> s (ratio <>)",
          lambda: bench("fomaml"), (".2f", ".2f", ".2f")),
    Quote(README, "at a peak memory of <> and <> MiB against PyTorch's <> and <> MiB",
          lambda: [res()["bench"]["rows"][p][lib]["peak_mib"] for lib in ("numpy", "torch") for p in ("protonet", "fomaml")],
          ".0f"),
    Quote(README, "their float64 gradients there differ by <> (ProtoNet) and <> (FOMAML) of their largest entry",
          lambda: [res()["bench"]["rows"][p]["gradient_check"]["rel_error"] for p in ("protonet", "fomaml")], ".0e"),
    Quote(README, "the machine's load average was <> before the run and <> after it",
          lambda: [res()["bench"]["setup"]["load_average_before"][0], res()["bench"]["setup"]["load_average_after"][0]],
          ".1f"),
    Quote(README, "decoding small1 takes <> s, reading it back from the cache <> s",
          lambda: [res()["bench"]["loader"]["cold_seconds"], res()["bench"]["loader"]["warm_seconds"]], (".2f", ".3f")),
]
INPUTS = {README: {"0.1"}}   # the learning rates (2·10⁻³ ...) are written without decimals
