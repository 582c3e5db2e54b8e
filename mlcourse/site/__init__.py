"""The course as a static website (``mlcourse site``) and its accessibility audit (``mlcourse site --check``).

Needs the ``[site]`` extra (Sphinx, MyST-NB, the book theme, MathJax, axe-core); nothing in the engine imports it.
"""
