"""What a graded question is: Question, Test, Outcome, and the judges that score a test.

A question names the function the learner writes.  Each test holds its inputs as data (one or
more calls), its points, whether it is hidden (run by the grader only), and a judge that turns the
learner's outcomes into a fraction of the points: ``judge(outcomes, calls) -> (fraction, message)``.
The question files (``questions/exNN.py``) build their questions from these pieces.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .codec import Seed, TanhLoss, roundtrip
from .matching import ATOL, RTOL, close, summarize

__all__ = ["Outcome", "Test", "Question", "first_value", "by_reference", "raises"]


@dataclass(frozen=True)
class Outcome:
    """What one call of the learner's function gave: a value, or the exception it raised."""

    value: object = None
    error: str | None = None      # exception type name, e.g. "ValueError"; None when a value came back
    message: str = ""


@dataclass(frozen=True)
class Test:
    name: str
    calls: tuple                  # tuple of argument tuples (data only)
    judge: object                 # judge(outcomes, calls) -> (fraction, message)
    points: float = 1.0
    hidden: bool = False

    def describe_input(self, fn_name):
        args = self.calls[0]
        shown = ", ".join(summarize(a, 4) if not isinstance(a, (Seed, TanhLoss)) else repr(a) for a in args)
        more = f" (and {len(self.calls) - 1} more call(s))" if len(self.calls) > 1 else ""
        return f"{fn_name}({shown}){more}"


@dataclass(frozen=True)
class Question:
    id: str
    assignment: str
    function: str
    title: str
    tests: tuple = field(default_factory=tuple)
    # dotted names of engine functions the learner is asked to write here ("mlcourse.maml.maml_loss");
    # while this question's function is graded (and in check()), calling one of them raises
    forbids: tuple = ()
    # hint("qN") prints this (opt-in; its use is recorded in the feedback): a nudge, never the answer
    hint: str = ""
    # a derivation question's answer, as it would be written (normalised by assign.normalise): none of these
    # may appear in the learner version of its notebook or of an earlier one (assign.validate checks)
    spoilers: tuple = ()

    @property
    def points(self):
        return float(sum(t.points for t in self.tests))


def first_value(outcomes):
    """(value, None) for the first call, or (None, message) when it raised."""
    o = outcomes[0]
    if o.error is not None:
        return None, f"raised {o.error}: {o.message}"
    return o.value, None


def by_reference(reference, rtol=RTOL, atol=ATOL, also=()):
    """Judge: the single call's value must match reference(*inputs) (computed here, in the grader).

    also: (answer, note) pairs: other answers the question's words allow (``answer(*inputs)``); a
    value matching one of them earns full marks and the note says which reading it took.
    """
    cache = {}  # id(calls) -> (calls, reference value): the inputs are fixed, so is the answer

    def judge(outcomes, calls):
        got, err = first_value(outcomes)
        if err:
            return 0.0, err
        if id(calls) not in cache or cache[id(calls)][0] is not calls:
            cache[id(calls)] = (calls, reference(*roundtrip(calls[0])))
        frac, msg = close(got, cache[id(calls)][1], rtol, atol)
        if frac < 1.0:
            for answer, note in also:
                if close(got, answer(*roundtrip(calls[0])), rtol, atol)[0] >= 1.0:
                    return 1.0, f"accepted: {note}"
        return frac, msg
    judge.reference = reference  # for the instructor's tools and tests, never shown to learners
    judge.also = tuple(also)
    return judge


def raises(error_name):
    """Judge: the call must raise error_name (a bad argument the function is asked to reject)."""
    def judge(outcomes, calls):
        o = outcomes[0]
        if o.error == error_name:
            return 1.0, f"raised {error_name} as required"
        got = f"raised {o.error}: {o.message}" if o.error else f"returned {summarize(o.value)}"
        return 0.0, f"expected a {error_name} for these arguments; {got}"
    return judge
