"""The practice widget and the gates, driven through their buttons without a browser; check()'s evidence.

The widget objects are real ipywidgets (no kernel needed): a click is ``button.click()``, which runs the
same handler JupyterLab's click runs.  tests/test_browser.py drives the same widget in Chromium.
"""
from __future__ import annotations

import glob
import os
import re
from datetime import datetime, timezone

import nbformat
import numpy as np
import pytest

pytest.importorskip("ipywidgets", reason="the [course] extra is not installed")

from mlcourse.grading import bank, feedback, grader, runner  # noqa: E402
from mlcourse.practice import gate, practice, problems, widget  # noqa: E402
from mlcourse.practice.mastery import DEFAULT  # noqa: E402
from mlcourse.practice.skills import (SKILLS, home_notebook, notebook_id, notebook_prerequisites,  # noqa: E402
                                      notebook_skills)
from mlcourse.practice.store import ENV, Progress  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "progress.sqlite3"
    monkeypatch.setenv(ENV, str(path))
    monkeypatch.delenv(feedback.GRADING_ENV, raising=False)
    return path


def rows(path):
    with Progress(path) as p:
        return p.attempts()


def a_mistake(inst):
    """The text of the instance's first listed mistake, as a learner would type it."""
    m, v = inst._mistake_values[0]
    if inst.kind == "choice":
        return m.name, chr(ord("a") + int(v))
    return m.name, ", ".join(f"{x:.6g}" for x in np.ravel(np.asarray(problems._flat(v))))


def typed_answer(inst):
    twin = problems.generate(inst.generator, inst.seed)
    twin.give_up()
    if inst.kind == "choice":
        return chr(ord("a") + int(twin.answer))
    return ", ".join(f"{x:.8g}" for x in problems._flat(twin.answer))


# ---- the gates' rule ----------------------------------------------------------------------------------

def test_a_notebooks_gate_lists_the_direct_prerequisites_taught_earlier():
    for n in range(1, 9):
        nb = notebook_id(n)
        own = notebook_skills(nb)
        assert own, nb
        gate_skills = notebook_prerequisites(nb)
        for s in gate_skills:   # each: taught earlier, and needed directly by a skill this notebook teaches
            assert home_notebook(s) < nb
            assert any(s in SKILLS[o].prerequisites for o in own)
        for o in own:            # and nothing that rule admits is missing
            for p in SKILLS[o].prerequisites:
                assert home_notebook(p) >= nb or p in gate_skills
    # the lesson's prerequisites are checked by notebook 00 (home "00"), so they gate notebook 02
    assert notebook_prerequisites("02") == ("chain_rule", "sgd_step", "hessian_quadratic", "expectation",
                                            "support_query")
    assert notebook_prerequisites("05") == ("maml_gradient", "reptile")
    assert notebook_prerequisites(0) == ()
    assert notebook_id("02_meta_gradient_1d.ipynb") == notebook_id(2) == "02"
    with pytest.raises(ValueError, match=r'gate\("02"\)'):
        notebook_id("meta")


# ---- the practice widget ------------------------------------------------------------------------------

def test_wrong_then_right_names_the_mistake_and_records_what_counts(db):
    w = practice("meta_gradient_1d")
    inst = w.inst
    assert w.hint_button.layout.display == "none"          # no hint before a wrong answer
    name, wrong = a_mistake(inst)
    w.answer.value = wrong
    w.submit_button.click()
    assert f"({name})" in w.feedback_text and w.feedback_text.startswith("Not right: this looks like a common mistake")
    assert w.hint_button.layout.display is None             # offered now
    w.hint_button.click()
    assert "Hint: " in w.feedback_text and inst.hint in w.feedback_text
    w.answer.value = typed_answer(inst)
    w.submit_button.click()
    assert w.feedback_text.startswith("Right.") and "Worked answer:" in w.feedback_text
    assert w.submit_button.disabled and w.solution_button.disabled and w.answer.disabled
    got = rows(db)
    assert [(r["correct"], r["counted"], r["mistakes"]) for r in got] == [(0, 0, name), (1, None, "")]
    assert got[0]["seed"] == inst.seed and got[0]["generator"] == inst.generator
    assert f"P(known) of this skill: {DEFAULT.update(DEFAULT.p_init, False):.2f}" in w.feedback_text


def test_a_right_first_answer_counts_and_raises_p_known(db):
    w = practice("sgd_step")
    w.answer.value = typed_answer(w.inst)
    w.submit_button.click()
    (r,) = rows(db)
    assert (r["correct"], r["counted"]) == (1, 1)
    assert f"P(known) of this skill: {DEFAULT.update(DEFAULT.p_init, True):.2f}" in w.feedback_text
    assert f"P(known) {DEFAULT.update(DEFAULT.p_init, True):.2f}" in w.title.value


def test_an_unreadable_or_empty_answer_records_nothing(db):
    w = practice("chain_rule")
    w.answer.value = ""
    w.submit_button.click()
    assert w.feedback_text == "Type an answer first."
    w.answer.value = "about three"
    w.submit_button.click()
    assert w.feedback_text.startswith("Could not read that: 'about three' is not a number")
    assert rows(db) == [] and w.hint_button.layout.display == "none"


def test_show_solution_ends_the_problem_without_credit(db):
    w = practice("expectation")
    w.solution_button.click()
    assert w.feedback_text.startswith("Solution (no credit for this problem):") and "Answer: " in w.feedback_text
    assert w.submit_button.disabled and w.inst.finished
    (r,) = rows(db)
    assert (r["correct"], r["counted"], r["answer"]) == (0, 0, None)   # gave up before answering: counted wrong
    w.submit_button.click()                                              # nothing more to judge
    assert len(rows(db)) == 1


def test_new_problem_draws_fresh_numbers_and_records_nothing(db):
    w = practice("returns_to_go")
    first = (w.inst.generator, w.inst.seed, w.inst.prompt)
    w.new_button.click()
    assert (w.inst.generator, w.inst.seed, w.inst.prompt) != first
    assert not w.submit_button.disabled and w.feedback_text == "" and w.answer.value == ""
    assert rows(db) == []


def test_a_choice_is_answered_with_the_options(db):
    w = practice("step_regimes")
    while not w.inst._mistake_values:      # an instance on which a listed mistake picks a wrong option
        w.new_button.click()
    assert w.answer_row.children[0] is w.choice
    assert len(w.choice.options) == len(w.inst.options)
    assert "Answer with a letter" not in str(w.prompt.outputs)           # the buttons replace the letters
    name, letter = a_mistake(w.inst)
    w.choice.index = ord(letter) - ord("a")
    w.submit_button.click()
    assert f"({name})" in w.feedback_text
    w.choice.index = ord(typed_answer(w.inst)) - ord("a")
    w.submit_button.click()
    assert w.feedback_text.startswith("Right.")


def test_the_static_rendering_shows_the_problem_never_the_answer(db):
    w = practice("protonet_logits")
    data = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == widget.LIVE_LINE and data["text/plain"].startswith("Live widget:")
    md = data["text/markdown"]
    assert w.inst.prompt in md and "ProtoNet logits" in md
    twin = problems.generate(w.inst.generator, w.inst.seed)
    twin.give_up()
    assert twin.format_answer() not in md


def test_a_fresh_database_gives_the_same_first_problem_and_an_attempt_fresh_numbers(db):
    a, b = practice("mse_gradient"), practice("mse_gradient")
    assert a.inst.seed == b.inst.seed
    a.solution_button.click()
    assert practice("mse_gradient").inst.seed != a.inst.seed


def test_practice_without_a_skill_serves_due_reviews_first(db):
    with Progress(db) as p:      # reptile mastered long ago: its review is due
        for k in range(DEFAULT.attempts_to_mastery()):
            p.record("reptile", "reptile_step", k, "x", True, (), True, when=T0 + 60 * k)
    w = practice()
    assert w.skill == "reptile" and "a review is due" in w.heading()
    w2 = practice(progress=Progress(db.parent / "other.sqlite3"))   # fresh: the first skill in the map's order
    assert w2.skill == "chain_rule" and "the next skill to learn" in w2.heading()


def test_practice_refuses_unknown_skills_clearly(db):
    with pytest.raises(ValueError, match="unknown skill 'metagrad'"):
        practice("metagrad")


def test_a_skill_without_generators_points_to_its_graded_questions(db, monkeypatch):
    # every skill of the map has a generator today; a skill added later without one still gets a clear answer
    from mlcourse.practice import problems
    monkeypatch.setattr(problems, "generators_for", lambda skill: [] if skill == "support_query" else ["x"])
    with pytest.raises(ValueError, match=r"no generated problems yet.*q1 \(exercise ex01\)"):
        practice("support_query")


# ---- gates --------------------------------------------------------------------------------------------

def test_a_gate_on_a_fresh_database_lists_the_skills_and_offers_practice(db, capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    assert gate("02") is None
    table, w = shown
    md = table.data
    for s in notebook_prerequisites("02"):
        assert SKILLS[s].name in md
    assert "| the chain rule | 0.10 | not yet mastered: practise it below |" in md
    assert "| support set vs query set | 0.10 | not yet mastered: practise it below |" in md
    assert "The notebook runs either way." in md
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", md)                      # no date or time
    assert [v for _, v in w.menu.options] == ["chain_rule", "sgd_step", "hessian_quadratic", "expectation",
                                                "support_query"]
    assert w.skill == "chain_rule"
    w.menu.value = "expectation"                                                 # the menu switches the skill
    assert w.inst.skill == "expectation"


def test_a_gate_shows_mastery_and_its_loss_after_a_failed_review(db, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs))
    now = datetime.now(timezone.utc).timestamp()
    with Progress(db) as p:
        for k in range(DEFAULT.attempts_to_mastery()):
            p.record("maml_gradient", "maml_gradient", k, "x", True, (), True, when=now - 60 * (5 - k))
    gate("05")
    md = shown[0].data
    assert re.search(r"\| the exact MAML meta-gradient .* \| 0\.9\d \| mastered \(next review \d{4}-\d\d-\d\d\) \|", md)
    assert shown[1].skills == ["reptile"] and shown[1].menu is None        # only what is not mastered
    with Progress(db) as p:                    # a failed review lowers the skill again, and the gate shows it
        p.record("maml_gradient", "maml_gradient", 99, "x", False, (), False)
    shown.clear()
    gate("05")
    assert "| the exact MAML meta-gradient" in shown[0].data and "not yet mastered: practise it below" in \
        shown[0].data.split("\n")[4]


def test_a_gate_never_stops_the_notebook_on_a_damaged_database(db, capsys):
    db.write_bytes(b"my notes, not a database\n" * 200)
    before = db.read_bytes()
    assert gate("03") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "This notebook builds on: the gradient of an MSE loss" in out
    assert "not an mlcourse progress database" in out and "Move it away" in out
    assert db.read_bytes() == before


def test_while_grading_practice_and_gates_touch_no_database(db, capsys, monkeypatch):
    monkeypatch.setenv(feedback.GRADING_ENV, "1")
    assert gate("02") is None and practice("chain_rule") is None
    assert capsys.readouterr().out == "gate('02') is skipped while grading\npractice() is skipped while grading\n"
    assert not db.exists()


# ---- check() counts as evidence ------------------------------------------------------------------------

def _q5_namespace():
    def linear_c(alpha, x_support):    # a learner's right answer (the engine's own is blocked in check())
        return 2.0 * alpha * np.mean(np.asarray(x_support) ** 2, axis=1)
    return {"linear_c": linear_c}


def test_a_passed_check_records_evidence_for_its_skills_quietly(db, capsys):
    feedback.check("q5", namespace=_q5_namespace())
    out = capsys.readouterr().out
    assert "public tests passed" in out and "progress" not in out
    (r,) = rows(db)
    assert (r["skill"], r["generator"], r["correct"], r["counted"], r["source"]) == \
        ("linear_c", "check:q5", 1, 1, "check")
    feedback.check("q5", namespace={"linear_c": lambda alpha, x: np.zeros(len(x))})   # a failed one: not counted
    assert [(r["correct"], r["counted"]) for r in rows(db)] == [(1, 1), (0, None)]


def test_check_never_fails_on_a_store_it_cannot_use_and_says_so_once(db, capsys, monkeypatch):
    monkeypatch.setattr(feedback, "_PROGRESS_NOTED", [])
    db.write_bytes(b"my notes, not a database\n" * 200)
    before = db.read_bytes()
    for _ in range(3):
        feedback.check("q5", namespace=_q5_namespace())
    out = capsys.readouterr().out
    assert out.count("public tests passed") == 3
    notes = [l for l in out.splitlines() if "progress" in l]
    assert len(notes) == 1 and notes[0].startswith("(your progress was not recorded:") and len(notes[0]) < 200
    assert db.read_bytes() == before
    monkeypatch.setenv(ENV, str(db.parent / "a folder"))           # a folder where a file should be
    os.mkdir(db.parent / "a folder")
    feedback.check_all("ex03", namespace=_q5_namespace())
    assert "public tests" in capsys.readouterr().out


def test_check_records_nothing_while_grading(db, capsys, monkeypatch):
    monkeypatch.setenv(feedback.GRADING_ENV, "1")
    assert feedback.record_progress("q5", feedback.run_tests("q5", _q5_namespace())) == []
    assert not db.exists()


def test_grading_a_submission_writes_no_progress_file(db, tmp_path):
    """A submission that calls check(), gate() and practice() is graded: full marks, and no progress file anywhere
    (linear_c fails its tests if the grader's child finds one in its home or work folder after those calls)."""
    nb = nbformat.read(os.path.join(ROOT, "solutions", "ex03_initialisation.ipynb"), as_version=4)
    i = next(k for k, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("def linear_c("))
    probe = nbformat.v4.new_code_cell(
        "import glob, os\n"
        "_errors = []\n"
        "for _call in ('check(\"q5\")', 'gate(\"03\")', 'practice(\"linear_c\")'):\n"
        "    try:\n"
        "        from mlcourse.grading import check\n"
        "        from mlcourse.practice import gate, practice\n"
        "        eval(_call)\n"
        "    except BaseException as e:\n"
        "        _errors.append(f'{_call}: {type(e).__name__}: {e}')\n"
        "_found = [p for p in glob.glob(os.path.join(os.path.expanduser('~'), '**', '*'), recursive=True)\n"
        "          if 'progress' in os.path.basename(p) or p.endswith(('.sqlite3', '-wal'))]\n"
        "_linear_c = linear_c\n"
        "def linear_c(*args):\n"
        "    if _found or _errors:\n"
        "        raise RuntimeError('progress written: ' + ' '.join(_found) + ' | errors: ' + ' '.join(_errors))\n"
        "    return _linear_c(*args)")
    probe.pop("id", None)   # the solutions are nbformat 4.4 (no cell ids)
    nb.cells.insert(i + 1, probe)
    sub = tmp_path / "subs"
    sub.mkdir()
    nbformat.write(nb, str(sub / "ex03_initialisation.ipynb"))
    (report,) = grader.grade_path(str(sub), limits=runner.Limits(cell_timeout=60, total_timeout=120))
    by = {q["id"]: q for q in report["questions"]}
    assert report["score"] == report["max_score"], [(q["id"], q["message"]) for q in report["questions"]]
    assert by["q5"]["score"] == by["q5"]["max_score"]
    assert not db.exists()                                # the grader's own MLCOURSE_PROGRESS: untouched
    assert sorted(os.listdir(sub)) == ["ex03_initialisation.ipynb"]


# ---- the notebooks ------------------------------------------------------------------------------------

def test_notebooks_01_to_08_open_with_a_gate_after_the_install_cell():
    for n in range(1, 9):
        (path,) = glob.glob(os.path.join(ROOT, "notebooks", f"0{n}_*.ipynb"))
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.id for c in code[:2]] == ["install", "gate"], path
        assert re.search(rf'^gate\("0{n}"\)$', code[1].source, re.M), path
        assert "nbval-check-output" in code[1].metadata.get("tags", []), path   # a fresh database's gate, compared
        texts = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in code[1].outputs)
        assert f"**Before notebook 0{n}**" in texts, path


def test_mlcourse_assign_runs_notebooks_with_a_throwaway_progress_database(db):
    """Executing the solutions (their check() calls pass) must not credit the instructor's own progress."""
    from mlcourse.grading import assign
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.environ['MLCOURSE_PROGRESS'])")]
    assign.execute(nb, str(db.parent))
    used = nb.cells[0].outputs[0]["text"].strip()
    assert used != str(db) and not os.path.exists(used)      # a temporary file, removed afterwards
    assert os.environ[ENV] == str(db) and not db.exists()


def test_every_control_of_the_widget_has_a_label(db):
    import ipywidgets
    w = practice()
    g = widget.PracticeWidget(["chain_rule", "sgd_step"], progress=Progress(db))
    for box in (w.widget, g.widget, practice("step_regimes").widget):
        stack, controls = [box], []
        while stack:
            x = stack.pop()
            stack.extend(getattr(x, "children", ()) or ())
            if isinstance(x, (ipywidgets.ValueWidget, ipywidgets.Button)) and not isinstance(
                    x, (ipywidgets.HTML, ipywidgets.Output)):
                controls.append(x)
        assert controls and all((c.description or "").strip() for c in controls)


@pytest.mark.parametrize("hidden, says", [("fsrs", "install the practice extra: pip install 'mlcourse[practice]'"),
                                          ("ipywidgets", "install the course extra (pip install 'mlcourse[course]')")])
def test_a_gate_without_an_extra_says_what_to_install_and_never_fails(db, hidden, says):
    from labtools import run_without
    r = run_without([hidden], "from mlcourse.practice import gate\ngate('03')\nprint('the notebook goes on')")
    assert r.returncode == 0, r.stderr
    assert says in r.stdout and r.stdout.rstrip().endswith("the notebook goes on")
