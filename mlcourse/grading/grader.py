"""Grade submissions: read the file once, run it isolated (``runner``), judge the outputs here.

``grade_file(path)`` returns a report (a plain dict, JSON-able); ``grade_path(path, workers=N)``
grades one notebook or every ``*.ipynb`` under a folder, N at a time.  Scores depend only on what
the learner's functions returned for each test's inputs, compared in this process with the
engine's reference answers.  Each report's ``sandbox`` says what confined the submission
(``sandbox["enforced"]``: read confinement, write confinement, process bound, process sweep, disk
bound, engine blocking, each "on" or "off"); a confinement this machine cannot give is warned
about once per run.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ._nb import nbformat

from . import bank, runner

STATUS_PASSED, STATUS_PARTIAL, STATUS_FAILED = "passed", "partial", "failed"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_submissions(path):
    """[path] for a file; every *.ipynb under a folder (sorted, checkpoints skipped)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} does not exist; pass a notebook or a folder of notebooks.")
    found = []
    for dirpath, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".ipynb") and not f.startswith(".")]
    if not found:
        raise FileNotFoundError(f"no .ipynb file under {path}; pass a notebook or a folder holding some.")
    return found


def read_notebook(data):
    """(notebook, error, note) for the bytes of a submission.

    A notebook Jupyter can open is graded even when it breaks a detail of the schema (the note
    says so); only a file whose cells cannot be read is an error.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "this file is not a Jupyter notebook (it is not UTF-8 text); submit the .ipynb file", None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several types for bad JSON / bad structure
        return None, (f"this file is not a readable Jupyter notebook ({type(e).__name__}: {str(e)[:120]}); "
                      "download it again from Jupyter (File > Download) and resubmit"), None
    try:
        nbformat.validate(nb)
    except Exception as e:
        cells = nb.get("cells")
        if not isinstance(cells, list) or not all(isinstance(c, dict) and c.get("cell_type") in
                                                  ("code", "markdown", "raw") and isinstance(c.get("source"), str)
                                                  for c in cells):
            return None, (f"the notebook is damaged ({str(e).splitlines()[0][:160]}); "
                          "re-save it in Jupyter and resubmit"), None
        return nb, None, f"the notebook does not follow the format exactly ({str(e).splitlines()[0][:120]}); graded anyway"
    return nb, None, None


def identify_assignment(nb, path, given=None):
    """The assignment id: `given`, else the notebook's metadata, else the file name (ex03_...)."""
    if given:
        bank.assignment_questions(given)  # validates the name
        return given
    if nb is not None:
        meta = nb.metadata.get("mlcourse", {})
        if isinstance(meta, dict) and meta.get("assignment") in bank.ASSIGNMENTS:
            return meta["assignment"]
    m = re.match(r"(ex\d\d)", os.path.basename(path).lower())
    if m and m.group(1) in bank.ASSIGNMENTS:
        return m.group(1)
    return None


def grade_file(path, assignment=None, limits=None, root=None):
    """Report (dict) for one submission; never raises for a bad submission, only for a bad call."""
    limits = (limits or runner.Limits()).validate()
    t0 = time.monotonic()
    name = os.path.relpath(path, root) if root else os.path.basename(path)
    digest = sha256(path)
    with open(path, "rb") as f:
        data = f.read()
    nb, error, note = read_notebook(data)
    assignment = identify_assignment(nb, path, assignment)
    report = {"submission": name, "path": os.path.abspath(path), "sha256": digest, "assignment": assignment,
              "score": 0.0, "max_score": 0.0, "execution_time": 0.0, "error": error, "notes": [], "sandbox": {},
              "questions": []}
    if assignment is None:
        report["error"] = error or ("could not tell which assignment this notebook answers (no mlcourse metadata, "
                                    f"file name not one of {', '.join(bank.ASSIGNMENTS)}); pass --assignment")
        report["execution_time"] = round(time.monotonic() - t0, 3)
        return report
    questions = bank.assignment_questions(assignment)
    if nb is None:
        execution = None
    else:
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
        execution = runner.execute(cells, questions, limits)
        report["notes"], report["sandbox"] = ([note] if note else []) + execution.notes, dict(execution.sandbox)
        report["sandbox"]["enforced"] = enforced(execution.sandbox, questions)
        report["sandbox"].update(execution.peaks)
    report["questions"] = [_grade_question(q, execution, error) for q in questions]
    report["score"] = round(sum(q["score"] for q in report["questions"]), 6)
    report["max_score"] = sum(q["max_score"] for q in report["questions"])
    if sha256(path) != digest:
        report["notes"].append("warning: the submission file changed on disk while it was graded; "
                               "the grade is for the version read at the start")
    report["execution_time"] = round(time.monotonic() - t0, 3)
    return report


def _grade_question(q, execution, error):
    tests = []
    for ti, t in enumerate(q.tests):
        if execution is None:
            pts, msg = 0.0, error
        else:
            outcomes = [execution.outcomes[f"{q.id}.{ti}.{k}"] for k in range(len(t.calls))]
            pts, msg = _judge(q, t, outcomes)
        tests.append({"name": t.name, "hidden": t.hidden, "score": round(pts, 6), "max_score": t.points,
                      "message": msg})
    score = sum(t["score"] for t in tests)
    status = (STATUS_PASSED if score >= q.points - 1e-9 else STATUS_PARTIAL if score > 0 else STATUS_FAILED)
    return {"id": q.id, "function": q.function, "title": q.title, "score": round(score, 6), "max_score": q.points,
            "status": status, "message": _question_message(q, tests, status), "tests": tests}


_SPECIAL = {
    "Missing": "{fn} is not defined after running the notebook: define a function named exactly {fn}",
    "NotRun": "{msg}",
    "Timeout": "{fn} {msg}; look for a loop that never ends",
    "ProcessDied": "calling {fn} {msg}",
    "TooLarge": "{msg}",
    "UnreadableOutput": "{msg}",
}


def _judge(q, t, outcomes):
    for o in outcomes:
        if o.error in _SPECIAL:
            return 0.0, _SPECIAL[o.error].format(fn=q.function, msg=o.message)
    return bank.judge_test(t, outcomes)


def _question_message(q, tests, status):
    if status == STATUS_PASSED:
        return "all tests passed"
    msgs = [t["message"] for t in tests if t["score"] < t["max_score"]]
    if msgs and all(m == msgs[0] for m in msgs):
        return msgs[0]
    failed = sum(t["score"] < t["max_score"] for t in tests)
    return f"{failed} of {len(tests)} tests failed; first: {msgs[0]}"


ENFORCED = ("read confinement", "write confinement", "process bound", "process sweep", "disk bound", "engine blocking")

_MISSING = {
    "read confinement": "learner code can read every file the grading user can read (no Landlock read rights here); "
                        "grade as a user who can read only the submissions",
    "write confinement": "learner code can write wherever the grading user can (this kernel has no Landlock)",
    "process bound": "the number of processes a submission runs is not bounded here",
    "process sweep": "a process a submission detaches (double fork, setsid) may outlive its grading here",
    "disk bound": "what a submission writes in total is not bounded here",
    "engine blocking": "answers may call the engine's own implementation of the question",
}


def enforced(sandbox, questions=()):
    """{confinement: "on" | "off"} from the sandbox info the grading child reported."""
    limits = sandbox.get("limits") or []
    on = {
        "read confinement": bool(sandbox.get("reads_confined")),
        "write confinement": bool(sandbox.get("writes_confined", sandbox.get("landlock_abi"))),
        "process bound": bool(sandbox.get("pids_cgroup") or "processes" in limits or sandbox.get("subreaper")),
        "process sweep": bool(sandbox.get("subreaper") or sandbox.get("pids_cgroup")),
        "disk bound": bool(sandbox.get("disk_bound_mb")),
        "engine blocking": bool(sandbox.get("engine_blocking")) or not any(q.forbids for q in questions),
    }
    return {k: "on" if on[k] else "off" for k in ENFORCED}


def warnings_for(report, warned):
    """Warnings (once each: `warned` is the set already given) for confinements a report lacks."""
    out = []
    for name, state in report.get("sandbox", {}).get("enforced", {}).items():
        if state != "on" and name not in warned:
            warned.add(name)
            out.append(f"warning: {name} is off on this machine: {_MISSING.get(name, '')} (see docs/grading.md)")
    return out


def grade_path(path, assignment=None, limits=None, workers=1, on_report=None, on_warning=None):
    """Reports for one file or every notebook under a folder, `workers` submissions at a time.

    on_warning(text) hears, once per run, of each confinement this machine could not enforce
    (default: printed on stderr).
    """
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}.")
    files = find_submissions(path)
    root = path if os.path.isdir(path) else None
    warned, lock = set(), threading.Lock()
    warn = on_warning or (lambda text: print(text, file=sys.stderr, flush=True))

    def one(f):
        try:
            r = grade_file(f, assignment, limits, root)
        except Exception as e:  # a grader bug must cost one submission its grade, not the whole folder
            r = {"submission": os.path.relpath(f, root) if root else os.path.basename(f), "path": os.path.abspath(f),
                 "sha256": sha256(f), "assignment": assignment, "score": 0.0, "max_score": 0.0,
                 "execution_time": 0.0, "error": f"internal grader error ({type(e).__name__}: {e}); "
                 "please report it", "notes": [], "sandbox": {}, "questions": []}
        with lock:
            for text in warnings_for(r, warned):
                warn(text)
        if on_report:
            on_report(r)
        return r
    if workers == 1 or len(files) == 1:
        return [one(f) for f in files]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # each submission waits on its own child process
        return list(pool.map(one, files))
