"""Quoting numbers in prose: a Quote is one passage of a notebook's markdown or of the README, with "<>"
where each number stands, and the function that computes those numbers from the shipped results.

test_shipped_results.py checks every Quote (and that no other decimal is in the prose).  The sinusoid
notebooks' quotes are in that file; every later notebook keeps its own in ``tests/quotes_<topic>.py``,
a module defining QUOTED (a list of Quote) and INPUTS ({file: set of literal decimals that are inputs}).
"""
import functools
import json
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Quote:
    file: str
    text: str
    values: Callable[[], list]
    fmt: object = ".2f"

    def rendered(self):
        vals = list(self.values())
        fmts = self.fmt if isinstance(self.fmt, tuple) else (self.fmt,) * len(vals)
        pieces = self.text.split("<>")
        assert len(pieces) == len(vals) + 1, f"{self.text!r}: {len(pieces) - 1} placeholders, {len(vals)} values"
        nums = [f(v) if callable(f) else format(v, f) for v, f in zip(vals, fmts)]
        return "".join(p + n for p, n in zip(pieces, nums)) + pieces[-1]


def _same_rounding(values, fmt):
    """The one value all of `values` round to under fmt (for "about X" claims covering several numbers)."""
    shown = {format(v, fmt) for v in values}
    assert len(shown) == 1, f"the values {values} do not all round to one number ({sorted(shown)}); reword the prose"
    return float(shown.pop())


def floor2(v):
    """For "at least" claims: the value rounded down to two decimals."""
    return f"{np.floor(v * 100 + 1e-9) / 100:.2f}"


@functools.lru_cache(maxsize=None)
def prose(file):
    """The text a reader sees: a notebook's markdown cells, or the whole README."""
    path = os.path.join(ROOT, file)
    if not file.endswith(".ipynb"):
        with open(path, encoding="utf-8") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
