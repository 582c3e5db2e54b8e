"""The trace notebook 04 shows: MAML, FOMAML and Reptile directions along the main job's MAML run.

``direction_trace`` re-runs the MAML training of ``mlcourse train sinusoid`` (same seed, same
sampler calls) and, at log-spaced iterations, compares the three directions on a fixed probe batch
with ``mlcourse.directions.compare_directions`` (the mathematics lives there, in the engine).
``make_results(out_dir)`` writes ``directions.npz``; ``python -m mlcourse.experiments.refresh
directions`` refreshes the shipped copy (a developer command, see ``shipped``).
"""
from __future__ import annotations

import os

import numpy as np

from .. import nets, tasks, train, tree
from ..directions import directions, probe_noise, summarize

__all__ = ["probe_batch", "direction_trace", "make_results", "TRACE_DEFAULTS"]


def _trace_defaults():
    from .sinusoid_job import DEFAULTS
    keys = ("seed", "iterations", "meta_batch_size", "k_support", "k_query", "alpha", "inner_steps", "maml_loss",
            "beta", "hidden")
    return dict({k: DEFAULTS[k] for k in keys},   # the MAML run of `mlcourse train sinusoid`, same seed
                num_records=30,          # log-spaced iterations at which directions are compared
                probe_tasks=100,         # tasks of the probe batch the directions are computed on
                probe_steps=(1, 5))      # inner steps compared at each record


TRACE_DEFAULTS = _trace_defaults()


PROBE_STREAMS = (4242, 4243)   # generator streams of the probe batch and of the second, independent one


def probe_batch(which=0, **overrides):
    """The fixed float64 tasks on which direction_trace compares the directions (for widgets).

    which=0 is the probe batch of every stored cosine; which=1 an independent batch of the same size,
    used only for the noise baseline (``directions.probe_noise``).
    """
    if which not in (0, 1):
        raise ValueError(f"which must be 0 (the probe batch) or 1 (the independent second batch), got {which!r}.")
    cfg = dict(TRACE_DEFAULTS, **overrides)
    return tasks.Sinusoid().sample(np.random.default_rng([cfg["seed"], PROBE_STREAMS[which]]), cfg["probe_tasks"],
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
    cos_fomaml_m, cos_reptile_m, norm_maml_m, norm_fomaml_m, norm_reptile_m (R,), and the noise
    baseline cos_maml_probes_m, cos_fomaml_probes_m (R,): MAML's direction on the probe batch against
    MAML's and FOMAML's on a second, independent batch (``directions.probe_noise``).
    """
    from .sinusoid_job import METHOD_STREAMS, training_batches, training_method
    unknown = set(overrides) - set(TRACE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(TRACE_DEFAULTS)}.")
    cfg = dict(TRACE_DEFAULTS, **overrides)
    rng = np.random.default_rng([cfg["seed"], METHOD_STREAMS["maml"]])  # the main job's MAML stream
    theta = nets.mlp_init(rng, [1, *cfg["hidden"], 1], dtype=np.float32)
    probe, other = probe_batch(0, **cfg), probe_batch(1, **cfg)
    records = set(int(i) for i in _record_iterations(cfg["iterations"], cfg["num_records"]))
    out = {"iterations": [], "theta_flat": []}

    def record(it, th):
        th64 = tree.astype(th, np.float64)  # compare in float64: cosines near 1 need the digits
        out["iterations"].append(it)
        out["theta_flat"].append(tree.flatten(th)[0].astype(np.float32))
        for m in cfg["probe_steps"]:
            d = directions(th64, probe, cfg["alpha"], m)
            stats = dict(summarize(d), **probe_noise(d, directions(th64, other, cfg["alpha"], m)))
            for k, v in stats.items():
                if k != "norm_dropped":
                    out.setdefault(f"{k}_{m}", []).append(v)

    if 0 in records:
        record(0, theta)

    def callback(it, th, loss):
        if it in records:
            record(it, th)

    train.meta_train(theta, training_method("maml", cfg), training_batches(cfg, np.float32), rng=rng,
                     iterations=cfg["iterations"], schedule=train.constant(cfg["beta"]), progress=progress,
                     log_every=100, callback=callback)
    result = {k: np.asarray(v) for k, v in out.items()}
    result["config_keys"] = np.array(sorted(cfg))
    result["config_values"] = np.array([str(cfg[k]) for k in sorted(cfg)])
    return result


def make_results(out_dir, progress=False, **overrides):
    """Compute the direction trace and write ``out_dir/directions.npz`` (what notebook 04 loads)."""
    os.makedirs(out_dir, exist_ok=True)
    trace = direction_trace(progress=progress, **overrides)
    path = os.path.join(out_dir, "directions.npz")
    np.savez_compressed(path, **trace)
    return path
