"""Worked example 2 (notebook 03): where one inner step takes theta on linear-slope tasks.

Tasks y = a x, model f_theta(x) = theta x, MSE on the support set.  One SGD step:

    theta' = (1 - c) theta + c a,      c = 2 alpha mean(x_support^2)           (per task)

so after k steps theta^(k) - a = (1 - c)^k (theta - a): 0 < c < 1 moves part of the way to a,
1 < c < 2 overshoots but still converges, c >= 2 never converges (c = 2 bounces, c > 2 diverges).
The closed forms live in the engine (``checks.linear_c``, ``checks.linear_inner_step``,
``checks.linear_trajectories``, ``checks.linear_regime``); this module draws them.
"""
from __future__ import annotations

import functools

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import checks, maml, nets, tasks, train
from ._render import Blitter, Timed, new_figure

__all__ = ["example_tasks", "maml_on_linear_family", "static_figure", "GeometryAnimation", "SUBFRAMES", "SPEEDS"]

SUBFRAMES = 8                                  # animation frames per inner step
SPEEDS = {"0.25x": 4.0, "1x": 1.0}            # multiplies the Play interval
BASE_INTERVAL_MS = 120


def example_tasks(seed=0, num_tasks=12, k_support=5, k_query=5, slope_range=(0.5, 2.5)):
    return tasks.LinearSlope(slope_range=slope_range).sample(np.random.default_rng(seed), num_tasks, k_support, k_query)


def maml_on_linear_family(theta0=0.0, seed=0, iterations=150, alpha=0.3, beta=0.05, meta_batch_size=25,
                          k_support=5, k_query=5, slope_range=(0.5, 2.5)):
    """Exact MAML (train.meta_train + maml.maml_value_and_grad with nets.linear_apply) from theta0.

    Returns (iterations (n,), theta after each (n,)) - converging towards E[a] (the "hard" practice problem).
    """
    value_and_grad = functools.partial(maml.maml_value_and_grad, alpha=alpha, inner_steps=1, model=nets.linear_apply)
    sample_batch = train.task_batches(tasks.LinearSlope(slope_range=slope_range), meta_batch_size=meta_batch_size,
                                      k_support=k_support, k_query=k_query, dtype=np.float64)
    path = []
    train.meta_train(np.float64(theta0), value_and_grad, sample_batch, rng=np.random.default_rng(seed),
                     iterations=iterations, schedule=train.constant(beta), progress=False,
                     callback=lambda it, theta, loss: path.append(float(theta)))
    return np.arange(1, iterations + 1), np.array(path)


def _draw_tasks(ax, theta, positions, slope, xlim):
    T = len(slope)
    rows = np.arange(T)
    ax.plot(slope, rows, "x", color="C1", ms=8, mew=2, label="task optimum a")
    ax.axvline(theta, color="k", lw=1, label="θ (shared start)")
    ax.axvline(np.mean(slope), color="C1", lw=1, ls=":", label="mean of a")
    ax.set_yticks(rows)
    ax.set_yticklabels([f"task {i}" for i in rows], fontsize=7)
    ax.set_xlim(*xlim)
    ax.set_xlabel("parameter value")
    ax.grid(alpha=0.3)


def static_figure(batch, theta=0.0, alpha=0.6, maml_runs=None, cs=(0.5, 1.7, 2.0, 2.2), mean_slope=1.5):
    """Three panels: theta -> theta' for many tasks; |theta^(k) - a| against k for several c;
    MAML's theta during meta-training (maml_runs: list of (iterations, thetas))."""
    import matplotlib.pyplot as plt
    slope = batch.params["slope"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    tp = checks.linear_trajectories(theta, alpha, batch.x_support, slope, 1)[1]
    _draw_tasks(a, theta, tp, slope, (min(theta, slope.min()) - 0.3, max(theta, slope.max()) + 0.3))
    a.plot(tp, np.arange(len(slope)), "o", color="C0", label="θ′ after one step")
    for i in range(len(slope)):
        a.annotate("", xy=(tp[i], i), xytext=(theta, i), arrowprops={"arrowstyle": "->", "color": "C0", "alpha": 0.5})
    cvals = checks.linear_c(alpha, batch.x_support)
    a.set_title(f"one step, α = {alpha}: c ∈ [{cvals.min():.2f}, {cvals.max():.2f}]", fontsize=10)
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    k = np.arange(0, 11)
    for cv in cs:
        b.semilogy(k, np.abs(1 - cv) ** k, "o-", ms=3, label=f"c = {cv}")
    b.set_xlabel("inner steps k")
    b.set_ylabel(r"$|\theta^{(k)} - a| \,/\, |\theta - a| = |1 - c|^k$")
    b.set_title("c > 1 overshoots, c ≥ 2 never converges", fontsize=10)
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    for it, th in (maml_runs or []):
        c.plot(it, th, label=f"start θ = {th[0]:.1f}" if len(th) else None)
    c.axhline(mean_slope, color="C1", ls=":", label=f"E[a] = {mean_slope}")
    c.set_xlabel("meta-iteration")
    c.set_ylabel("θ")
    c.set_title("exact MAML on the linear family", fontsize=10)
    c.legend(fontsize=8)
    c.grid(alpha=0.3)
    fig.tight_layout()
    starts = ", ".join(f"{th[0]:.1f}" for _, th in (maml_runs or []) if len(th))
    return describe(fig, f"Three panels on linear tasks y = a·x. Left: from θ = {theta}, one step of α = {alpha} moves "
                         f"θ towards each of {len(slope)} task slopes a (c from {cvals.min():.2f} to {cvals.max():.2f}). "
                         f"Middle: the distance |1 − c|^k to a over 10 inner steps for c = "
                         f"{', '.join(str(v) for v in cs)}, shrinking for c < 2 and growing for c > 2. Right: exact "
                         f"MAML's θ over meta-iterations" + (f" from starts {starts}" if starts else "") +
                         f", settling at the mean slope E[a] = {mean_slope}.")


class GeometryAnimation(Timed):
    """theta -> theta^(k) for many tasks at once: Play / pause, step, speed, zoom; c shown live.

    Frame f shows step f // SUBFRAMES, a fraction (f % SUBFRAMES) / SUBFRAMES of the way to the next one.
    """

    def __init__(self, batch, theta=0.0, alpha=0.6, steps=4):
        import ipywidgets as w
        if "slope" not in batch.params:
            raise ValueError("GeometryAnimation needs linear-slope tasks: sample them with tasks.LinearSlope().")
        self.batch, self.slope = batch, np.asarray(batch.params["slope"])
        self.steps = int(steps)
        nframes = self.steps * SUBFRAMES
        self.play = w.Play(value=0, min=0, max=nframes, step=1, interval=BASE_INTERVAL_MS, description="play")
        self.frame = w.IntSlider(value=0, min=0, max=nframes, description="frame")
        w.jslink((self.play, "value"), (self.frame, "value"))
        self.step_button = w.Button(description="step ▸|", tooltip="jump to the next inner step",
                                    layout=w.Layout(width="90px"))
        # each button as wide as its label: a fixed narrow width cut "0.25x" down to "0...."
        self.speed = w.ToggleButtons(options=list(SPEEDS), value="1x", description="speed",
                                     style={"button_width": "auto"}, layout=w.Layout(width="auto"))
        self.zoom = w.FloatSlider(value=1.0, min=0.25, max=4.0, step=0.25, description="zoom", readout_format=".2f")
        self.theta = w.FloatSlider(value=theta, min=-2.0, max=5.0, step=0.1, description="θ", readout_format=".1f")
        self.alpha = w.FloatSlider(value=alpha, min=0.0, max=4.0, step=0.05, description="α", readout_format=".2f")
        self.readout = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(width="640px"))
        self.fig, self.ax = new_figure(8.0, 4.0)
        self._key = None
        self.frame.observe(lambda ch: self.redraw(), names="value")
        for s in (self.zoom, self.theta, self.alpha):
            s.observe(lambda ch: self.redraw(), names="value")
        self.speed.observe(self._on_speed, names="value")
        self.step_button.on_click(self.step_once)
        controls = w.HBox([self.play, self.step_button, self.speed])
        self.widget = w.VBox([controls, w.HBox([self.frame, self.zoom]), w.HBox([self.theta, self.alpha]),
                              self.image, self.readout])
        describe_widget(self.widget, LIVE_WIDGETS['GeometryAnimation'])
        self.redraw()

    def _on_speed(self, change):
        self.play.interval = int(BASE_INTERVAL_MS * SPEEDS[change["new"]])

    def step_once(self, _button=None):
        """Advance to the next whole inner step (pauses nothing: it is a manual frame change)."""
        nxt = (self.frame.value // SUBFRAMES + 1) * SUBFRAMES
        self.frame.value = min(nxt, self.frame.max)

    def positions(self, frame):
        path = checks.linear_trajectories(self.theta.value, self.alpha.value, self.batch.x_support, self.slope, self.steps)
        k, r = divmod(int(frame), SUBFRAMES)
        if k >= self.steps:
            return path[-1], self.steps
        return path[k] + (r / SUBFRAMES) * (path[k + 1] - path[k]), k

    def compute(self):
        c = checks.linear_c(self.alpha.value, self.batch.x_support)
        pos, k = self.positions(self.frame.value)
        return {"c": c, "c_mean": float(np.mean(c)), "positions": pos, "step": k,
                "theta_prime": checks.linear_trajectories(self.theta.value, self.alpha.value, self.batch.x_support, self.slope, 1)[1]}

    def redraw(self):
        return self._timed(self._redraw)

    def _xlim(self):
        center = 0.5 * (self.slope.min() + self.slope.max())
        half = 3.0 / self.zoom.value
        return center - half, center + half

    def _build(self):
        rows = np.arange(len(self.slope))
        _draw_tasks(self.ax, self.theta.value, None, self.slope, self._xlim())
        self._theta_line = self.ax.get_lines()[1]        # the axvline at theta drawn by _draw_tasks
        self._trail = self.ax.hlines(rows, 0.0, 0.0, color="C0", alpha=0.4)
        self._dots, = self.ax.plot(self.slope, rows, "o", color="C0", label=r"$\theta^{(k)}$ per task")
        self._title = self.ax.set_title("after 0.00 of 0 inner steps", fontsize=10)
        self.ax.legend(fontsize=7, loc="lower right")
        self.fig.tight_layout()
        self._blit = Blitter(self.fig, [self._theta_line, self._trail, self._dots, self._title])

    def _redraw(self):
        v = self.values = self.compute()
        if self._key is None:
            self._build()
        full = self._key != self.zoom.value               # only zoom changes the static background
        if full:
            self.ax.set_xlim(*self._xlim())
            self._key = self.zoom.value
        self._theta_line.set_xdata([self.theta.value, self.theta.value])
        rows = np.arange(len(self.slope))
        self._dots.set_data(v["positions"], rows)
        self._trail.set_segments([[(self.theta.value, r), (p, r)] for r, p in zip(rows, v["positions"])])
        self._title.set_text(f"after {self.frame.value / SUBFRAMES:.2f} of {self.steps} inner steps   "
                             f"(α = {self.alpha.value:.2f}, mean c = {v['c_mean']:.2f})")
        self.image.value = self._blit.full() if full else self._blit.fast()
        self.readout.value = (f"<b>c = 2α·mean(x²)</b>: mean {v['c_mean']:.3f}, range [{v['c'].min():.3f}, "
                              f"{v['c'].max():.3f}] &nbsp;·&nbsp; {checks.linear_regime(v['c_mean'])}")
        return v
