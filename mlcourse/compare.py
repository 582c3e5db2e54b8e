"""Full MAML vs FOMAML vs Reptile: how far apart are their directions, and what does each cost?

For one inner step (worked example 3)::

    MAML     g      = mean_T (I - alpha H_s(theta))^T grad L_q(theta'_T)      exact meta-gradient
    FOMAML   g_fo   = mean_T grad L_q(theta'_T)                                  d theta'/d theta ~ I
    Reptile  g_rep  = (theta - mean_T theta'_T) / (alpha m)                    theta <- theta + eps (theta' - theta)

so g = g_fo - alpha mean_T H_s g_q: the dropped term is one Hessian-vector product per task.
This module measures the angle (cosine) and the norms of the three directions at a theta, along
a MAML training run (``direction_trace``), and the time and peak memory of one meta-iteration of
each (``cost_table``).  ``make_results`` writes what notebook 04 loads (``results/directions.npz``).
"""
from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np

from . import maml, nets, reptile, tasks, train, tree
from ._validate import check_alpha, check_count, check_rng

__all__ = ["cosine", "directions", "compare_directions", "alpha_sweep", "probe_batch", "direction_trace", "time_per_iteration",
           "peak_memory", "cost_table", "make_results", "TRACE_DEFAULTS"]


def cosine(a, b):
    """<a, b> / (|a| |b|) for two parameter containers (0 when either is zero)."""
    va, vb = tree.flatten(a)[0].astype(np.float64), tree.flatten(b)[0].astype(np.float64)
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    return float(va @ vb / (na * nb)) if na > 0 and nb > 0 else 0.0


def directions(theta, batch, alpha=0.01, inner_steps=1):
    """The three descent directions at theta on one meta-batch: {"maml", "fomaml", "reptile"}.

    Each is shaped like theta.  Reptile's is (theta - mean theta') / (alpha * inner_steps), the
    scale of a gradient (with one step it is the mean support gradient at theta).
    """
    alpha = check_alpha(alpha)
    inner_steps = check_count(inner_steps, "inner_steps", 1)
    g = maml.maml_grad(theta, batch, alpha, inner_steps)
    g_fo = maml.fomaml_grad(theta, batch, alpha, inner_steps)
    d = reptile.reptile_direction(theta, batch, alpha, inner_steps)
    g_rep = tree.scale(-1.0 / (alpha * inner_steps) if alpha > 0 else -1.0, d)
    return {"maml": g, "fomaml": g_fo, "reptile": g_rep}


def compare_directions(theta, batch, alpha=0.01, inner_steps=1):
    """Cosines to the exact meta-gradient and the norms: a dict of floats.

    keys: cos_fomaml, cos_reptile (cosine with MAML's g), norm_maml, norm_fomaml, norm_reptile,
    and norm_dropped = |g - g_fo| (the second-order term FOMAML drops).
    """
    d = directions(theta, batch, alpha, inner_steps)
    return {"cos_fomaml": cosine(d["maml"], d["fomaml"]), "cos_reptile": cosine(d["maml"], d["reptile"]),
            "norm_maml": tree.norm(d["maml"]), "norm_fomaml": tree.norm(d["fomaml"]),
            "norm_reptile": tree.norm(d["reptile"]), "norm_dropped": tree.norm(tree.sub(d["maml"], d["fomaml"]))}


def alpha_sweep(theta, batch, alphas, inner_steps=1):
    """compare_directions for each alpha: dict of arrays (len(alphas),).  At alpha = 0 MAML = FOMAML."""
    rows = [compare_directions(theta, batch, float(a), inner_steps) for a in alphas]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _trace_defaults():
    from .sinusoid_job import DEFAULTS
    keys = ("seed", "iterations", "meta_batch_size", "k_support", "k_query", "alpha", "inner_steps", "maml_loss",
            "beta", "hidden")
    return dict({k: DEFAULTS[k] for k in keys},   # the MAML run of `mlcourse train sinusoid`, same seed
                num_records=30,          # log-spaced iterations at which directions are compared
                probe_tasks=100,         # tasks of the probe batch the directions are computed on
                probe_steps=(1, 5))      # inner steps compared at each record


TRACE_DEFAULTS = _trace_defaults()


def probe_batch(**overrides):
    """The fixed float64 tasks on which direction_trace compares the directions (for widgets)."""
    cfg = dict(TRACE_DEFAULTS, **overrides)
    return tasks.Sinusoid().sample(np.random.default_rng([cfg["seed"], 4242]), cfg["probe_tasks"],
                                   cfg["k_support"], cfg["k_query"], dtype=np.float64)


def _record_iterations(iterations, num):
    its = np.unique(np.round(np.geomspace(1, iterations + 1, num)).astype(int) - 1)
    return its[its <= iterations]


def direction_trace(*, progress=False, **overrides):
    """Re-run MAML meta-training and compare the directions at log-spaced iterations.

    With the defaults this reproduces the MAML run of ``mlcourse train sinusoid`` (same seed,
    same sampler calls) and, at each record, computes the three directions on a fixed probe batch
    (its own generator, so the training run is unchanged).  Returns a dict of arrays:
    iterations (R,), theta_flat (R, P) snapshots, and for each probe step count m
    cos_fomaml_m, cos_reptile_m, norm_maml_m, norm_fomaml_m, norm_reptile_m (R,).
    """
    from .sinusoid_job import METHOD_STREAMS, training_method
    unknown = set(overrides) - set(TRACE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(TRACE_DEFAULTS)}.")
    cfg = dict(TRACE_DEFAULTS, **overrides)
    rng = np.random.default_rng([cfg["seed"], METHOD_STREAMS["maml"]])  # the main job's MAML stream
    theta = nets.mlp_init(rng, [1, *cfg["hidden"], 1], dtype=np.float32)
    probe = probe_batch(**cfg)
    records = set(int(i) for i in _record_iterations(cfg["iterations"], cfg["num_records"]))
    out = {"iterations": [], "theta_flat": []}

    def record(it, th):
        th64 = tree.astype(th, np.float64)  # compare in float64: cosines near 1 need the digits
        out["iterations"].append(it)
        out["theta_flat"].append(tree.flatten(th)[0].astype(np.float32))
        for m in cfg["probe_steps"]:
            for k, v in compare_directions(th64, probe, cfg["alpha"], m).items():
                if k != "norm_dropped":
                    out.setdefault(f"{k}_{m}", []).append(v)

    if 0 in records:
        record(0, theta)

    def callback(it, th, loss):
        if it in records:
            record(it, th)

    train.meta_train(theta, tasks.Sinusoid(), rng=rng, method=training_method("maml", cfg), iterations=cfg["iterations"],
                     meta_batch_size=cfg["meta_batch_size"], k_support=cfg["k_support"], k_query=cfg["k_query"],
                     alpha=cfg["alpha"], inner_steps=cfg["inner_steps"], beta=cfg["beta"], progress=progress,
                     log_every=100, callback=callback)
    result = {k: np.asarray(v) for k, v in out.items()}
    result["config_keys"] = np.array(sorted(cfg))
    result["config_values"] = np.array([str(cfg[k]) for k in sorted(cfg)])
    return result


# ---- cost: time and memory of one meta-iteration -------------------------------------------------

def _step_functions(alpha, inner_steps, backend):
    """name -> function(theta, batch) computing one meta-iteration's direction."""
    if backend == "autograd":
        return {
            "MAML (2nd order)": lambda th, b: maml.maml_value_and_grad(th, b, alpha, inner_steps, backend="autograd"),
            "FOMAML": lambda th, b: maml.fomaml_value_and_grad(th, b, alpha, inner_steps, backend="autograd"),
        }
    return {
        "MAML (2nd order)": lambda th, b: maml.maml_value_and_grad(th, b, alpha, inner_steps),
        "FOMAML": lambda th, b: maml.fomaml_value_and_grad(th, b, alpha, inner_steps),
        "Reptile": lambda th, b: reptile.reptile_direction(th, b, alpha, inner_steps),
    }


def time_per_iteration(fn, theta, batch, repeats=20):
    """Median wall time (seconds) of fn(theta, batch) over `repeats` calls, after one warm-up."""
    repeats = check_count(repeats, "repeats", 1)
    fn(theta, batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(theta, batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def peak_memory(fn, theta, batch):
    """Peak bytes allocated (tracemalloc; NumPy reports its buffers) during one call of fn."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn(theta, batch)
    peak = tracemalloc.get_traced_memory()[1] - base
    if not was_tracing:
        tracemalloc.stop()
    return int(peak)


def cost_table(rng, *, inner_steps=(1, 5), backends=("numpy", "autograd"), meta_batch_size=25, k_support=10,
               k_query=10, alpha=0.01, repeats=10, dtype=np.float32):
    """Time (median ms) and peak memory (KiB) of one meta-iteration, paper setup (MLP 1-40-40-1).

    Returns a list of rows {"backend", "method", "inner_steps", "ms", "peak_kib"}.  Machine-dependent:
    compare the ratios between rows, not the numbers across machines.
    """
    check_rng(rng)
    theta = nets.mlp_init(rng, [1, 40, 40, 1], dtype=dtype)
    batch = tasks.Sinusoid().sample(rng, meta_batch_size, k_support, k_query, dtype=dtype)
    rows = []
    for backend in backends:
        for m in inner_steps:
            for name, fn in _step_functions(alpha, m, backend).items():
                reps = repeats if backend == "numpy" else max(1, repeats // 4)
                rows.append({"backend": backend, "method": name, "inner_steps": int(m),
                             "ms": 1e3 * time_per_iteration(fn, theta, batch, reps),
                             "peak_kib": peak_memory(fn, theta, batch) / 1024})
    return rows


def make_results(out_dir=None, progress=False, **overrides):
    """Compute the direction trace and write ``directions.npz`` (what notebook 04 loads)."""
    from . import results
    out_dir = out_dir or results.RESULTS_DIR
    os.makedirs(out_dir, exist_ok=True)
    trace = direction_trace(progress=progress, **overrides)
    path = os.path.join(out_dir, "directions.npz")
    np.savez_compressed(path, **trace)
    return path


if __name__ == "__main__":  # python -m mlcourse.compare  -> mlcourse/results/directions.npz
    print(make_results(progress=True))
