"""Misbehaving submissions: each is graded correctly, the grader finishes, submissions stay unmodified.

Every case is made from the ex03 solution notebook (q5 linear_c, q6 linear_inner_step, q7
best_initialisation; 3 points each) by editing cells, so no broken notebook needs to be committed.
All cases are graded in one folder with two workers, as an instructor would.
"""
import hashlib
import os
import shutil

import nbformat
import pytest

from mlcourse.grading import grader, runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTION = os.path.join(ROOT, "solutions", "ex03_initialisation.ipynb")
CASES_DIR = os.path.join(ROOT, "tests", "grading_cases")
TIMEOUT = 3.0


def _solution():
    return nbformat.read(SOLUTION, as_version=4)


def _def_cell(nb, fn):
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(f"def {fn}("))


def _replace_body(nb, fn, body):
    i = _def_cell(nb, fn)
    head = nb.cells[i].source.split("### BEGIN SOLUTION")[0].rstrip(" ")
    nb.cells[i].source = head + body
    return nb


def _insert_after(nb, fn, source):
    cell = nbformat.v4.new_code_cell(source)
    cell.pop("id")  # the solutions are nbformat 4.4, which has no cell ids
    nb.cells.insert(_def_cell(nb, fn) + 1, cell)
    return nb


def make_cases(folder, outside):
    """{file name: (expected score out of 9, {question: expected words in its message})}."""
    sentinel = os.path.join(outside, "sentinel.txt")
    cases = {}

    def save(name, nb, score, words=None):
        nbformat.write(nb, os.path.join(folder, name))
        cases[name] = (score, words or {})

    save("ex03_infinite_loop.ipynb", _replace_body(_solution(), "best_initialisation", "    while True:\n        pass\n"),
         6, {"q7": "ran longer than 3 s"})
    nb = _solution()
    nb.cells[1].source = "import not_a_real_module_xyz\n" + nb.cells[1].source
    save("ex03_crash_at_import.ipynb", nb, 0, {"q5": "NameError", "q6": "NameError", "q7": "NameError"})
    nb = _solution()
    nb.cells[1].source = "import ctypes\nctypes.string_at(0)  # segmentation fault\n" + nb.cells[1].source
    save("ex03_segfault_at_import.ipynb", nb, 0, {"q5": "NameError"})
    nb = _insert_after(_solution(), "linear_c", "import sys\nsys.exit(1)")
    save("ex03_sys_exit.ipynb", _replace_body(nb, "best_initialisation", "    import sys\n    sys.exit(0)\n"), 6,
         {"q7": "SystemExit"})
    save("ex03_os_exit_cell.ipynb", _insert_after(_solution(), "linear_inner_step", "import os\nos._exit(3)"), 9)
    save("ex03_os_exit_call.ipynb",
         _replace_body(_solution(), "linear_inner_step", "    import os\n    os._exit(0)\n"), 6,
         {"q6": "calling linear_inner_step ended the process"})
    nb = _insert_after(_solution(), "linear_c", "big = np.ones(20 * 2**30 // 8)  # 20 GB")
    save("ex03_memory_20gb.ipynb", _replace_body(
        nb, "best_initialisation", "    big = np.ones(20 * 2**30 // 8)\n    return float(np.mean(slopes))\n"), 6,
        {"q7": "MemoryError"})
    # Everything the grader's verdict goes through, patched in the learner's kernel: numpy, the comparison
    # (matching.close and the name the judges call, spec.close), the bank's judge_test, check()'s run_tests,
    # and the reference answers themselves (the engine's functions get the learner's wrong bodies).
    # Any of these would give full marks if the grader judged inside the learner's process.
    patch = ("import numpy, mlcourse.grading.matching as C, mlcourse.grading.bank as B, mlcourse.grading.feedback as F\n"
             "import mlcourse.grading.spec as S, mlcourse.checks as K\n"
             "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
             "numpy.isfinite = lambda a: numpy.ones(numpy.shape(a), bool)\n"
             "C.close = S.close = lambda *a, **k: (1.0, 'matches')\nB.judge_test = lambda t, o: (t.points, 'ok')\n"
             "F.run_tests = lambda *a, **k: []\n"
             "K.linear_c.__code__ = linear_c.__code__\nK.linear_inner_step.__code__ = linear_inner_step.__code__\n"
             "K.best_initialisation.__code__ = best_initialisation.__code__")
    nb = _replace_body(_solution(), "linear_c", "    return np.ones(len(x_support))\n")
    nb = _replace_body(nb, "linear_inner_step", "    return np.full(len(x_support), 123.0)\n")
    nb = _replace_body(nb, "best_initialisation", "    return -1.0\n")
    save("ex03_monkeypatch.ipynb", _insert_after(nb, "best_initialisation", patch), 0)
    fake = ("import json, os\nprint('q5 linear_c: 3/3 tests passed\\ntotal 9/9')\n"
            "ev = ''.join(json.dumps(e) + '\\n' for e in ({'ev': 'result', 'id': 'q5.0.0', 'spec': {'t': 'none'}},\n"
            "    {'ev': 'call', 'id': 'bogus'}, {'ev': 'cell_error', 'i': 'x'}, {'ev': 'cell', 'i': 10**9}, [1, 2]))\n"
            "for fd in range(3, 64):\n"
            "    try:\n        os.write(fd, ev.encode())\n    except OSError:\n        pass\n"
            "open('results.json', 'w').write(json.dumps({'score': 9}))")
    nb = _replace_body(_solution(), "linear_c", "    raise NotImplementedError()\n")
    nb = _replace_body(nb, "linear_inner_step", "    raise NotImplementedError()\n")
    # q7's answer builds on linear_c, so it falls with it
    save("ex03_fake_report.ipynb", _insert_after(nb, "linear_c", fake), 0,
         {"q5": "not answered", "q6": "not answered", "q7": "not answered"})
    tamper = (f"import os, shutil\nfor act in (lambda: open({sentinel!r}, 'w').write('changed'),\n"
              f"            lambda: os.remove({sentinel!r}),\n"
              f"            lambda: os.remove({os.path.join(folder, 'ex03_missing_function.ipynb')!r}),\n"
              f"            lambda: shutil.rmtree({folder!r}),\n"
              f"            lambda: open({os.path.join(folder, 'ex03_file_tamper.ipynb')!r}, 'a').write('x')):\n"
              "    try:\n        act()\n    except OSError:\n        pass")
    save("ex03_file_tamper.ipynb", _insert_after(_solution(), "linear_c", tamper), 9)
    with open(SOLUTION, "rb") as f:
        data = f.read()
    with open(os.path.join(folder, "ex03_corrupt.ipynb"), "wb") as f:
        f.write(data[: len(data) // 2])
    cases["ex03_corrupt.ipynb"] = (0, {"q5": "not a readable Jupyter notebook"})
    with open(os.path.join(folder, "ex03_not_a_notebook.ipynb"), "wb") as f:
        f.write(b"%PDF-1.4\n\xff\xfe binary \x00\x01")
    cases["ex03_not_a_notebook.ipynb"] = (0, {"q7": "not a Jupyter notebook"})
    nb = _solution()
    i = _def_cell(nb, "linear_c")
    nb.cells[i].source = nb.cells[i].source.replace("def linear_c(", "def linear_C(")
    j = _def_cell(nb, "linear_inner_step")
    nb.cells[j].source = nb.cells[j].source.replace("linear_c(", "linear_C(")
    save("ex03_renamed_function.ipynb", nb, 3, {"q5": "define a function named exactly linear_c",
                                                 "q7": "name 'linear_c' is not defined"})
    nb = _solution()
    del nb.cells[_def_cell(nb, "best_initialisation")]
    save("ex03_missing_function.ipynb", nb, 6, {"q7": "best_initialisation is not defined"})
    save("ex03_wrong_shape.ipynb", _replace_body(
        _solution(), "linear_inner_step", "    c = linear_c(alpha, x_support)\n"
        "    return ((1.0 - c) * theta + c * np.asarray(slope))[:, None]\n"), 6, {"q6": "got shape (3, 1)"})
    save("ex03_nan.ipynb", _replace_body(_solution(), "best_initialisation", "    return float('nan')\n"), 6,
         {"q7": "NaN"})
    save("ex03_top_level_loop.ipynb", _insert_after(_solution(), "linear_c", "while True:\n    pass"), 9)
    return cases


def _checksums(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("submissions"))
    outside = str(tmp_path_factory.mktemp("outside"))
    with open(os.path.join(outside, "sentinel.txt"), "w") as f:
        f.write("original")
    cases = make_cases(folder, outside)
    before = _checksums(folder)
    limits = runner.Limits(cell_timeout=TIMEOUT, total_timeout=60)
    reports = {os.path.basename(r["submission"]): r for r in grader.grade_path(folder, limits=limits, workers=2)}
    return folder, outside, cases, before, reports


def test_every_case_is_graded(graded):
    _, _, cases, _, reports = graded
    assert set(reports) == set(cases)
    for r in reports.values():
        assert r["max_score"] == 9 and r["assignment"] == "ex03"


@pytest.mark.parametrize("name", [
    "ex03_infinite_loop.ipynb", "ex03_crash_at_import.ipynb", "ex03_segfault_at_import.ipynb", "ex03_sys_exit.ipynb", "ex03_os_exit_cell.ipynb",
    "ex03_os_exit_call.ipynb", "ex03_memory_20gb.ipynb", "ex03_monkeypatch.ipynb", "ex03_fake_report.ipynb",
    "ex03_file_tamper.ipynb", "ex03_corrupt.ipynb", "ex03_not_a_notebook.ipynb", "ex03_renamed_function.ipynb",
    "ex03_missing_function.ipynb", "ex03_wrong_shape.ipynb", "ex03_nan.ipynb", "ex03_top_level_loop.ipynb"])
def test_misbehaving_submission(graded, name):
    _, _, cases, _, reports = graded
    score, words = cases[name]
    r = reports[name]
    by = {q["id"]: q for q in r["questions"]}
    assert r["score"] == score, (name, [(q["id"], q["score"], q["message"]) for q in r["questions"]], r["notes"])
    for qid, word in words.items():
        assert word in by[qid]["message"], (name, qid, by[qid]["message"])
    for q in r["questions"]:  # only the questions a case breaks lose points
        if q["id"] not in words and score > 0 and name != "ex03_monkeypatch.ipynb":
            assert q["score"] == q["max_score"], (name, q)


def test_timeouts_and_crashes_are_explained_in_the_notes(graded):
    reports = graded[4]
    assert any("code cell" in n and "ran longer than 3 s" in n for n in reports["ex03_top_level_loop.ipynb"]["notes"])
    assert any("exit code 3" in n for n in reports["ex03_os_exit_cell.ipynb"]["notes"])
    assert any("MemoryError" in n for n in reports["ex03_memory_20gb.ipynb"]["notes"])
    assert any("code cell 1 was killed by SIGSEGV" in n for n in reports["ex03_segfault_at_import.ipynb"]["notes"])


def test_the_grader_never_modifies_a_submission(graded):
    folder, _, _, before, _ = graded
    assert _checksums(folder) == before


def test_files_outside_the_work_folder_are_untouched(graded):
    folder, outside, _, _, reports = graded
    if not reports["ex03_file_tamper.ipynb"]["sandbox"].get("landlock_abi"):
        pytest.skip("this kernel has no Landlock: writes outside the work folder are limited by permissions only")
    with open(os.path.join(outside, "sentinel.txt")) as f:
        assert f.read() == "original"
    assert os.path.exists(os.path.join(folder, "ex03_missing_function.ipynb"))


def test_limits_are_reported(graded):
    sandbox = graded[4]["ex03_nan.ipynb"]["sandbox"]
    assert {"memory", "cpu", "file size"} <= set(sandbox["limits"])


def test_a_non_notebook_file_given_directly(tmp_path):
    path = tmp_path / "answers.py"
    path.write_text("def linear_c(alpha, x):\n    return 2 * alpha * (x ** 2).mean(axis=1)\n")
    r = grader.grade_file(str(path), assignment="ex03", limits=runner.Limits(cell_timeout=TIMEOUT))
    assert r["score"] == 0 and r["max_score"] == 9 and "not a readable Jupyter notebook" in r["error"]


def test_unknown_assignment_is_a_clear_error(tmp_path):
    path = tmp_path / "homework.ipynb"
    shutil.copy(SOLUTION, path)
    nb = nbformat.read(str(path), as_version=4)
    del nb.metadata["mlcourse"]
    nbformat.write(nb, str(path))
    r = grader.grade_file(str(path))
    assert r["max_score"] == 0 and "pass --assignment" in r["error"]


def test_committed_case_files_are_graded_as_documented():
    """tests/grading_cases holds the few cases that cannot be made by editing a solution."""
    for name in sorted(os.listdir(CASES_DIR)):
        if not name.endswith(".ipynb"):
            continue
        r = grader.grade_file(os.path.join(CASES_DIR, name), limits=runner.Limits(cell_timeout=TIMEOUT))
        expected = float(name.split("__score")[1].split(".")[0])
        assert r["score"] == expected, (name, r["questions"], r["notes"])
