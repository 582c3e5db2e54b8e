"""`mlcourse practice` and `mlcourse progress`: the practice loop and the progress table in a terminal."""
from __future__ import annotations

import re

from .mastery import MASTERY
from .session import Session
from .skills import SKILLS, topological_order
from .store import Progress, export_json

__all__ = ["practice", "show_progress", "reset", "plain"]

_MACROS = [(r"\dfrac", r"\frac"), (r"\tfrac", r"\frac"), (r"\theta", "θ"), (r"\alpha", "α"), (r"\epsilon", "ε"),
           (r"\gamma", "γ"), (r"\nabla", "∇"), (r"\partial", "∂"), (r"\sum", "Σ"), (r"\top", "ᵀ"), (r"\sin", "sin"),
           (r"\mathbb{E}", "E"), (r"\Phi", "Φ"), (r"\phi", "φ"), (r"\log", "log "), (r"\pi", "π"), (r"\mathcal{T}", "T"), (r"\,", " "), (r"\\", "; ")]


def plain(markdown):
    """Markdown + LaTeX as plain terminal text (θ, α, fractions a/b, matrices as rows)."""
    t = re.sub(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", lambda m: "[" + m.group(1).replace(r"\\", ";")
               .replace("&", ",") + "]", markdown)
    for a, b in _MACROS:
        t = t.replace(a, b)
    for _ in range(3):
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", t)
    t = re.sub(r"\^\{([^{}]*)\}", r"^(\1)", t)
    t = re.sub(r"_\{([^{}]*)\}", r"_\1", t)
    return t.replace("$", "").replace("{", "").replace("}", "")


HELP = ("type your answer, or: h = hint, s = show the solution (no credit), n = new problem, q = quit\n"
        "(your first answer to a problem is what moves P(known); try again as often as you like after it)")


def practice(skill=None, seed=None, path=None, read=input, write=print):
    """The loop: one instance at a time until q (or end of input).  Returns the number of attempts recorded."""
    if skill is not None and skill not in SKILLS:
        raise ValueError(f"unknown skill {skill!r}; `mlcourse progress` lists them (ids in the first column).")
    with Progress(path) as progress:
        session, recorded = Session(progress, seed), 0
        write(f"progress: {progress.path}")
        while True:
            s, why = (skill, "asked for") if skill else session.choose()
            if s is None:
                write(f"nothing to practise: {why}.")
                return recorded
            inst = session.new_instance(s)
            write(f"\n== {SKILLS[s].name}  [{s}; {why}; P(known) = {session.p_known(s):.2f}, mastered at {MASTERY}]")
            write(f"problem {inst.generator} #{inst.seed}\n")
            write(plain(inst.prompt))
            if inst.kind in ("vector", "matrix"):
                write(f"(type {inst.labels}, separated by commas)")
            write(HELP)
            while not inst.finished:
                try:
                    text = read("answer> ")
                except EOFError:
                    write("")
                    return recorded
                cmd = text.strip().lower()
                if cmd in ("q", "quit", "exit"):
                    return recorded
                if cmd in ("h", "hint"):
                    write(f"hint: {plain(session.hint(inst))} (your next answer to this problem counts as wrong)")
                    continue
                if cmd in ("s", "solution", "show"):
                    write(plain(session.give_up(inst)))
                    recorded += 1
                    break
                if cmd in ("n", "new"):
                    break
                if not cmd:
                    continue
                try:
                    verdict = session.submit(inst, text)
                except ValueError as e:
                    write(f"could not read that: {e}")
                    continue
                recorded += 1
                write(verdict.message)
                if not verdict.correct and SKILLS[s].diagnostic:
                    write(f"(a prerequisite of the lesson: if it is new to you, see {SKILLS[s].learn})")
                write(f"P(known) of {s} = {session.p_known(s):.2f}")


def show_progress(path=None, as_json=False, write=print):
    with Progress(path) as progress:
        if as_json:
            write(export_json(progress))
            return 0
        st = progress.states()
        write(f"progress: {progress.path}  (mastered at P(known) >= {MASTERY})")
        write(f"{'skill':20s} {'P(known)':>8s}  {'':2s} {'attempts':>8s}  next review  name")
        for s in topological_order():
            v = st[s]
            mark = "ok" if v.mastered else ""
            nxt = v.next_review.strftime("%Y-%m-%d") if v.next_review else "-"
            nxt += " due" if v.due else ""
            write(f"{s:20s} {v.p_known:8.2f}  {mark:2s} {v.attempts:8d}  {nxt:11s}  {SKILLS[s].name}")
        due = [s for s in topological_order() if st[s].due]
        write("due for review: " + (", ".join(due) if due else "nothing"))
    return 0


def reset(path=None, yes=False, read=input, write=print):
    """Erase every attempt after asking (yes=True: without asking).  Returns 0, or 1 when the learner declined."""
    with Progress(path) as progress:
        n = progress.count()
        if not yes:
            try:
                answer = read(f"erase all {n} attempts in {progress.path}? type yes to erase: ")
            except EOFError:
                answer = ""
            if answer.strip().lower() != "yes":
                write("nothing erased.")
                return 1
        progress.reset()
        write(f"erased {n} attempts.")
    return 0
