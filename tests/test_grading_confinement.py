"""Submissions written to reach past the sandbox: private files, other submissions, detached
processes, fork storms, a full disk, and answers that call the engine's own implementation.

Each case is a solution notebook (ex06 or ex04) with cells added or a function body replaced;
the unmodified solutions are graded in the same folder, so "unaffected" means "scores what the
solution scores".  Everything is graded in one folder with two workers, as an instructor would,
while a thread measures the disk the grader's temporary folders use.
"""
import json
import os
import signal
import tempfile
import threading
import time
import uuid

import nbformat
import pytest

from mlcourse.grading import bank, blocking, feedback, grader, reports, runner, sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX06 = os.path.join(ROOT, "solutions", "ex06_few_shot.ipynb")
EX04 = os.path.join(ROOT, "solutions", "ex04_maml_fomaml.ipynb")
DISK_MB, MAX_PROCESSES = 48, 16
TOKEN = uuid.uuid4().hex[:12]          # the secret's content, the other learner's text, the daemons' names
SECRET = f"PRIVATE-{TOKEN}"
OTHER = f"OTHER-LEARNER-{TOKEN}"
COMM = f"mlcd{TOKEN[:8]}"             # /proc/<pid>/comm of every process a case detaches (15 chars at most)


def _read(path):
    return nbformat.read(path, as_version=4)


def _def_cell(nb, fn):
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(f"def {fn}("))


def _cell(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.pop("id", None)  # the solutions are nbformat 4.4, which has no cell ids
    return cell


def _insert_after(nb, fn, source):
    nb.cells.insert(_def_cell(nb, fn) + 1, _cell(source))
    return nb


def _replace_body(nb, fn, body):
    i = _def_cell(nb, fn)
    nb.cells[i].source = nb.cells[i].source.split("### BEGIN SOLUTION")[0].rstrip(" ") + body
    return nb


_NAME = ("import ctypes\n"
         f"def _rename():\n    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(b{COMM!r}), 0, 0, 0)  # PR_SET_NAME\n")


def make_cases(folder, private):
    """{file: (solution file, {question: words its message must hold (score 0)}, notes words)}."""
    cases = {}

    def save(name, nb, base, zero=None, note=None):
        nbformat.write(nb, os.path.join(folder, name))
        cases[name] = (base, zero or {}, note)

    for src in (EX06, EX04):
        save(os.path.basename(src), _read(src), src)
    other = _read(EX06)
    other.cells.insert(0, nbformat.v4.new_markdown_cell(f"My notes: {OTHER}"))
    other.cells[0].pop("id", None)
    save("ex06_other_learner.ipynb", other, EX06)
    # a private file of the grading user: echoed through a cell error, an answer's error, and prints
    leak = (f"import os\nprint(open({private!r}).read())\n"
            f"raise RuntimeError(open({private!r}).read())")
    nb = _insert_after(_read(EX06), "prototypes", leak)
    nb = _replace_body(nb, "conv3x3_same", f"    raise ValueError(open({private!r}).read())\n")
    save("ex06_read_private_file.ipynb", nb, EX06, {"q16": "PermissionError"})
    # another submission, found from the grader's own process entries, or named outright
    snoop = ("import os\n"
             "def _snoop():\n"
             "    found = []\n"
             "    for p in ('/proc/%d/cmdline' % os.getppid(), '/proc/%d/cwd' % os.getppid(), '/proc/1/environ'):\n"
             "        try:\n            found.append(open(p).read())\n        except OSError as e:\n"
             "            found.append(type(e).__name__)\n"
             f"    for p in ({folder!r}, {os.path.join(folder, 'ex06_other_learner.ipynb')!r}):\n"
             "        try:\n            found.append(str(os.listdir(p)) if os.path.isdir(p) else open(p).read())\n"
             "        except OSError as e:\n            found.append(type(e).__name__)\n"
             "    return ' '.join(found)\n"
             "print(_snoop())\nraise RuntimeError(_snoop())")
    nb = _insert_after(_read(EX06), "prototypes", snoop)
    save("ex06_read_other_submission.ipynb",
         _replace_body(nb, "conv3x3_same", "    raise ValueError(_snoop())\n"), EX06, {"q16": "PermissionError"})
    # a daemon: fork twice, setsid, ignore every signal it can, live forever
    daemon = (_NAME + "import os, signal, time\n"
              "def _daemon():\n"
              "    if os.fork() == 0:\n        os.setsid()\n"
              "        if os.fork() == 0:\n            _rename()\n"
              "            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):\n"
              "                signal.signal(s, signal.SIG_IGN)\n"
              "            while True:\n                time.sleep(0.5)\n"
              "        os._exit(0)\n"
              "_daemon()")
    nb = _insert_after(_read(EX06), "prototypes", daemon)
    save("ex06_daemon.ipynb", _replace_body(nb, "conv3x3_same", "    _daemon()\n    raise ValueError('left a daemon')\n"),
         EX06, {"q16": "left a daemon"})
    # a fork storm: processes that sleep, as many as it can make (capped here, in case nothing bounds them)
    storm = (_NAME + "import os, time\n"
             "for _ in range(300):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
             "    if pid == 0:\n        _rename()\n        time.sleep(1000)\n        os._exit(0)\n")
    save("ex06_fork_storm.ipynb", _insert_after(_read(EX06), "protonet_loss", storm), EX06,
         {"q13": "not run", "q14": "not run", "q15": "not run", "q16": "not run"}, "process limit")
    # the disk: 8 MB files until the disk bound stops it (capped at 2 GB here), and a deleted file kept open
    fill = ("import os\nkept = open('hidden.bin', 'wb')\nos.remove('hidden.bin')\n"
            "kept.write(b'\\1' * (16 * 2**20))\nkept.flush()\n"
            "for i in range(256):\n    try:\n        with open(f'fill{i}.bin', 'wb') as f:\n"
            "            f.write(b'\\1' * (8 * 2**20))\n    except OSError:\n        pass  # keep writing\n")
    save("ex06_fill_disk.ipynb", _insert_after(_read(EX06), "protonet_logits", fill), EX06,
         {"q13": "not run", "q14": "not run", "q15": "not run", "q16": "not run"}, "disk limit")
    # answers that call the engine's own implementation: q9 through a name bound in an earlier cell,
    # q10 through the module; q8 is the learner's own and must keep its marks
    nb = _insert_after(_read(EX04), "inner_update", "from mlcourse.maml import maml_loss as engine_maml_loss\n"
                       "from mlcourse import maml\nfrom mlcourse.tasks import TaskBatch\n"
                       "print(engine_maml_loss)  # the engine is free to use outside the graded calls\n"
                       "import contextlib, mlcourse.grading.blocking as B  # and switching the blocking off fails\n"
                       "B.blocked = lambda *a, **k: contextlib.nullcontext()\nB.prepare = lambda *a, **k: []")
    nb = _replace_body(nb, "maml_loss", "    return engine_maml_loss(theta, TaskBatch(x_support, y_support, x_query, "
                       "y_query), alpha, inner_steps)\n")
    nb = _replace_body(nb, "fomaml_grad", "    return maml.fomaml_grad(theta, TaskBatch(x_support, y_support, x_query, "
                       "y_query), alpha, inner_steps)\n")
    save("ex04_engine_answers.ipynb", nb, EX04, {
        "q9": "q9 asks you to write maml_loss yourself; mlcourse.maml.maml_loss is not available while q9 is graded",
        "q10": "q10 asks you to write fomaml_grad yourself; mlcourse.maml.fomaml_grad is not available while q10 "
               "is graded"})
    return cases


def _tree_bytes(folder):
    total = 0
    for d, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


def _detached():
    """pids of processes named COMM (the ones the cases detach), anywhere on the machine."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == COMM:
                    out.append(int(pid))
        except (OSError, ValueError):
            pass
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("submissions"))
    home = str(tmp_path_factory.mktemp("grading_user_home"))
    private = os.path.join(home, "id_secret")
    with open(private, "w") as f:
        f.write(SECRET)
    cases = make_cases(folder, private)
    work = str(tmp_path_factory.mktemp("grader_tmp"))
    peak, stop = [0], threading.Event()

    def measure():
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_bytes(work))
            time.sleep(0.002)
    watcher = threading.Thread(target=measure)
    old_tempdir, tempfile.tempdir = tempfile.tempdir, work
    warnings = []
    watcher.start()
    try:
        limits = runner.Limits(cell_timeout=20, total_timeout=120, disk_mb=DISK_MB, max_processes=MAX_PROCESSES)
        reps = grader.grade_path(folder, limits=limits, workers=2, on_warning=warnings.append)
    finally:
        stop.set()
        watcher.join()
        tempfile.tempdir = old_tempdir
    out = str(tmp_path_factory.mktemp("out"))
    written = reports.write_all(reps, out, gradescope_json=True)
    texts = [reports.table(reps)] + [reports.table([r]) for r in reps]
    for p in written:
        with open(p, encoding="utf-8") as f:
            texts.append(f.read())
    by = {os.path.basename(r["submission"]): r for r in reps}
    return {"cases": cases, "reports": by, "texts": texts, "peak": peak[0], "work": work, "warnings": warnings,
            "detached": _detached()}


# the questions the cases are about (an assignment's later questions may build on these functions)
KNOWN = ("q8", "q9", "q10", "q13", "q14", "q15", "q16")


def _expected(graded, name):
    base, zero, _ = graded["cases"][name]
    ref = {q["id"]: q["score"] for q in graded["reports"][os.path.basename(base)]["questions"] if q["id"] in KNOWN}
    return {qid: (0.0 if qid in zero else s) for qid, s in ref.items()}, zero


def test_solutions_score_full_marks_in_the_sandbox(graded):
    for name in ("ex06_few_shot.ipynb", "ex04_maml_fomaml.ipynb"):
        r = graded["reports"][name]
        for q in r["questions"]:
            if q["id"] in KNOWN:
                assert q["score"] == q["max_score"], (name, q)


@pytest.mark.parametrize("name", ["ex06_other_learner.ipynb", "ex06_read_private_file.ipynb",
                                  "ex06_read_other_submission.ipynb", "ex06_daemon.ipynb", "ex06_fork_storm.ipynb",
                                  "ex06_fill_disk.ipynb", "ex04_engine_answers.ipynb"])
def test_misbehaving_submission_is_graded(graded, name):
    r = graded["reports"][name]
    expected, zero = _expected(graded, name)
    got = {q["id"]: q for q in r["questions"]}
    assert {k: q["score"] for k, q in got.items() if k in KNOWN} == expected, (name, r["notes"])
    for qid, words in zero.items():
        assert words in got[qid]["message"], (name, qid, got[qid]["message"])
    note = graded["cases"][name][2]
    if note:
        assert any(note in n for n in r["notes"]), r["notes"]


def test_private_file_and_other_submission_never_reach_any_output(graded):
    for text in graded["texts"]:
        assert SECRET not in text
        assert OTHER not in text
    dump = json.dumps(list(graded["reports"].values()))
    assert SECRET not in dump and OTHER not in dump
    # the attempts themselves were refused, not skipped
    notes = " ".join(graded["reports"]["ex06_read_other_submission.ipynb"]["notes"])
    assert "PermissionError" in notes


def test_no_process_outlives_grading(graded):
    assert graded["detached"] == []
    assert _detached() == []
    assert not [d for d in os.listdir("/sys/fs/cgroup/pids") if d.startswith("mlcourse-grade-")] \
        if os.path.isdir("/sys/fs/cgroup/pids") else True


def test_disk_use_stays_near_the_bound_and_the_work_folder_is_removed(graded):
    # 2 workers: the bound, one 8 MB write in flight past it, and the other submission's small folder
    assert graded["peak"] <= (DISK_MB + 24) * 2 ** 20, graded["peak"] / 2 ** 20
    # the case did fill the disk, and this walk sees it: its files reach the bound less the 16 MB
    # deleted file it keeps open (which the walk cannot see), so a quarter is well within reach
    assert graded["peak"] >= DISK_MB * 2 ** 20 * 0.25
    assert os.listdir(graded["work"]) == []
    # the supervisor calls the bound reached within 1 MB of it (sandbox.bound_reached), and stops the run there
    assert graded["reports"]["ex06_fill_disk.ipynb"]["sandbox"]["peak_disk_mb"] >= DISK_MB - 1


def test_every_report_lists_what_was_enforced(graded):
    for r in graded["reports"].values():
        enforced = r["sandbox"]["enforced"]
        assert list(enforced) == list(grader.ENFORCED)
        assert set(enforced.values()) <= {"on", "off"}
    r = graded["reports"]["ex06_few_shot.ipynb"]
    assert "sandbox: read confinement" in reports.table([r])
    if sandbox.landlock_abi() >= 1:
        assert r["sandbox"]["enforced"]["read confinement"] == "on"
        assert all(v == "on" for v in r["sandbox"]["enforced"].values()), r["sandbox"]
        assert graded["warnings"] == []


def test_a_missing_confinement_is_warned_once_per_run():
    warned, texts = set(), []
    r = {"sandbox": {"enforced": dict.fromkeys(grader.ENFORCED, "on") | {"read confinement": "off"}}}
    for _ in range(3):
        texts += grader.warnings_for(r, warned)
    assert len(texts) == 1 and "read confinement is off" in texts[0]


def test_check_blocks_the_engine_in_the_notebook_too():
    from mlcourse import maml
    from mlcourse.tasks import TaskBatch

    def maml_loss(theta, xs, ys, xq, yq, alpha, inner_steps=1):
        return maml.maml_loss(theta, TaskBatch(xs, ys, xq, yq), alpha, inner_steps)
    results = feedback.run_tests("q9", {"maml_loss": maml_loss})
    assert results and all(r.points == 0 for r in results)
    assert all("q9 asks you to write maml_loss yourself; mlcourse.maml.maml_loss is not available while q9 is graded"
               in r.message for r in results), [r.message for r in results]
    # outside the graded call the engine works again, and another question may use it
    q = bank.question("q9")
    args = q.tests[0].calls[0]
    assert float(maml_loss(*args)) == pytest.approx(float(q.tests[0].judge.reference(*args)))


def test_forbids_are_data_validated_with_the_bank():
    assert blocking.problems(bank.QUESTIONS.values()) == []
    for q in bank.QUESTIONS.values():
        if q.id in {f"q{i}" for i in range(1, 23)}:
            assert q.forbids, q.id
    bad = bank.Question("q99", "ex99", "f", "t", forbids=("mlcourse.maml.no_such_function", "numpy.mean"))
    problems = blocking.problems([bad])
    assert len(problems) == 2 and all(p.startswith("q99: ") for p in problems)


def test_blocking_restores_the_engine_even_when_the_call_raises():
    from mlcourse import protonet
    code = protonet.prototypes.__code__
    with pytest.raises(blocking.EngineBlocked, match="q13 asks you to write prototypes yourself"):
        with blocking.blocked("q13", "prototypes", ("mlcourse.protonet.prototypes",)):
            protonet.prototypes(None, None, 1)
    assert protonet.prototypes.__code__ is code


def test_read_paths_leave_out_the_project_and_home():
    paths = {p for p, _ in sandbox.read_paths()}
    assert ROOT not in paths and os.path.expanduser("~") not in paths
    assert os.path.join(ROOT, "mlcourse") in paths
    assert not any(p.startswith(os.path.join(ROOT, "solutions")) or p.startswith(os.path.join(ROOT, "tests"))
                   for p in paths)


def test_bounds_are_validated_and_reach_the_command_line():
    with pytest.raises(ValueError, match="disk_mb"):
        runner.Limits(disk_mb=0).validate()
    with pytest.raises(ValueError, match="max_processes"):
        runner.Limits(max_processes=1).validate()
    import argparse

    from mlcourse.grading import commands
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers())
    args = parser.parse_args(["grade", "x.ipynb", "--disk", "100", "--max-processes", "8"])
    assert (args.disk, args.max_processes) == (100, 8)
    assert parser.parse_args(["grade", "x.ipynb"]).disk == 256


def test_without_read_confinement_the_report_says_so_and_the_run_warns_once(tmp_path):
    for i in range(2):
        nbformat.write(_read(EX06), str(tmp_path / f"ex06_copy{i}.ipynb"))
    warnings = []
    reps = grader.grade_path(str(tmp_path), limits=runner.Limits(confine_reads=False), workers=2,
                             on_warning=warnings.append)
    for r in reps:
        assert r["sandbox"]["enforced"]["read confinement"] == "off"
        assert all(q["score"] == q["max_score"] for q in r["questions"] if q["id"] in KNOWN)
    assert len(warnings) == 1 and "read confinement is off" in warnings[0]
    assert "read confinement off" in reports.table([reps[0]])


def test_bound_reached_counts_what_runs_and_what_is_written_now(tmp_path):
    # the check the grader repeats before it believes each step the child reports
    base = sum(sandbox._tasks(p) for p in sandbox.descendants(os.getpid()))
    kids = []
    try:
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            kids.append(pid)
        assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 30, base + 5)[0] == "processes"
        assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 30, base + 6)[0] is None
        (tmp_path / "written.bin").write_bytes(b"\1" * 2 ** 21)
        assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 21, base + 6)[0] == "disk"
        assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 23, base + 6)[0] is None
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_a_fork_the_pids_cgroup_refused_reaches_the_process_bound(tmp_path):
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cgroup.procs").write_text("")
    (cgroup / "pids.events").write_text("max 0\n")
    assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 30, 64, str(cgroup))[0] is None
    (cgroup / "pids.events").write_text("max 3\n")
    assert sandbox.refused_forks(str(cgroup)) == 3
    assert sandbox.bound_reached(os.getpid(), str(tmp_path), 2 ** 30, 64, str(cgroup))[0] == "processes"
