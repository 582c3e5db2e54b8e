"""Figures and widgets the notebooks use (course machinery: above the engine and the experiments).

Importing it sets the colour and line-style cycle of every figure (``_style``: readable in
greyscale and with colour-vision deficiencies) and, in IPython, teaches the display to publish each
figure with its text alternative (``_alt.describe``) and each live widget with its first picture
and a one-line description.
"""
from ._alt import describe  # noqa: F401  (a notebook's own figure: describe(fig, "what it shows"))
from ._alt import register as _register
from ._style import apply as _apply_style

_apply_style()
_register()


def __getattr__(name):
    """``viz.skill_map`` on first use (the skill map lives in mlcourse.practice, loaded only when drawn)."""
    if name == "skill_map":
        from .mastery_map import skill_map
        return skill_map
    raise AttributeError(f"module 'mlcourse.viz' has no attribute {name!r}")
