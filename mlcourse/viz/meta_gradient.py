"""Worked example 1 (notebook 02): the 1D meta-gradient, its curvature term, and a widget.

One task, a scalar theta, model f_theta(x) = sin(theta x) (``nets.sine_apply``), MSE losses.
With m inner steps theta^(i+1) = theta^(i) - alpha L_s'(theta^(i)), the chain rule gives

    dL_q(theta^(m))/dtheta = L_q'(theta^(m)) * prod_{i<m} (1 - alpha L_s''(theta^(i)))

(m = 1 is worked example 1).  First-order MAML keeps only L_q'(theta^(m)).  The computations
live in the engine (``checks.losses_on_grid``, ``checks.meta_gradient_steps``,
``checks.meta_gradient_autograd``); this module draws them.
"""
from __future__ import annotations

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import checks, tasks
from ._render import Blitter, Timed, new_figure

__all__ = ["example_task", "support_minimum", "static_figure", "MetaGradientExplorer", "THETA_RANGE"]

THETA_RANGE = (-1.0, 3.0)


def example_task(seed=0, k_support=5, k_query=15):
    """The notebook's task: one Scalar1D task (y = sin(omega x)) sampled with default_rng(seed)."""
    return tasks.Scalar1D().sample(np.random.default_rng(seed), 1, k_support, k_query)


def support_minimum(batch, theta_range=THETA_RANGE, num=400, newton_steps=20):
    """Where the support loss L_s is lowest on theta_range: the grid's best point refined by Newton steps
    theta <- theta - L_s'(theta) / L_s''(theta) (derivatives by ``checks.meta_gradient_steps``: with
    alpha = 1 one inner step is theta - L_s'(theta)).  Returns a float."""
    grid = np.linspace(*theta_range, num)
    t = float(grid[np.argmin(checks.losses_on_grid(batch, grid)[0])])
    for _ in range(newton_steps):
        p = checks.meta_gradient_steps(batch, t, 1.0, 1)
        slope, curvature = t - float(p["theta_prime"]), float(p["curvature"])
        if curvature <= 0:        # not inside a bowl: keep the grid's point
            break
        t = t - slope / curvature
    return t


def _draw_curves(ax_loss, ax_grad, batch, alpha, steps, grid):
    Ls, Lq = checks.losses_on_grid(batch, grid)
    mg = checks.meta_gradient_steps(batch, grid, alpha, steps)
    ax_loss.plot(grid, Ls, "C0", label=r"$\mathcal{L}_s(\theta)$ support")
    ax_loss.plot(grid, Lq, "C1", label=r"$\mathcal{L}_q(\theta)$ query")
    ax_grad.axhline(0, color="0.7", lw=0.8)
    ax_grad.plot(grid, mg["exact"], "C3", label="exact (MAML)")
    ax_grad.plot(grid, mg["first_order"], "C2--", label="first order (FOMAML)")
    for ax in (ax_loss, ax_grad):
        ax.set_xlabel(r"$\theta$")
        ax.set_xlim(grid[0], grid[-1])
        ax.grid(alpha=0.3)
    ax_loss.set_ylim(-0.05, 1.6)
    ax_grad.set_ylim(-1.0, 1.0)
    ax_grad.set_title(r"meta-gradient $d\mathcal{L}_q(\theta')/d\theta$", fontsize=10)
    return mg


def static_figure(batch, theta=0.3, alpha=0.3, steps=1, num=200):
    """Left: L_s and L_q with theta -> theta' and the support minimum (dotted).  Middle: the factor prod (1 - alpha L_s''), shaded where
    it is negative.  Right: exact vs first-order meta-gradient over theta."""
    import matplotlib.pyplot as plt
    grid = np.linspace(*THETA_RANGE, num)
    fig, (a, m, b) = plt.subplots(1, 3, figsize=(14, 3.8))
    mg = _draw_curves(a, b, batch, alpha, steps, grid)
    p = checks.meta_gradient_steps(batch, theta, alpha, steps)
    Ls, Lq = checks.losses_on_grid(batch, [theta, float(p["theta_prime"])])
    a.plot([theta], [Ls[0]], "ko", label=r"$\theta$")
    a.plot([float(p["theta_prime"])], [Lq[1]], "k*", ms=12, label=r"$\theta'$")
    a.annotate("", xy=(float(p["theta_prime"]), 0.02), xytext=(theta, 0.02), arrowprops={"arrowstyle": "->"})
    t_min = support_minimum(batch)
    a.axvline(t_min, color="C0", ls=":", lw=1.2, label=rf"support minimum $\theta_s^*$ = {t_min:.2f}")
    a.set_title(rf"one task, $\alpha$ = {alpha}, {steps} inner step(s)", fontsize=10)
    a.legend(fontsize=8, loc="upper right")
    m.axhline(0, color="0.7", lw=0.8)
    m.plot(grid, mg["factor"], "C4")
    m.fill_between(grid, -3, 3, where=mg["factor"] < 0, color="C3", alpha=0.12, label="factor < 0: MAML and\nFOMAML disagree in sign")
    m.axvline(theta, color="k", lw=0.8)
    m.set_ylim(-3, 3)
    m.set_xlim(grid[0], grid[-1])
    m.set_xlabel(r"$\theta$")
    m.set_title(r"curvature factor $1 - \alpha\,\mathcal{L}_s''(\theta)$" if steps == 1 else
                r"$\prod_i (1 - \alpha\,\mathcal{L}_s''(\theta^{(i)}))$", fontsize=10)
    m.legend(fontsize=8, loc="lower left")
    m.grid(alpha=0.3)
    b.axvline(theta, color="k", lw=0.8)
    b.legend(fontsize=8)
    fig.tight_layout()
    negative = grid[mg["factor"] < 0]
    where = (f"negative (MAML and FOMAML disagree in sign) for θ between {negative.min():.2f} and {negative.max():.2f}"
             if negative.size else "positive everywhere on the plot")
    return describe(fig, f"Three panels for one 1-D task with α = {alpha} and {steps} inner step(s). Left: support "
                         f"and query losses over θ; θ = {theta} steps to θ′ = {float(p['theta_prime']):.2f}, and the "
                         f"support minimum is at {t_min:.2f}. Middle: the curvature factor over θ, {where}. Right: "
                         f"the exact and first-order meta-gradients over θ.")


class MetaGradientExplorer(Timed):
    """theta, alpha and inner-step sliders redrawing L_s, L_q, theta' and both meta-gradients.

    ``.widget`` is the ipywidgets box; ``.values`` the numbers shown (also in ``.readout``, an HTML widget).
    """

    def __init__(self, batch, theta=0.3, alpha=0.3, steps=1, num=200):
        import ipywidgets as w
        self.batch, self.grid = batch, np.linspace(*THETA_RANGE, num)
        self.theta = w.FloatSlider(value=theta, min=THETA_RANGE[0], max=THETA_RANGE[1], step=0.05,
                                   description="θ", readout_format=".2f", continuous_update=True)
        self.alpha = w.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.01, description="α",
                                   readout_format=".2f", continuous_update=True)
        self.steps = w.IntSlider(value=steps, min=1, max=5, description="inner steps")
        self.image = w.Image(format="png", layout=w.Layout(width="720px"))
        self.readout = w.HTML()
        self.fig, (self.ax_loss, self.ax_grad) = new_figure(9.0, 3.4, nrows=1, ncols=2)
        self._curves_key = None
        self._build()
        for s in (self.theta, self.alpha, self.steps):
            s.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.theta, self.alpha, self.steps]), self.image, self.readout])
        describe_widget(self.widget, LIVE_WIDGETS['MetaGradientExplorer'])
        self.redraw()

    def _on_change(self, _change):
        self.redraw()

    def compute(self):
        theta, alpha, steps = float(self.theta.value), float(self.alpha.value), int(self.steps.value)
        p = checks.meta_gradient_steps(self.batch, theta, alpha, steps)
        auto, fd = checks.meta_gradient_autograd(self.batch, theta, alpha, steps)
        v = {"theta": theta, "alpha": alpha, "steps": steps, "theta_prime": float(p["theta_prime"]),
             "curvature": float(p["curvature"]), "factor": float(p["factor"]), "exact": float(p["exact"]),
             "autograd": auto, "finite_difference": fd, "first_order": float(p["first_order"])}
        if steps == 1:   # the package's own check of worked example 1
            v["closed_form"] = checks.check_worked_example_1(theta, self.batch, alpha)["closed_form"]
        return v

    def redraw(self):
        return self._timed(self._redraw)

    def _build(self):
        ax_loss, ax_grad = self.ax_loss, self.ax_grad
        self._ls, = ax_loss.plot([], [], "C0", label=r"$\mathcal{L}_s(\theta)$ support")
        self._lq, = ax_loss.plot([], [], "C1", label=r"$\mathcal{L}_q(\theta)$ query")
        ax_grad.axhline(0, color="0.7", lw=0.8)
        self._g_exact, = ax_grad.plot([], [], "C3", label="exact (MAML)")
        self._g_first, = ax_grad.plot([], [], "C2--", label="first order (FOMAML)")
        for ax in (ax_loss, ax_grad):
            ax.set_xlabel(r"$\theta$")
            ax.set_xlim(self.grid[0], self.grid[-1])
            ax.grid(alpha=0.3)
        ax_loss.set_ylim(-0.05, 1.6)
        ax_grad.set_ylim(-1.0, 1.0)
        ax_grad.set_title(r"meta-gradient $d\mathcal{L}_q(\theta')/d\theta$", fontsize=10)
        self._theta_pt, = ax_loss.plot([], [], "ko", label=r"$\theta$")
        self._prime_pt, = ax_loss.plot([], [], "k*", ms=12, label=r"$\theta'$")
        self._arrow = ax_loss.annotate("", xy=(0, 0.02), xytext=(0, 0.02), arrowprops={"arrowstyle": "->"})
        self._vline = ax_grad.axvline(0, color="k", lw=0.8)
        self._exact_pt, = ax_grad.plot([], [], "o", color="C3")
        self._first_pt, = ax_grad.plot([], [], "o", color="C2")
        self._title = ax_loss.set_title("", fontsize=10)
        ax_loss.legend(fontsize=8, loc="upper right")
        ax_grad.legend(fontsize=8, loc="lower right")
        self.fig.tight_layout()
        self._blit = Blitter(self.fig, [self._ls, self._lq, self._g_exact, self._g_first, self._theta_pt, self._prime_pt, self._arrow, self._vline, self._exact_pt,
                                        self._first_pt, self._title])

    def _redraw(self):
        v = self.values = self.compute()
        key = (v["alpha"], v["steps"])
        full = key != self._curves_key           # curves depend on alpha and steps only
        if full:
            Ls, Lq = checks.losses_on_grid(self.batch, self.grid)
            mg = checks.meta_gradient_steps(self.batch, self.grid, v["alpha"], v["steps"])
            self._ls.set_data(self.grid, Ls)
            self._lq.set_data(self.grid, Lq)
            self._g_exact.set_data(self.grid, mg["exact"])
            self._g_first.set_data(self.grid, mg["first_order"])
            self._curves_key = key
        Ls, Lq = checks.losses_on_grid(self.batch, [v["theta"], v["theta_prime"]])
        self._theta_pt.set_data([v["theta"]], [Ls[0]])
        self._prime_pt.set_data([v["theta_prime"]], [Lq[1]])
        self._arrow.xy, self._arrow.xyann = (v["theta_prime"], 0.02), (v["theta"], 0.02)
        self._vline.set_xdata([v["theta"], v["theta"]])
        self._exact_pt.set_data([v["theta"]], [v["exact"]])
        self._first_pt.set_data([v["theta"]], [v["first_order"]])
        self._title.set_text(rf"$\theta$ = {v['theta']:.2f} $\to$ $\theta'$ = {v['theta_prime']:.3f}")
        self.image.value = self._blit.fast()     # every moving artist is animated: no full redraw
        self.readout.value = self.format_values(v)
        return v

    @staticmethod
    def format_values(v):
        rows = [("θ′ after inner steps", v["theta_prime"]), ("ℒₛ″(θ) (curvature)", v["curvature"]),
                ("∏(1 − α ℒₛ″(θ⁽ⁱ⁾))", v["factor"]), ("exact (chain rule)", v["exact"]),
                ("autograd", v["autograd"]), ("finite differences", v["finite_difference"]),
                ("first order ℒ_q′(θ′)", v["first_order"])]
        cells = "".join(f"<tr><td>{name}</td><td class='mg-{i}' style='text-align:right'><code>{val:+.6f}</code>"
                        "</td></tr>" for i, (name, val) in enumerate(rows))
        return f"<table>{cells}</table>"
