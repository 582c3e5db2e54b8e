"""Numbers quoted in the prose of notebooks 00-04 and of the closing summary (see quoting.py).

The older quotes of notebooks 02-04 live in test_shipped_results.py; the ones added with the exact
statements (notebook 02), the noise baseline and the trace of the main job's run (notebook 04) are here.
"""
import functools
import importlib

import numpy as np
from quoting import Quote

from mlcourse import checks, tasks
from mlcourse.experiments import shipped

NB02 = "notebooks/02_meta_gradient_1d.ipynb"
NB04 = "notebooks/04_maml_vs_fomaml.ipynb"

LATE = 1223          # notebook 04's "from iteration 1223 on": a stored iteration (checked by a Quote below)
EARLY_COSINE = 0.9   # "early": the snapshots before the one-step cosine first drops below this


@functools.lru_cache(maxsize=None)
def example1():
    """Notebook 02's task and its worked example 1 at theta = 0.3, alpha = 0.3."""
    batch = tasks.Scalar1D().sample(np.random.default_rng(0), 1, 5, 15)
    return batch, checks.check_worked_example_1(0.3, batch, 0.3)


def support_minimum():
    return importlib.import_module("mlcourse.viz.meta_gradient").support_minimum(example1()[0])


@functools.lru_cache(maxsize=None)
def trace():
    return shipped.load("directions")


def late(key):
    """The trace's values of key at the stored iterations from LATE on."""
    it = trace()["iterations"]
    assert LATE in it, f"{LATE} is not a stored iteration of the trace ({it.tolist()}); reword notebook 04"
    return trace()[key][it >= LATE]


def early_end():
    """Index of the last snapshot before the one-step cosine first drops below EARLY_COSINE."""
    return int(np.argmax(trace()["cos_fomaml_1"] < EARLY_COSINE)) - 1


def bias_visible_end():
    """Five inner steps: index of the last snapshot of the initial run of snapshots where FOMAML on batch B
    is further from MAML on batch A than MAML on batch B is (the bias shows above the noise)."""
    gap = trace()["cos_maml_probes_5"] - trace()["cos_fomaml_probes_5"]
    return int(np.argmax(gap <= 0)) - 1


def bias_gap():
    gap = trace()["cos_maml_probes_5"] - trace()["cos_fomaml_probes_5"]
    return gap[:bias_visible_end() + 1]


def late_cross_at_least_baseline():
    """"at least as close as MAML's own direction on batch B at every one of them": the count of late
    snapshots where it is not (0), quoted as the word "every"."""
    bad = np.sum(late("cos_fomaml_probes_1") < late("cos_maml_probes_1"))
    return "every" if bad == 0 else f"{bad} exceptions among"


def reptile_longer_everywhere():
    return "every" if np.all(trace()["norm_reptile_1"] > trace()["norm_maml_1"]) else "not every"


def config(key):
    return trace()["config"][key]


QUOTED = [
    # notebook 02: where the step lands, against the support minimum
    Quote(NB02, r"it lands at $\theta' \approx <>$, short of the support minimum at $\theta_s^* \approx <>$",
          lambda: [example1()[1]["theta_prime"], support_minimum()]),
    # notebook 04, section 5: the protocol of the traced run (the main job's MAML run)
    Quote(NB04, "meta-batch <>, K = <> support points, α = <>, <> inner step and the query loss after it "
          "(`maml_loss = \"<>\"`), Adam β = 10⁻³, <> meta-iterations",
          lambda: [config("meta_batch_size"), config("k_support"), config("alpha"), config("inner_steps"),
                   config("maml_loss"), config("iterations")], "s"),
    Quote(NB04, "**Early in training FOMAML is an excellent approximation** (cosine ≥ <> up to iteration <>)",
          lambda: [np.floor(100 * trace()["cos_fomaml_1"][:early_end() + 1].min()) / 100,
                   int(trace()["iterations"][early_end()])], (".2f", "d")),
    Quote(NB04, "From iteration <> on, the one-step cosine jumps between <> and <> from one snapshot to the next (<> at the end), "
          "and with five inner steps between <> and <> (<> at the end)",
          lambda: [LATE, late("cos_fomaml_1").min(), late("cos_fomaml_1").max(), trace()["cos_fomaml_1"][-1],
                   late("cos_fomaml_5").min(), late("cos_fomaml_5").max(), trace()["cos_fomaml_5"][-1]],
          ("d",) + (".2f",) * 6),
    # the noise baseline
    Quote(NB04, "At the start MAML's direction on batch B is almost its direction on batch A (cosine <> with one inner step); "
          "from iteration <> on their cosine lies between <> and <> with one inner step, and between <> and <> with five.",
          lambda: [trace()["cos_maml_probes_1"][0], LATE, late("cos_maml_probes_1").min(), late("cos_maml_probes_1").max(),
                   late("cos_maml_probes_5").min(), late("cos_maml_probes_5").max()], (".2f", "d") + (".2f",) * 4),
    Quote(NB04, "FOMAML on batch B is between <> and <> in cosine from MAML on batch A (one inner step), at least as close as "
          "MAML's own direction on batch B at <> one of them",
          lambda: [late("cos_fomaml_probes_1").min(), late("cos_fomaml_probes_1").max(), late_cross_at_least_baseline()],
          (".2f", ".2f", "s")),
    Quote(NB04, "meta-training averages only <> tasks per step", lambda: [config("meta_batch_size")], "s"),
    Quote(NB04, "with five inner steps, up to iteration <> FOMAML on batch B is further from MAML on batch A than MAML on "
          "batch B is at every stored snapshot, by <> to <> in cosine",
          lambda: [int(trace()["iterations"][bias_visible_end()]), bias_gap().min(), bias_gap().max()], ("d", ".2f", ".2f")),
    Quote(NB04, "its cosine with MAML falls from <> at the start to between <> and <> from iteration <> on, and its norm stays "
          "larger than MAML's at <> snapshot",
          lambda: [trace()["cos_reptile_1"][0], late("cos_reptile_1").min(), late("cos_reptile_1").max(), LATE,
                   reptile_longer_everywhere()], (".2f", ".2f", ".2f", "d", "s")),
    Quote(NB04, "The run itself was trained with <> inner step;", lambda: [config("inner_steps")], "s"),
    # notebook 04, section 6: the cost ratio, from the shipped benchmark (speed.json)
    Quote(NB04, "exact MAML takes <>× FOMAML's time per meta-iteration with one inner step and <>× with five",
          lambda: [next(r["ms"] for r in shipped.load("speed")["rows"] if r["key"] == "maml" and r["inner_steps"] == m) /
                   next(r["ms"] for r in shipped.load("speed")["rows"] if r["key"] == "fomaml" and r["inner_steps"] == m)
                   for m in (1, 5)], ".1f"),
]

INPUTS = {}
