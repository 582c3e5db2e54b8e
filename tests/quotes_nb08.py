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


@functools.lru_cache(maxsize=None)
def _across_seeds():
    return navigation_job.across_seeds(summary(), shipped.load("navigation")["seeds"])[0]


def seed_range(step):
    """The lowest and highest MAML return after `step` steps over the shipped run and its seed runs (seeds.json)."""
    R = _across_seeds()[:, step]
    return [R.min(), R.max()]


def paper_step(method, step):
    """The return with MAML's meta-test steps for every method (summary["paper_step"]), on its first goals."""
    return summary()["paper_step"]["results"][method]["return"][step]


QUOTED = [
    Quote(NB08, "After one policy-gradient step MAML reaches an average return of <> ± <> on <> new goals (the "
          "paper: <>); the pretrained policy reaches <> ± <> (the paper's released results: <>) and the random "
          "initialisation <> ± <> (the paper: <>).",
          lambda: [ret("maml", 1), ci("maml", 1), summary()["config"]["eval_goals"], PAPER["maml"][1],
                   ret("pretrained", 1), ci("pretrained", 1), PAPER["pretrained"][1],
                   ret("random", 1), ci("random", 1), PAPER["random"][1]],
          (".1f", ".1f", "d", ".2f", ".1f", ".1f", ".2f", ".1f", ".1f", ".2f")),
    Quote(NB08, "Before adaptation the three are at <>, <> and <> (the paper: <>, <>, <>)",
          lambda: [ret("maml", 0), ret("pretrained", 0), ret("random", 0), PAPER["maml"][0], PAPER["pretrained"][0],
                   PAPER["random"][0]], (".1f", ".1f", ".1f", ".2f", ".2f", ".2f")),
    Quote(NB08, "after two and three steps MAML is at <> ± <> and <> ± <> (the paper: <> and <>)",
          lambda: [ret("maml", 2), ci("maml", 2), ret("maml", 3), ci("maml", 3), PAPER["maml"][2], PAPER["maml"][3]],
          (".1f", ".1f", ".1f", ".1f", ".2f", ".2f")),
    Quote(NB08, "With MAML's small steps the pretrained policy hardly moves: after one step it is at <>.",
          lambda: [paper_step("pretrained", 1)], ".1f"),
    Quote(NB08, "MAML, meta-trained for a five times smaller step, overshoots: after\none step it is at <>.",
          lambda: [released("maml", 1)], ".1f"),
    Quote(NB08, "Meta-training took <> s of wall time for <> iterations (<> s per iteration)",
          lambda: [summary()["train_seconds"]["maml"], summary()["config"]["iterations"],
                   summary()["seconds_per_iteration"]["maml"]], (".0f", "d", ".2f")),
    Quote(NB08, "<> iterations of meta-batch 20, $\\log\\sigma$'s learning rate <> times", lambda: [
        summary()["config"]["iterations"], summary()["config"]["log_std_beta_scale"]], ("d", "g")),
    Quote(NB08, "The job therefore gives $\\log\\sigma$ a learning rate <> times the weights'",
          lambda: [summary()["config"]["log_std_beta_scale"]], "g"),
    Quote(NB08, "<> new goals drawn with this package's seed", lambda: [summary()["config"]["eval_goals"]], "d"),
    Quote(NB08, "trained here with REINFORCE and Adam for <> iterations",
          lambda: [summary()["config"]["pretrain_iterations"]], "d"),
    Quote("README.md", "| MAML, this package | <> ± <> | <> ± <> | <> ± <> | <> ± <> |", lambda: row("maml"), ".1f"),
    Quote("README.md", "| MAML, paper | <> | <> | <> | <> |", lambda: PAPER["maml"], ".2f"),
    Quote("README.md", "MAML's returns over the <> runs range from <> to <> after one step, <> to <> after two and <> to <> "
          "after three.", lambda: [len(_across_seeds()), *seed_range(1), *seed_range(2), *seed_range(3)],
          ("d",) + (".1f",) * 6),
    Quote(NB08, "the <> runs' MAML returns after two steps range from <> to <> and after three from <> to <> (after one "
          "step from <> to <>)", lambda: [len(_across_seeds()), *seed_range(2), *seed_range(3), *seed_range(1)],
          ("d",) + (".1f",) * 6),
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
    Quote("README.md", "<> meta-iterations took <> s of wall time and <> s of CPU on the 2-core development machine "
          "(<> s per iteration; the whole command <> s)",
          lambda: [summary()["config"]["iterations"], summary()["train_seconds"]["maml"],
                   summary()["train_cpu_seconds"]["maml"], summary()["seconds_per_iteration"]["maml"],
                   summary()["wall_seconds"]], ("d", ".0f", ".0f", ".2f", ".0f")),
]

# Settings and constants the prose states: the arena, velocity bound and tolerance of the task, alpha and the
# evaluation's later step, the discount, the paper's section, the released scripts' step size, the normal quantile.
INPUTS = {
    NB08: {"5.3", "-0.5", "0.5", "0.1", "0.05", "0.01", "0.99", "95%"},
    "README.md": {"5.3", "0.5", "0.1", "0.05", "95%"},
}
