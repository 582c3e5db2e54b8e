"""Feedback that names the mistake: a wrong answer compared with the lesson's common mistakes.

A question's test may list ``Mistake``s, each a known wrong answer computed by the engine from the
test's own inputs (the inner step's sign flipped, FOMAML where MAML was asked, a sum where a mean
was asked, support and query swapped, ...) or, for a judge by properties, a predicate on the
returned value.  ``naming(judge, *mistakes)`` wraps a judge: when the learner's value fails the
judge and matches one of the mistakes, the message says which mistake it looks like, in the
lesson's words, and never the right answer.  Nothing changes for a right answer, and the mistaken
answers are computed in the grader's process, from the test's inputs, like the references.

    Mistake(name, says, answer=fn(*inputs) -> the mistaken value)       # compared with matching.close
    Mistake(name, says, matches=fn(value, inputs) -> bool, example=fn(*inputs))  # by properties
    judge = naming(by_reference(ref), Mistake(...), Mistake(...))
    judge.mistakes                                                      # the list, for tests and tools
"""
from __future__ import annotations

from dataclasses import dataclass

from .codec import roundtrip
from .matching import close

__all__ = ["Mistake", "naming", "diagnose", "lines", "PREFIX"]

PREFIX = "this looks like a common mistake"


@dataclass(frozen=True)
class Mistake:
    """One common mistake: a short name, the lesson's words for it, and how to recognise it."""

    name: str
    says: str                    # shown to the learner: what the mistake is and why it is one (no values)
    answer: object = None        # answer(*inputs) -> what a function with this mistake returns
    matches: object = None       # or matches(value, inputs) -> bool
    example: object = None       # with matches: example(*inputs) -> a value with this mistake (for tests, tools)
    rtol: float = 1e-4           # "looks like": looser than a pass, so a float32 mistake is recognised too
    atol: float = 1e-300

    def __post_init__(self):
        if (self.answer is None) == (self.matches is None):
            raise ValueError(f"mistake {self.name!r}: give exactly one of answer= or matches=.")
        if self.example is not None and self.matches is None:
            raise ValueError(f"mistake {self.name!r}: example= goes with matches= (answer= is its own example).")

    @property
    def line(self):
        """The line a failed test's message gets for this mistake (words only, never a value)."""
        return f"{PREFIX} ({self.name}): {self.says}"

    def wrong_answer(self, *inputs):
        """What a function with this mistake returns on inputs (answer, else example; None if neither)."""
        fn = self.answer if self.answer is not None else self.example
        return None if fn is None else fn(*inputs)

    def recognises(self, value, inputs):
        """Whether value is what this mistake gives on inputs (a mistake that cannot be computed: no)."""
        try:
            if self.matches is not None:
                return bool(self.matches(value, inputs))
            return close(value, self.answer(*roundtrip(inputs)), self.rtol, self.atol)[0] >= 1.0
        except Exception:  # a value of another shape or type than the mistake's: not this mistake
            return False


def diagnose(mistakes, outcomes, calls):
    """The first Mistake whose answer the first call's value matches, or None."""
    o = outcomes[0] if outcomes else None
    if o is None or o.error is not None:
        return None
    for m in mistakes:
        if m.recognises(o.value, calls[0]):
            return m
    return None


def lines(judge):
    """The mistake lines a judge made by ``naming`` may write (a frozenset; empty for any other judge).

    The grader shows a hidden test's failure with only these lines: a line of the learner's own text
    (an exception's message) that merely contains PREFIX is not one of them.
    """
    return frozenset(m.line for m in getattr(judge, "mistakes", ()) if isinstance(m, Mistake))


def naming(judge, *mistakes):
    """judge, with its failure messages naming the common mistake the value matches (if any)."""
    for m in mistakes:
        if not isinstance(m, Mistake):
            raise TypeError(f"naming() takes Mistake objects, got {type(m).__name__}.")

    def named(outcomes, calls):
        frac, msg = judge(outcomes, calls)
        if frac >= 1.0:
            return frac, msg
        m = diagnose(mistakes, outcomes, calls)
        if m is None:
            return frac, msg
        return frac, f"{msg}\n      {m.line}"
    named.mistakes = tuple(mistakes)
    named.judge = judge
    if hasattr(judge, "reference"):
        named.reference = judge.reference  # for the instructor's tools and tests, never shown to learners
    return named
