"""Notebook 00's prerequisite diagnostic: the problems, the judging per prerequisite, the attempts recorded,
the form's Check button, and the same diagnostic in a terminal (`mlcourse practice --diagnostic`)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlcourse.practice import problems
from mlcourse.practice.diagnostic import PER_SKILL, diagnostic, diagnostic_skills, run_in_terminal
from mlcourse.practice.skills import SKILLS
from mlcourse.practice.store import ENV, Progress


def _right(inst):
    twin = problems.generate(inst.generator, inst.seed)     # the same instance, from its seed
    twin.give_up()
    return ", ".join(f"{x:.6g}" for x in problems._flat(twin.answer))


def _mistaken(inst, k=0):
    m, v = inst._mistake_values[k]
    return m, ", ".join(f"{x:.6g}" for x in problems._flat(v))


def test_the_problems_cover_every_prerequisite_and_come_back_from_their_seed(tmp_path):
    d = diagnostic(path=tmp_path / "p.sqlite3")
    assert diagnostic_skills() == [s for s in SKILLS if SKILLS[s].diagnostic]
    assert [i.skill for i in d.instances] == [s for s in diagnostic_skills() for _ in range(PER_SKILL)]
    md = d.markdown()
    assert d._repr_markdown_() == md                             # what a notebook shows
    for k, inst in enumerate(d.instances):
        assert f"{k + 1}. " in md and inst.prompt.split("\n")[0] in md
        with pytest.raises(RuntimeError):
            inst.answer                                          # nothing revealed
    assert [i.prompt for i in diagnostic(path=tmp_path / "p.sqlite3").instances] == [i.prompt for i in d.instances]
    other = diagnostic(seed=1, path=tmp_path / "p.sqlite3")
    assert [i.prompt for i in other.instances] != [i.prompt for i in d.instances]
    assert len({i.prompt for i in d.instances}) == len(d.instances)   # two different problems per skill
    with pytest.raises(ValueError, match="one answer per problem"):
        d.check(["1"])


def test_right_wrong_blank_and_unreadable_answers_are_judged_per_prerequisite(tmp_path):
    path = tmp_path / "p.sqlite3"
    d = diagnostic(path=path)
    answers, named = [], {}
    for inst in d.instances:
        if inst.skill == "chain_rule":
            answers.append(_right(inst))
        elif inst.skill == "mse_gradient":
            m, text = _mistaken(inst)
            named.setdefault(inst.skill, m)
            answers.append(text)
        elif inst.skill == "sgd_step":
            answers.append("two")
        else:
            answers.append("")
    lines, results = d.check(answers)
    by = {r.skill: r for r in results}
    assert by["chain_rule"].fine and not by["mse_gradient"].fine
    assert named["mse_gradient"].name in by["mse_gradient"].mistakes
    text = "\n".join(d.summary(results))
    assert "The chain rule: fine (2 of 2 right)." in text
    assert SKILLS["mse_gradient"].learn in text and f"'{named['mse_gradient'].name}'" in text
    assert "One SGD step: 2 answers could not be read (see the line beside each box); nothing judged yet." in text
    assert "An expectation over a distribution: not answered yet." in text
    assert SKILLS["expectation"].learn not in text                       # nothing answered: nothing to send away for
    assert "mlcourse practice SKILL" in text and "mse_gradient" in text.split("SKILL one of")[1]
    assert sum("could not read that" in line for line in lines) == PER_SKILL
    with Progress(path) as p:
        rows = p.attempts()
    assert [(r["skill"], r["correct"], r["counted"]) for r in rows] == [
        ("chain_rule", 1, 1)] * PER_SKILL + [("mse_gradient", 0, 0)] * PER_SKILL
    assert all(named["mse_gradient"].name in r["mistakes"] for r in rows if r["skill"] == "mse_gradient")
    d.check(answers)                                                     # Check again: nothing judged twice
    with Progress(path) as p:
        assert p.count() == 2 * PER_SKILL
    fixed = [(_right(i) if i.skill == "mse_gradient" else a) for i, a in zip(d.instances, answers)]
    lines, results = d.check(fixed)                                       # a second try: right, not counted
    assert {r.skill: r for r in results}["mse_gradient"].fine
    with Progress(path) as p:
        later = p.attempts()[2 * PER_SKILL:]
    assert [(r["skill"], r["correct"], r["counted"]) for r in later] == [("mse_gradient", 1, None)] * PER_SKILL


def test_all_right_says_every_prerequisite_is_in_place(tmp_path):
    d = diagnostic(path=tmp_path / "p.sqlite3")
    _, results = d.check([_right(i) for i in d.instances])
    assert all(r.fine for r in results)
    assert d.summary(results)[-1] == "Every prerequisite is in place: start with notebook 01."


def test_an_unreadable_answer_is_counted_as_unreadable_not_as_left_out(tmp_path):
    d = diagnostic(path=tmp_path / "p.sqlite3")
    answers = [""] * len(d.instances)
    answers[0] = "two"
    lines, results = d.check(answers)
    assert lines[0].startswith("1. could not read that:") and lines[1] == "2. not answered."
    assert results[0].sentence() == ("The chain rule: 1 answer could not be read (see the line beside each box); "
                                     "nothing judged yet.")
    assert results[1].sentence().endswith("not answered yet.")
    m, answers[1] = _mistaken(d.instances[1])
    _, results = d.check(answers)
    assert f"0 of 2 right, 1 could not be read; the common mistake '{m.name}'" in results[0].sentence()
    answers[0] = _right(d.instances[0])                   # typed again, readable: the count follows the box
    _, results = d.check(answers)
    assert f"1 of 2 right; the common mistake '{m.name}'" in results[0].sentence()
    with Progress(tmp_path / "p.sqlite3") as p:           # the unreadable answer was never recorded
        assert [(r["correct"], r["counted"]) for r in p.attempts()] == [(0, 0), (1, 1)]


def test_the_form_judges_on_check_and_records(tmp_path):
    pytest.importorskip("ipywidgets")
    path = tmp_path / "p.sqlite3"
    d = diagnostic(path=path)
    form = d.form()
    boxes, marks, button, report = d._form
    assert len(boxes) == len(d.instances) and getattr(form, "mlcourse_live")
    m, text = _mistaken(d.instances[0])
    boxes[0].value = text
    boxes[1].value = _right(d.instances[1])
    button.click()
    assert m.name in marks[0].value and marks[1].value == "Right."
    assert marks[2].value == "Not answered."
    assert SKILLS["chain_rule"].learn in report.value
    with Progress(path) as p:
        assert [(r["correct"], r["counted"]) for r in p.attempts()] == [(0, 0), (1, 1)]


def test_the_diagnostic_in_a_terminal(tmp_path):
    path = tmp_path / "p.sqlite3"
    d0 = diagnostic(path=tmp_path / "other.sqlite3")
    m, wrong = _mistaken(d0.instances[0])
    answers = iter([wrong, "nonsense", _right(d0.instances[1]), "", "q"])
    shown = []
    d = run_in_terminal(path=path, read=lambda prompt: next(answers), write=shown.append)
    text = "\n".join(shown)
    assert "could not read that" in text and f"({m.name})" in text
    assert "1 of 2 right" in text and SKILLS["chain_rule"].learn in text and "\\theta" not in text   # plain text
    assert [i.prompt for i in d.instances] == [i.prompt for i in d0.instances]
    with Progress(path) as p:
        assert [(r["skill"], r["correct"]) for r in p.attempts()] == [("chain_rule", 0), ("chain_rule", 1)]


def test_mlcourse_practice_diagnostic_reads_answers_from_the_terminal(tmp_path):
    env = dict(os.environ, **{ENV: str(tmp_path / "p.sqlite3")})
    d = diagnostic(path=tmp_path / "x.sqlite3")
    stdin = "\n".join([_right(d.instances[0])] + [""] * (len(d.instances) - 1)) + "\n"
    out = subprocess.run([sys.executable, "-m", "mlcourse", "practice", "--diagnostic"], input=stdin,
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "1. right." in out.stdout and "The chain rule: 1 of 2 right, 1 not answered" in out.stdout
    with Progress(env[ENV]) as p:
        assert p.count() == 1
    bad = subprocess.run([sys.executable, "-m", "mlcourse", "practice", "chain_rule", "--diagnostic"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "without a skill" in bad.stderr


def test_a_damaged_progress_file_is_reported_in_the_form_and_left_untouched(tmp_path):
    pytest.importorskip("ipywidgets")
    bad = tmp_path / "p.sqlite3"
    bad.write_bytes(b"not a database" * 20)
    d = diagnostic(path=bad)
    d.form()
    boxes, marks, button, report = d._form
    boxes[0].value = _right(d.instances[0])
    button.click()
    assert "not an mlcourse progress database" in report.value
    assert bad.read_bytes() == b"not a database" * 20
    with pytest.raises(ValueError, match="not an mlcourse progress database"):
        run_in_terminal(path=bad, read=lambda prompt: "", write=lambda text: None)


def test_the_same_problems_drawn_again_do_not_count_twice(tmp_path):
    """Re-running the diagnostic's cell draws the same problems: a second first answer is recorded, not counted."""
    path = str(tmp_path / "p.sqlite3")
    first = diagnostic(path=path)
    first.check([_mistaken(first.instances[0])[1]] + [""] * (len(first.instances) - 1))
    again = diagnostic(path=path)
    again.check([_right(again.instances[0])] + [""] * (len(again.instances) - 1))
    with Progress(path) as p:
        rows = p.attempts(again.instances[0].skill)
    assert [r["correct"] for r in rows] == [0, 1] and [r["counted"] for r in rows] == [0, None]
    other = diagnostic(seed=1, path=path)          # other problems: their first answers count
    other.check([_right(other.instances[0])] + [""] * (len(other.instances) - 1))
    with Progress(path) as p:
        assert p.attempts(other.instances[0].skill)[-1]["counted"] == 1
