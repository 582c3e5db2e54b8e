"""mlcourse.experiments.speed.cost_table: time and memory of each path."""
import numpy as np

from mlcourse.experiments import speed


def test_cost_table_rows():
    rows = speed.cost_table(np.random.default_rng(0), inner_steps=(1, 2), backends=("numpy", "autograd"),
                            meta_batch_size=3, repeats=1)
    methods = {(r["backend"], r["method"], r["inner_steps"]) for r in rows}
    assert ("numpy", "MAML (2nd order)", 2) in methods and ("autograd", "FOMAML", 1) in methods
    assert ("numpy", "Reptile", 1) in methods
    assert all(r["ms"] > 0 and r["peak_kib"] > 0 for r in rows)
    # the unrolled graph: exact MAML on the autograd path needs more memory with more steps
    ag = {r["inner_steps"]: r["peak_kib"] for r in rows if r["backend"] == "autograd" and r["method"].startswith("MAML")}
    assert ag[2] > ag[1]
