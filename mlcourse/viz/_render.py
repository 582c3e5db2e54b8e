"""Shared plumbing for the widgets: a pyplot-free Figure rendered to PNG bytes for an Image widget.

Widgets draw into a ``matplotlib.figure.Figure`` that pyplot does not know about (so the inline
backend never shows a stray copy) and send PNG bytes to an ``ipywidgets.Image``.  Slider moves that
only move a few artists use blitting: the static part is drawn once (``Blitter.full``), then each
move restores that background and draws only the moving artists (``Blitter.fast``).

Importing this module (every notebook's widget module does) limits NumPy's OpenBLAS to one
thread (``mlcourse._blas``): the notebooks' matrices are tiny and extra BLAS threads only slow
them down.  ``mlcourse._blas.limit_threads(os.cpu_count())`` undoes it; the engine itself never
changes the thread count.
"""
from __future__ import annotations

import io
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._blas import limit_threads

DPI = 80
limit_threads(1)


def new_figure(width=9.0, height=3.6, **subplots):
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots) if subplots else fig.subplots()
    return fig, axes


def canvas_png(fig) -> bytes:
    """PNG of what the canvas holds now (fast zlib level: these images live for one slider move)."""
    from PIL import Image   # Pillow comes with matplotlib
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def png_bytes(fig) -> bytes:
    fig.canvas.draw()
    return canvas_png(fig)


class Blitter:
    """Full draw of the static artists once; afterwards redraw only ``animated`` ones over it."""

    def __init__(self, fig, animated):
        self.fig, self.animated = fig, list(animated)
        for a in self.animated:
            a.set_animated(True)
        self.background = None

    def full(self) -> bytes:
        self.fig.canvas.draw()                  # animated artists are skipped here
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        return self.fast()

    def fast(self) -> bytes:
        if self.background is None:
            return self.full()
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        renderer = canvas.get_renderer()
        for a in self.animated:
            a.draw(renderer)
        return canvas_png(self.fig)


class Timed:
    """Mixin: ``last_redraw_s`` is the wall time of the latest redraw (benchmarks read it)."""

    last_redraw_s = float("nan")

    def _timed(self, f, *args):
        t0 = time.perf_counter()
        out = f(*args)
        self.last_redraw_s = time.perf_counter() - t0
        return out

    def _repr_mimebundle_(self, **kwargs):   # display(obj) shows the widget (its first picture for static readers)
        from ._alt import WIDGET_ATTR, widget_bundle
        if getattr(self.widget, WIDGET_ATTR, None) is not None:
            return widget_bundle(self.widget, **kwargs)
        return self.widget._repr_mimebundle_(**kwargs)
