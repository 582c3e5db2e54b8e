"""Tasks and episodes (notebook 01): three task families side by side and an episode viewer.

An episode is one task's support set D_s (what adaptation may use) and query set D_q (what
scores the adapted parameters).  Regression families come from ``mlcourse.tasks``; Omniglot
episodes from ``mlcourse.data.omniglot.OmniglotEpisodes`` (N-way K-shot).
"""
from __future__ import annotations

import os

import numpy as np

from ._alt import LIVE_WIDGETS, describe, describe_widget
from .. import tasks
from ._render import Timed, new_figure, png_bytes

__all__ = ["try_load_omniglot", "try_load_protocol", "download_button", "episode_mosaic", "plot_regression_episode",
           "plot_omniglot_episode",
           "static_figure", "EpisodeViewer"]


def try_load_omniglot(split="images_background_small1", size=28):
    """OmniglotData, or None with a printed note on how to get the data (the notebook carries on)."""
    from ..data import omniglot
    try:
        return omniglot.load_split(split, size=size)
    except omniglot.MissingDataError as e:
        print(f"Omniglot panels are skipped: the data are missing. To get them, run in a terminal\n\n"
              f"    {omniglot.download_command(split)}\n\n"
              f"(or `mlcourse data` to see where each split is looked for). Details: {e}")
        return None


def try_load_protocol(root=None, size=28):
    """(training classes, evaluation data) of the few-shot protocol (``mlcourse.data.protocol``), or
    (None, None) after one printed note: which splits are missing and the one command that gets them."""
    from ..data import omniglot, protocol
    missing = protocol.missing_splits(root)
    if missing:
        # in a notebook, and when the release's server answers, a button offers the same download
        offer = _in_kernel() and _reachable(os.environ.get(omniglot.URL_ENV_VAR) or omniglot.OFFICIAL_URL)
        print(f"Omniglot is not on this computer (missing: {', '.join(missing)}).\n"
              f"The cells that need its images skip them; everything the shipped results hold (scores with their "
              f"intervals, times, settings, the comparison figure) still shows. To get the images, run in a "
              f"terminal\n\n    {omniglot.download_command(*missing)}\n\n"
              + ("or press the button below, " if offer else "")
              + f"then restart the kernel and run all cells (or point {omniglot.ENV_VAR} at a folder that holds "
              f"the zips; `mlcourse data` shows where each split is looked for).")
        if offer:
            from IPython.display import display
            display(download_button(missing))
        return None, None
    return protocol.training_classes(root, size), protocol.evaluation_data(root, size)


def download_button(splits, url=None):
    """A button that downloads ``splits`` into the cache (``omniglot.download``), a progress bar with one step
    per split, and the download's messages under them.  The button offers the same as the printed command."""
    import ipywidgets as w
    from ..data import omniglot
    splits = tuple(splits)
    button = w.Button(description=f"download {len(splits)} zip{'s' if len(splits) > 1 else ''}", icon="download")
    bar = w.IntProgress(value=0, min=0, max=len(splits), layout=w.Layout(width="240px"))
    out = w.Output()

    def fetch(_):
        button.disabled = True
        bar.value = 0
        with out:
            try:
                for split in splits:
                    omniglot.download(split, url=url, progress=print)
                    bar.value += 1
                print("Done: restart the kernel and run all cells.")
            except (omniglot.DownloadError, OSError) as e:
                print(e)
                button.disabled = False   # let the learner try again
    button.on_click(fetch)
    return w.VBox([w.HBox([button, bar]), out])


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can be shown), False in a plain Python process."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def _reachable(url, timeout=2.0) -> bool:
    """True if a TCP connection to url's host opens within timeout seconds (nothing is sent)."""
    import socket
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def episode_mosaic(x_support, y_support, x_query, y_query, n_way, gap=4):
    """One image: row i holds class i's support images, a gap, then its query images.  (H, W) array."""
    s = x_support.shape[-1]
    k_shot, k_query = len(x_support) // n_way, len(x_query) // n_way
    cols = k_shot + k_query
    out = np.full((n_way * (s + 2), cols * (s + 2) + gap), 0.5, dtype=np.float32)   # grey frame
    for i in range(n_way):
        imgs = list(x_support[y_support == i]) + list(x_query[y_query == i])
        for j, img in enumerate(imgs):
            x0 = j * (s + 2) + (gap if j >= k_shot else 0) + 1
            out[i * (s + 2) + 1:i * (s + 2) + 1 + s, x0:x0 + s] = 1.0 - img     # ink dark on paper
    return out


def plot_regression_episode(ax, family, batch, i=0, color="C0"):
    """The true function of task i, its support points (filled) and query points (hollow)."""
    t = batch.task(i)
    if isinstance(family, tasks.Sinusoid):
        xs = np.linspace(*family.x_range, 200)
        ax.plot(xs, family.function(xs, t.params["amplitude"][0], t.params["phase"][0]), color=color, lw=1,
                alpha=0.7)
    elif isinstance(family, tasks.LinearSlope):
        xs = np.linspace(*family.x_range, 2)
        ax.plot(xs, t.params["slope"][0] * xs, color=color, lw=1, alpha=0.7)
    ax.plot(t.x_support[0, :, 0], t.y_support[0, :, 0], "o", color=color, ms=7, label="support $D_s$" if i == 0 else None)
    ax.plot(t.x_query[0, :, 0], t.y_query[0, :, 0], "o", mfc="none", color=color, ms=5,
            label="query $D_q$" if i == 0 else None)


def plot_omniglot_episode(ax, episode, n_way):
    xs, ys, xq, yq, _ = episode
    k_shot = len(xs) // n_way
    ax.imshow(episode_mosaic(xs, ys, xq, yq, n_way), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    s = xs.shape[-1] + 2
    ax.axvline(k_shot * s + 1.5, color="C3", lw=2)
    ax.set_xticks([k_shot * s / 2, k_shot * s + 4 + (len(xq) // n_way) * s / 2])
    ax.set_xticklabels(["support $D_s$", "query $D_q$"])
    ax.set_yticks([i * s + s / 2 for i in range(n_way)])
    ax.set_yticklabels([f"class {i}" for i in range(n_way)], fontsize=8)


def static_figure(seed=0, omniglot_data=None, num_tasks=3, k_shot=5, n_way=5):
    """Sinusoid, linear-slope and Omniglot tasks side by side, each with support and query sets."""
    import matplotlib.pyplot as plt
    from ..data.omniglot import OmniglotEpisodes
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    sin, lin = tasks.Sinusoid(), tasks.LinearSlope(noise_std=0.05)
    for family, ax, title in ((sin, axes[0], "sinusoid tasks: y = A sin(x − φ)"),
                              (lin, axes[1], "linear-slope tasks: y = a x + noise")):
        batch = family.sample(rng, num_tasks, k_shot, 10)
        for i in range(num_tasks):
            plot_regression_episode(ax, family, batch, i, f"C{i}")
        ax.set_title(f"{title}\n{num_tasks} tasks, K = {k_shot} support points each", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if omniglot_data is None:
        axes[2].text(0.5, 0.5, "Omniglot data not found:\nset MLCOURSE_OMNIGLOT", ha="center", va="center")
        axes[2].set_axis_off()
    else:
        ep = OmniglotEpisodes(omniglot_data, n_way=n_way, k_shot=1, k_query=5).sample(rng)
        plot_omniglot_episode(axes[2], ep, n_way)
        axes[2].set_title(f"Omniglot: a {n_way}-way 1-shot episode", fontsize=10)
    fig.tight_layout()
    omni = (f"right, a {n_way}-way 1-shot Omniglot episode: one support image per class left of a red line, "
            f"five query images per class right of it" if omniglot_data is not None
            else "right, a note that the Omniglot data were not found")
    return describe(fig, f"Three kinds of tasks side by side. Left, {num_tasks} sinusoid tasks y = A sin(x − φ) "
                         f"and middle, {num_tasks} linear-slope tasks y = a·x, each curve with its K = {k_shot} "
                         f"support points filled and its query points hollow; {omni}.")


class EpisodeViewer(Timed):
    """Pick a task family, K (and N for Omniglot) and a seed; see one episode's support and query sets."""

    def __init__(self, omniglot_data=None, family="sinusoid", k_shot=5, n_way=5, seed=0):
        import ipywidgets as w
        self.omniglot_data = omniglot_data
        options = ["sinusoid", "linear slope"] + (["Omniglot"] if omniglot_data is not None else [])
        self.family = w.ToggleButtons(options=options, value=family, description="family")
        self.k_shot = w.IntSlider(value=k_shot, min=1, max=10, description="K-shot")
        self.n_way = w.IntSlider(value=n_way, min=2, max=10, description="N-way")
        self.seed = w.IntSlider(value=seed, min=0, max=99, description="seed")
        self.image = w.Image(format="png", layout=w.Layout(width="560px"))
        self.readout = w.HTML()
        self.fig, self.ax = new_figure(7.0, 3.6)
        self.fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)   # fixed: tight_layout costs a draw
        for s in (self.family, self.k_shot, self.n_way, self.seed):
            s.observe(lambda ch: self.redraw(), names="value")
        self.widget = w.VBox([self.family, w.HBox([self.k_shot, self.n_way, self.seed]), self.image, self.readout])
        describe_widget(self.widget, LIVE_WIDGETS['EpisodeViewer'])
        self.redraw()

    def sample(self):
        """The episode on screen: a TaskBatch of 3 tasks, or an Omniglot episode tuple."""
        rng = np.random.default_rng(self.seed.value)
        k = int(self.k_shot.value)
        if self.family.value == "sinusoid":
            return tasks.Sinusoid().sample(rng, 3, k, 10)
        if self.family.value == "linear slope":
            return tasks.LinearSlope(noise_std=0.05).sample(rng, 3, k, 10)
        from ..data.omniglot import OmniglotEpisodes
        return OmniglotEpisodes(self.omniglot_data, n_way=int(self.n_way.value), k_shot=k, k_query=3).sample(rng)

    def redraw(self):
        return self._timed(self._redraw)

    def _redraw(self):
        ep = self.episode = self.sample()
        ax = self.ax
        ax.clear()
        self.n_way.disabled = self.family.value != "Omniglot"
        if isinstance(ep, tasks.TaskBatch):
            family = tasks.Sinusoid() if self.family.value == "sinusoid" else tasks.LinearSlope(noise_std=0.05)
            for i in range(ep.num_tasks):
                plot_regression_episode(ax, family, ep, i, f"C{i}")
            ax.legend(fontsize=8, loc="upper right")
            ax.grid(alpha=0.3)
            shapes = {n: getattr(ep, n).shape for n in ("x_support", "y_support", "x_query", "y_query")}
            hidden = ", ".join(f"{k} = {np.round(v, 2).tolist()}" for k, v in ep.params.items())
            info = f"3 tasks (one colour each); hidden task variables: {hidden}"
        else:
            n = int(self.n_way.value)
            plot_omniglot_episode(ax, ep, n)
            shapes = dict(zip(("x_support", "y_support", "x_query", "y_query"), (a.shape for a in ep[:4])))
            names = [f"{self.omniglot_data.alphabet_of[c]}/{self.omniglot_data.character_of[c]}" for c in ep[4]]
            info = "classes (labels 0..N−1 in this order): " + ", ".join(names)
        ax.set_title(f"{self.family.value}: K = {self.k_shot.value}"
                     + (f", N = {self.n_way.value}" if self.family.value == "Omniglot" else ""), fontsize=10)
        self.image.value = png_bytes(self.fig)
        self.readout.value = ("<code>" + ", ".join(f"{k} {v}" for k, v in shapes.items()) + "</code><br>" + info)
        return ep
