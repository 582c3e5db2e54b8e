"""Bayesian Knowledge Tracing (Corbett & Anderson 1995), the mastery model of Cognitive Tutors.

Each skill is either known or not; P(known) is updated after every counted attempt:

    after a right answer:  P(L | right) = P(L)(1 - slip) / (P(L)(1 - slip) + (1 - P(L)) guess)
    after a wrong answer:  P(L | wrong) = P(L) slip / (P(L) slip + (1 - P(L))(1 - guess))
    then learning:         P(L)' = P(L | obs) + (1 - P(L | obs)) learn

and the skill counts as mastered while P(known) >= MASTERY (0.95, as Cognitive Tutors use).

Parameters (within the ranges fitted for Cognitive Tutor skills; the reasons are in docs/practice.md):
    p_init  = 0.10   most learners start without the skill
    p_learn = 0.10   chance of learning the skill at one practice opportunity
    p_slip  = 0.10   a learner who knows it still miscomputes or mistypes one answer in ten
    p_guess = 0.15   a right answer without the skill: a typed number is rarely hit by chance, but a learner
                     can copy the pattern of a worked instance or let a tool compute it
With these, three right first attempts in a row from the start reach mastery (0.10 -> 0.46 -> 0.85 -> 0.97,
``attempts_to_mastery``), as ASSISTments' skill builders ask; a learner whose every answer is wrong settles
at ``fixed_point_wrong`` (about 0.11) and never reaches it.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BKT", "DEFAULT", "MASTERY"]

MASTERY = 0.95


@dataclass(frozen=True)
class BKT:
    p_init: float = 0.10
    p_learn: float = 0.10
    p_slip: float = 0.10
    p_guess: float = 0.15

    def __post_init__(self):
        for name in ("p_init", "p_learn", "p_slip", "p_guess"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}.")
        if self.p_slip + self.p_guess >= 1.0:
            raise ValueError("p_slip + p_guess must be < 1 (otherwise a right answer is no evidence of knowing).")

    def posterior(self, p_known, correct):
        """P(known | this observation), before the learning transition."""
        s, g = self.p_slip, self.p_guess
        if correct:
            num, other = p_known * (1 - s), (1 - p_known) * g
        else:
            num, other = p_known * s, (1 - p_known) * (1 - g)
        return num / (num + other)

    def update(self, p_known, correct):
        """P(known) after one counted attempt: the posterior, then the chance to learn."""
        post = self.posterior(p_known, correct)
        return post + (1 - post) * self.p_learn

    def trace(self, outcomes, p_known=None):
        """P(known) after each outcome of a sequence (booleans), starting from p_init (or p_known)."""
        p = self.p_init if p_known is None else p_known
        out = []
        for c in outcomes:
            p = self.update(p, bool(c))
            out.append(p)
        return out

    def attempts_to_mastery(self, p_known=None):
        """How many right attempts in a row take P(known) from p_known (default p_init) to MASTERY."""
        p, n = (self.p_init if p_known is None else p_known), 0
        while p < MASTERY:
            p, n = self.update(p, True), n + 1
            if n > 10000:
                raise ValueError("these parameters never reach mastery.")
        return n

    def fixed_point_wrong(self, tol=1e-12):
        """The level P(known) settles at for a learner whose every answer is wrong."""
        p = self.p_init
        for _ in range(100000):
            q = self.update(p, False)
            if abs(q - p) < tol:
                return q
            p = q
        return p


DEFAULT = BKT()


def mastered(p_known):
    return p_known >= MASTERY
