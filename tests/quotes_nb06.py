"""Numbers quoted in the prose of notebook 06 (see quoting.py).

They come from the shipped Omniglot runs (mlcourse/experiments/results/omniglot/summary.json), loaded
by ``shipped.load("omniglot")``, the same dictionary the notebook reads.
"""
import functools

from mlcourse.experiments import shipped
from quoting import Quote

NB06 = "notebooks/06_few_shot_classification.ipynb"


@functools.lru_cache(maxsize=None)
def methods():
    return shipped.load("omniglot")["summary"]["methods"]


def minutes(m):
    return methods()[m]["train_seconds"] / 60


def scores(m):
    """(a) error and interval, (b) accuracy and interval, in percent."""
    s = methods()[m]
    return [100 * s["a"]["error"], 100 * s["a"]["ci95"], 100 * s["b"]["accuracy"], 100 * s["b"]["ci95"]]


def adapt_ms(m):
    return 1e3 * methods()[m]["adapt_seconds_per_episode"]["a"]


QUOTED = [
    Quote(NB06, "After <> minutes of meta-training the shipped ProtoNet's (a) error is <>% ± <>% and its (b) "
          "accuracy <>% ± <>%; FOMAML's, after <> minutes, <>% ± <>% and <>% ± <>%.",
          lambda: [minutes("protonet"), *scores("protonet"), minutes("fomaml"), *scores("fomaml")],
          (".1f", ".1f", ".1f", ".1f", ".1f", ".1f", ".1f", ".1f", ".1f", ".1f")),
    Quote(NB06, "adapting to one (a) episode takes the ProtoNet <> ms and FOMAML <> ms, <> times as long",
          lambda: [adapt_ms("protonet"), adapt_ms("fomaml"), adapt_ms("fomaml") / adapt_ms("protonet")],
          (".0f", ".0f", ".0f")),
]

# Decimals in notebook 06's prose that are not results: the interval's level and its normal quantile, chance on (a), (b).
INPUTS = {NB06: {"95%", "20%", "1.96"}}
