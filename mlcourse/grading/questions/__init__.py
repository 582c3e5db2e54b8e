"""One question file per assignment: ``exNN.py`` holds that exercise notebook's questions.

Each file defines ``ASSIGNMENT`` (its own name, "ex03"), ``TITLE``, and ``questions()``, the list
of ``spec.Question`` it grades, with their inputs and reference answers (from the engine).  The
bank lists this folder, so a new ``ex06.py`` registers itself and no other file changes.
"""
from __future__ import annotations

import importlib
import pkgutil
import re

__all__ = ["modules"]

NAME = re.compile(r"ex\d\d")


def modules():
    """The question files, in order of their names (ex01, ex02, ...)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if NAME.fullmatch(m.name))
    return [importlib.import_module(f"{__name__}.{n}") for n in names]
