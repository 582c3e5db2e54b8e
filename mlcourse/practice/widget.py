"""Practice in the notebook: ``practice(skill)`` shows one fresh problem as a widget; ``gate("02")`` opens a notebook.

The widget drives the same loop as ``mlcourse practice`` (``session.Session``): every attempt goes to the
progress database, the first attempt at an instance counts for the mastery model, an attempt after the
hint or a shown solution counts as wrong.  Its output carries, beside the live view, a static rendering
(the problem as Markdown and LaTeX, ``text/markdown``) and the line "Live widget: ...", as the course's
other widgets carry their first picture: a stored notebook and the course website read well without a
kernel.

Seeds: without ``seed``, the first problem's seed comes from the number of attempts already recorded
(and the skill), so a fresh progress database always shows the same first problem (stored notebooks stay
reproducible) and every recorded attempt leads to fresh numbers next time.

While a notebook is graded (``MLCOURSE_GRADING`` set, as in the grader's sandboxed child) ``practice``
and ``gate`` print one line and touch no database.
"""
from __future__ import annotations

import html
import os
import re
import zlib

from .mastery import MASTERY
from .skills import SKILLS, notebook_id, notebook_prerequisites, topological_order

__all__ = ["practice", "gate", "PracticeWidget", "LIVE_LINE"]

GRADING_ENV = "MLCOURSE_GRADING"   # set by the grader in its child (mlcourse.grading.feedback.GRADING_ENV)
LIVE_LINE = ("Live widget: answer a fresh problem; the feedback names a common mistake, a hint follows a wrong "
             "answer, Show solution ends the problem without credit, and New problem draws another.")
STATIC_NOTE = "*Run this notebook to answer: the live widget judges your answer and records your progress.*"


def _grading():
    return bool(os.environ.get(GRADING_ENV))


def _open(progress):
    """(Progress, opened here) for None (the default database), a path, or an open Progress."""
    from .store import Progress
    if isinstance(progress, Progress):
        return progress, False
    return Progress(progress), True


def _first_seed(progress, key):
    """A seed that is the same for a fresh database and changes with every recorded attempt."""
    return [progress.count(), zlib.crc32(str(key).encode())]


def _practisable(skill):
    from . import problems
    return bool(problems.generators_for(skill))


def _where_graded(skill):
    """'q1 (exercise ex01)' for a skill only the graded questions exercise."""
    qs = SKILLS[skill].questions
    if not qs:
        return ""
    try:
        from ..grading import bank
        by = {}
        for q in qs:
            by.setdefault(bank.question(q).assignment, []).append(q)
        return "; ".join(f"{', '.join(v)} (exercise {a})" for a, v in by.items())
    except Exception:   # the grading extra is not installed: the question ids alone
        return ", ".join(qs)


def _answer_help(inst):
    if inst.kind == "choice":
        return "Choose one option, then Submit."
    if inst.kind == "number":
        return "Type a number (a decimal such as -0.125, or a fraction such as 1/8), then Submit."
    n = 1
    for d in inst.shape:
        n *= d
    return f"Type {n} numbers separated by commas ({inst.labels}), then Submit."


class PracticeWidget:
    """One practice problem at a time for one skill, a list of skills (a menu), or what is due (skills=None).

    The buttons call submit(), hint(), show_solution() and new_problem(), which tests call directly too.
    """

    def __init__(self, skills=None, seed=None, progress=None, key="practice"):
        try:
            import ipywidgets as w
        except ImportError:
            raise ImportError("practice widgets need ipywidgets: pip install 'mlcourse[course]' (or run "
                              "`mlcourse practice` in a terminal).") from None
        from .session import Session
        self.progress, self._own = _open(progress)
        self.skills = None if skills is None else list(skills)
        self.session = Session(self.progress, _first_seed(self.progress, key) if seed is None else seed)
        self.inst, self.skill, self.why = None, None, ""
        self.feedback_text = ""

        self.title = w.HTML()
        self.menu = None
        if self.skills and len(self.skills) > 1:
            self.menu = w.Dropdown(options=[(SKILLS[s].name, s) for s in self.skills], value=self.skills[0],
                                   description="Skill", layout=w.Layout(width="30em"),
                                   style={"description_width": "initial"})
            self.menu.observe(self._on_menu, names="value")
        self.prompt = w.Output()
        self.help = w.HTML()
        self.answer = w.Text(description="Answer", placeholder="your answer", layout=w.Layout(width="32em"))
        self.choice = w.RadioButtons(options=[], description="Answer", layout=w.Layout(width="auto"))
        self.submit_button = w.Button(description="Submit", button_style="primary", tooltip="Judge your answer")
        self.hint_button = w.Button(description="Hint", tooltip="The method (offered after a wrong answer)")
        self.solution_button = w.Button(description="Show solution",
                                        tooltip="The worked answer; ends this problem without credit")
        self.new_button = w.Button(description="New problem", tooltip="Draw a fresh problem")
        self.feedback = w.HTML()
        self.answer_row = w.HBox([self.answer, self.submit_button])
        self.submit_button.on_click(lambda _: self.submit())
        self.hint_button.on_click(lambda _: self.hint())
        self.solution_button.on_click(lambda _: self.show_solution())
        self.new_button.on_click(lambda _: self.new_problem())
        for x in (self.title, self.prompt, self.feedback):
            x.add_class("mlcourse-practice")
        self.feedback.add_class("mlcourse-practice-feedback")
        self.title.add_class("mlcourse-practice-title")
        top = [self.title] + ([self.menu] if self.menu is not None else [])
        self.widget = w.VBox(top + [self.prompt, self.help, self.answer_row,
                                    w.HBox([self.hint_button, self.solution_button, self.new_button]),
                                    self.feedback])
        self.widget.add_class("mlcourse-practice-widget")
        self.new_problem()

    # -- the loop ------------------------------------------------------------------------------------------
    def _next_skill(self):
        if self.menu is not None:
            return self.menu.value, ""
        if self.skills:
            return self.skills[0], ""
        s, why = self.session.choose()
        if s is None:
            return None, why
        return s, ("a review is due" if self.progress.states()[s].due else "the next skill to learn")

    def _on_menu(self, change):
        self.new_problem()

    def new_problem(self):
        """Draw a fresh instance (what is due, when no skill was given) and show it; nothing is recorded."""
        self.skill, self.why = self._next_skill()
        self.inst = None if self.skill is None else self.session.new_instance(self.skill)
        self.feedback_text = ""
        self._show()
        return self.inst

    def submit(self, text=None):
        """Judge the answer in the box (or `text`), record the attempt, show the verdict; returns it (or None)."""
        inst = self.inst
        if inst is None or inst.finished:
            return None
        if text is None:
            text = self._typed()
        if not str(text or "").strip():
            self._say("Type an answer first." if inst.kind != "choice" else "Choose an option first.")
            return None
        try:
            verdict = self.session.submit(inst, str(text))
        except ValueError as e:   # unreadable: nothing recorded
            why = str(e)
            self._say(_sentence(why) if why.lower().startswith("could not read") else f"Could not read that: {why}")
            return None
        lines = ["Right." if verdict.correct else _sentence(verdict.message)]
        if verdict.correct:
            lines.append("Worked answer: " + inst.give_up().replace("\n", " "))
            if inst.attempts > 1:
                lines.append("Only a problem's first answer counts for mastery: press New problem for fresh numbers.")
        elif SKILLS[inst.skill].diagnostic:
            lines.append(f"This is a prerequisite of the course: if it is new to you, see {SKILLS[inst.skill].learn}.")
        if not verdict.correct:
            lines.append("Try again, or press Hint.")
        lines.append(self._standing())
        self._say(*lines)
        return verdict

    def hint(self):
        """Show the method (after a wrong answer); later answers to this problem count as wrong."""
        if self.inst is None or self.inst.finished:
            return None
        text = self.session.hint(self.inst)
        self._say(self.feedback_text, f"Hint: {text}")
        return text

    def show_solution(self):
        """End the instance without credit and show the worked answer."""
        if self.inst is None or self.inst.finished:
            return None
        text = self.session.give_up(self.inst)
        self._say("Solution (no credit for this problem): " + text.replace("\n", " "), self._standing(),
                  "Press New problem for fresh numbers.")
        return text

    # -- display -------------------------------------------------------------------------------------------
    def _typed(self):
        if self.inst.kind == "choice":
            i = self.choice.index
            return None if i is None else chr(ord("a") + int(i))
        return self.answer.value

    def _standing(self):
        st = self.progress.states()[self.inst.skill]
        return (f"P(known) of this skill: {st.p_known:.2f} "
                + ("(mastered)." if st.mastered else f"(mastered at {MASTERY})."))

    def _say(self, *lines):
        self.feedback_text = "\n".join(l for l in lines if l)
        self.feedback.value = "".join(f"<p>{html.escape(l)}</p>" for l in self.feedback_text.split("\n") if l)
        self.title.value = f"<b>{html.escape(self.heading())}</b>"
        self._buttons()

    def _buttons(self):
        inst = self.inst
        open_ = inst is not None and not inst.finished
        self.submit_button.disabled = not open_
        self.answer.disabled = self.choice.disabled = not open_
        self.solution_button.disabled = not open_
        wrong_before = open_ and inst.attempts > 0
        self.hint_button.layout.display = None if wrong_before and not inst.hint_shown else "none"
        self.new_button.disabled = self.skill is None

    def _show(self):
        from IPython.display import Markdown
        self.prompt.outputs = ()
        if self.inst is None:
            self.prompt.append_display_data(Markdown(f"Nothing to practise now: {self.why}."))
            self.help.value = ""
            self.answer_row.children = [self.answer, self.submit_button]
        else:
            self.prompt.append_display_data(Markdown(_prompt_for_widget(self.inst)))
            self.help.value = f"<i>{html.escape(_answer_help(self.inst))}</i>"
            if self.inst.kind == "choice":
                self.choice.options = [f"({chr(97 + i)}) {o}" for i, o in enumerate(self.inst.options)]
                self.choice.index = None
                self.answer_row.children = [self.choice, self.submit_button]
            else:
                self.answer.value = ""
                self.answer_row.children = [self.answer, self.submit_button]
        self._say()

    def heading(self):
        if self.skill is None:
            return "Practice"
        st = self.progress.states()[self.skill]
        state = "mastered" if st.mastered else f"P(known) {st.p_known:.2f}, mastered at {MASTERY}"
        why = f"; {self.why}" if self.why else ""
        return f"Practice: {SKILLS[self.skill].name} ({state}{why})"

    def static_markdown(self):
        """The problem as it first shows, for a stored notebook and the website."""
        if self.inst is None:
            return f"**Practice**: nothing to practise now: {self.why}."
        return f"**{self.heading()}**\n\n{self.inst.prompt}\n\n{STATIC_NOTE}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        data = dict(data[0]) if isinstance(data, tuple) else dict(data)
        data["text/markdown"] = self.static_markdown()
        data["text/plain"] = LIVE_LINE
        return data

    def close(self):
        self.widget.close()
        if self._own:
            self.progress.close()


def _prompt_for_widget(inst):
    """The prompt without a choice's lettered options and "Answer with a letter." (the widget shows buttons)."""
    if inst.kind != "choice":
        return inst.prompt
    keep = [l for l in inst.prompt.split("\n") if not re.match(r"^\([a-z]\) ", l)
            and l.strip() != "Answer with a letter."]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(keep)).strip()


def _sentence(message):
    """Verdict messages read as sentences in the widget: 'not right: ...' -> 'Not right: ...'."""
    return message[:1].upper() + message[1:]


def practice(skill=None, *, seed=None, progress=None):
    """A practice widget: fresh problems for `skill` (an id from `mlcourse progress`), or what is due.

    Without a skill it serves due reviews first (interleaved across skills), else the next skill to learn.
    seed: the sequence of problems (default: fresh numbers once an attempt is recorded).  progress: the
    database (a path or an open Progress; default $MLCOURSE_PROGRESS, else the data directory).
    """
    if _grading():
        print("practice() is skipped while grading")
        return None
    if skill is not None and skill not in SKILLS:
        raise ValueError(f"unknown skill {skill!r}; the skills are: {', '.join(topological_order())}.")
    if skill is not None and not _practisable(skill):
        raise ValueError(f"the skill {skill!r} has no generated problems yet; practise it with the graded questions "
                         f"{_where_graded(skill)} and check().")
    return PracticeWidget(None if skill is None else [skill], seed=seed, progress=progress,
                          key=skill or "practice")


# -- gates ----------------------------------------------------------------------------------------------------

def gate_rows(notebook, states):
    """(skill, P(known), state words, to practise here?) for each prerequisite of a notebook."""
    rows = []
    for s in notebook_prerequisites(notebook):
        v = states[s]
        if v.mastered and v.due:
            words, todo = "mastered, review due", True
        elif v.mastered:
            words, todo = f"mastered (next review {v.next_review:%Y-%m-%d})", False
        elif _practisable(s):
            words, todo = "not yet mastered: practise it below", True
        else:
            words, todo = f"not yet mastered: practise it with the graded questions {_where_graded(s)}", False
        rows.append((s, v.p_known, words, todo))
    return rows


def gate_markdown(notebook, rows):
    nb = notebook_id(notebook)
    if not rows:
        return f"**Before notebook {nb}**: it builds on no skill of an earlier notebook."
    lines = [f"**Before notebook {nb}**: it builds on these skills (a skill is mastered at P(known) ≥ {MASTERY}; "
             "P(known) is your estimated chance of knowing it).", "", "| skill | P(known) | state |",
             "|---|---|---|"]
    lines += [f"| {SKILLS[s].name} | {p:.2f} | {words} |" for s, p, words, _ in rows]
    todo = [SKILLS[s].name for s, _, _, t in rows if t]
    lines.append("")
    if todo:
        lines.append("To practise first: " + "; ".join(todo) + ". The notebook runs either way.")
    elif all(r[2].startswith("mastered") for r in rows):
        lines.append("All mastered: go ahead.")
    else:
        lines.append("The notebook runs either way.")
    return "\n".join(lines)


def gate(notebook, *, progress=None, seed=None):
    """What notebook `notebook` ("02") builds on, your state in each, and practice for what is not mastered.

    It informs and never stops the notebook: a progress database that cannot be read gives one line.
    Returns None (the table and the widget are displayed).
    """
    nb = notebook_id(notebook)
    if _grading():
        print(f"gate({nb!r}) is skipped while grading")
        return None
    from IPython.display import Markdown, display
    from .store import ProgressError
    names = ", ".join(SKILLS[s].name for s in notebook_prerequisites(nb)) or "none"
    try:
        prog, own = _open(progress)
    except ProgressError as e:
        print(f"This notebook builds on: {names}. Your progress could not be read: {e}")
        return None
    try:
        rows = gate_rows(nb, prog.states())
    except ImportError:   # the review schedule needs fsrs
        if own:
            prog.close()
        print(f"This notebook builds on: {names}. To see your progress in them, install the practice extra: "
              "pip install 'mlcourse[practice]'.")
        return None
    display(Markdown(gate_markdown(nb, rows)))
    todo = [s for s, _, _, t in rows if t]
    try:
        widget = PracticeWidget(todo, seed=seed, progress=prog, key=f"gate {nb}") if todo else None
    except ImportError:   # no ipywidgets
        widget = None
        print("To practise here, install the course extra (pip install 'mlcourse[course]'), or run "
              "`mlcourse practice SKILL` in a terminal.")
    if widget is None:
        if own:
            prog.close()
        return None
    widget._own = own
    display(widget)
    return None
