"""Few-shot classification (notebook 06): episodes as images, prototypes, distances, mistakes.

For one N-way K-shot episode and a trained embedding theta (``mlcourse.conv``), ``analyse`` computes
through the package what a Prototypical Network does: z = f_theta(x) for every image, the prototypes
c_k = mean of class k's support embeddings, the squared distances ||z_q - c_k||^2 and the predictions
argmin_k.  The figures show the episode with each class's mean support image (the prototype seen as
an image) and each query framed green (right) or red (wrong), a 2-D projection of the embeddings
with the prototypes, and the distance matrix.  ``PrototypeExplorer`` redraws all of it for a chosen
episode, N and K.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import protonet
from ..conv import conv4_apply
from ..data.omniglot import OmniglotEpisodes
from ._render import Timed, new_figure, png_bytes

__all__ = ["Analysis", "sample_episode", "analyse", "episode_rgb", "pairs_strip", "plot_pairs", "plot_episode",
           "plot_projection",
           "plot_distances", "draw_analysis", "static_figure", "PrototypeExplorer", "comparison_figure"]

RIGHT, WRONG, FRAME = (0.1, 0.65, 0.2), (0.85, 0.1, 0.1), (0.6, 0.6, 0.6)


@dataclass(frozen=True)
class Analysis:
    """One episode through a ProtoNet: images, embeddings, prototypes, squared distances, predictions."""

    x_support: np.ndarray    # (N*K, s, s)
    y_support: np.ndarray    # (N*K,)
    x_query: np.ndarray      # (N*Q, s, s)
    y_query: np.ndarray      # (N*Q,)
    z_support: np.ndarray    # (N*K, d)
    z_query: np.ndarray      # (N*Q, d)
    c: np.ndarray            # (N, d) prototypes
    d2: np.ndarray           # (N*Q, N) squared distances ||z_q - c_k||^2
    classes: tuple           # names of the N classes

    @property
    def n_way(self) -> int:
        return len(self.c)

    @property
    def y_pred(self) -> np.ndarray:
        return self.d2.argmin(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.y_pred == self.y_query))


def sample_episode(data, n_way=5, k_shot=1, k_query=3, seed=0, within_alphabet=False):
    """(x_support, y_support, x_query, y_query, class names) of one episode, from np.random.default_rng(seed)."""
    eps = OmniglotEpisodes(data, n_way=n_way, k_shot=k_shot, k_query=k_query, within_alphabet=within_alphabet)
    xs, ys, xq, yq, chosen = eps.sample(np.random.default_rng(seed))
    names = tuple(f"{data.alphabet_of[c]}/{data.character_of[c]}" for c in chosen)
    return xs, ys, xq, yq, names


def analyse(theta, episode, n_way, stats=None):
    """An Analysis of episode = (x_support, y_support, x_query, y_query[, names]) under the embedding theta.

    The support and query images embedded (with BatchNorm's population statistics `stats`, as the
    shipped ProtoNet is evaluated; without them, in one call whose statistics are the episode's),
    then prototypes and squared distances from ``mlcourse.protonet``.
    """
    xs, ys, xq, yq = (np.asarray(a) for a in episode[:4])
    names = tuple(episode[4]) if len(episode) > 4 else tuple(f"class {k}" for k in range(n_way))
    ep = protonet.Episode(xs, ys, xq, yq, int(n_way)).validate()
    model = functools.partial(conv4_apply, stats=stats)
    zs, zq = (np.asarray(z, dtype=np.float64) for z in protonet.embed_episode(theta, ep, model))
    c = np.asarray(protonet.prototypes(zs, ys, n_way))
    d2 = -np.asarray(protonet.logits(zq, c))   # logits are minus the squared distances
    return Analysis(xs, ys, xq, yq, zs, zq, c, d2, names)


def episode_rgb(a: Analysis, pad=2, gap=6):
    """RGB mosaic: row k = class k's support images | their mean (the prototype as an image) | its queries.

    Queries get a green frame when classified right and a red one when wrong.  (H, W, 3) floats in [0, 1].
    """
    s = a.x_support.shape[-1]
    n, k_shot, k_query = a.n_way, len(a.x_support) // a.n_way, len(a.x_query) // a.n_way
    cell = s + 2 * pad
    width = (k_shot + 1 + k_query) * cell + 2 * gap
    out = np.ones((n * cell, width, 3))
    pred = a.y_pred

    def put(row, col_x, img, frame):
        y0 = row * cell
        out[y0:y0 + cell, col_x:col_x + cell] = frame
        out[y0 + pad:y0 + pad + s, col_x + pad:col_x + pad + s] = (1.0 - img)[..., None]   # ink dark

    for k in range(n):
        sup = a.x_support[a.y_support == k]
        for j, img in enumerate(sup):
            put(k, j * cell, img, FRAME)
        put(k, k_shot * cell + gap, sup.mean(axis=0), (0.2, 0.35, 0.8))
        q_idx = np.flatnonzero(a.y_query == k)
        for j, i in enumerate(q_idx):
            put(k, (k_shot + 1 + j) * cell + 2 * gap, a.x_query[i], RIGHT if pred[i] == k else WRONG)
    return out


def pairs_strip(x_support, x_query, y_query, pad=2):
    """Two rows: the N support images, and under each the query of its class (one query per class). (H, W)."""
    s, n = x_support.shape[-1], len(x_support)
    cell = s + 2 * pad
    out = np.full((2 * cell, n * cell), 0.5)
    for k in range(n):
        q = np.flatnonzero(np.asarray(y_query) == k)
        for row, img in ((0, x_support[k]), (1, x_query[q[0]] if len(q) else np.zeros_like(x_support[k]))):
            out[row * cell + pad:row * cell + pad + s, k * cell + pad:k * cell + pad + s] = 1.0 - img
    return out


def plot_pairs(ax, x_support, x_query, y_query):
    """A one-query-per-class episode (the protocol's (a), the 2015 runs): supports above, their queries below."""
    ax.imshow(pairs_strip(x_support, x_query, y_query), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    cell = x_support.shape[-1] + 4
    ax.set_yticks([cell / 2, 1.5 * cell])
    ax.set_yticklabels(["support", "query"], fontsize=8)
    ax.set_xticks([(k + 0.5) * cell for k in range(len(x_support))])
    ax.set_xticklabels([str(k) for k in range(len(x_support))], fontsize=7)


def plot_episode(ax, a: Analysis):
    ax.imshow(episode_rgb(a), interpolation="nearest")
    k_shot = len(a.x_support) // a.n_way
    ax.set_xticks([])
    ax.set_yticks([])
    wrong = int(np.sum(a.y_pred != a.y_query))
    ax.set_title(f"{a.n_way}-way {k_shot}-shot: {wrong} of {len(a.y_query)} queries wrong (red)\n"
                 "row = class: support | mean support image (blue) | queries", fontsize=9)


def _pca2(z):
    """(mean, (2, d) directions) of the two leading principal components of the rows of z."""
    mu = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - mu, full_matrices=False)
    if len(vt) < 2:   # two points span one direction: complete it with any orthogonal one
        extra = np.linalg.svd(np.eye(z.shape[1]) - np.outer(vt[0], vt[0]))[0][:, :1].T
        vt = np.concatenate([vt, extra])
    return mu, vt[:2]


def plot_projection(ax, a: Analysis):
    """Support (dots), queries (crosses, circled in red when wrong) and prototypes (stars) in 2-D.

    The plane is that of the prototypes' two leading principal axes: where the classes spread most.
    """
    mu, P = _pca2(a.c)
    ps, pq, pc = ((z - mu) @ P.T for z in (a.z_support, a.z_query, a.c))
    cmap = _class_colors(a.n_way)
    for k in range(a.n_way):
        col = cmap[k]
        ax.scatter(*ps[a.y_support == k].T, s=14, color=col, alpha=0.6)
        ax.scatter(*pq[a.y_query == k].T, s=22, marker="x", color=col)
        ax.scatter(*pc[k], s=160, marker="*", color=col, edgecolor="black", linewidth=0.7, zorder=3)
    bad = a.y_pred != a.y_query
    ax.scatter(*pq[bad].T, s=90, facecolor="none", edgecolor="red", linewidth=1.2, zorder=4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("embeddings on the prototypes' 2 principal axes\n(★ prototypes, • support, × queries, red ring: wrong)",
                 fontsize=9)


def plot_distances(ax, a: Analysis):
    """The matrix ||z_q - c_k||^2 (queries sorted by class); the true class boxed, a wrong argmin marked."""
    order = np.argsort(a.y_query, kind="stable")
    d = a.d2[order]
    ax.imshow(d, aspect="auto", cmap="viridis_r", interpolation="nearest")
    yq, yp = a.y_query[order], a.y_pred[order]
    ax.scatter(yq, np.arange(len(yq)), s=10, marker="s", facecolor="none", edgecolor="white", linewidth=0.8)
    bad = yp != yq
    ax.scatter(yp[bad], np.flatnonzero(bad), s=22, marker="x", color="red")
    ax.set_xlabel("prototype k", fontsize=8)
    ax.set_ylabel("query (sorted by class)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("squared distance to each prototype\n(□ true class, red × nearest when wrong)", fontsize=9)


def _class_colors(n):
    import matplotlib
    cm = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [cm(k % cm.N) for k in range(n)]


def draw_analysis(axes, a: Analysis):
    for ax in axes:
        ax.clear()
    plot_episode(axes[0], a)
    plot_projection(axes[1], a)
    plot_distances(axes[2], a)


def static_figure(theta, data, n_way=5, k_shot=1, k_query=3, seed=0, stats=None):
    """The three panels for one episode of data (a pyplot figure for the notebook)."""
    import matplotlib.pyplot as plt
    a = analyse(theta, sample_episode(data, n_way, k_shot, k_query, seed), n_way, stats)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    draw_analysis(axes, a)
    fig.tight_layout()
    wrong = int(np.sum(a.y_pred != a.y_query)) if hasattr(a, "y_pred") else None
    return describe(fig, f"One {n_way}-way {k_shot}-shot Omniglot episode in three panels: the support and query "
                         f"images, the embeddings projected to 2-D with each class's prototype as a star, and the "
                         f"query-to-prototype distance matrix" +
                         (f"; {wrong} of {len(a.y_query)} queries are misclassified (circled)." if wrong is not None
                          else ".")), a


class PrototypeExplorer(Timed):
    """Pick an episode (seed), N and K: the prototypes, the distances and the misclassified queries."""

    def __init__(self, theta, data, n_way=5, k_shot=1, k_query=3, seed=0, max_way=20, max_shot=5, stats=None):
        import ipywidgets as w
        self.theta, self.data, self.k_query, self.stats = theta, data, k_query, stats
        self.seed = w.IntSlider(value=seed, min=0, max=99, description="episode")
        self.n_way = w.IntSlider(value=n_way, min=2, max=max_way, description="N-way")
        self.k_shot = w.IntSlider(value=k_shot, min=1, max=max_shot, description="K-shot")
        self.image = w.Image(format="png", layout=w.Layout(width="900px"))
        self.readout = w.HTML()
        self.fig, self.axes = new_figure(12.5, 4.4, ncols=3, gridspec_kw={"width_ratios": [1.2, 1, 1]})
        self.fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1, top=0.86, wspace=0.25)
        for s in (self.seed, self.n_way, self.k_shot):
            s.observe(lambda ch: self.redraw(), names="value")
        self.widget = w.VBox([w.HBox([self.seed, self.n_way, self.k_shot]), self.image, self.readout])
        describe_widget(self.widget, LIVE_WIDGETS['PrototypeExplorer'])
        self.redraw()

    def redraw(self):
        return self._timed(self._redraw)

    def _redraw(self):
        n = int(self.n_way.value)
        ep = sample_episode(self.data, n, int(self.k_shot.value), self.k_query, int(self.seed.value))
        a = self.analysis = analyse(self.theta, ep, n, self.stats)
        draw_analysis(self.axes, a)
        self.image.value = png_bytes(self.fig)
        margin = np.sort(a.d2, axis=1)
        gap = float(np.median(margin[:, 1] - margin[:, 0])) if n > 1 else float("nan")
        self.readout.value = (f"accuracy on this episode {100 * a.accuracy:.0f}% ({len(a.y_query)} queries); "
                              f"median gap between the nearest and the second-nearest prototype {gap:.1f}")
        return a


def comparison_figure(rows, metric_labels):
    """Horizontal bars with 95% intervals: rows = [(method, [(value, ci95) per metric])]."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(metric_labels), figsize=(4.2 * len(metric_labels), 0.5 + 0.55 * len(rows)),
                             squeeze=False)
    for j, label in enumerate(metric_labels):
        ax = axes[0, j]
        vals = [r[1][j] for r in rows]
        y = np.arange(len(rows))
        ax.barh(y, [v for v, _ in vals], xerr=[ci or 0 for _, ci in vals], color=[f"C{i}" for i in y],
                alpha=0.8, capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels([r[0] for r in rows] if j == 0 else [], fontsize=9)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    summary = "; ".join(f"{r[0]}: " + ", ".join(f"{label} {v:.3g}" for label, (v, _) in zip(metric_labels, r[1]))
                        for r in rows)
    return describe(fig, f"Horizontal bars with 95% intervals comparing {len(rows)} methods ({summary}).")
