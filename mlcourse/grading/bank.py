"""The question bank: every assignment and graded question, gathered from ``questions/exNN.py``.

    ASSIGNMENTS   {"ex01": title, ...}, in order
    QUESTIONS     {"q1": Question, ...}, in order (assignment by assignment)
    question(qid), assignment_questions(assignment), judge_test(test, outcomes)

What a question and a test are (and the judges) is in ``spec``; each assignment's questions, with
their inputs and reference answers from the engine, are in a file of their own under ``questions/``
(adding ``ex06.py`` there adds the assignment: nothing here changes).
"""
from __future__ import annotations

import numpy as np

from . import questions as _questions
from .spec import Outcome, Question, Test, by_reference, raises  # noqa: F401  (the bank's vocabulary)

__all__ = ["ASSIGNMENTS", "QUESTIONS", "Outcome", "Question", "Test", "by_reference", "raises", "question",
           "assignment_questions", "judge_test", "timeout_advice"]


def timeout_advice(why):
    """What a learner reads when a call of their function ran past the time limit; why: "ran longer than 30 s".

    The one place these words are made (the grader's report and check() in the notebook both use it).
    """
    return (f"{why}; look for a loop that never ends, or for a slow one: a Python loop over tasks or episodes where "
            "one vectorised computation on the whole batch is expected is a common cause")


def _gather():
    """(ASSIGNMENTS, QUESTIONS) from the question files; a file that breaks the rules is a bug here."""
    assignments, qs = {}, {}
    for mod in _questions.modules():
        a = mod.ASSIGNMENT
        if a != mod.__name__.rsplit(".", 1)[1]:
            raise ValueError(f"{mod.__file__}: ASSIGNMENT is {a!r}; it must be the file's name.")
        assignments[a] = mod.TITLE
        for q in mod.questions():
            if q.assignment != a:
                raise ValueError(f"{mod.__file__}: question {q.id} says assignment {q.assignment!r}, not {a!r}.")
            if q.id in qs:
                raise ValueError(f"{mod.__file__}: question id {q.id} is already used by {qs[q.id].assignment}.")
            qs[q.id] = q
    return assignments, qs


ASSIGNMENTS, QUESTIONS = _gather()


def question(qid):
    """The Question with id qid ("q3"); a KeyError-free ValueError listing the ids otherwise."""
    key = str(qid).strip().lower()
    if key not in QUESTIONS:
        raise ValueError(f"unknown question {qid!r}; the questions are {', '.join(QUESTIONS)}.")
    return QUESTIONS[key]


def assignment_questions(assignment):
    """Questions of one assignment ("ex03"), in order."""
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; the assignments are {', '.join(ASSIGNMENTS)}.")
    return [q for q in QUESTIONS.values() if q.assignment == assignment]


def judge_test(test, outcomes):
    """(points earned, message) for one test; a judge that fails is reported, never raised."""
    if len(outcomes) != len(test.calls):
        return 0.0, "the function was not called on every input (see the notes above)"
    late = [o for o in outcomes if o.error == "Timeout"]
    if late:
        return 0.0, late[0].message
    nie = [o for o in outcomes if o.error == "NotImplementedError"]
    if nie:
        return 0.0, "not answered yet: the function raises NotImplementedError"
    try:
        frac, msg = test.judge(outcomes, test.calls)
    except Exception as e:  # a learner value the judge could not read (odd types, ragged lists)
        return 0.0, f"could not compare the returned value ({type(e).__name__}: {str(e)[:200]})"
    frac = float(min(max(frac, 0.0), 1.0)) if np.isfinite(frac) else 0.0
    return frac * test.points, msg
