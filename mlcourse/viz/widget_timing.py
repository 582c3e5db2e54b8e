"""Time the widget callbacks: ``python -m mlcourse.viz.widget_timing`` prints median and max seconds per move.

A slider move runs the observer callback (compute + draw + PNG) synchronously, so timing
``slider.value = v`` is timing what the learner waits for (plus the browser's image swap).
Every widget of notebooks 01-05 is timed here (one BLAS thread, as in the notebooks); speed is
reported, never asserted by the tests.
"""
from __future__ import annotations

import statistics
import time


def _time_moves(slider, values):
    out = []
    for v in values:
        t0 = time.perf_counter()
        slider.value = v
        out.append(time.perf_counter() - t0)
    return out


def measure(repeats=10):
    """{widget/control: (median s, max s)} over `repeats` moves of each control."""
    import numpy as np
    from . import episodes, geometry, meta_gradient
    res = {}
    mg = meta_gradient.MetaGradientExplorer(meta_gradient.example_task())
    res["02 meta-gradient: θ slider"] = _time_moves(mg.theta, [0.3 + 0.05 * i for i in range(1, repeats + 1)])
    res["02 meta-gradient: α slider"] = _time_moves(mg.alpha, [0.3 + 0.01 * i for i in range(1, repeats + 1)])
    res["02 meta-gradient: inner steps"] = _time_moves(mg.steps, [1 + i % 5 for i in range(1, repeats + 1)])
    geo = geometry.GeometryAnimation(geometry.example_tasks())
    res["03 geometry: animation frame"] = _time_moves(geo.frame, [i % geo.frame.max for i in range(1, repeats + 1)])
    res["03 geometry: α slider"] = _time_moves(geo.alpha, [0.6 + 0.05 * i for i in range(1, repeats + 1)])
    res["03 geometry: zoom"] = _time_moves(geo.zoom, [1.0 + 0.25 * (i % 4) for i in range(1, repeats + 1)])
    # notebook 04: the direction widget on the shipped trace (three meta-gradients on 100 tasks per move)
    from ..experiments import direction_trace, shipped
    from . import adaptation, direction_plots
    trace = shipped.load("directions")
    dw = direction_plots.direction_widget(trace, direction_trace.probe_batch(), alpha=0.01, inner_steps=1)
    n = len(trace["iterations"])
    res["04 directions: snapshot"] = _time_moves(dw.controls["snapshot"], [(5 + 7 * i) % n for i in range(repeats)])
    res["04 directions: inner steps"] = _time_moves(dw.controls["inner_steps"], [(1, 5, 2)[i % 3] for i in range(repeats)])
    # notebook 05: adapt the shipped models to a new task, one SGD step per slider tick
    thetas = shipped.load("sinusoid")["theta"]
    aw = adaptation.adaptation_widget(thetas, alpha=0.01, k_shot=5, seed=0)
    res["05 adaptation: steps slider"] = _time_moves(aw.controls["steps"], [(1, 2, 5, 10, 3, 0)[i % 6] for i in range(repeats)])
    res["05 adaptation: new task"] = _time_moves(aw.controls["seed"], list(range(1, repeats + 1)))
    data = episodes.try_load_omniglot()
    ev = episodes.EpisodeViewer(data)
    res["01 episodes: seed (sinusoid)"] = _time_moves(ev.seed, list(range(1, repeats + 1)))
    if data is not None:
        ev.family.value = "Omniglot"
        res["01 episodes: seed (Omniglot)"] = _time_moves(ev.seed, list(range(repeats + 1, 2 * repeats + 1)))
    return {k: (statistics.median(v), max(v)) for k, v in res.items()}


def main():
    res = measure()
    width = max(len(k) for k in res)
    print(f"{'control'.ljust(width)}  median s   max s")
    for k, (med, mx) in res.items():
        print(f"{k.ljust(width)}  {med:8.3f}  {mx:6.3f}")


if __name__ == "__main__":
    main()
