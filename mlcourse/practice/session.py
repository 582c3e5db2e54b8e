"""The practice loop, shared by the terminal (``mlcourse practice``) and the notebooks.

What counts for the mastery model (as Cognitive Tutors count): the *first* attempt at each instance,
as right or wrong; a first attempt made after the hint counts as wrong, and so does giving up (showing
the solution) before any attempt.  Later attempts at the same instance are recorded but not counted.
A graded question passed with ``check()`` counts once, as a right answer, for each of its skills.

What comes next (``choose``): the skill whose review is due first (interleaved: not the skill just
practised, when another is due), else the next skill in the map's order that has problem generators, is
not mastered, and whose prerequisites are mastered (a prerequisite without generators, which only the
graded questions exercise, does not hold practice up).
"""
from __future__ import annotations

import os

import numpy as np

from . import problems
from .skills import SKILLS, skills_for_question, topological_order
from .store import Progress

__all__ = ["Session", "record_check", "record_check_quietly", "GRADING_ENV"]

GRADING_ENV = "MLCOURSE_GRADING"   # set in the grader's child (mlcourse.grading.feedback.GRADING_ENV)


class Session:
    def __init__(self, progress: Progress, seed=None):
        self.progress = progress
        self.rng = np.random.default_rng(seed)
        self.last_skill = None
        self._turn = {}

    # -- what to practise ------------------------------------------------------------------------------
    def choose(self, now=None):
        """(skill id, why) for the next problem, or (None, why) when nothing is left to practise."""
        st = self.progress.states(now)
        due = sorted((v.next_review, s) for s, v in st.items() if v.due and problems.generators_for(s))
        if due:
            others = [s for _, s in due if s != self.last_skill]
            s = others[0] if others else due[0][1]
            return s, f"review due since {st[s].next_review:%Y-%m-%d %H:%M} UTC"
        for s in topological_order():
            if st[s].mastered or not problems.generators_for(s):
                continue
            # a prerequisite without generators (mastered only through check()) does not hold practice up here
            if all(st[p].mastered or not problems.generators_for(p) for p in SKILLS[s].prerequisites):
                return s, "next skill whose prerequisites are mastered"
        return None, "no review is due and every skill you can practise here is mastered"

    def new_instance(self, skill):
        """A fresh instance of one of the skill's generators (taking them in turn)."""
        if skill not in SKILLS:
            raise ValueError(f"unknown skill {skill!r}; run `mlcourse progress` to list the skills.")
        names = problems.generators_for(skill)
        if not names:
            qs = ", ".join(SKILLS[skill].questions) or "none"
            raise ValueError(f"skill {skill!r} has no generated problems yet; practise it with the graded "
                             f"questions ({qs}) and check().")
        k = self._turn.get(skill, 0)
        self._turn[skill] = k + 1
        self.last_skill = skill
        return problems.generate(names[k % len(names)], int(self.rng.integers(2 ** 31)))

    # -- answering -------------------------------------------------------------------------------------
    def submit(self, inst, text):
        """Judge the text (ValueError if unreadable: nothing recorded), record the attempt, return the Verdict.

        Only the first answer to a problem counts for the mastery model: the first to this instance, and only
        if the same problem (generator and seed, e.g. the diagnostic's, drawn again when its cell is re-run)
        was not attempted before."""
        first = inst.attempts == 0 and not self.progress.seen(inst.skill, inst.generator, inst.seed)
        verdict = inst.submit(text)
        counted = (verdict.correct and not inst.hint_shown) if first else None
        self.progress.record(inst.skill, inst.generator, inst.seed, text.strip(), verdict.correct, verdict.mistakes,
                             counted)
        return verdict

    def hint(self, inst):
        return inst.show_hint()

    def give_up(self, inst):
        """The worked answer; recorded as a wrong attempt when nothing was answered before."""
        first = inst.attempts == 0 and not self.progress.seen(inst.skill, inst.generator, inst.seed)
        text = inst.give_up()
        self.progress.record(inst.skill, inst.generator, inst.seed, None, False, (), False if first else None)
        return text

    def p_known(self, skill):
        return self.progress.states()[skill].p_known


def record_check(qid, results, progress=None):
    """Evidence from check(qid): all public tests passed counts once, as right, for each of the question's skills.

    results: check()'s TestResults (anything with .passed).  Returns the skills credited (empty if none).
    """
    passed = bool(results) and all(r.passed for r in results)
    own = progress is None
    progress = Progress() if own else progress
    try:
        credited = []
        for s in skills_for_question(qid):
            before = any(a["generator"] == f"check:{qid}" and a["counted"] == 1 for a in progress.attempts(s))
            counted = True if passed and not before else None
            progress.record(s, f"check:{qid}", None, None, passed, (), counted, source="check")
            if counted:
                credited.append(s)
        return credited
    finally:
        if own:
            progress.close()


def record_check_quietly(qid, results, note=None):
    """record_check that never raises (for check() itself: progress must never break the feedback).

    note: called with one short line saying why nothing was recorded (check() prints it once per kernel).
    Nothing is recorded, and no database opened, while a notebook is graded (MLCOURSE_GRADING set).
    """
    if os.environ.get(GRADING_ENV):
        return []
    try:
        return record_check(qid, results)
    except Exception as e:
        if note is not None:
            try:
                note(f"(your progress was not recorded: {str(e).split('. ')[0].rstrip('.')}.)")
            except Exception:
                pass
        return []
