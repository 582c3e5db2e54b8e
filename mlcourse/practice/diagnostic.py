"""The prerequisite diagnostic of notebook 00: a few generated problems per prerequisite of the lesson.

The lesson names two prerequisites, deep learning and stochastic gradient descent; the skill map has them
as its diagnostic skills (the chain rule, the gradient of an MSE loss, one SGD step, the Hessian of a
quadratic, an expectation).  ``diagnostic()`` draws ``per_skill`` problems of each from their generators,
shows them (the prompts as Markdown, so that a stored notebook and the website read well); its ``form()``
has one answer box per problem and one Check button; it judges every answer with the problems' own judging,
records the attempts in the progress database (``Session.submit``: the first answer to each problem
counts for the mastery model), and says per skill: fine, or which mistake was made and where to learn
the skill.  In a terminal: ``mlcourse practice --diagnostic``.

    d = diagnostic()            # in a notebook, as a cell's last line: the problems
    d.form()                    # in the next cell: the answer boxes and the Check button
    d.check(["-3.5", "", ...])  # the same judging from code: one text per problem ("" = not answered)
"""
from __future__ import annotations

import zlib

from . import problems
from .session import Session
from .skills import SKILLS, topological_order
from .store import Progress, ProgressError

__all__ = ["Diagnostic", "SkillResult", "diagnostic", "diagnostic_skills", "run_in_terminal", "PER_SKILL"]

PER_SKILL = 2


def diagnostic_skills():
    """The lesson's prerequisites, in the skill map's order."""
    return [s for s in topological_order() if SKILLS[s].diagnostic]


class SkillResult:
    """What the diagnostic says about one prerequisite after a check."""

    def __init__(self, skill, verdicts, unreadable=0):
        self.skill = skill
        self.verdicts = verdicts            # per problem: Verdict, or None when not answered (or unreadable)
        self.unreadable = unreadable        # problems whose last answer could not be read
        self.mistakes = tuple(dict.fromkeys(m for v in verdicts if v is not None for m in v.mistakes))

    @property
    def fine(self):
        return all(v is not None and v.correct for v in self.verdicts)

    @property
    def answered(self):
        return sum(v is not None for v in self.verdicts)

    def sentence(self):
        s = SKILLS[self.skill]
        name = s.name[0].upper() + s.name[1:]
        right = sum(v is not None and v.correct for v in self.verdicts)
        n = len(self.verdicts)
        if self.fine:
            return f"{name}: fine ({right} of {n} right)."
        if not self.answered:
            if self.unreadable:
                return (f"{name}: {self.unreadable} answer{'s' if self.unreadable > 1 else ''} could not be read "
                        "(see the line beside each box); nothing judged yet.")
            return f"{name}: not answered yet."
        blank = n - self.answered - self.unreadable
        how = (f"{right} of {n} right" + (f", {self.unreadable} could not be read" if self.unreadable else "")
               + (f", {blank} not answered" if blank else ""))
        if self.mistakes:
            how += "; " + " and ".join(f"the common mistake '{m}'" for m in self.mistakes)
        used = ", ".join(_section(x) for x in s.sections)
        return f"{name}: {how}. Where to learn it: {s.learn}. The course uses it in {used}."


def _section(ref):
    """ "02 §2" -> "notebook 02, section 2" """
    nb, _, sec = ref.partition(" §")
    return f"notebook {nb}, section {sec}"


class Diagnostic:
    """per_skill problems of each prerequisite, drawn from seed (the same seed: the same problems)."""

    def __init__(self, seed=0, per_skill=PER_SKILL, path=None):
        if int(per_skill) < 1:
            raise ValueError(f"per_skill must be at least 1, got {per_skill}.")
        self.seed, self.path = int(seed), path
        self.instances = []
        for skill in diagnostic_skills():
            names = problems.generators_for(skill)
            for k in range(int(per_skill)):
                name = names[k % len(names)]
                self.instances.append(problems.generate(name, zlib.crc32(f"{self.seed}:{skill}:{k}".encode())))
        self._verdicts = [None] * len(self.instances)
        self._answered = [None] * len(self.instances)      # the text each verdict was given for
        self._unreadable = [False] * len(self.instances)   # the last answer could not be read

    # -- the problems --------------------------------------------------------------------------------
    def markdown(self):
        """The problems as Markdown with LaTeX, numbered, grouped by prerequisite."""
        out, k, last = [], 0, None
        for inst in self.instances:
            k += 1
            if inst.skill != last:
                name = SKILLS[inst.skill].name
                out.append(f"**{name[0].upper() + name[1:]}**\n")
                last = inst.skill
            how = f" *(type {inst.labels}, separated by commas)*" if inst.kind in ("vector", "matrix") else ""
            out.append(f"{k}. {inst.prompt.replace(chr(10) + chr(10), ' ')}{how}\n")
        return "\n".join(out)

    def __repr__(self):
        return f"<prerequisite diagnostic: {len(self.instances)} problems, seed {self.seed}>"

    def _repr_markdown_(self):   # a notebook shows the problems (and so does the stored notebook, and the website)
        return self.markdown()

    # -- judging ---------------------------------------------------------------------------------------
    def check(self, answers):
        """Judge one text per problem ("" or None: not answered), record the attempts, return
        (per-problem lines, [SkillResult per prerequisite]).  A problem already answered rightly keeps its verdict;
        an unchanged answer is not judged twice; an unreadable one is reported and not recorded."""
        answers = list(answers)
        if len(answers) != len(self.instances):
            raise ValueError(f"give one answer per problem: {len(self.instances)} texts, got {len(answers)} "
                             "(an empty text for a problem left out).")
        lines = []
        with Progress(self.path) as progress:
            session = Session(progress)
            for i, (inst, text) in enumerate(zip(self.instances, answers)):
                text = (text or "").strip()
                self._unreadable[i] = False
                done = self._verdicts[i] is not None and self._verdicts[i].correct
                if done or not text or text == self._answered[i]:
                    if not text and not done:
                        self._verdicts[i] = None
                        self._answered[i] = None
                    lines.append(self._line(i))
                    continue
                try:
                    self._verdicts[i] = session.submit(inst, text)
                    self._answered[i] = text
                except ValueError as e:
                    lines.append(f"{i + 1}. could not read that: {e}")
                    self._unreadable[i] = True
                    continue
                lines.append(self._line(i))
        return lines, self.results()

    def _line(self, i):
        v = self._verdicts[i]
        if v is None:
            return f"{i + 1}. not answered."
        return f"{i + 1}. {v.message}"

    def results(self):
        by, unreadable = {}, {}
        for inst, v, u in zip(self.instances, self._verdicts, self._unreadable):
            by.setdefault(inst.skill, []).append(None if u else v)
            unreadable[inst.skill] = unreadable.get(inst.skill, 0) + u
        return [SkillResult(s, vs, unreadable[s]) for s, vs in by.items()]

    def summary(self, results=None):
        results = self.results() if results is None else results
        lines = [r.sentence() for r in results]
        if all(r.fine for r in results):
            lines.append("Every prerequisite is in place: start with notebook 01.")
        todo = [r for r in results if r.answered and not r.fine]
        if todo:
            lines.append("Practise what was not right on fresh problems: in a terminal, `mlcourse practice SKILL` with "
                         "SKILL one of " + ", ".join(r.skill for r in todo) + ".")
        return lines

    # -- in a notebook ---------------------------------------------------------------------------------
    def form(self):
        """One answer box per problem, one Check button, the verdicts and the summary below."""
        import ipywidgets as w

        from .widget import _sentence
        boxes = [w.Text(placeholder=(inst.labels if inst.kind in ("vector", "matrix") else "a number"),
                        description=f"{k + 1}.", layout=w.Layout(width="24em", flex="0 0 auto"))
                 for k, inst in enumerate(self.instances)]
        marks = [w.HTML("") for _ in boxes]
        button = w.Button(description="Check", button_style="primary", tooltip="judge every answer")
        report = w.HTML("")

        def on_check(_):
            try:
                lines, results = self.check([b.value for b in boxes])
            except ProgressError as e:          # a damaged progress file: say so here, where the learner looks
                report.value = _html(str(e))
                return
            for k, line in enumerate(lines):   # "3. not right: ..." -> "Not right: ..." beside box 3
                marks[k].value = _html(_sentence(line.split(". ", 1)[1] if ". " in line else line))
            report.value = "<br>".join(_html(s) for s in self.summary(results))
        button.on_click(on_check)
        rows = [w.HBox([b, m]) for b, m in zip(boxes, marks)]
        form = w.VBox([w.HTML("<b>Your answers</b> (leave a box empty to skip a problem)"), *rows, button, report])
        self._form = (boxes, marks, button, report)
        from ..viz._alt import describe_widget
        return describe_widget(form, "type an answer to each problem above and press Check to see, per "
                                     "prerequisite, whether it is in place or which mistake to fix and where.")


def _html(text):
    """Plain text as HTML: escaped, `code` in a code font, *a word* emphasised."""
    import html
    import re
    text = re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", text)


def diagnostic(seed=0, per_skill=PER_SKILL, path=None):
    """The prerequisite diagnostic (see the module's docstring); path: the progress database (default: yours)."""
    return Diagnostic(seed, per_skill, path)


def run_in_terminal(seed=0, per_skill=PER_SKILL, path=None, read=input, write=print):
    """`mlcourse practice --diagnostic`: each problem in turn (an empty line skips it), then the summary."""
    from .terminal import plain
    d = Diagnostic(seed, per_skill, path)
    Progress(path).close()       # a damaged progress file stops here, before any answer is typed
    write(f"The prerequisite diagnostic: {len(d.instances)} problems on the lesson's two prerequisites (deep "
          "learning and SGD). Type each answer (an empty line skips a problem, q stops).")
    answers, last = [""] * len(d.instances), None
    for i, inst in enumerate(d.instances):
        if inst.skill != last:
            write(f"\n== {SKILLS[inst.skill].name}")
            last = inst.skill
        write(f"\n{i + 1}. {plain(inst.prompt)}")
        if inst.kind in ("vector", "matrix"):
            write(f"(type {inst.labels}, separated by commas)")
        while True:
            try:
                text = read("answer> ").strip()
            except EOFError:
                text = "q"
            if text.lower() in ("q", "quit", "exit"):
                break
            if text:
                try:
                    problems.parse_answer(inst.kind, text, _size(inst), len(inst.options))
                except ValueError as e:
                    write(f"could not read that: {e}")
                    continue
            answers[i] = text
            break
        if text.lower() in ("q", "quit", "exit"):
            break
    lines, results = d.check(answers)
    write("")
    for line in lines:
        write(plain(line))
    write("")
    for s in d.summary(results):
        write(plain(s))
    return d


def _size(inst):
    n = 1
    for k in inst.shape or (1,):
        n *= int(k)
    return n
