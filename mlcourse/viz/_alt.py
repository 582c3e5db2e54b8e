"""Text alternatives of the course's figures and one-line descriptions of its live widgets.

A figure function of ``mlcourse.viz`` ends with ``return describe(fig, "what the figure shows")``.
In IPython (JupyterLab, nbclient, Colab) the figure is then published as PNG with that text as the
image's ``alt`` metadata (its ``text/plain`` stays matplotlib's ``<Figure size ...>``, which stored
outputs are compared on), so the notebook file, the course website and anything reading the
output's metadata get the same words.  A widget
built here carries ``describe_widget(widget, what)``: its output keeps the live view, adds the PNG it
shows first and the line "Live widget: what".
"""
from __future__ import annotations

import base64

ALT_ATTR = "mlcourse_alt"
WIDGET_ATTR = "mlcourse_live"

# What each live widget does, by the name a notebook calls (the website shows it beside the static figure).
LIVE_WIDGETS = {
    "EpisodeViewer": "pick a task family, K, N and a seed to see one episode's support and query sets.",
    "MetaGradientExplorer": "move θ, α and the number of inner steps to see the support and query losses, "
                            "θ′ and the exact and first-order meta-gradients.",
    "GeometryAnimation": "play, pause, step, zoom and change the speed of θ moving to θ′ for many tasks.",
    "direction_widget": "pick a stored meta-iteration and α to see the MAML, FOMAML and Reptile directions "
                        "and their cosines.",
    "adaptation_widget": "draw a new task and step through test-time adaptation of each model.",
    "PrototypeExplorer": "change the episode, N and K to see prototypes, distances and mistakes.",
    "pool_widget": "change the number of training tasks to see meta-overfitting appear and vanish.",
    "within_task_widget": "change the inner steps to see a fit overfit its few support points.",
    "sweep_widget": "move α and the step count to see the query loss of the sweep.",
    "navigation_widget": "place a goal and see the policy's paths before and after adaptation.",
    "interact": "move the slider to recompute the cell's result.",
}


def describe(fig, alt):
    """Attach the text alternative `alt` (a sentence saying what the figure shows) to fig; return fig."""
    text = " ".join(str(alt).split())
    if len(text.split()) < 4:
        raise ValueError(f"a figure's text alternative says what it shows in a sentence, got {alt!r}.")
    setattr(fig, ALT_ATTR, text)
    return fig


def describe_axes(ax, alt):
    """For a function that draws on a caller's axes: describe the figure when these axes are all it holds."""
    if len(ax.figure.axes) == 1:
        describe(ax.figure, alt)
    return ax


def alt_text(fig):
    return getattr(fig, ALT_ATTR, None)


def describe_widget(widget, what):
    """Mark an ipywidgets widget as a live widget of the course doing `what`; return it.

    Its pictures are not given `what` as a tooltip: JupyterLab's widget manager then fails to create the
    Image view at all ("Could not create a view"), so the text reaches readers as the static picture's alt.
    """
    what = " ".join(str(what).split())
    setattr(widget, WIDGET_ATTR, what)
    return widget


def _images(widget):
    import ipywidgets
    stack, found = [widget], []
    while stack:
        w = stack.pop(0)
        if isinstance(w, ipywidgets.Image):
            found.append(w)
        stack.extend(getattr(w, "children", ()) or ())
    return found


def figure_bundle(fig):
    """(data, metadata) of a described figure: PNG as the inline backend draws it, alt text in its metadata."""
    from IPython.core.pylabtools import print_figure
    alt = alt_text(fig)
    png = print_figure(fig, "png", bbox_inches="tight")
    return ({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": repr(fig)},
            {"image/png": {"alt": alt}})


def _first_png(widget):
    """PNG bytes of the first Image widget under `widget` (what the live widget shows first)."""
    for w in _images(widget):
        if w.value:
            return bytes(w.value), getattr(w, "format", "png")
    return None, None


def widget_bundle(widget, include=None, exclude=None):
    """The widget's own view, plus its first picture and one line for anything that cannot run it."""
    data = widget._repr_mimebundle_(include=include, exclude=exclude) or {}
    data = dict(data[0]) if isinstance(data, tuple) else dict(data)
    what = getattr(widget, WIDGET_ATTR)
    data["text/plain"] = f"Live widget: {what}"
    png, fmt = _first_png(widget)
    md = {}
    if png is not None and fmt == "png":
        data["image/png"] = base64.b64encode(png).decode("ascii")
        md["image/png"] = {"alt": f"First view of the live widget ({what.rstrip('.')})"}
    return data, md


def register(ip=None):
    """Teach IPython to publish described figures and live widgets as above (done on import of mlcourse.viz)."""
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return False
    from matplotlib.figure import Figure
    mime = ip.display_formatter.mimebundle_formatter

    def figure_mimebundle(fig):
        return figure_bundle(fig) if alt_text(fig) is not None else None   # None: the usual formatters

    mime.for_type(Figure, figure_mimebundle)
    try:
        import ipywidgets
    except ImportError:
        return True

    def widget_mimebundle(w):
        if getattr(w, WIDGET_ATTR, None) is None:
            return w._repr_mimebundle_()
        return widget_bundle(w)

    mime.for_type(ipywidgets.DOMWidget, widget_mimebundle)
    return True
