"""Figures and the widget of notebook 04: MAML vs FOMAML vs Reptile directions, and their cost.

    directions_figure(trace)        cosine to the exact meta-gradient and norms along a MAML run
    alpha_sweep_figure(trace, ...)  cos(MAML, FOMAML) against alpha at stored snapshots (static twin)
    memory_figure(rows)             peak memory against inner steps
    cost_figure(rows)               time and peak memory per meta-iteration (compare.cost_table)
    direction_widget(trace, batch)  sliders: training iteration, alpha, inner steps -> angle and norms
"""
from __future__ import annotations

import time

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import directions
from . import _render  # noqa: F401  (one BLAS thread for the notebook: see _render)
from ..experiments.shipped import theta_from_flat

COLORS = {"maml": "C0", "fomaml": "C2", "reptile": "C3"}


def _plt():
    import matplotlib.pyplot as plt
    return plt


def directions_figure(trace, steps=(1, 5)):
    """Two panels: cos(MAML, FOMAML) and cos(MAML, Reptile) along training, with the noise baseline
    cos(MAML on the probe batch, MAML on an independent one) in grey when the trace has it; the three norms."""
    plt = _plt()
    it = np.maximum(trace["iterations"], 1)  # iteration 0 drawn at 1 on the log axis
    fig, (ax_cos, ax_norm) = plt.subplots(1, 2, figsize=(11, 3.6))
    for m, ls in zip(steps, ("-", "--")):
        ax_cos.plot(it, trace[f"cos_fomaml_{m}"], ls, color=COLORS["fomaml"], label=f"FOMAML, {m} step(s)")
        ax_cos.plot(it, trace[f"cos_reptile_{m}"], ls, color=COLORS["reptile"], label=f"Reptile, {m} step(s)")
        if f"cos_maml_probes_{m}" in trace:
            ax_cos.plot(it, trace[f"cos_maml_probes_{m}"], ls, color="0.55", lw=1.0,
                        label=f"noise baseline: MAML on 2 probe batches, {m} step(s)")
        for k in ("maml", "fomaml", "reptile"):
            ax_norm.plot(it, trace[f"norm_{k}_{m}"], ls, color=COLORS[k],
                         label=f"|{k.upper() if k != 'reptile' else 'Reptile'}|, {m} step(s)")
    ax_cos.axhline(0, color="k", lw=0.5)
    ax_cos.set(xscale="log", xlabel="MAML meta-iteration", ylabel="cosine with the exact meta-gradient",
               ylim=(-1.05, 1.05), title="angle to the exact MAML direction")
    ax_norm.set(xscale="log", yscale="log", xlabel="MAML meta-iteration", ylabel="norm",
                title="length of each direction")
    for ax in (ax_cos, ax_norm):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    m = steps[0]
    return describe(fig, f"Two panels over {int(trace['iterations'][-1])} MAML meta-iterations (log axis). Left: cosine "
                         f"of the FOMAML and Reptile directions with the exact MAML meta-gradient ({m} inner step: "
                         f"FOMAML ends at {trace[f'cos_fomaml_{m}'][-1]:.2f}, Reptile at "
                         f"{trace[f'cos_reptile_{m}'][-1]:.2f}), with the noise baseline in grey. Right: the "
                         f"norms of the three directions.")


def cost_figure(rows):
    """Bar charts of median ms and peak KiB per meta-iteration, one bar per (backend, method, steps)."""
    plt = _plt()
    labels = [f"{r['method']}\n{r['backend']}, {r['inner_steps']} step{'s' if r['inner_steps'] > 1 else ''}"
              for r in rows]
    colors = [COLORS["maml"] if r["method"].startswith("MAML") else
              COLORS["fomaml"] if r["method"] == "FOMAML" else COLORS["reptile"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, key, name in zip(axes, ("ms", "peak_kib"), ("time per meta-iteration (ms, median)",
                                                        "peak memory of one meta-iteration (KiB)")):
        y = np.arange(len(rows))
        ax.barh(y, [r[key] for r in rows], color=colors)
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fastest = min(rows, key=lambda r: r["ms"])
    slowest = max(rows, key=lambda r: r["ms"])
    return describe(fig, f"Two bar charts on log axes, one bar per method, backend and inner-step count: time and "
                         f"peak memory of one meta-iteration. Fastest: {fastest['method']} on {fastest['backend']} "
                         f"with {fastest['inner_steps']} step(s), {fastest['ms']:.2g} ms; slowest: {slowest['method']} "
                         f"on {slowest['backend']} with {slowest['inner_steps']} step(s), {slowest['ms']:.2g} ms.")


def memory_figure(rows):
    """Peak memory against inner steps, one line per (backend, method): the unrolled graph grows."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    keys = sorted({(r["backend"], r["method"]) for r in rows})
    for backend, method in keys:
        sel = sorted((r["inner_steps"], r["peak_kib"]) for r in rows if (r["backend"], r["method"]) == (backend, method))
        color = COLORS["maml"] if method.startswith("MAML") else COLORS["fomaml"] if method == "FOMAML" else COLORS["reptile"]
        ax.plot(*zip(*sel), "o-" if backend == "autograd" else "s--", color=color, label=f"{method}, {backend}")
    ax.set(xlabel="inner steps", ylabel="peak memory (KiB)", title="memory of one meta-iteration")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    most = max(steps_ for steps_ in (r["inner_steps"] for r in rows))
    return describe(fig, f"Peak memory of one meta-iteration against the number of inner steps (1 to {most}), one "
                         f"line per method and backend: exact MAML's memory grows with the steps, FOMAML's and "
                         f"Reptile's stay flat.")


def alpha_sweep_figure(trace, batch, indices, alphas=None, inner_steps=(1, 5), sizes=(1, 40, 40, 1)):
    """cos(MAML, FOMAML) against alpha at a few stored snapshots: the static twin of the widget."""
    plt = _plt()
    alphas = np.geomspace(1e-3, 0.05, 10) if alphas is None else np.asarray(alphas)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for c, i in enumerate(indices):
        theta = theta_from_flat(trace["theta_flat"][i], sizes, dtype=np.float64)
        for m, ls in zip(inner_steps, ("-", "--", ":")):
            with np.errstate(over="ignore", invalid="ignore"):
                cos = directions.alpha_sweep(theta, batch, alphas, m)["cos_fomaml"]
            ax.plot(alphas, cos, ls, color=f"C{c + 4}", marker="o", ms=3,
                    label=f"meta-iteration {int(trace['iterations'][i])}, {m} step(s)")
    ax.axvline(0.01, color="k", lw=0.8, ls=":")
    ax.text(0.0105, -0.95, "alpha used for training", fontsize=7)
    ax.set(xscale="log", ylim=(-1.05, 1.05), xlabel="inner step size alpha",
           ylabel="cos(MAML, FOMAML)", title="agreement of FOMAML with exact MAML against alpha")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    its = ", ".join(str(int(trace["iterations"][i])) for i in indices)
    return describe(fig, f"Cosine between FOMAML and exact MAML against the inner step size α from {alphas[0]:.3g} "
                         f"to {alphas[-1]:.3g} (log axis), at meta-iterations {its}: agreement falls as α grows; "
                         f"a dotted line marks α = 0.01, used for training.")


def direction_stats(trace, index, batch, alpha, inner_steps, sizes=(1, 40, 40, 1)):
    """Cosines, norms (``directions.summarize``) and plane coordinates (``directions.plane_coordinates``)
    of the three directions at stored snapshot `index`."""
    theta = theta_from_flat(trace["theta_flat"][index], sizes, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging inner loop shows up as nan, not a warning
        d = directions.directions(theta, batch, alpha, inner_steps)
    return dict(directions.summarize(d), plane=directions.plane_coordinates(d))


def widget_figure(width, height, dpi=72, **subplots):
    """A Figure that pyplot does not know (the inline backend never shows a stray copy), and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


def _png(fig):
    import io

    from PIL import Image  # Pillow comes with matplotlib
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def render_png(fig):
    """PNG bytes of a whole figure for an ipywidgets.Image (fast zlib level: an image lives for one move)."""
    fig.canvas.draw()
    return _png(fig)


class Blit:
    """Draw the static part of a widget figure once; each move redraws only the moving artists.

    Moving artists are created with animated=True (so a full draw leaves them out); ``full()``
    redraws everything and stores the background, ``fast()`` restores it and draws the movers.
    """

    def __init__(self, fig, movers):
        self.fig, self.movers, self.background = fig, movers, None

    def full(self):
        self.fig.canvas.draw()
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        return self.fast()

    def fast(self):
        if self.background is None:
            return self.full()
        self.fig.canvas.restore_region(self.background)
        for a in self.movers:
            a.axes.draw_artist(a)
        return _png(self.fig)


def _log_ticks(ax, top):
    """Label a log10(1 + iteration) axis with 1, 10, 100, ... (a linear axis draws much faster)."""
    k = np.arange(0, int(np.ceil(np.log10(top + 1))) + 1)
    ax.set_xticks(k, [f"$10^{int(i)}$" for i in k])


def direction_widget(trace, batch, alpha=0.01, inner_steps=1, index=None, dpi=72):
    """Sliders over the stored training snapshots, alpha and inner steps; redraws both panels.

    Left: the three directions in the plane of the exact meta-gradient and FOMAML (unit = the
    longest of the three).  Right: the stored cosines along training (alpha = 0.01) and the
    current ones.  trace: results.load("directions"); batch: compare.probe_batch() (float64).
    The returned VBox has .update() (one redraw, returns its seconds), .stats and .controls.
    """
    import ipywidgets as W
    from matplotlib.patches import FancyArrowPatch

    n = len(trace["iterations"])
    idx = W.IntSlider(value=n - 1 if index is None else index, min=0, max=n - 1, description="snapshot",
                      continuous_update=False)
    it_label = W.Label()
    a = W.FloatLogSlider(value=alpha, base=10, min=-3, max=-1.3, step=0.05, description="alpha",
                         continuous_update=False, readout_format=".3f")
    steps = W.Dropdown(options=[1, 2, 5], value=inner_steps, description="inner steps")
    text = W.HTML()
    image = W.Image(format="png")

    fig, (ax1, ax2) = widget_figure(10, 3.8, dpi, ncols=2)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.92, wspace=0.25)
    names = {"maml": "MAML (exact)", "fomaml": "FOMAML", "reptile": "Reptile (projected)"}
    arrows = {}
    for k in ("maml", "fomaml", "reptile"):
        arrows[k] = FancyArrowPatch((0, 0), (0, 0), arrowstyle="-|>", mutation_scale=18, color=COLORS[k], lw=2,
                                    animated=True)
        ax1.add_patch(arrows[k])
        ax1.plot([], [], color=COLORS[k], lw=2, label=names[k])
    ax1.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xlabel="along the exact meta-gradient",
            ylabel="orthogonal part of FOMAML", xticks=[-1, 0, 1], yticks=[-1, 0, 1])
    ax1.axhline(0, color="k", lw=0.5)
    ax1.axvline(0, color="k", lw=0.5)
    ax1.set_title("directions, scaled by the longest", fontsize=9)
    ax1.legend(fontsize=7, loc="lower left")
    x_it = np.log10(1 + trace["iterations"])
    lines = {}
    for k in ("fomaml", "reptile"):
        lines[k] = ax2.plot([], [], color=COLORS[k], label=f"{names[k].split(' ')[0]} (stored, alpha = 0.01)")[0]
    now = {k: ax2.plot([], [], "os"[i], color=COLORS[k], ms=8, animated=True, label=f"{k.upper() if k != 'reptile' else 'Reptile'} now")[0]
           for i, k in enumerate(("fomaml", "reptile"))}
    vline = ax2.axvline(x_it[-1], color="k", lw=0.8, ls=":", animated=True)
    ax2.set(xlim=(-0.1, x_it[-1] + 0.1), ylim=(-1.05, 1.05), xlabel="MAML meta-iteration",
            ylabel="cosine with the exact meta-gradient")
    _log_ticks(ax2, trace["iterations"][-1])
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, loc="lower left")
    blit = Blit(fig, [*arrows.values(), *now.values(), vline])
    shown = {"steps": None}
    box = W.VBox([W.HBox([idx, it_label]), W.HBox([a, steps]), text, image])

    def update(*_):
        t0 = time.perf_counter()
        i, m = idx.value, steps.value
        it_label.value = f"meta-iteration {int(trace['iterations'][i])}"
        s = direction_stats(trace, i, batch, a.value, m)
        unit = max(s["norm_maml"], s["norm_fomaml"], s["norm_reptile"], 1e-300)
        for k, (x, y) in s["plane"].items():
            arrows[k].set_positions((0, 0), (x / unit, y / unit))
        now["fomaml"].set_data([x_it[i]], [s["cos_fomaml"]])
        now["reptile"].set_data([x_it[i]], [s["cos_reptile"]])
        vline.set_xdata([x_it[i], x_it[i]])
        angle = np.degrees(np.arccos(np.clip(s["cos_fomaml"], -1, 1)))
        text.value = (f"alpha = {a.value:.3g}, {m} inner step(s): cos(MAML, FOMAML) = <b>{s['cos_fomaml']:.4f}</b> "
                      f"(angle {angle:.1f}&deg;), cos(MAML, Reptile) = <b>{s['cos_reptile']:.4f}</b>; "
                      f"|MAML| = {s['norm_maml']:.3f}, |FOMAML| = {s['norm_fomaml']:.3f}, "
                      f"|Reptile| = {s['norm_reptile']:.3f}")
        if shown["steps"] != m:  # the stored curves change with the step count: redraw the background
            key = m if f"cos_fomaml_{m}" in trace else None
            for k in ("fomaml", "reptile"):
                lines[k].set_data(x_it, trace[f"cos_{k}_{key}"]) if key else lines[k].set_data([], [])
            shown["steps"] = m
            image.value = blit.full()
        else:
            image.value = blit.fast()
        box.stats = s
        return time.perf_counter() - t0

    for w in (idx, a, steps):
        w.observe(update, names="value")
    box.update = update
    box.controls = {"snapshot": idx, "alpha": a, "inner_steps": steps}
    box.figure = fig
    box.last_seconds = update()
    return describe_widget(box, LIVE_WIDGETS['direction_widget'])
