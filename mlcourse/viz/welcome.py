"""Notebook 00's picture: the inner loop (theta -> theta'_i per task) and the outer loop (move theta)."""
from __future__ import annotations

import numpy as np

from ._alt import describe
from .. import checks


def loop_diagram(alpha=0.3, seed=0, num_tasks=3):
    """Quadratic tasks L_i(theta) = |theta - theta*_i|^2 in 2-D: theta'_i = theta - alpha 2 (theta - theta*_i).

    Draws theta, each task's optimum theta*_i, the inner steps theta -> theta'_i, and the outer step's
    direction -mean_i dL_i(theta'_i)/dtheta = -mean_i 2 (1 - 2 alpha) (theta'_i - theta*_i)
    (``checks.quadratic_maml_step``).
    """
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    optima = rng.normal(size=(num_tasks, 2)) * 1.2 + np.array([1.5, 1.0])
    theta = np.array([-1.0, -0.8])
    step = checks.quadratic_maml_step(theta, optima, alpha)   # inner loop, one step each; chain rule (I - alpha H) grad
    theta_prime, meta_grad = step["theta_prime"], step["meta_gradient"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(*theta, "ko", ms=9)
    ax.annotate(r"$\theta$ (meta-parameters)", theta, xytext=(6, -14), textcoords="offset points")
    for i, (o, tp) in enumerate(zip(optima, theta_prime)):
        ax.plot(*o, "x", color=f"C{i}", ms=10, mew=2)
        ax.annotate(rf"$\theta^*_{{{i + 1}}}$ (task {i + 1})", o, xytext=(6, 4), textcoords="offset points")
        ax.annotate("", xy=tp, xytext=theta, arrowprops={"arrowstyle": "->", "color": f"C{i}", "lw": 1.5})
        ax.plot(*tp, "o", color=f"C{i}", mfc="white", ms=8)
        ax.annotate(rf"$\theta'_{{{i + 1}}}$", tp, xytext=(-18, 6), textcoords="offset points", color=f"C{i}")
    ax.annotate("", xy=theta - 0.8 * meta_grad, xytext=theta,
                arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 2.5, "ls": "--"})
    ax.text(*(theta - 0.8 * meta_grad + np.array([0.05, -0.25])), r"outer step $-\beta\,\nabla_\theta$ meta-loss")
    ax.set_title(r"inner loop: $\theta \to \theta'_i$ per task;  outer loop: move $\theta$", fontsize=10)
    ax.set_xlabel("parameter 1")
    ax.set_ylabel("parameter 2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return describe(fig, f"Diagram of MAML's two loops in a 2-D parameter plane: from the shared start θ "
                         f"({theta[0]:.1f}, {theta[1]:.1f}) one inner step of α = {alpha} moves towards each of {num_tasks} "
                         f"task optima θ*_i, giving θ′_i; a dashed black arrow shows the outer step on θ "
                         f"against the meta-gradient, towards the tasks as a group.")
