"""Figures and the widget of notebook 08: point-navigation trajectories before and after adaptation.

A trajectory drawn for theta_j (the policy after j policy-gradient steps on a goal) is its
mean-action path, the noise-free rollout of mu_{theta_j}; the steps themselves are taken from 40
sampled trajectories each, as at meta-test (``maml_rl.adapt``).
"""
from __future__ import annotations

import time

import numpy as np

from ..rl import maml_rl, point_navigation, policy
from ._alt import LIVE_WIDGETS, describe, describe_axes, describe_widget

COLORS = {"maml": "C0", "pretrained": "C1", "random": "C7"}
LABELS = {"maml": "MAML", "pretrained": "pretrained", "random": "random init."}
STEP_COLORS = ("0.55", "C2", "C3", "C4")


def adapted_paths(theta, goals, alpha=0.1, steps=3, num_trajectories=40, seed=0):
    """Mean-action paths after 0..steps adaptation steps on each goal, and the sampled returns.

    Returns (paths (steps + 1, K, T + 1, 2), returns (steps + 1, K)): returns[j] is the average
    return of the 40 trajectories sampled with theta_j.
    """
    goals = point_navigation.check_goals(goals)
    rollouts, thetas = maml_rl.adapt(theta, goals, np.random.default_rng(seed), alpha, steps, num_trajectories)
    K = goals.shape[0]
    dtype = rollouts[0].actions.dtype
    zero = np.zeros((K, 1, point_navigation.HORIZON, 2), dtype=dtype)
    paths = [point_navigation.rollout(lambda s, th=th: policy.mean_action(th, s), goals, zero, th["log_std"])
             .positions[:, 0] for th in thetas]
    return np.stack(paths), np.stack([ro.returns.mean(axis=1) for ro in rollouts])


def method_alpha(alpha, method):
    """The step sizes of one method: alpha itself, or alpha[method] when alpha is a dict {method: step sizes}."""
    return alpha[method] if isinstance(alpha, dict) else alpha


def _alpha_text(alpha):
    if isinstance(alpha, dict):
        return "; ".join(f"{LABELS.get(m, m)} {_alpha_text(a)}" for m, a in alpha.items())
    if isinstance(alpha, (list, tuple)):
        return " then ".join(str(a) for a in alpha)
    return str(alpha)


def _arena(ax):
    a = point_navigation.ARENA
    ax.add_patch(__import__("matplotlib.patches", fromlist=["Rectangle"]).Rectangle(
        (-a, -a), 2 * a, 2 * a, fill=False, ls=":", color="0.6", lw=1))
    ax.plot([0], [0], "ko", ms=4)
    ax.set(xlim=(-0.6, 0.6), ylim=(-0.6, 0.6), aspect="equal")
    ax.tick_params(labelsize=7)


def draw_paths(ax, paths, goal, returns=None, steps=None):
    """Mean-action paths after each step count on one goal (paths (steps + 1, T + 1, 2))."""
    _arena(ax)
    steps = range(len(paths)) if steps is None else steps
    for j in steps:
        lab = f"{j} step{'s' if j != 1 else ''}" + (f": {returns[j]:.1f}" if returns is not None else "")
        ax.plot(paths[j][:, 0], paths[j][:, 1], "-", color=STEP_COLORS[j % 4], lw=1.6, label=lab)
    ax.plot([goal[0]], [goal[1]], "*", color="gold", mec="k", ms=13, zorder=5)


def trajectories_figure(thetas, goals, alpha=0.1, steps=3, seed=0, methods=("maml", "pretrained")):
    """Static figure: rows = methods, columns = goals; each panel the paths after 0..steps steps.

    alpha: step sizes (a number, one per step, or a dict {method: step sizes}).
    """
    import matplotlib.pyplot as plt
    goals = point_navigation.check_goals(goals)
    fig, axes = plt.subplots(len(methods), len(goals), figsize=(2.7 * len(goals), 2.8 * len(methods)), squeeze=False)
    for r, m in enumerate(methods):
        paths, R = adapted_paths(thetas[m], goals, method_alpha(alpha, m), steps, seed=seed)
        for c in range(len(goals)):
            ax = axes[r, c]
            draw_paths(ax, paths[:, c], goals[c], R[:, c])
            ax.legend(fontsize=6.5, loc="lower left", title="return", title_fontsize=6.5)
            if c == 0:
                ax.set_ylabel(LABELS.get(m, m), fontsize=10)
            if r == 0:
                ax.set_title(f"goal ({goals[c, 0]:.2f}, {goals[c, 1]:.2f})", fontsize=9)
    fig.tight_layout()
    where = "; ".join(f"({g[0]:.2f}, {g[1]:.2f})" for g in goals)
    return describe(fig, f"Grid of 2-D navigation paths: rows {', '.join(LABELS.get(m, m) for m in methods)}, columns "
                         f"goals {where} (star). Each panel draws the policy's path after 0 to {steps} policy-gradient "
                         f"steps (α: {_alpha_text(alpha)}), with the return of each in the legend.")


def returns_figure(ax, summary):
    """Average return (95% interval) against the adaptation steps, ours and the paper's (crosses)."""
    paper = summary["paper"]
    for m, r in summary["results"].items():
        s, v, ci = np.array(r["steps"]), np.array(r["return"]), np.array(r["ci95"])
        ax.plot(s, v, "o-", color=COLORS.get(m), label=LABELS.get(m, m), ms=4)
        ax.fill_between(s, v - ci, v + ci, color=COLORS.get(m), alpha=0.2)
        if m in paper:
            ax.plot(paper["steps"], paper[m], "x--", color=COLORS.get(m), ms=7, lw=0.8,
                    label=f"{LABELS.get(m, m)} (paper)")
    ax.set(xlabel="policy-gradient steps at meta-test", ylabel="average return", xticks=[0, 1, 2, 3])
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    ends = "; ".join(f"{LABELS.get(m, m)} {r['return'][0]:.1f} before and {r['return'][-1]:.1f} after {r['steps'][-1]} "
                     f"step(s)" for m, r in summary["results"].items())
    describe_axes(ax, f"Average return (95% intervals) against policy-gradient steps at meta-test, one line per "
                      f"policy ({ends}); crosses mark the paper's numbers.")


def navigation_widget(thetas, alpha=0.1, steps=3, num_trajectories=40, seed=0):
    """Place a goal with two sliders and watch each method's paths after 0..steps policy-gradient steps.

    thetas: {method: policy} (shipped.load("navigation")["theta"]); alpha: step sizes (a number, one per
    step, or a dict {method: step sizes}).  Each move adapts the chosen
    method to the goal through ``maml_rl.adapt`` (40 sampled trajectories per step, noise from
    ``seed``) and redraws.  Returns a VBox with .update() (one redraw, returns its seconds),
    .state (returns after each step) and .controls.
    """
    import ipywidgets as W

    from ._render import Blitter, new_figure

    gx = W.FloatSlider(value=0.3, min=-0.5, max=0.5, step=0.05, description="goal x", continuous_update=False)
    gy = W.FloatSlider(value=-0.2, min=-0.5, max=0.5, step=0.05, description="goal y", continuous_update=False)
    method = W.Dropdown(options=[(LABELS.get(m, m), m) for m in thetas], value=next(iter(thetas)),
                        description="policy")
    text = W.HTML()
    image = W.Image(format="png")
    fig, ax = new_figure(4.4, 4.2)
    _arena(ax)
    lines = [ax.plot([], [], "-", color=STEP_COLORS[j % 4], lw=1.6, label=f"{j} step{'s' if j != 1 else ''}")[0]
             for j in range(steps + 1)]
    star = ax.plot([], [], "*", color="gold", mec="k", ms=13, zorder=5)[0]
    ax.legend(handles=lines, fontsize=7, loc="lower left", title="mean path after", title_fontsize=7)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.08, top=0.97)
    blit = Blitter(fig, [*lines, star])   # the arena and the legend are drawn once
    state = {}

    def update(*_):
        t0 = time.perf_counter()
        goal = np.array([[gx.value, gy.value]])
        paths, R = adapted_paths(thetas[method.value], goal, method_alpha(alpha, method.value), steps,
                                 num_trajectories, seed)
        for j, line in enumerate(lines):
            line.set_data(paths[j, 0, :, 0], paths[j, 0, :, 1])
        star.set_data([gx.value], [gy.value])
        state["returns"] = R[:, 0].tolist()
        text.value = (f"{LABELS.get(method.value, method.value)}: average return of {num_trajectories} trajectories "
                      f"after 0..{steps} policy-gradient steps: " + ", ".join(f"<b>{v:.1f}</b>" for v in R[:, 0]))
        image.value = blit.fast()
        state["seconds"] = time.perf_counter() - t0
        return state["seconds"]

    for c in (gx, gy, method):
        c.observe(update, names="value")
    box = W.VBox([W.HBox([gx, gy, method]), text, image])
    box.update, box.state, box.figure = update, state, fig
    box.controls = {"goal_x": gx, "goal_y": gy, "method": method}
    box.last_seconds = update()
    return describe_widget(box, LIVE_WIDGETS['navigation_widget'])
