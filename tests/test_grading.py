"""The exercises, check(), the question bank and the reports (the isolation suite is test_grading_sandbox.py)."""
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import sys
import zipfile

import nbformat
import numpy as np
import pytest

from mlcourse import cli, tasks
from mlcourse.grading import assign, bank, codec, feedback, grader, matching, questions, reports, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTIONS = os.path.join(ROOT, "solutions")
EXERCISES = os.path.join(ROOT, "exercises")
LIMITS = runner.Limits(cell_timeout=60, total_timeout=180)


@pytest.fixture(scope="module")
def solution_reports():
    return {r["assignment"]: r for r in grader.grade_path(SOLUTIONS, limits=LIMITS, workers=2)}


@pytest.fixture(scope="module")
def exercise_reports():
    return {r["assignment"]: r for r in grader.grade_path(EXERCISES, limits=LIMITS, workers=2)}


# ---- the notebooks ---------------------------------------------------------------------------------

def test_every_assignment_has_a_solution_and_an_exercise(solution_reports, exercise_reports):
    assert set(solution_reports) == set(bank.ASSIGNMENTS) == set(exercise_reports)


def test_solutions_score_full_marks(solution_reports):
    for a, r in solution_reports.items():
        assert r["error"] is None, (a, r["error"])
        assert r["score"] == r["max_score"] > 0, (a, [(q["id"], q["message"]) for q in r["questions"]])


def test_blank_exercises_score_zero_with_a_clear_message(exercise_reports):
    for a, r in exercise_reports.items():
        assert r["score"] == 0 and r["max_score"] > 0, a
        for q in r["questions"]:
            assert q["message"] == "not answered yet: the function raises NotImplementedError", (a, q)


def test_solutions_grade_with_no_note(solution_reports):
    """A correct solution runs every cell in the grader: its set-up cell imports only what the grading child
    offers (check, check_all, hint, the engine) and no demonstration cell calls an engine function that a
    question of its assignment forbids (that cell would raise EngineBlocked and leave a note)."""
    for a, r in solution_reports.items():
        assert r["notes"] == [], (a, r["notes"])


def test_blank_exercises_note_only_their_unanswered_functions(exercise_reports):
    """A blank exercise's only notes are cells stopped by a function not answered yet (no ImportError, no
    EngineBlocked, no crash).  ex10's cells that would call the unanswered functions need the Omniglot images,
    which the grading child cannot read, so they are skipped and leave no note."""
    for a, r in exercise_reports.items():
        assert r["error"] is None, (a, r["error"])
        assert all(n.endswith("raised NotImplementedError: ") for n in r["notes"]), (a, r["notes"])
        assert r["notes"] or a == "ex10", (a, "a blank exercise should be stopped by its unanswered functions")


def test_reports_record_the_grading_time(solution_reports):
    # recorded, never bounded: `python -m mlcourse.grading.throughput` reports the timings
    for r in solution_reports.values():
        assert isinstance(r["execution_time"], float) and r["execution_time"] > 0


def test_exercises_are_in_sync_with_solutions():
    assert assign.drift(SOLUTIONS, EXERCISES) == []


def test_drift_is_detected(tmp_path):
    ex = tmp_path / "exercises"
    shutil.copytree(EXERCISES, ex)
    path = ex / "ex03_initialisation.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[3].source += "\n# edited by hand"
    nbformat.write(nb, str(path))
    problems = assign.drift(SOLUTIONS, str(ex))
    assert len(problems) == 1 and "ex03_initialisation" in problems[0] and "mlcourse assign" in problems[0]


def test_exercises_hold_no_solution_and_raise_not_implemented():
    for path in assign.notebooks(EXERCISES):
        text = open(path).read()
        assert assign.BEGIN not in text and assign.END not in text
        nb = nbformat.read(path, as_version=4)
        raising = [c for c in nb.cells if "raises-exception" in c.metadata.get("tags", [])]
        for c in raising:
            assert [o["ename"] for o in c.outputs if o["output_type"] == "error"] == ["NotImplementedError"]


def test_notebooks_are_committed_executed_and_clean():
    for path in assign.notebooks(SOLUTIONS) + assign.notebooks(EXERCISES):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), path
        assert "widgets" not in nb.metadata and "language_info" not in nb.metadata
        assert all("execution" not in c.metadata for c in nb.cells)


def test_the_bank_and_the_solutions_validate():
    assert assign.validate(SOLUTIONS) == []


def test_each_assignment_has_its_own_question_file():
    mods = questions.modules()
    assert [m.ASSIGNMENT for m in mods] == list(bank.ASSIGNMENTS) == [f"ex{i:02d}" for i in range(1, len(mods) + 1)]
    assert len(mods) >= 5
    for m in mods:
        assert os.path.basename(m.__file__) == f"{m.ASSIGNMENT}.py"
        assert [q.id for q in m.questions()] == [q.id for q in bank.assignment_questions(m.ASSIGNMENT)]
    numbers = [int(qid[1:]) for qid in bank.QUESTIONS]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))   # q1..qN, none missing or repeated
    for a in bank.ASSIGNMENTS:   # in order within an assignment (a question added later takes the next free id)
        ids = [int(q.id[1:]) for q in bank.assignment_questions(a)]
        assert ids == sorted(ids), a
    assert [bank.question(f"q{i}").points for i in range(1, 13)] == [5, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    assert [q.id for q in bank.assignment_questions("ex04")] == ["q8", "q9", "q10", "q23", "q24"]
    assert [q.id for q in bank.assignment_questions("ex05")] == ["q11", "q12", "q25"]


NEW_ASSIGNMENT = """
import numpy as np
from mlcourse.grading.spec import Question, Test, by_reference
ASSIGNMENT = "ex99"
TITLE = "A new notebook"
def questions():
    tests = (Test("x = 3", ((3.0,),), by_reference(lambda x: 2 * x)),)
    return [Question("q99", ASSIGNMENT, "double", "Twice x", tests)]
"""


def test_a_new_question_file_registers_itself(tmp_path, monkeypatch):
    """Dropping ex99.py into the questions folder adds ex99; no other file is edited."""
    (tmp_path / "ex99.py").write_text(NEW_ASSIGNMENT)
    (tmp_path / "notes.py").write_text("raise AssertionError('only exNN.py files are question files')")
    monkeypatch.setattr(questions, "__path__", [*questions.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "mlcourse.grading.questions.ex99", raising=False)
    try:
        assignments, qs = bank._gather()
    finally:
        sys.modules.pop("mlcourse.grading.questions.ex99", None)
    assert list(assignments) == [*bank.ASSIGNMENTS, "ex99"]
    assert assignments["ex99"] == "A new notebook" and list(qs)[-1] == "q99" and qs["q99"].assignment == "ex99"
    assert [(q.id, q.assignment, q.function, q.points) for q in qs.values()][:-1] == [   # the others are untouched
        (q.id, q.assignment, q.function, q.points) for q in bank.QUESTIONS.values()]


def test_a_question_file_that_breaks_the_rules_is_refused(tmp_path, monkeypatch):
    (tmp_path / "ex98.py").write_text(NEW_ASSIGNMENT.replace('"ex99"', '"ex9"'))
    monkeypatch.setattr(questions, "__path__", [*questions.__path__, str(tmp_path)])
    try:
        with pytest.raises(ValueError, match="ASSIGNMENT is 'ex9'; it must be the file's name"):
            bank._gather()
    finally:
        sys.modules.pop("mlcourse.grading.questions.ex98", None)
    (tmp_path / "ex98.py").unlink()
    (tmp_path / "ex97.py").write_text(NEW_ASSIGNMENT.replace('"ex99"', '"ex97"').replace('"q99"', '"q3"'))
    try:
        with pytest.raises(ValueError, match="question id q3 is already used by ex02"):
            bank._gather()
    finally:
        sys.modules.pop("mlcourse.grading.questions.ex97", None)


def test_validate_reports_a_question_without_tests(monkeypatch):
    q = bank.QUESTIONS["q5"]
    monkeypatch.setitem(bank.QUESTIONS, "q5", bank.Question(q.id, q.assignment, q.function, q.title, ()))
    assert "q5 has no tests" in assign.validate()


def test_strip_solution_keeps_indentation_and_rejects_unbalanced_markers():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2"
    assert assign.strip_solution(src) == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ny = 2"
    with pytest.raises(ValueError, match="never closed"):
        assign.strip_solution("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without a matching"):
        assign.strip_solution("x = 1\n### END SOLUTION")


# ---- the codec -------------------------------------------------------------------------------------

def test_codec_roundtrip_and_objects_never_travel():
    theta = [(np.ones((2, 3)), np.zeros(3)), (np.arange(3.0)[:, None], np.array([1.0]))]
    back = codec.roundtrip({"theta": theta, "n": 3, "x": 2.5, "s": "hi", "none": None, "flag": True})
    assert back["n"] == 3 and back["x"] == 2.5 and back["s"] == "hi" and back["none"] is None and back["flag"]
    assert matching.close(back["theta"], theta)[0] == 1.0

    class Sneaky:
        def __reduce__(self):
            raise AssertionError("never pickled")
    spec, arrays = codec.encode([Sneaky(), np.array([object()], dtype=object)])
    json.dumps(spec)
    assert all(a.dtype != object for a in arrays.values())
    out = codec.decode(spec, arrays)
    assert isinstance(out[0], codec.Unsupported) and isinstance(out[1], codec.Unsupported)


def test_seed_marker_gives_a_fresh_generator_each_time():
    a, b = codec.roundtrip(codec.Seed(3)), codec.roundtrip(codec.Seed(3))
    assert a is not b and a.random() == b.random()


# ---- comparisons and judges ------------------------------------------------------------------------

def test_close_messages_say_what_was_expected_without_the_reference():
    ref = np.array([0.123456, 0.654321, 0.777777])
    assert matching.close(ref + 1e-12, ref)[0] == 1.0
    frac, msg = matching.close(ref[:2], ref)
    assert frac == 0 and "expected shape (3,)" in msg and "got shape (2,)" in msg
    frac, msg = matching.close(np.array([np.nan, 1, 2]), ref)
    assert frac == 0 and "NaN" in msg
    frac, msg = matching.close(ref + 0.5, ref)
    assert frac == 0 and "0.1235" not in msg and "0.6543" not in msg and "got" in msg
    frac, msg = matching.close([(ref, ref)], [(ref, ref), (ref, ref)])
    assert frac == 0 and "list of 2" in msg


def test_episode_judge_accepts_the_engine_and_pinpoints_mistakes(monkeypatch):
    q = bank.question("q1")
    # the answers below are built on the engine's own sample_episode, which q1 forbids: lift that here
    monkeypatch.setitem(bank.QUESTIONS, "q1", dataclasses.replace(q, forbids=()))
    engine = feedback.run_tests("q1", {"sample_episode": tasks.sample_episode}, include_hidden=True)
    assert all(r.passed for r in engine)

    def overlapping(rng, classes, n_way, k_shot, k_query):  # query drawn with replacement from the support
        xs, ys, xq, yq, chosen = tasks.sample_episode(rng, classes, n_way, k_shot, k_query)
        xq = np.repeat(xs, k_query // k_shot + 1, axis=0)[: len(yq)] if k_query else xq
        return xs, ys, xq, yq, chosen

    def global_rng(rng, classes, n_way, k_shot, k_query):
        return tasks.sample_episode(np.random.default_rng(), classes, n_way, k_shot, k_query)
    res = feedback.run_tests("q1", {"sample_episode": overlapping})
    assert not res[0].passed and "disjoint" in res[0].message
    res = feedback.run_tests("q1", {"sample_episode": global_rng})
    det = [r for r in res if r.name == "deterministic for a given rng"][0]
    assert det.points == 0.5 and "same episode" in det.message
    assert q.points == 5


def test_raises_judge_requires_the_named_error(monkeypatch):
    monkeypatch.setitem(bank.QUESTIONS, "q1", dataclasses.replace(bank.question("q1"), forbids=()))

    def no_check(rng, classes, n_way, k_shot, k_query):
        return tasks.sample_episode(rng, classes, min(n_way, len(classes)), k_shot, k_query)
    res = feedback.run_tests("q1", {"sample_episode": no_check})
    r = [r for r in res if "ValueError" in r.name][0]
    assert r.points == 0 and "expected a ValueError" in r.message


# ---- check() in the notebook ------------------------------------------------------------------------

def test_check_prints_input_expectation_and_result_but_not_the_answer(capsys):
    def linear_c(alpha, x_support):
        return 2 * alpha * np.mean(x_support ** 2, axis=1) + 0.5  # off by 0.5

    feedback.check("q5", {"linear_c": linear_c})
    out = capsys.readouterr().out
    assert "q5 linear_c: 0/2 public tests passed" in out
    assert "input:  linear_c(0.1, array shape (3, 5)" in out and "expected values within rtol" in out
    x = bank.question("q5").tests[0].calls[0][1]
    reference = 2 * 0.1 * np.mean(x ** 2, axis=1)
    assert np.array2string(reference, precision=4)[1:7] not in out


def _best_initialisation(alpha, x_support, x_query, slopes):
    """q7's answer: the weighted mean of the slopes, weights (1 - c)^2 mean(x_q^2)."""
    w = (1 - 2 * alpha * np.mean(x_support ** 2, axis=1)) ** 2 * np.mean(x_query ** 2, axis=1)
    return float(np.sum(w * slopes) / np.sum(w))


def test_check_passes_and_names_hidden_tests_nowhere(capsys):
    feedback.check("q7", {"best_initialisation": _best_initialisation})
    out = capsys.readouterr().out
    assert "2/2 public tests passed" in out and "hidden" not in out


def test_check_reports_a_missing_function_and_unknown_question(capsys):
    feedback.check("q6", {})
    assert "linear_inner_step is not defined" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown question 'q99'"):
        feedback.check("q99", {})


def test_check_finds_the_callers_definitions(capsys):
    # in a notebook the caller's globals are the notebook's namespace
    globals()["best_initialisation"] = _best_initialisation
    try:
        feedback.check("q7")
    finally:
        del globals()["best_initialisation"]
    assert "2/2 public tests passed" in capsys.readouterr().out


def test_check_all_sums_public_points(capsys):
    feedback.check_all("ex03", {"best_initialisation": _best_initialisation})
    out = capsys.readouterr().out
    assert "public tests: 2/6 points" in out


def test_check_is_silent_while_grading(monkeypatch, capsys):
    monkeypatch.setenv(feedback.GRADING_ENV, "1")
    feedback.check("q1", {})
    assert "skipped while grading" in capsys.readouterr().out


# ---- reports and the command line --------------------------------------------------------------------

def test_reports_from_a_graded_solution(solution_reports, tmp_path):
    r = solution_reports["ex03"]
    gs = reports.gradescope(r)
    assert gs["score"] == r["score"] and set(gs) >= {"score", "execution_time", "output", "tests"}
    assert all(set(t) >= {"name", "score", "max_score", "output", "visibility"} for t in gs["tests"])
    assert {t["visibility"] for t in gs["tests"]} == {"visible", "after_published"}
    rows = list(csv.DictReader(io.StringIO(reports.gradebook_csv(list(solution_reports.values())))))
    assert len(rows) == len(bank.ASSIGNMENTS) and all(float(row["score"]) == float(row["max_score"]) for row in rows)
    md = reports.feedback_markdown(r)
    hidden = [t for q in r["questions"] for t in q["tests"] if t["hidden"]]
    assert hidden and all(f"[pass] {t['name']}" in md for t in hidden)
    assert "total 9/9" in reports.table([r])


def test_cli_grade_writes_every_output(tmp_path, capsys):
    sub = tmp_path / "in"
    sub.mkdir()
    shutil.copy(os.path.join(SOLUTIONS, "ex03_initialisation.ipynb"), sub / "learner.ipynb")
    out = tmp_path / "out"
    code = cli.main(["grade", str(sub / "learner.ipynb"), "--out", str(out), "--gradescope", "--quiet"])
    assert code == 0
    res = json.load(open(out / "results.json"))
    assert res["score"] == 9 and len(res["tests"]) == 9
    assert json.load(open(out / "report.json"))[0]["assignment"] == "ex03"  # from the notebook's metadata
    assert (out / "gradebook.csv").exists() and (out / "feedback" / "learner.md").exists()
    assert "total 9/9" in capsys.readouterr().out


def test_cli_reports_user_errors_in_one_line(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["grade", SOLUTIONS, "--workers", "0", "--quiet"]) == 1
    assert "workers must be an integer >= 1" in capsys.readouterr().err


def test_gradescope_bundle(tmp_path):
    out = tmp_path / "ag.zip"
    assert cli.main(["gradescope-bundle", "ex03", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        run = z.read("run_autograder").decode()
        setup = z.read("setup.sh").decode()
        pyproject = z.read("mlcourse-src/pyproject.toml").decode()
    assert {"setup.sh", "run_autograder", "mlcourse-src/pyproject.toml", "mlcourse-src/mlcourse/grading/harness.py",
            "mlcourse-src/mlcourse/grading/questions/ex03.py"} <= names
    assert "mlcourse grade" in run and "--assignment ex03" in run and "/autograder/results" in run
    # the image gets the grader's own dependencies, not only the engine's
    assert 'pip install "/autograder/source/mlcourse-src[grading]"' in setup and "import nbformat, IPython" in setup
    tomllib = pytest.importorskip("tomllib")   # Python >= 3.11
    grading = tomllib.loads(pyproject)["project"]["optional-dependencies"]["grading"]
    assert {re.split(r"[<>=]", d)[0].lower() for d in grading} >= {"nbformat", "ipython"}


def test_benchmark_script_runs_and_prints_both_timings(capsys):
    from mlcourse.grading import throughput as bench
    assert bench.main(["--submissions", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 submissions, 1 worker:" in out and "2 submissions, 2 workers:" in out and "all full marks: True" in out


def test_gradescope_run_autograder_writes_results(tmp_path):
    """The bundle's run_autograder, with its fixed paths pointed into tmp_path, grades a submission."""
    import subprocess
    import sys
    out = tmp_path / "ag.zip"
    assert cli.main(["gradescope-bundle", "ex03", "--out", str(out), "--timeout", "10"]) == 0
    ag = tmp_path / "autograder"
    (ag / "submission").mkdir(parents=True)
    shutil.copy(os.path.join(SOLUTIONS, "ex03_initialisation.ipynb"), ag / "submission" / "my work.ipynb")
    with zipfile.ZipFile(out) as z:
        script = z.read("run_autograder").decode()
    mlcourse_bin = os.path.join(os.path.dirname(sys.executable), "mlcourse")
    script = script.replace("/opt/mlcourse/bin/mlcourse", mlcourse_bin).replace("/autograder", str(ag))
    (tmp_path / "run").write_text(script)
    subprocess.run(["bash", str(tmp_path / "run")], check=True, capture_output=True, timeout=120)
    res = json.load(open(ag / "results" / "results.json"))
    assert res["score"] == 9 and len(res["tests"]) == 9


def test_check_stops_a_call_that_never_returns(monkeypatch, capsys):
    monkeypatch.setattr(feedback, "CALL_SECONDS", 0.2)

    def best_initialisation(alpha, x_support, x_query, slopes):
        while True:
            pass
    feedback.check("q7", {"best_initialisation": best_initialisation})
    assert "ran longer than 0.2 s" in capsys.readouterr().out


def test_a_call_past_the_time_limit_is_told_the_limit_and_the_common_cause_of_slowness():
    """A slow but correct answer (a loop over tasks) and one that never ends read the same words, made in one place:
    the limit in seconds, and a Python loop over tasks or episodes as the common cause of slowness."""
    from mlcourse.grading import grader
    q = bank.question("q26")
    t = q.tests[0]
    pts, msg = grader._judge(q, t, [bank.Outcome(error="Timeout", message="ran longer than 30 s (time limit)")])
    assert pts == 0 and msg.startswith("maml_loss ran longer than 30 s (time limit); look for a loop that never ends")
    assert "a Python loop over tasks or episodes where one vectorised computation" in msg
    assert msg == "maml_loss " + bank.timeout_advice("ran longer than 30 s (time limit)")
    def never_ends():
        while True:
            pass
    out = feedback.call_local(never_ends, (), seconds=0.2)
    assert out.error == "Timeout" and out.message == bank.timeout_advice("ran longer than 0.2 s")


def _input_key(args):
    spec, arrays = codec.encode(tuple(args))
    return repr(spec) + "".join(np.asarray(arrays[k]).tobytes().hex() for k in sorted(arrays))


def _perturbed(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_perturbed(v) for v in value)
    return np.asarray(value) * 1.5 + 0.1


@pytest.mark.parametrize("qid", [q.id for q in bank.QUESTIONS.values() if q.id != "q1"])
def test_check_never_prints_the_reference_values(qid, capsys):
    """A wrong answer near the reference: check() shows the learner's numbers, never the reference's."""
    q = bank.question(qid)
    public = [t for t in q.tests if not t.hidden]
    refs = [(t, t.judge.reference(*codec.roundtrip(t.calls[0]))) for t in public]
    answers = {id(t.calls[0]): _perturbed(r) for t, r in refs}
    # the learner's function receives fresh copies: recognise the test by its encoded inputs
    by_input = {_input_key(t.calls[0]): answers[id(t.calls[0])] for t in public}

    def learner(*args):
        return by_input[_input_key(args)]
    feedback.check(qid, {q.function: learner})
    out = capsys.readouterr().out
    assert f"0/{len(public)} public tests passed" in out
    for t, ref in refs:
        leaves = [x for _, v in matching._leaves(ref) for x in np.ravel(np.asarray(v, float))]
        leaf = next((x for x in leaves if abs(x) > 1e-3), leaves[0])   # the first number of the answer
        shown = f"{leaf:.4f}"
        if abs(leaf) > 1e-3 and shown not in t.describe_input(q.function):
            assert shown not in out, (qid, t.name, shown)


def test_assign_only_regenerates_the_named_assignment(tmp_path):
    shutil.copy(os.path.join(SOLUTIONS, sorted(os.listdir(SOLUTIONS))[0]), tmp_path / "ex01_a.ipynb")
    shutil.copy(os.path.join(SOLUTIONS, sorted(os.listdir(SOLUTIONS))[1]), tmp_path / "ex02_b.ipynb")
    written = assign.assign(str(tmp_path), str(tmp_path / "ex"), run=False, only=["ex02"])
    assert [os.path.basename(w) for w in written] == ["ex02_b.ipynb"]
    with pytest.raises(ValueError, match="no solution notebook for ex09"):
        assign.assign(str(tmp_path), str(tmp_path / "ex"), run=False, only=["ex09"])


def test_the_readme_counts_the_assignments_and_questions_of_the_bank():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    last = list(bank.ASSIGNMENTS)[-1]
    assert f"(ex01–{last}, {len(bank.QUESTIONS)} questions" in readme


# ---- tolerances: per element, scale-aware, and the message states the quantity the check uses --------------

def test_close_is_per_element_with_a_scale_aware_floor_and_says_so():
    ref = np.array([1000.0, 1e-9, -3.0])
    # an element near 0 of an array whose other entries are large is judged at the array's precision
    assert matching.close(ref + np.array([0.0, 2e-4, 0.0]), ref, rtol=1e-6)[0] == 1.0
    frac, msg = matching.close(ref + np.array([0.0, 0.0, 3e-3]), ref, rtol=1e-6)
    err = float(np.max(matching.relative_errors(ref + np.array([0.0, 0.0, 3e-3]), ref)))
    assert frac == 0 and f"relative error {err:.2g}" in msg and "|got - ref| / (|ref| + max |ref|)" in msg
    assert err > 1e-6   # the number printed is the one compared with rtol: never "relative error 5.7e-08" failing 1e-6
    for scale in (1e-8, 1.0, 1e8):   # the same relative mistake fails at every scale, the same rounding passes
        r = scale * np.array([0.5, -2.0, 3.0])
        assert matching.close(r * (1 + 1e-7), r)[0] == 1.0
        assert matching.close(r * (1 + 1e-3), r)[0] == 0.0
    zero = np.zeros(3)   # nothing to compute: only exact zeros pass
    assert matching.close(zero, zero)[0] == 1.0
    frac, msg = matching.close(zero + 1e-17, zero)
    assert frac == 0 and "expected exactly 0" in msg


def _float32_answers():
    f = np.float32

    def prototypes(z_support, y_support, n_way):
        z = np.asarray(z_support, f)
        return np.stack([z[y_support == k].mean(axis=0) for k in range(n_way)])

    def protonet_logits(z_query, c):
        return -((np.asarray(z_query, f)[:, None, :] - np.asarray(c, f)[None, :, :]) ** 2).sum(axis=-1)

    def returns_to_go(rewards, gamma):
        rewards = np.asarray(rewards, f)
        out, acc = np.zeros_like(rewards), np.zeros(rewards.shape[:-1], f)
        for t in reversed(range(rewards.shape[-1])):
            acc = rewards[..., t] + f(gamma) * acc
            out[..., t] = acc
        return out
    return {"prototypes": prototypes, "protonet_logits": protonet_logits, "returns_to_go": returns_to_go}


def _float32_advantages():
    f = np.float32
    returns_to_go = _float32_answers()["returns_to_go"]

    def baseline_advantages(obs, rewards, mask, gamma):
        obs, rewards, mask = (np.asarray(a, dtype=f) for a in (obs, rewards, mask))
        K, N, T = rewards.shape
        R = returns_to_go(rewards * mask, gamma)
        t = np.broadcast_to((np.arange(T, dtype=f) / f(100.0))[:, None], (N, T, 1))
        out = np.zeros_like(R)
        for k in range(K):
            s = np.clip(obs[k], -10, 10)
            phi = np.concatenate([s, s ** 2, t, t ** 2, t ** 3, np.ones((N, T, 1), f)], axis=-1)
            on = mask[k] > 0
            X, y = phi[on], R[k][on]
            w = np.linalg.solve(X.T @ X + f(1e-5) * np.eye(8, dtype=f), X.T @ y)
            a = y - X @ w
            out[k][on] = (a - a.mean()) / (a.std() + f(1e-8))
        return out
    return {"baseline_advantages": baseline_advantages, "returns_to_go": returns_to_go}


def test_a_float32_answer_to_q22_passes_too():
    res = feedback.run_tests("q22", _float32_advantages(), include_hidden=True)
    assert all(r.passed for r in res), [(r.name, r.message) for r in res if not r.passed]


@pytest.mark.parametrize("qid", ["q13", "q14", "q20"])
def test_float32_answers_computed_the_straightforward_way_pass_every_test(qid):
    res = feedback.run_tests(qid, _float32_answers(), include_hidden=True)
    assert all(r.passed for r in res), [(r.name, r.message) for r in res if not r.passed]


# ---- questions whose wording allows two readings, or rules a shortcut out --------------------------------

def test_q22_accepts_the_sample_standard_deviation_with_a_note():
    from mlcourse.grading.questions import ex08
    for t in bank.question("q22").tests:
        args = codec.roundtrip(t.calls[0])
        pts, msg = bank.judge_test(t, [bank.Outcome(value=ex08.sample_std_advantages(*args))])
        assert pts == t.points and "ddof=1" in msg and msg.startswith("accepted"), (t.name, msg)
        pts, msg = bank.judge_test(t, [bank.Outcome(value=t.judge.reference(*args))])
        assert pts == t.points and msg.startswith("matches")
    with open(os.path.join(SOLUTIONS, "ex08_maml_rl.ipynb"), encoding="utf-8") as f:
        assert "ddof=0" in f.read()   # the prompt says which standard deviation


def _ex08_answers(**changes):
    def reinforce_loss(log_probs, advantages, mask):
        lp, adv, m = (np.asarray(a, float) for a in (log_probs, advantages, mask))
        masked = m if changes.get("mask", True) else 1.0
        steps = m.sum(axis=(1, 2)) if changes.get("steps", True) else m.shape[1] * m.shape[2]
        return -(lp * adv * masked).sum(axis=(1, 2)) / steps
    return {"reinforce_loss": reinforce_loss}


@pytest.mark.parametrize("change", [{"steps": False}, {"mask": False}])
def test_check_catches_a_reinforce_loss_that_ignores_early_ends(change, capsys):
    """Dividing by T (all N*T steps) or summing past an episode's end fails a *public* test of q21."""
    feedback.check("q21", _ex08_answers())
    assert "3/3 public tests passed" in capsys.readouterr().out
    feedback.check("q21", _ex08_answers(**change))
    out = capsys.readouterr().out
    assert "\N{BALLOT X} episodes that end early" in out and "this looks like a common mistake" in out, out


def test_every_question_of_ex08_exercises_early_ended_episodes_in_public():
    for qid in ("q20", "q21", "q22"):
        public = [t for t in bank.question(qid).tests if not t.hidden]
        masks = [np.asarray(a) for t in public for a in t.calls[0]
                 if isinstance(a, np.ndarray) and a.ndim == 3 and set(np.unique(a)) <= {0.0, 1.0}]
        rewards_end = [t for t in public if "end early" in t.name]
        assert rewards_end, qid
        if qid != "q20":   # q20 takes only rewards (0 after the end)
            assert any(not m.all() for m in masks), qid


def test_q24_as_the_difference_of_two_meta_gradients_does_not_get_full_marks():
    from mlcourse import maml, tree
    from mlcourse.tasks import TaskBatch
    q = bank.question("q24")
    earned = 0.0
    names = []
    for t in q.tests:
        th, xs, ys, xq, yq, alpha = codec.roundtrip(t.calls[0])
        b = TaskBatch(xs, ys, xq, yq)
        diff = codec.roundtrip(tree.sub(maml.maml_grad(th, b, alpha, 1), maml.fomaml_grad(th, b, alpha, 1)))
        pts, msg = bank.judge_test(t, [bank.Outcome(value=diff)])
        earned += pts
        if pts < t.points:
            names.append(msg.split("(", 2)[-1])
        # the reference is the term itself, which equals the difference wherever the difference keeps digits
        if alpha > 1e-3:
            assert pts == t.points
    assert earned < q.points
    assert any("two meta-gradients subtracted" in n for n in names) and not any(t.hidden for t in q.tests
                                                                                if "1e-18" in t.name)


def test_q15s_hidden_test_tells_prototypes_from_the_queries_from_the_answer():
    from mlcourse.grading.questions._common_mistakes import MISTAKES
    t = next(t for t in bank.question("q15").tests if t.hidden)
    args = codec.roundtrip(t.calls[0])
    assert t.judge.reference(*args) > 1.0   # overlapping classes: a loss far from 0
    for name in ("prototypes from the queries", "a naive softmax"):
        m = next(m for m in MISTAKES["q15"] if m.name == name)
        pts, msg = bank.judge_test(t, [bank.Outcome(value=codec.roundtrip(m.wrong_answer(*args)))])
        assert pts == 0 and f"({name})" in msg


# ---- hints: opt-in, recorded -------------------------------------------------------------------------------

def test_every_question_has_a_hint_that_is_not_its_answer():
    for q in bank.QUESTIONS.values():
        assert q.hint, q.id
        assert not any(assign.normalise(f) in assign.normalise(q.hint) for f in q.spoilers), q.id


def test_hint_prints_the_hint_and_check_then_says_it_was_used(capsys, monkeypatch):
    monkeypatch.setattr(feedback, "_HINTS_SHOWN", set())
    ns = {"linear_c": lambda alpha, xs: 2 * alpha * np.mean(np.asarray(xs) ** 2, axis=1)}
    feedback.check("q5", ns)
    assert "(hint used)" not in capsys.readouterr().out
    feedback.hint("q5")
    out = capsys.readouterr().out
    assert bank.question("q5").hint in out and "hint used for q5" in out
    feedback.check("q5", ns)
    assert "(hint used)" in capsys.readouterr().out
    feedback.check("q6", {})
    assert "(hint used)" not in capsys.readouterr().out


def test_hints_used_reads_the_call_and_the_marker_from_a_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\nhint( 'q3' )"),
        nbformat.v4.new_code_cell("print('no call here')", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="hint used for q7 (check() and ...)\n")]),
        nbformat.v4.new_code_cell("", outputs=[
            nbformat.v4.new_output("display_data", data={feedback.HINT_MIME: {"question": "q24"},
                                                         "text/plain": "hint used for q24"})]),
        nbformat.v4.new_markdown_cell("hint('q9') in prose is not a call"),
        nbformat.v4.new_code_cell("hint('q99')  # not a question"),
    ])
    assert feedback.hints_used(nb) == ["q3", "q7", "q24"]
    with open(os.path.join(SOLUTIONS, "ex02_meta_gradient.ipynb"), encoding="utf-8") as f:
        assert feedback.hints_used(nbformat.read(f, as_version=4)) == []


def test_hints_used_reads_a_notebook_of_any_shape_without_error():
    """A submitted file's fields may have any type: hints_used reads what it can and names only real questions."""
    odd = {"cells": [
        "not a cell", {"cell_type": "code", "source": ["hint(", "'q4')"], "outputs": "not a list"},
        {"cell_type": "code", "source": 7, "outputs": [3, {"data": ["x"]}, {"text": ["hint used for q5"]},
                                                       {"data": {feedback.HINT_MIME: {"question": ["q6"]}}},
                                                       {"data": {feedback.HINT_MIME: {"question": "q999"}}},
                                                       {"data": {feedback.HINT_MIME: "q7", "text/plain": 5}}]},
        {"cell_type": "code"}]}
    assert feedback.hints_used(odd) == ["q4", "q5"]
    for nb in ({}, {"cells": None}, {"cells": {"a": 1}}, []):
        assert feedback.hints_used(nb) == []


def _with_hint_cell(tmp_path, qid):
    nb = nbformat.read(os.path.join(SOLUTIONS, "ex02_meta_gradient.ipynb"), as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(f'hint("{qid}")'))
    nb.cells[2].pop("id")   # the solutions are nbformat 4.4, whose cells have no id
    path = tmp_path / "ex02_meta_gradient.ipynb"
    nbformat.write(nb, str(path))
    return str(path)


def test_the_grader_notes_a_hint_used_and_scores_it_the_same(tmp_path):
    """A solution with a hint("q3") cell: full marks, no note from the run, and "(hint used)" on q3 only, in
    the report, the console table, the Markdown feedback and Gradescope's results.json."""
    plain = grader.grade_file(os.path.join(SOLUTIONS, "ex02_meta_gradient.ipynb"), limits=LIMITS)
    hinted = grader.grade_file(_with_hint_cell(tmp_path, "q3"), limits=LIMITS)
    for r in (plain, hinted):
        assert r["error"] is None and r["notes"] == [] and r["score"] == r["max_score"] > 0, r["notes"]
    assert {q["id"]: q["hint_used"] for q in plain["questions"]} == {"q2": False, "q3": False, "q4": False}
    assert {q["id"]: q["hint_used"] for q in hinted["questions"]} == {"q2": False, "q3": True, "q4": False}
    assert [q["score"] for q in hinted["questions"]] == [q["score"] for q in plain["questions"]]
    for r, want in ((plain, 0), (hinted, 1)):
        table = reports.table([r])
        assert table.count("(hint used)") == want, table
        assert (re.search(r"^q3 .*passed \(hint used\)", table, re.M) is not None) == bool(want)
        md = reports.feedback_markdown(r)
        assert md.count("(hint used)") == want and ("## q3 `dtheta_prime_dtheta`: 4 / 4 (hint used)" in md) == bool(want)
        gs = reports.gradescope(r)
        noted = {t["name"].split(":")[0] for t in gs["tests"] if "(hint used)" in t["output"]}
        assert noted == ({"q3 dtheta_prime_dtheta"} if want else set())
        assert gs["score"] == plain["score"]


def test_a_hint_for_a_question_of_another_assignment_or_none_is_not_noted(tmp_path):
    """Only the ids of the graded assignment's questions can be marked: q5 is ex03's, q99 is no question."""
    nb = nbformat.read(_with_hint_cell(tmp_path, "q5"), as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output(
        "display_data", data={feedback.HINT_MIME: {"question": "q99"}, "text/plain": "hint used for q999"})]))
    nb.cells[2].pop("id")
    nbformat.write(nb, str(tmp_path / "ex02_meta_gradient.ipynb"))
    r = grader.grade_file(str(tmp_path / "ex02_meta_gradient.ipynb"), limits=LIMITS)
    assert r["score"] == r["max_score"] and not any(q["hint_used"] for q in r["questions"])
    assert "(hint used)" not in reports.table([r]) + reports.feedback_markdown(r) + json.dumps(reports.gradescope(r))


# ---- no spoilers: the learner versions never show a derivation question's answer ---------------------------

def test_a_learner_version_showing_a_derivation_answer_is_refused():
    """The check itself can fail: put q3's old docstring (its answer) back into the learner version."""
    nb = nbformat.read(os.path.join(SOLUTIONS, "ex02_meta_gradient.ipynb"), as_version=4)
    ex = assign.make_exercise(nb)
    assert assign.spoilers(ex, bank.assignment_questions("ex02")) == []
    cell = next(c for c in ex.cells if c.source.startswith("def dtheta_prime_dtheta("))
    cell.source = cell.source.replace('"""', '"""I - alpha H: ', 1)
    assert ("q3", "I - alpha H") in assign.spoilers(ex, bank.assignment_questions("ex02"))
    md = next(c for c in ex.cells if c.cell_type == "markdown" and "q3" in c.source)
    for answer in (r"$I - \alpha H$", "I − αH", "np.eye(d) - alpha * H"):
        md.source += "\n" + answer
        assert any(qid == "q3" for qid, _ in assign.spoilers(ex, bank.assignment_questions("ex02"))), answer


def test_every_derivation_question_has_answer_forms_that_its_solution_uses():
    """Each derivation question lists forms of its answer, and its solution block writes one (so the check bites)."""
    derivations = {"q3", "q4", "q5", "q6", "q7", "q25"}
    assert {q.id for q in bank.QUESTIONS.values() if q.spoilers} >= derivations
    for q in bank.QUESTIONS.values():
        if not q.spoilers:
            continue
        path = next(p for p in assign.notebooks(SOLUTIONS) if os.path.basename(p).startswith(q.assignment))
        nb = nbformat.read(path, as_version=4)
        block = "\n".join(c.source.split(assign.BEGIN, 1)[1] for c in nb.cells
                          if c.cell_type == "code" and f"def {q.function}(" in c.source and assign.BEGIN in c.source)
        assert any(assign.normalise(f) in assign.normalise(block) for f in q.spoilers), q.id
        ex = nbformat.read(os.path.join(EXERCISES, os.path.basename(path)), as_version=4)
        assert assign.spoilers(ex, [q]) == [], q.id


def test_a_hint_in_a_real_kernel_leaves_its_marker_and_check_says_so(tmp_path):
    """In Jupyter: hint() prints the hint, check() notes it, and the saved notebook records it for the grader."""
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom mlcourse.grading import check, hint"),
        nbformat.v4.new_code_cell('hint("q5")'),
        nbformat.v4.new_code_cell("def linear_c(alpha, x_support):\n    return alpha * np.mean(x_support ** 2, axis=1)\n"
                                  'check("q5")'),
    ])
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert bank.question("q5").hint in shown
    assert any(feedback.HINT_MIME in o.get("data", {}) for o in nb.cells[1].outputs)
    checked = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "(hint used)" in checked.splitlines()[0] and "(the factor 2 lost)" in checked
    assert feedback.hints_used(nb) == ["q5"]
    nb.cells[1].source = "pass"                # the call edited away: the output still records the hint
    assert feedback.hints_used(nb) == ["q5"]
    nb.cells[1].outputs = []                   # and with the output cleared too, nothing is left (documented)
    assert feedback.hints_used(nb) == []
