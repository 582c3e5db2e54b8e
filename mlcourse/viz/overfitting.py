"""Figures and widgets of notebook 07: meta-overfitting, inner-loop choices, Meta-SGD and ANIL.

Static figures take the shipped summary of ``experiments.overfitting_job`` (or of the
``sinusoid_variants`` run) and return a matplotlib Figure; the widgets draw into a pyplot-free
Figure and show it as PNG in an ``ipywidgets.Image`` (``_render``), every number computed through
the package.
"""
from __future__ import annotations

import numpy as np

from .. import maml, metasgd, nets, taskpool, tasks
from ._alt import LIVE_WIDGETS, describe, describe_widget
from ._render import new_figure, png_bytes

__all__ = ["pool_curves_figure", "gap_figure", "pool_widget", "within_task_figure", "within_task_widget",
           "sweep_figure", "sweep_widget", "alpha_per_layer", "alpha_figure"]

X_GRID = np.linspace(-5, 5, 200)
POOL_COLORS = ["C3", "C1", "C2", "C0", "C4", "C5"]


def _runs(summary, augmented=False):
    return [r for r in summary["pools"] if r["augmented"] == augmented]


def _label(r):
    base = "fresh tasks" if r["pool_size"] is None else f"pool of {r['pool_size']}"
    return base + (", augmented" if r["augmented"] else "")


def pool_curves_figure(summary, runs=None, width=10, height=3.8):
    """Post-adaptation query MSE along meta-training: on the pool's own tasks (dashed, meta-train)
    and on new tasks (solid, meta-test), one colour per pool size; the marker is early stopping."""
    fig, ax = new_figure(width, height)
    runs = _runs(summary) if runs is None else runs
    for r, c in zip(runs, POOL_COLORS):
        ax.plot(r["iteration"], r["test"], "-", color=c, lw=1.6, label=f"{_label(r)}: meta-test")
        ax.plot(r["iteration"], r["train"], "--", color=c, lw=1.2, label=f"{_label(r)}: meta-train")
        i = r["iteration"].index(r["early_stopping_iteration"])
        ax.plot(r["iteration"][i], r["test"][i], "o", color=c, ms=6, mfc="white")
    ax.set(xlabel="meta-iteration", ylabel=f"query MSE after {summary['config']['inner_steps']} step(s)",
           yscale="log", title="meta-train (dashed) vs meta-test (solid); o: early stopping on meta-validation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.subplots_adjust(left=0.08, right=0.7, bottom=0.14)
    ends = "; ".join(f"{_label(r)}: meta-train {r['train'][-1]:.3g}, meta-test {r['test'][-1]:.3g}" for r in runs)
    return describe(fig, f"Query MSE after adaptation along meta-training (log axis), meta-train dashed and meta-test "
                         f"solid, one pair of lines per pool of training tasks; at the end {ends}. Circles mark "
                         f"early stopping.")


def gap_figure(summary, width=9, height=3.4):
    """Final meta-test - meta-train gap (95% interval) per pool size: plain, early-stopped, augmented."""
    fig, ax = new_figure(width, height)
    plain = _runs(summary)
    names = [_label(r) for r in plain]
    x = np.arange(len(plain))
    aug = {r["pool_size"]: r for r in _runs(summary, True)}
    bars = [("final", [r["final"] for r in plain], "C7", "at the end"),
            ("early", [r["early_stopped"] for r in plain], "C9", "early stopped (meta-validation)"),
            ("aug", [aug[r["pool_size"]]["final"] if r["pool_size"] in aug else None for r in plain], "C8",
             "task augmentation")]
    w = 0.27
    for j, (_, vals, c, lab) in enumerate(bars):
        xs = [xi + (j - 1) * w for xi, v in zip(x, vals) if v is not None]
        ys = [v["gap"] for v in vals if v is not None]
        es = [v["ci95"] for v in vals if v is not None]
        ax.bar(xs, ys, w, yerr=es, color=c, label=lab, capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=8)
    ax.set(ylabel="gap: meta-test - meta-train MSE", title="across-task overfitting: the gap and two mitigations")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    gaps = ", ".join(f"{n} {r['final']['gap']:.3g}" for n, r in zip(names, plain))
    return describe(fig, f"Bars of the meta-test minus meta-train gap with 95% intervals per pool size, at the end of "
                         f"training ({gaps}), beside the same gap after early stopping and with task augmentation.")


def _fit(theta, task, alpha, steps):
    th = maml.adapt(theta, task.x_support, task.y_support, alpha, steps)
    return nets.mlp_apply(th, X_GRID[None, :, None].astype(task.x_support.dtype))[0, :, 0]


def pool_widget(loaded, seed=0):
    """Pick a pool size (and augmentation, early stopping): the curves of that run, and its fits after
    adaptation on one task of its pool and on one new task.  loaded: overfitting_job.load_shipped(...)."""
    import ipywidgets as W
    summary, params = loaded["summary"], loaded["params"]
    cfg = summary["config"]
    plain = _runs(summary)
    options = [(_label(r), r["name"]) for r in plain]
    pick = W.SelectionSlider(options=options, value=options[0][1], description="pool", continuous_update=False,
                             layout=W.Layout(width="420px"))
    aug = W.Checkbox(value=False, description="task augmentation")
    early = W.Checkbox(value=False, description="early stopping")
    text, image = W.HTML(), W.Image(format="png")
    by_name = {r["name"]: r for r in summary["pools"]}
    new_task = tasks.Sinusoid().sample(np.random.default_rng([seed, 77]), 1, cfg["k_support"], 1)
    state = {}

    def update(*_):
        name = pick.value + ("_augmented" if aug.value and pick.value + "_augmented" in by_name else "")
        r = by_name[name]
        theta = params[name + ("_early_stopped" if early.value else "")]
        res = r["early_stopped"] if early.value else r["final"]
        fig, axes = new_figure(10, 3.2, ncols=3)
        ax = axes[0]
        ax.plot(r["iteration"], r["test"], "-", color="C0", label="meta-test (new tasks)")
        ax.plot(r["iteration"], r["train"], "--", color="C3", label="meta-train (pool tasks)")
        ax.plot(r["iteration"], r["validation"], ":", color="C2", label="meta-validation")
        ax.axvline(r["early_stopping_iteration"] if early.value else r["iteration"][-1], color="k", lw=0.8)
        ax.set(yscale="log", xlabel="meta-iteration", ylabel="query MSE", title=_label(r), ylim=(0.05, 10))
        ax.legend(fontsize=7)
        if r["pool_size"] is None:
            pool_task = tasks.Sinusoid().sample(np.random.default_rng([seed, 78]), 1, cfg["k_support"], 1)
        else:
            pool = taskpool.TaskPool(r["pool"]["amplitude"][:1], r["pool"]["phase"][:1])
            pool_task = pool.sample(np.random.default_rng([seed, 78]), 1, cfg["k_support"], 1)
        for a, task, what in ((axes[1], pool_task, "a meta-training task"), (axes[2], new_task, "a new task")):
            A, p = task.params["amplitude"][0], task.params["phase"][0]
            a.plot(X_GRID, tasks.Sinusoid.function(X_GRID, A, p), "k", lw=1.4)
            a.plot(task.x_support[0, :, 0], task.y_support[0, :, 0], "k^", ms=7)
            a.plot(X_GRID, _fit(theta, task.astype(np.float32), cfg["alpha"], cfg["inner_steps"]), color="C0")
            a.set(ylim=(-5.5, 5.5), title=f"{what}: fit after {cfg['inner_steps']} step(s)")
        fig.tight_layout()
        state.update(name=name, result=res)
        text.value = (f"<b>{_label(r)}</b>{' (stopped at iteration %d)' % r['early_stopping_iteration'] if early.value else ''}"
                      f": meta-train MSE <b>{res['train']:.3f}</b>, meta-test <b>{res['test']:.3f}</b>, "
                      f"gap <b>{res['gap']:.3f} ± {res['ci95']:.3f}</b>")
        image.value = png_bytes(fig)

    for w in (pick, aug, early):
        w.observe(update, names="value")
    update()
    box = W.VBox([W.HBox([pick, aug, early]), text, image])
    box.update, box.state, box.controls = update, state, {"pool": pick, "augmented": aug, "early": early}
    return describe_widget(box, LIVE_WIDGETS['pool_widget'])


def within_task_figure(summary, k_shot=5, width=10.5, height=3.4):
    """Support and query MSE after m steps from K points, one panel per noise level on the support labels;
    solid: the smaller alpha, dashed: the larger (cut where it diverges)."""
    runs = [r for r in summary["within_task"]["runs"] if r["k_shot"] == k_shot]
    noises = sorted({r["noise"] for r in runs})
    alphas = sorted({r["alpha"] for r in runs})
    fig, axes = new_figure(width, height, ncols=len(noises), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, sigma in zip(axes, noises):
        for a, ls in zip(alphas, ("-", "--", ":")):
            r = next(r for r in runs if r["noise"] == sigma and r["alpha"] == a)
            s = np.array(r["steps"])
            sup = np.array([np.nan if v is None else v for v in r["support"]])
            qry = np.array([np.nan if v is None else v for v in r["query"]])
            ax.plot(s, sup, "o" + ls, color="C3", ms=3, label=f"support, alpha = {a}")
            ax.plot(s, qry, "o" + ls, color="C0", ms=3, label=f"query, alpha = {a}")
        ax.set(xscale="symlog", yscale="log", xlabel="inner steps m", ylim=(1e-3, 30),
               title=f"noise std {sigma} on the {k_shot} support labels", xlim=(0, max(r["steps"])))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MSE (mean over tasks)")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"within-task overfitting: adapting the shipped MAML from K = {k_shot} points "
                 "(query: 50 clean points of the same task)", fontsize=10)
    fig.tight_layout()
    return describe(fig, f"Support and query MSE (log axes) against inner steps when adapting the shipped MAML from "
                         f"K = {k_shot} points, one panel per noise level on the support labels "
                         f"({', '.join(str(n) for n in noises)}), one line style per α ({', '.join(map(str, alphas))}), "
                         f"support in one colour and query in another.")


def within_task_widget(theta, num_tasks=100, seed=0, max_steps=500):
    """Sliders for alpha, inner steps m, K and the support labels' noise: support vs query MSE on num_tasks
    new tasks, and one of the fits."""
    import ipywidgets as W
    from ..experiments.overfitting_job import noisy_support, support_and_query
    alpha = W.FloatLogSlider(value=0.01, base=10, min=-3, max=-1.5, step=0.1, description="alpha",
                             continuous_update=False)
    steps = W.IntSlider(value=100, min=0, max=max_steps, step=10, description="steps m", continuous_update=False)
    k = W.IntSlider(value=5, min=1, max=10, description="K", continuous_update=False)
    noise = W.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.25, description="label noise", continuous_update=False)
    text, image = W.HTML(), W.Image(format="png")
    state = {}

    def update(*_):
        grid = sorted({s for s in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500) if s <= steps.value} | {steps.value})
        clean = tasks.Sinusoid().sample(np.random.default_rng([seed, 50, k.value]), num_tasks, k.value, 50,
                                        dtype=np.float32)
        batch = noisy_support(clean, noise.value, np.random.default_rng([seed, 51, k.value]))
        sup, qry = support_and_query(theta, batch, alpha.value, grid)
        state.update(steps=grid, support=sup, query=qry)
        fig, axes = new_figure(10, 3.2, ncols=2)
        nan = [np.nan if v is None else v for v in sup], [np.nan if v is None else v for v in qry]
        axes[0].plot(grid, nan[0], "o-", color="C3", ms=3, label="support (noisy labels)")
        axes[0].plot(grid, nan[1], "o-", color="C0", ms=3, label="query (clean)")
        axes[0].set(xscale="symlog", yscale="log", xlabel="inner steps", ylabel="MSE", title=f"{num_tasks} new tasks")
        axes[0].legend(fontsize=8)
        axes[0].grid(alpha=0.3)
        task = batch.task(0)
        A, p = task.params["amplitude"][0], task.params["phase"][0]
        axes[1].plot(X_GRID, tasks.Sinusoid.function(X_GRID, A, p), "k", lw=1.4, label="true task")
        axes[1].plot(task.x_support[0, :, 0], task.y_support[0, :, 0], "k^", ms=8, label=f"K = {k.value} (noisy)")
        with np.errstate(over="ignore", invalid="ignore"):
            axes[1].plot(X_GRID, _fit(theta, task, alpha.value, steps.value), color="C0",
                         label=f"after {steps.value} steps")
        axes[1].set(ylim=(-6, 6), title="the first of the tasks")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fmt = lambda v: "diverged" if v is None else f"{v:.3g}"  # noqa: E731
        text.value = (f"after {steps.value} steps with alpha = {alpha.value:.3g} from K = {k.value} points (noise "
                      f"{noise.value}): support MSE <b>{fmt(sup[-1])}</b>, query MSE <b>{fmt(qry[-1])}</b> "
                      f"(after one step: {fmt(qry[min(1, len(qry) - 1)])})")
        image.value = png_bytes(fig)

    for w in (alpha, steps, k, noise):
        w.observe(update, names="value")
    update()
    box = W.VBox([W.HBox([alpha, steps]), W.HBox([k, noise]), text, image])
    box.update, box.state, box.controls = update, state, {"alpha": alpha, "steps": steps, "k": k, "noise": noise}
    return describe_widget(box, LIVE_WIDGETS['within_task_widget'])


def _curve(ax, r, color, label, lw=1.4):
    if "diverged" in r:
        return
    s, m, c = np.array(r["steps"]), np.array(r["mse"], float), np.array(r["ci95"], float)
    ax.plot(s, m, "o-", color=color, ms=3, lw=lw, label=label)
    ax.fill_between(s, m - c, m + c, color=color, alpha=0.15)


def sweep_figure(summary, width=10, height=3.4):
    """Query MSE after k test steps for MAML meta-trained with each alpha (left), each m (right)."""
    fig, axes = new_figure(width, height, ncols=2, sharey=True)
    for i, r in enumerate(summary["alpha_sweep"]):
        _curve(axes[0], r, f"C{i}", f"alpha = {r['alpha']}" + (" (diverged)" if "diverged" in r else ""))
    for i, r in enumerate(summary["steps_sweep"]):
        _curve(axes[1], r, f"C{i}", f"m = {r['inner_steps']} inner step(s)")
    axes[0].set(yscale="log", xlabel="test-time steps (with the training alpha)", ylabel="query MSE",
                title="MAML meta-trained with inner step size alpha")
    axes[1].set(xlabel="test-time steps", title=f"... with m inner steps (alpha = {summary['config']['alpha']})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return describe(fig, f"Two panels of query MSE (log axis) against test-time steps: left, MAML meta-trained with α "
                         f"in {', '.join(str(r['alpha']) for r in summary['alpha_sweep'])}; right, with "
                         f"{', '.join(str(r['inner_steps']) for r in summary['steps_sweep'])} inner steps.")


def sweep_widget(summary):
    """Sliders over the swept alpha and m: that run's curve against the default run's, with numbers."""
    import ipywidgets as W
    alphas = [r["alpha"] for r in summary["alpha_sweep"]]
    ms = [r["inner_steps"] for r in summary["steps_sweep"]]
    a = W.SelectionSlider(options=alphas, value=summary["config"]["alpha"], description="alpha",
                          continuous_update=False)
    m = W.SelectionSlider(options=ms, value=summary["config"]["inner_steps"], description="inner steps",
                          continuous_update=False)
    which = W.ToggleButtons(options=["alpha", "inner steps"], value="alpha", description="sweep")
    text, image = W.HTML(), W.Image(format="png")
    base = next(r for r in summary["alpha_sweep"] if r["alpha"] == summary["config"]["alpha"])
    state = {}

    def update(*_):
        r = (next(r for r in summary["alpha_sweep"] if r["alpha"] == a.value) if which.value == "alpha"
             else next(r for r in summary["steps_sweep"] if r["inner_steps"] == m.value))
        fig, ax = new_figure(7, 3.2)
        _curve(ax, base, "C7", f"alpha = {base['alpha']}, m = {base['inner_steps']} (default)", lw=1)
        _curve(ax, r, "C0", f"alpha = {r['alpha']}, m = {r['inner_steps']}", lw=2)
        ax.set(yscale="log", xlabel="test-time steps", ylabel="query MSE", ylim=(0.05, 10))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        state["run"] = r
        text.value = (f"alpha = {r['alpha']}, m = {r['inner_steps']}: " + (
            "<b>meta-training diverged</b>" if "diverged" in r else
            ", ".join(f"{s} step(s) <b>{v:.3f}</b>" for s, v in zip(r["steps"], r["mse"]) if s in (0, 1, 5, 10))))
        image.value = png_bytes(fig)

    for w in (a, m, which):
        w.observe(update, names="value")
    update()
    box = W.VBox([which, W.HBox([a, m]), text, image])
    box.update, box.state, box.controls = update, state, {"alpha": a, "inner_steps": m, "sweep": which}
    return describe_widget(box, LIVE_WIDGETS['sweep_widget'])


def alpha_per_layer(params):
    """{name: flat array of learned step sizes} per layer of a Meta-SGD MLP: W1, b1, W2, b2, ..."""
    alpha = metasgd.alpha_of(params)
    return {f"{n}{l + 1}": np.ravel(a) for l, layer in enumerate(alpha) for n, a in zip(("W", "b"), layer)}


def alpha_figure(params, width=9, height=3.4):
    """Learned step sizes per layer (every entry a dot; box = quartiles) against the initial range."""
    per = alpha_per_layer(params)
    fig, ax = new_figure(width, height)
    names = list(per)
    rng = np.random.default_rng(0)
    for i, n in enumerate(names):
        v = per[n]
        ax.plot(i + rng.uniform(-0.25, 0.25, v.size), v, ".", ms=2, alpha=0.5, color="C5")
    ax.boxplot([per[n] for n in names], positions=range(len(names)), widths=0.6, showfliers=False)
    ax.axhspan(*metasgd.ALPHA_INIT, color="C7", alpha=0.15, label="initial range U[0.005, 0.1]")
    ax.axhline(0.01, color="C0", lw=1, ls="--", label="MAML's alpha = 0.01")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n({per[n].size})" for n in names], fontsize=8)
    ax.set(yscale="log", ylabel="learned alpha", title="Meta-SGD's learned step sizes, per layer (entries)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    med = ", ".join(f"{n} {np.median(per[n]):.3g}" for n in names)
    return describe(fig, f"Meta-SGD's learned inner step sizes per layer on a log axis, every entry a dot with a box of "
                         f"its quartiles, against the initial range (shaded) and MAML's α = 0.01 (dashed); medians: "
                         f"{med}.")
