"""Numbers quoted in the prose of notebook 08 and of the README's navigation section (see quoting.py).

They come from the shipped navigation run (mlcourse/experiments/results/navigation/summary.json, including
its scores with the released scripts' step size) and from
the paper's numbers, whose one home is ``navigation_job.PAPER``.
"""
import functools

from mlcourse.experiments import navigation_job, shipped
from quoting import Quote

NB08 = "notebooks/08_maml_rl.ipynb"
PAPER = navigation_job.PAPER


@functools.lru_cache(maxsize=None)
def summary():
    return shipped.load("navigation")["summary"]


def ret(method, step):
    return summary()["results"][method]["return"][step]


def ci(method, step):
    return summary()["results"][method]["ci95"][step]


def released(method, step):
    """The return with the released scripts' step size (summary["released_step"]), on its first goals."""
    return summary()["released_step"]["results"][method]["return"][step]


def row(method):
    """Return and interval after 0, 1, 2, 3 steps, interleaved."""
    return [v for k in range(4) for v in (ret(method, k), ci(method, k))]


QUOTED = [
    Quote(NB08, "After one policy-gradient step MAML reaches an average return of <> ± <> on <> new goals (the "
          "paper: <>), better than the pretrained policy's <> ± <> (the paper: <>) by more than both intervals; "
          "the random initialisation reaches <> ± <> (the paper: <>).",
          lambda: [ret("maml", 1), ci("maml", 1), summary()["config"]["eval_goals"], PAPER["maml"][1],
                   ret("pretrained", 1), ci("pretrained", 1), PAPER["pretrained"][1],
                   ret("random", 1), ci("random", 1), PAPER["random"][1]],
          (".1f", ".1f", "d", ".2f", ".1f", ".1f", ".2f", ".1f", ".1f", ".2f")),
    Quote(NB08, "Before adaptation the three are at <>, <> and <> (the paper: <>, <>, <>)",
          lambda: [ret("maml", 0), ret("pretrained", 0), ret("random", 0), PAPER["maml"][0], PAPER["pretrained"][0],
                   PAPER["random"][0]], (".1f", ".1f", ".1f", ".2f", ".2f", ".2f")),
    Quote(NB08, "after three steps MAML is at <> (the paper: <>)", lambda: [ret("maml", 3), PAPER["maml"][3]],
          (".1f", ".2f")),
    Quote(NB08, "After one step the pretrained policy is at <> with the released scripts' step (the paper's released "
          "results: <>), against <> with $\\alpha = 0.1$",
          lambda: [released("pretrained", 1), PAPER["pretrained"][1], ret("pretrained", 1)], (".1f", ".2f", ".1f")),
    Quote(NB08, "Meta-training took <> s of wall time for <> iterations (<> s per iteration)",
          lambda: [summary()["train_seconds"]["maml"], summary()["config"]["iterations"],
                   summary()["seconds_per_iteration"]["maml"]], (".0f", "d", ".2f")),
    Quote(NB08, "<> iterations of meta-batch 20 (the paper: TRPO", lambda: [summary()["config"]["iterations"]], "d"),
    Quote(NB08, "<> new goals drawn with this package's seed", lambda: [summary()["config"]["eval_goals"]], "d"),
    Quote("README.md", "| MAML, this package | <> ± <> | <> ± <> | <> ± <> | <> ± <> |", lambda: row("maml"), ".1f"),
    Quote("README.md", "| MAML, paper | <> | <> | <> | <> |", lambda: PAPER["maml"], ".2f"),
    Quote("README.md", "| pretrained on all goals, this package | <> ± <> | <> ± <> | <> ± <> | <> ± <> |",
          lambda: row("pretrained"), ".1f"),
    Quote("README.md", "| pretrained, paper's released results | <> | <> | <> | <> |", lambda: PAPER["pretrained"],
          ".2f"),
    Quote("README.md", "| random initialisation, this package | <> ± <> | <> ± <> | <> ± <> | <> ± <> |",
          lambda: row("random"), ".1f"),
    Quote("README.md", "| random initialisation, paper's released results | <> | <> | <> | <> |",
          lambda: PAPER["random"], ".2f"),
    Quote("README.md", "average return on <> new goals after 0 / 1 / 2 / 3", lambda: [summary()["config"]["eval_goals"]],
          "d"),
    Quote("README.md", "<> meta-iterations took <> s of wall time on the 2-core development machine (<> s per "
          "iteration; the whole command <> s)",
          lambda: [summary()["config"]["iterations"], summary()["train_seconds"]["maml"],
                   summary()["seconds_per_iteration"]["maml"], summary()["wall_seconds"]], ("d", ".0f", ".2f", ".0f")),
]

# Settings and constants the prose states: the arena, velocity bound and tolerance of the task, alpha,
# the discount, the paper's section, the released scripts' step size and KL bound, the normal quantile.
INPUTS = {
    NB08: {"5.3", "-0.5", "0.5", "0.1", "0.01", "0.99", "95%"},
    "README.md": {"5.3", "0.5", "0.1", "95%"},
}
