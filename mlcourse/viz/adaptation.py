"""Meta-test adaptation of sinusoid models, step by step (notebook 05).

    adaptation_path(theta, task, alpha, max_steps)   fits on X_GRID and query MSE after 0..m steps
                                                     (computed by the engine: checks.adaptation_path)
    adaptation_figure(thetas, batch, ...)            static picture: fits after 0, 1, 10 steps
    objective_figure(runs, paper)                    query MSE against test steps for differently trained runs
    adaptation_widget(thetas, ...)                   slider for steps, a new-task button, the seed
"""
from __future__ import annotations

import time

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import checks, tasks
from . import _render  # noqa: F401  (one BLAS thread for the notebook: see _render)
from .sinusoid import COLORS, LABELS

X_GRID = np.linspace(-5, 5, 200)


def adaptation_path(theta, task, alpha=0.01, max_steps=10):
    """``checks.adaptation_path`` on X_GRID: {"fits": (max_steps + 1, len(X_GRID)), "mse": (max_steps + 1,)}."""
    return checks.adaptation_path(theta, task, alpha, max_steps, X_GRID)


def _draw(ax, paths, task, step, methods):
    a, p = task.params["amplitude"][0], task.params["phase"][0]
    ax.plot(X_GRID, tasks.Sinusoid.function(X_GRID, a, p), "k", lw=1.5, label="true task")
    ax.plot(task.x_support[0, :, 0], task.y_support[0, :, 0], "k^", ms=8, label=f"K = {task.k_support} support")
    for m in methods:
        ax.plot(X_GRID, paths[m]["fits"][step], color=COLORS.get(m), lw=1.8,
                label=f"{LABELS.get(m, m)}: query MSE {paths[m]['mse'][step]:.2f}")
    ax.set(xlim=(-5, 5), ylim=(-5.5, 5.5), xlabel="x", ylabel="y")
    ax.grid(alpha=0.3)


def adaptation_figure(thetas, batch, steps=(0, 1, 10), alpha=0.01):
    """Rows: tasks of batch; columns: step counts; every method's fit in each panel."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(batch.num_tasks, len(steps), figsize=(3.6 * len(steps), 2.9 * batch.num_tasks),
                             squeeze=False)
    for i in range(batch.num_tasks):
        task = batch.task(i)
        paths = {m: adaptation_path(th, task, alpha, max(steps)) for m, th in thetas.items()}
        for j, s in enumerate(steps):
            _draw(axes[i, j], paths, task, s, list(thetas))
            axes[i, j].legend(fontsize=6, loc="lower left")
            if i == 0:
                axes[i, j].set_title(f"after {s} step{'s' if s != 1 else ''} (alpha = {alpha})")
    fig.tight_layout()
    return describe(fig, f"Grid of {batch.num_tasks} sinusoid tasks (rows) after {', '.join(map(str, steps))} test-time "
                         f"steps of α = {alpha} (columns): each panel shows the true curve, the support points and "
                         f"the fits of {', '.join(LABELS.get(m, m) for m in thetas)}.")


def objective_figure(runs, paper=None, colors=None, title=None):
    """Query MSE (and 95% interval) against the number of test-time SGD steps, one line per run.

    runs: {label: result} with result as in summary.json ("steps", "mse", "ci95"), e.g. MAML
    trained with the one-step objective and with the multi-step loss.  paper: optional
    {"steps": [...], "mse": [...]} drawn as crosses.  Non-finite MSEs (a diverging inner loop)
    are left out of the line and marked at the top of the axes.  Returns the figure.
    """
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for c, (label, r) in enumerate(runs.items()):
        color = (colors or {}).get(label, f"C{c}")
        s, mse, ci = np.array(r["steps"]), np.array(r["mse"], float), np.array(r["ci95"], float)
        ok = np.isfinite(mse)
        ax.plot(s[ok], mse[ok], "o-", color=color, ms=4, label=label)
        ax.fill_between(s[ok], (mse - ci)[ok], (mse + ci)[ok], color=color, alpha=0.2)
        for k in s[~ok]:
            ax.annotate("diverges", (k, 1), xycoords=("data", "axes fraction"), color=color, fontsize=7,
                        ha="center", va="top")
    if paper is not None:
        ax.plot(paper["steps"], paper["mse"], "kx", ms=8, label="MAML (paper)")
    ax.set(xlabel="gradient steps at meta-test", ylabel="query MSE", yscale="log")
    ax.set_title(title or "query MSE after k SGD steps (95% intervals)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    ends = "; ".join(f"{label}: {float(r['mse'][0]):.3g} after {r['steps'][0]} and {float(r['mse'][-1]):.3g} after "
                     f"{r['steps'][-1]} steps" for label, r in runs.items())
    return describe(fig, f"Query MSE (log axis, shaded 95% intervals) against test-time gradient steps, one line per "
                         f"run ({ends})" + ("; crosses mark the paper's MAML numbers." if paper is not None else "."))


def adaptation_widget(thetas, alpha=0.01, k_shot=5, k_query=100, max_steps=10, seed=0, dpi=72):
    """Adapt meta-trained models to a fresh sinusoid, one SGD step per slider tick.

    thetas: {method: params} (e.g. results.load("sinusoid")["theta"]).  A task is drawn from
    np.random.default_rng(seed); "new task" increments the seed.  The adaptation path (fits and
    query MSE after 0..max_steps steps) is computed once per task; a slider move redraws only the
    fitted curves.  Returns a VBox with .update() (one redraw, returns its seconds), .new_task(),
    .state (task, paths, mse now) and .controls.
    """
    import ipywidgets as W

    from .direction_plots import Blit, widget_figure

    step = W.IntSlider(value=0, min=0, max=max_steps, description="steps", continuous_update=False)
    seed_box = W.IntText(value=seed, description="task seed")
    button = W.Button(description="new task", icon="refresh")
    shown = W.SelectMultiple(options=[(LABELS.get(m, m), m) for m in thetas], value=tuple(thetas),
                             description="methods", rows=min(4, len(thetas)))
    text = W.HTML()
    image = W.Image(format="png")

    fig, ax = widget_figure(8.5, 3.8, dpi)
    fig.subplots_adjust(left=0.07, right=0.74, bottom=0.14, top=0.9)
    # everything that changes is "animated": the background (axes, ticks, legend) is drawn once
    true_line = ax.plot([], [], "k", lw=1.5, label="true task", animated=True)[0]
    support = ax.plot([], [], "k^", ms=8, label=f"K = {k_shot} support", animated=True)[0]
    title = ax.set_title(" ", fontsize=10, animated=True)
    fits = {m: ax.plot([], [], color=COLORS.get(m), lw=1.8, animated=True, label=LABELS.get(m, m))[0]
            for m in thetas}
    ax.set(xlim=(-5, 5), ylim=(-5.5, 5.5), xlabel="x", ylabel="y")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    blit = Blit(fig, [true_line, support, title, *fits.values()])
    state = {}

    def new_paths(*_):
        task = tasks.Sinusoid().sample(np.random.default_rng(seed_box.value), 1, k_shot, k_query)
        state["task"] = task
        state["paths"] = {m: adaptation_path(th, task, alpha, max_steps) for m, th in thetas.items()}
        a, p = task.params["amplitude"][0], task.params["phase"][0]
        true_line.set_data(X_GRID, tasks.Sinusoid.function(X_GRID, a, p))
        support.set_data(task.x_support[0, :, 0], task.y_support[0, :, 0])
        title.set_text(f"task seed {seed_box.value}: A = {a:.2f}, phase = {p:.2f}; SGD with alpha = {alpha}")

    def update(*_):
        t0 = time.perf_counter()
        for m, line in fits.items():
            line.set_data(X_GRID, state["paths"][m]["fits"][step.value])
            line.set_visible(m in shown.value)
        state["mse"] = {m: float(state["paths"][m]["mse"][step.value]) for m in shown.value}
        text.value = (f"after <b>{step.value}</b> step(s), query MSE on {k_query} points: "
                      + ", ".join(f"{LABELS.get(m, m)} <b>{v:.3f}</b>" for m, v in state["mse"].items()))
        image.value = blit.fast()
        return time.perf_counter() - t0

    def on_seed(*_):
        new_paths()
        return update()

    def new_task(*_):
        seed_box.value += 1  # triggers on_seed

    step.observe(update, names="value")
    shown.observe(update, names="value")
    seed_box.observe(on_seed, names="value")
    button.on_click(new_task)
    new_paths()
    box = W.VBox([W.HBox([step, seed_box, button]), shown, text, image])
    box.update, box.new_task, box.on_seed = update, new_task, on_seed
    box.state, box.figure = state, fig
    box.controls = {"steps": step, "seed": seed_box, "new_task": button, "methods": shown}
    box.last_seconds = update()
    return describe_widget(box, LIVE_WIDGETS['adaptation_widget'])
