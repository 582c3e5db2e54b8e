"""Accessibility where the figures are made (mlcourse.viz): text alternatives, live widgets, colours.

The course website shows what these produce; the stored notebook outputs carry them once the
notebooks are executed again.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("ipywidgets")

import matplotlib  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from mlcourse import viz  # noqa: E402,F401  (sets the style, registers nothing outside IPython)
from mlcourse.experiments import shipped  # noqa: E402
from mlcourse.site.audit import alt_problems  # noqa: E402
from mlcourse.viz import (_alt, _style, direction_plots, geometry, meta_gradient, navigation,  # noqa: E402
                          overfitting, sinusoid, welcome)


@pytest.fixture(scope="module")
def figures():
    """{name: figure} from the figure functions, on the notebooks' own inputs (cheap ones)."""
    trace = shipped.load("directions")
    of = shipped.load("overfitting")["summary"]
    batch1d = meta_gradient.example_task(seed=0)
    lin = geometry.example_tasks(seed=0)
    figs = {
        "welcome.loop_diagram": welcome.loop_diagram(alpha=0.3, seed=0),
        "meta_gradient.static_figure": meta_gradient.static_figure(batch1d, theta=0.3, alpha=0.3),
        "meta_gradient.static_figure, 3 steps": meta_gradient.static_figure(batch1d, theta=0.3, alpha=0.3, steps=3),
        "geometry.static_figure": geometry.static_figure(lin, theta=0.0, alpha=0.6),
        "direction_plots.directions_figure": direction_plots.directions_figure(trace),
        "overfitting.pool_curves_figure": overfitting.pool_curves_figure(of),
        "overfitting.gap_figure": overfitting.gap_figure(of),
        "overfitting.within_task_figure": overfitting.within_task_figure(of),
        "overfitting.sweep_figure": overfitting.sweep_figure(of),
        "mastery_map.skill_map": viz.skill_map(),
    }
    import matplotlib.pyplot as plt
    for name, draw, result in (("sinusoid.mse_vs_steps", sinusoid.mse_vs_steps, "sinusoid_variants"),
                               ("navigation.returns_figure", navigation.returns_figure, "navigation")):
        fig, ax = plt.subplots()          # functions that draw on the caller's axes describe a one-axes figure
        draw(ax, shipped.load(result)["summary"])
        figs[name] = fig
    yield figs
    plt.close("all")


def test_every_figure_says_what_it_shows(figures):
    alts = {name: _alt.alt_text(fig) for name, fig in figures.items()}
    for name, alt in alts.items():
        print(f"{name}: {alt}")
        assert alt and len(alt.split()) >= 15, name          # a sentence or two, not a caption
    assert alt_problems({name: [alt] for name, alt in alts.items()}) == []   # none empty, generic or shared
    # the words come from the data drawn: the two meta-gradient figures differ by their step count
    assert "1 inner step" in alts["meta_gradient.static_figure"]
    assert "3 inner step" in alts["meta_gradient.static_figure, 3 steps"]


def test_describe_refuses_an_empty_or_one_word_text():
    fig = matplotlib.figure.Figure()
    for bad in ("", "figure", "Figure 3"):
        with pytest.raises(ValueError, match="text alternative"):
            _alt.describe(fig, bad)


def test_ipython_publishes_the_png_with_its_alt_text(figures):
    """What JupyterLab, nbclient and Colab store: image/png with the alt text in its metadata."""
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    assert _alt.register(ip)
    fig = figures["welcome.loop_diagram"]
    data, md = ip.display_formatter.format(fig)
    assert data["image/png"].startswith("iVBORw0KGgo")                      # base64 of a PNG
    assert md["image/png"]["alt"] == _alt.alt_text(fig)
    assert data["text/plain"].startswith("<Figure size")        # what stored outputs are compared on
    plain = matplotlib.figure.Figure()                                      # a figure without one: as usual
    data, md = ip.display_formatter.format(plain)
    assert data["text/plain"].startswith("<Figure size") and "alt" not in md.get("image/png", {})


def _controls(widget):
    import ipywidgets
    stack, found = [widget], []
    while stack:
        w = stack.pop(0)
        stack.extend(getattr(w, "children", ()) or ())
        if isinstance(w, (ipywidgets.ValueWidget, ipywidgets.Button)) and not isinstance(
                w, (ipywidgets.HTML, ipywidgets.Label, ipywidgets.Image, ipywidgets.Output)):
            found.append(w)
    return found


def test_live_widgets_label_their_controls_and_show_their_first_picture():
    of = shipped.load("overfitting")["summary"]
    widgets = {
        "MetaGradientExplorer": meta_gradient.MetaGradientExplorer(meta_gradient.example_task(seed=0)).widget,
        "GeometryAnimation": geometry.GeometryAnimation(geometry.example_tasks(seed=0)).widget,
        "sweep_widget": overfitting.sweep_widget(of),
    }
    for name, w in widgets.items():
        controls = _controls(w)
        assert controls, name
        for c in controls:
            assert (c.description or "").strip() or (getattr(c, "tooltip", "") or "").strip(), (name, c)
        data, md = _alt.widget_bundle(w)
        assert data["text/plain"] == f"Live widget: {_alt.LIVE_WIDGETS[name]}"
        assert "application/vnd.jupyter.widget-view+json" in data
        assert data["image/png"].startswith("iVBORw0KGgo") and len(md["image/png"]["alt"].split()) >= 8
        # no tooltip on the pictures: JupyterLab then cannot create their view (tests/test_browser.py sees it)
        assert not any(img.tooltip for img in _alt._images(w))


# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]}
MIN_DELTA_E = 15.0       # CIELAB distance between any two of C0-C5 as seen with each deficiency
MIN_GREY_STEP = 10.0     # L* difference under which two colours need different line styles


def _lab(rgb_linear):
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb_linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _linear(color):
    c = np.array(to_rgb(color))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def min_cvd_distance(colors):
    worst = np.inf
    for m in CVD.values():
        labs = [_lab(np.clip(np.array(m) @ _linear(c), 0, 1)) for c in colors]
        worst = min(worst, min(np.linalg.norm(a - b) for a, b in itertools.combinations(labs, 2)))
    return worst


def test_colours_stay_apart_for_colour_blind_readers_and_line_styles_carry_greyscale():
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()
    assert tuple(cycle["color"]) == _style.PALETTE                 # importing mlcourse.viz set it
    assert min_cvd_distance(_style.PALETTE[:6]) >= MIN_DELTA_E
    tab10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    assert min_cvd_distance(tab10) < MIN_DELTA_E                    # the check tells the default apart
    styles = [str(s) for s in cycle["linestyle"]]
    assert len(set(styles)) == len(styles) == len(_style.PALETTE)
    lightness = [_lab(_linear(c))[0] for c in _style.PALETTE]
    for i, j in itertools.combinations(range(len(lightness)), 2):
        if abs(lightness[i] - lightness[j]) < MIN_GREY_STEP:
            assert styles[i] != styles[j]
