"""Instant feedback in the notebook: ``check("q3")``, ``check_all()`` and the opt-in ``hint("q3")``.

These run a question's *public* tests on the learner's current definitions (looked up in the
notebook's namespace), compare with the engine's reference in the same kernel, and print what
passed and, for a failure, the input, the expected property and what came back.  The reference
value itself is never printed.  This is feedback, not grading: ``mlcourse grade`` runs the same
tests plus hidden ones in a separate process that learner code cannot reach.  A question whose public
tests all pass counts as evidence for its skills in the learner's progress database (``record_progress``;
never while grading).

``hint("q3")`` prints the question's hint (a nudge, never the answer).  Using one costs no points and
is recorded: check() says "hint used" for the rest of the session, and the call leaves a marker in the
cell's output (``HINT_MIME``, plus the printed line) that ``hints_used(nb)`` finds in the submitted
notebook, together with any hint("qN") call in a code cell, for the grader's feedback.  The record is
the notebook itself: a learner who deletes the cell removes it, which is why a hint costs nothing.
"""
from __future__ import annotations

import inspect
import os
import re
import signal
import threading
from dataclasses import dataclass

from . import bank, blocking
from .codec import roundtrip

GRADING_ENV = "MLCOURSE_GRADING"
HINT_MIME = "application/vnd.mlcourse.hint+json"
HINT_LINE = "hint used for {qid}"          # printed by hint(); hints_used() reads it back from the outputs
_HINT_CALL = re.compile(r"""\bhint\(\s*(?:qid\s*=\s*)?['"]\s*(q\d+)\s*['"]""", re.I)
_HINT_TEXT = re.compile(r"hint used for (q\d+)")
_HINTS_SHOWN = set()                       # this kernel's hints, for check()


@dataclass(frozen=True)
class TestResult:
    question: str
    name: str
    points: float
    max_points: float
    message: str
    hidden: bool = False

    @property
    def passed(self):
        return self.points >= self.max_points - 1e-12


CALL_SECONDS = 20  # check() stops a call that runs longer (the grader has its own, stricter clock)


class _TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise _TookTooLong()


def call_local(fn, args, seconds=None):
    """Call fn on a fresh copy of args; an Outcome with the value (as data) or the exception.

    In the main thread of the kernel a timer interrupts a call that runs longer than `seconds`.
    """
    seconds = CALL_SECONDS if seconds is None else seconds
    timer = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if timer:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        value = fn(*roundtrip(args))
    except _TookTooLong:
        return bank.Outcome(error="Timeout", message=bank.timeout_advice(f"ran longer than {seconds:g} s"))
    except Exception as e:  # the learner's exception is feedback, not a crash of check()
        return bank.Outcome(error=type(e).__name__, message=str(e)[:300])
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return bank.Outcome(value=roundtrip(value))


def run_tests(qid, namespace, include_hidden=False):
    """TestResults of question qid for the functions defined in namespace (a dict)."""
    q = bank.question(qid)
    fn = namespace.get(q.function)
    results = []
    for t in q.tests:
        if t.hidden and not include_hidden:
            continue
        if not callable(fn):
            msg = (f"{q.function} is not defined: run the cell that defines it "
                   f"(the function must be called exactly {q.function})")
            results.append(TestResult(q.id, t.name, 0.0, t.points, msg, t.hidden))
            continue
        with blocking.blocked(q.id, q.function, q.forbids):  # the engine's own answer is not available here either
            outcomes = [call_local(fn, args) for args in t.calls]
        pts, msg = bank.judge_test(t, outcomes)
        results.append(TestResult(q.id, t.name, pts, t.points, msg, t.hidden))
    return results


def format_results(q, results, hinted=False):
    passed = sum(r.passed for r in results)
    lines = [f"{q.id} {q.function}: {passed}/{len(results)} public tests passed"
             + ("" if passed < len(results) else " \N{CHECK MARK}") + (" (hint used)" if hinted else "")]
    for r, t in zip(results, [t for t in q.tests if not t.hidden]):
        if r.passed:
            lines.append(f"  \N{CHECK MARK} {r.name}")
        else:
            lines.append(f"  \N{BALLOT X} {r.name}  ({r.points:g}/{r.max_points:g})")
            lines.append(f"      input:  {t.describe_input(q.function)}")
            lines.append(f"      result: {r.message}")
    return "\n".join(lines)


def _caller_namespace(depth=2):
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back
    return frame.f_globals


def check(qid, namespace=None):
    """Run question qid's public tests on your current definitions and print the result.

    namespace: where to look the function up (default: the notebook's / caller's globals).
    Returns None; the grader runs the same tests plus hidden ones.
    """
    if os.environ.get(GRADING_ENV):
        print(f"check({qid!r}) is skipped while grading")
        return None
    ns = namespace if namespace is not None else _caller_namespace()
    q = bank.question(qid)
    results = run_tests(qid, ns)
    print(format_results(q, results, q.id in _HINTS_SHOWN))
    record_progress(q.id, results)
    return None


def check_all(assignment=None, namespace=None):
    """check() every question whose function is defined here (or every question of `assignment`)."""
    if os.environ.get(GRADING_ENV):
        print("check_all() is skipped while grading")
        return None
    ns = namespace if namespace is not None else _caller_namespace()
    if assignment is not None:
        qs = bank.assignment_questions(assignment)
    else:
        qs = [q for q in bank.QUESTIONS.values() if callable(ns.get(q.function))]
        if not qs:
            print("no question's function is defined yet; run the cells above, or call check_all('ex01').")
            return None
    total = earned = 0.0
    for q in qs:
        res = run_tests(q.id, ns)
        print(format_results(q, res, q.id in _HINTS_SHOWN))
        record_progress(q.id, res)
        total += sum(r.max_points for r in res)
        earned += sum(r.points for r in res)
    print(f"public tests: {earned:g}/{total:g} points (the grader also runs hidden tests)")
    return None


_PROGRESS_NOTED = []    # the one note per kernel when progress cannot be recorded


def _note_once(line):
    if not _PROGRESS_NOTED:
        _PROGRESS_NOTED.append(line)
        print(line)


def record_progress(qid, results):
    """A question whose public tests all pass counts as evidence for its skills in the progress database
    (``mlcourse.practice``); silent, never raises, and at most one short note per kernel when it cannot."""
    if os.environ.get(GRADING_ENV):
        return []
    try:
        from ..practice.session import record_check_quietly
    except Exception:   # the practice machinery is not importable here: feedback goes on without it
        return []
    return record_check_quietly(qid, results, note=_note_once)


def hint(qid):
    """Print question qid's hint (opt-in: using it is recorded in check()'s and the grader's feedback).

    Returns None.  The hint is a nudge toward the method, never the answer; it costs no points.
    """
    q = bank.question(qid)
    if os.environ.get(GRADING_ENV):
        print(HINT_LINE.format(qid=q.id))
        return None
    _HINTS_SHOWN.add(q.id)
    text = q.hint or "this question has no hint; reread the question and run check() for feedback"
    print(f"{HINT_LINE.format(qid=q.id)} (check() and the grader's feedback will say so; it costs no points)\n"
          f"hint for {q.id} {q.function}: {text}")
    try:  # a machine-readable marker in the cell's output, for hints_used()
        from IPython import get_ipython
        from IPython.display import display
        if get_ipython() is not None:
            display({HINT_MIME: {"question": q.id}, "text/plain": ""}, raw=True)   # shows nothing more
    except ImportError:
        pass
    return None


def _text(value):
    """A notebook field's text: a string, or the strings of a list of them (anything else: "")."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def hints_used(nb):
    """Sorted ids of the questions whose hint a notebook (nbformat node or dict) used.

    A hint counts as used when a code cell calls hint("qN") or an output carries the marker hint() leaves
    (its HINT_MIME data or its printed line), so clearing the outputs or editing the call away alone does not
    hide it; deleting the cell with its output does (the record is the notebook).  Only ids of questions of
    the bank are returned; a submitted notebook of any shape (fields of the wrong type) is read without error.
    """
    used = set()
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        used.update(m.lower() for m in _HINT_CALL.findall(_text(cell.get("source"))))
        outputs = cell.get("outputs")
        for o in outputs if isinstance(outputs, list) else []:
            if not isinstance(o, dict):
                continue
            data = o.get("data")
            data = data if isinstance(data, dict) else {}
            marker = data.get(HINT_MIME)
            if isinstance(marker, dict) and isinstance(marker.get("question"), str):
                used.add(marker["question"].strip().lower())
            text = _text(o.get("text")) + "\n" + _text(data.get("text/plain"))
            used.update(m.lower() for m in _HINT_TEXT.findall(text))
    return sorted((q for q in used if q in bank.QUESTIONS), key=lambda q: int(q[1:]))
