"""ex03, geometry of a good initialisation: q5 c, q6 the linear inner step, q7 theta* = E[a] (practice, hard)."""
from __future__ import annotations

import numpy as np

from ... import checks
from ..spec import Question, Test, by_reference
from ._inputs import linear

ASSIGNMENT = "ex03"
TITLE = "Geometry of a good initialisation (and practice: hard)"


def questions():
    xs3, _, _, _, a3 = linear(40, 3, 5)
    xs6, _, _, _, a6 = linear(41, 6, 10)
    slopes = np.random.default_rng(42).uniform(0.5, 2.5, size=50)
    return [
        Question("q5", ASSIGNMENT, "linear_c", "c = 2 alpha mean(x^2)", (
            Test("three tasks, alpha = 0.1", ((0.1, xs3),), by_reference(checks.linear_c)),
            Test("six tasks, alpha = 0.25", ((0.25, xs6),), by_reference(checks.linear_c)),
            Test("alpha = 0 (hidden)", ((0.0, xs6),), by_reference(checks.linear_c), hidden=True),
        )),
        Question("q6", ASSIGNMENT, "linear_inner_step", "theta' = (1 - c) theta + c a", (
            Test("three tasks", ((0.5, 0.1, xs3, a3),), by_reference(checks.linear_inner_step)),
            Test("six tasks, theta = 2", ((2.0, 0.25, xs6, a6),), by_reference(checks.linear_inner_step)),
            Test("c > 1 overshoots (hidden)", ((0.0, 3.0, xs6, a6),), by_reference(checks.linear_inner_step),
                 hidden=True),
        )),
        Question("q7", ASSIGNMENT, "best_initialisation", "Practice (hard): theta* = E[a]", (
            Test("three slopes", ((np.array([0.5, 1.0, 3.0]),),), by_reference(checks.best_initialisation)),
            Test("fifty slopes from U[0.5, 2.5]", ((slopes,),), by_reference(checks.best_initialisation)),
            Test("one slope (hidden)", ((np.array([1.7]),),), by_reference(checks.best_initialisation), hidden=True),
        )),
    ]
