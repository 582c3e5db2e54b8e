"""Figures and widgets the notebooks use (course machinery: above the engine and the experiments).

Importing it in IPython teaches the display to publish each figure with its text alternative
(``_alt.describe``) and each live widget with its first picture and a one-line description.
"""
from ._alt import register as _register

_register()
