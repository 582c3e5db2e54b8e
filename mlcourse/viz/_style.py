"""Colours and line styles of the course's figures, readable in greyscale and with colour-vision deficiencies.

``C0`` ... ``C9`` (what the figure functions and notebooks name) become the Okabe & Ito palette
(blue, orange, bluish green, vermillion, reddish purple, sky blue) followed by wine, grey, indigo
and olive; each colour comes with its own line style, so lines that a greyscale print or a
colour-blind reader cannot tell apart by colour still differ in dash pattern.  Simulated
protanopia, deuteranopia and tritanopia keep C0-C5 at least 15 CIELAB units apart (matplotlib's
default tab10 drops to 4.6: its orange and green under protanopia).
"""
from __future__ import annotations

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
           "#882255", "#7F7F7F", "#332288", "#999933")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)),
              (0, (1, 3)), (0, (8, 2, 2, 2)), (0, (4, 2, 1, 2, 1, 2)), (0, (2, 1)))


def prop_cycle():
    from cycler import cycler
    return cycler(color=list(PALETTE)) + cycler(linestyle=list(LINESTYLES))


def apply():
    """Make PALETTE and LINESTYLES matplotlib's default cycle (done when mlcourse.viz is imported)."""
    import matplotlib
    matplotlib.rcParams["axes.prop_cycle"] = prop_cycle()
