"""Figures for sinusoid regression: fits after adaptation and MSE against steps."""
from __future__ import annotations

import numpy as np

from .. import anil, maml, metasgd, nets, tasks
from ._alt import describe_axes

COLORS = {"maml": "C0", "fomaml": "C2", "reptile": "C3", "pretrain": "C1", "reptile5": "C4", "metasgd": "C5",
          "anil": "C6", "maml_multistep": "C9"}
LABELS = {"maml": "MAML", "fomaml": "FOMAML", "reptile": "Reptile", "pretrain": "pretrained",
          "reptile5": "Reptile (5 inner steps)", "metasgd": "Meta-SGD", "anil": "ANIL",
          "maml_multistep": "MAML, multi-step loss"}


def predict_after(theta, task, alpha, steps, xs):
    """Predictions on xs after `steps` adaptation steps on the task's support set, for the MLP methods
    (SGD with alpha), Meta-SGD ({"theta", "log_alpha"}: its learned step sizes) and ANIL ({"body", "head"})."""
    if isinstance(theta, dict) and "log_alpha" in theta:
        return nets.mlp_apply(metasgd.adapt(theta, task.x_support, task.y_support, steps), xs)
    if isinstance(theta, dict) and "body" in theta:
        head = anil.adapt_head(theta, task.x_support, task.y_support, alpha, steps)
        return anil.head_apply(head, anil.mlp_body(theta["body"], xs))
    return nets.mlp_apply(maml.adapt(theta, task.x_support, task.y_support, alpha, steps), xs)


def fits_after_steps(ax_row, theta, batch, steps=(0, 1, 10), alpha=0.01, color="C0", label="MAML"):
    """One axis per task: true curve, K support points, and the fit after each step count."""
    xs = np.linspace(-5, 5, 200)[None, :, None]
    for i, ax in enumerate(ax_row):
        task = batch.task(i)
        a, p = task.params["amplitude"][0], task.params["phase"][0]
        ax.plot(xs[0, :, 0], tasks.Sinusoid.function(xs[0, :, 0], a, p), "k", lw=1.5, label="true task")
        ax.plot(task.x_support[0, :, 0], task.y_support[0, :, 0], "k^", ms=7, label=f"K={task.k_support} support")
        for j, s in enumerate(steps):
            y = predict_after(theta, task, alpha, s, xs.astype(task.x_support.dtype))
            ax.plot(xs[0, :, 0], y[0, :, 0], color=color, lw=1.2, alpha=0.35 + 0.65 * (j + 1) / len(steps),
                    ls=["--", "-.", "-"][j % 3], label=f"{label}, {s} step{'s' if s != 1 else ''}")
        ax.set_ylim(-5.5, 5.5)
        ax.set_xticks([-5, 0, 5])


def mse_vs_steps(ax, summary):
    """Mean query MSE (and 95% interval) against the number of test-time SGD steps."""
    for m, r in summary["results"].items():
        s, mse, ci = np.array(r["steps"]), np.array(r["mse"]), np.array(r["ci95"])
        ax.plot(s, mse, "o-", color=COLORS.get(m), label=LABELS.get(m, m), ms=4)
        ax.fill_between(s, mse - ci, mse + ci, color=COLORS.get(m), alpha=0.2)
        if m in summary.get("paper", {}):
            ax.plot(summary["paper"]["steps"], summary["paper"][m], "x", color=COLORS.get(m), ms=8,
                    label=f"{LABELS.get(m, m)} (paper)")
    ax.set_xlabel("gradient steps at meta-test")
    ax.set_ylabel("query MSE")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ends = "; ".join(f"{LABELS.get(m, m)} {r['mse'][1]:.3g} after {r['steps'][1]} and {r['mse'][-1]:.3g} after "
                     f"{r['steps'][-1]} steps" for m, r in summary["results"].items())
    describe_axes(ax, f"Query MSE (log axis, shaded 95% intervals) against test-time gradient steps, one line per method "
                      f"({ends})" + ("; crosses mark the paper's numbers." if summary.get("paper") else "."))


def main_job_figure(thetas, summary, path, num_tasks=3, seed=12345):
    """Rows: one per method (fits after 0, 1, 10 steps on held-out tasks); last panel: MSE vs steps."""
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = summary["config"]
    k_shot = cfg.get("eval_k_shot", cfg["k_support"])    # the headline meta-test K (5), not training's K
    batch = tasks.Sinusoid().sample(np.random.default_rng(seed), num_tasks, k_shot, 1,
                                    dtype=np.float32)
    rows = len(thetas)
    fig, axes = plt.subplots(rows, num_tasks + 1, figsize=(3.2 * (num_tasks + 1), 2.8 * rows), squeeze=False)
    for r, (m, theta) in enumerate(thetas.items()):
        fits_after_steps(axes[r, :num_tasks], theta, batch, (0, 1, 10), cfg["alpha"], COLORS.get(m), LABELS.get(m, m))
        axes[r, 0].set_ylabel(LABELS.get(m, m))
        axes[r, 0].legend(fontsize=6, loc="lower left")
    mse_vs_steps(axes[0, -1], summary)
    for r in range(1, rows):
        axes[r, -1].axis("off")
    fig.suptitle(f"{k_shot}-shot sinusoid regression: fits after 0, 1 and 10 steps (alpha = {cfg['alpha']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
