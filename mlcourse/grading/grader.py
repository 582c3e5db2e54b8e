"""Grade submissions: read the file once, run it isolated (``runner``), judge the outputs here.

``grade_file(path)`` returns a report (a plain dict, JSON-able); ``grade_path(path, workers=N)``
grades one notebook or every ``*.ipynb`` under a folder, N at a time.  Scores depend only on what
the learner's functions returned for each test's inputs, compared in this process with the
engine's reference answers.  Each report's ``sandbox`` says what confined the submission
(``sandbox["enforced"]``: read confinement, write confinement, process bound, process sweep, disk
bound, engine blocking, file metadata and sockets, root powers dropped, each "on" or "off"), as the
submission's supervisor saw it before any learner code ran and checked against the kernel; a
confinement this machine cannot give is warned about once per run.  A submission is read only
when it is a regular file (``read_submission``); a link or a special file gets a report saying so.
Each question's ``hint_used`` says whether the submitted notebook used its hint (``feedback.hints_used``:
a hint("qN") call or the marker hint() leaves in an output); the reports note it, the score ignores it.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ._nb import nbformat

from . import bank, feedback, mistakes, reports as _reports, runner

STATUS_PASSED, STATUS_PARTIAL, STATUS_FAILED = "passed", "partial", "failed"


MAX_NOTEBOOK = 128 * 2 ** 20  # a submission larger than this is refused unread


class NotSubmittable(Exception):
    """A submission that is not a regular file (a link, a folder, a device, a pipe) or too large."""


def _kind(mode):
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def read_submission(path):
    """(bytes, sha256) of a submission that is a regular file, opened without following a link.

    Raises NotSubmittable (with the note for the report) for a link, a special file or a file
    larger than MAX_NOTEBOOK; the file is never opened in a way that could block.
    """
    try:
        st = os.lstat(path)
    except OSError as e:
        raise NotSubmittable(f"the submission could not be read ({e.strerror})")
    refuse = ("this submission is {kind}, not a notebook file; it was not graded: submit the .ipynb file itself")
    if not stat.S_ISREG(st.st_mode):
        raise NotSubmittable(refuse.format(kind=_kind(st.st_mode)))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as e:  # replaced by a link since the look above (ELOOP), or unreadable
        raise NotSubmittable(refuse.format(kind="a symbolic link") if e.errno == 40 else
                             f"the submission could not be read ({e.strerror})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotSubmittable(refuse.format(kind=_kind(st.st_mode)))
        if st.st_size > MAX_NOTEBOOK:
            raise NotSubmittable(f"this submission is larger than {MAX_NOTEBOOK // 2 ** 20} MB; it was not graded: "
                                 "clear the notebook's outputs (Edit > Clear All Outputs) and resubmit")
        chunks, size = [], 0
        while True:
            block = os.read(fd, 1 << 20)
            if not block:
                break
            size += len(block)
            if size > MAX_NOTEBOOK:
                raise NotSubmittable(f"this submission is larger than {MAX_NOTEBOOK // 2 ** 20} MB; it was not "
                                     "graded")
            chunks.append(block)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return data, hashlib.sha256(data).hexdigest()


def sha256(path):
    """SHA-256 of a regular file (read without following a link), or None when it is not one."""
    try:
        return read_submission(path)[1]
    except NotSubmittable:
        return None


def find_submissions(path):
    """[path] for a file; every *.ipynb under a folder (sorted, checkpoints skipped).

    Entries that are not regular files (links, pipes, devices) are listed too, so that each gets a
    report saying it was refused; links to folders are never followed.
    """
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{path} does not exist; pass a notebook or a folder of notebooks.")
    if not os.path.isdir(path) or os.path.islink(path) and path.endswith(".ipynb"):
        return [path]
    found = []
    for dirpath, dirs, files in os.walk(path):
        linked = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in linked)
        found += [os.path.join(dirpath, f) for f in sorted(files + linked)
                  if f.endswith(".ipynb") and not f.startswith(".")]
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


def _named(path):
    """The assignment a file's name gives (ex03_...), or None."""
    m = re.match(r"(ex\d\d)", os.path.basename(path).lower())
    return m.group(1) if m and m.group(1) in bank.ASSIGNMENTS else None


def _claimed(nb):
    meta = nb.metadata.get("mlcourse", {}) if nb is not None else {}
    claim = meta.get("assignment") if isinstance(meta, dict) else None
    return claim if isinstance(claim, str) else None


def identify_assignment(nb, path, given=None):
    """The assignment id: `given`, else the file's name (ex03_...), else the notebook's metadata."""
    if given:
        bank.assignment_questions(given)  # validates the name
        return given
    named = _named(path)
    if named:
        return named
    claim = _claimed(nb)
    return claim if claim in bank.ASSIGNMENTS else None


def folder_assignment(files, given=None):
    """The one assignment of a folder: `given`, else the one every named file agrees on, else None."""
    if given:
        bank.assignment_questions(given)
        return given
    named = {_named(f) for f in files} - {None}
    return named.pop() if len(named) == 1 else None


def _refused(name, path, assignment, error, digest=None):
    return {"submission": name, "path": _reports.display_name(os.path.abspath(path)), "sha256": digest,
            "assignment": assignment, "score": 0.0, "max_score": 0.0, "execution_time": 0.0, "error": error,
            "notes": [], "sandbox": {}, "questions": []}


def grade_file(path, assignment=None, limits=None, root=None, folder=None):
    """Report (dict) for one submission; never raises for a bad submission, only for a bad call.

    folder: the folder's assignment when grading a folder (``folder_assignment``); a file whose
    name gives another one is graded as that one, a file whose metadata claims another is graded
    as the folder's, with a note.
    """
    limits = (limits or runner.Limits()).validate()
    t0 = time.monotonic()
    name = _reports.display_name(os.path.relpath(path, root) if root else os.path.basename(path))
    try:
        data, digest = read_submission(path)
    except NotSubmittable as e:
        return _refused(name, path, assignment or folder, str(e))
    nb, error, note = read_notebook(data)
    notes = [note] if note else []
    if root is not None and not assignment:
        assignment = _named(path) or folder
        claim = _claimed(nb)
        if assignment is None:
            error = error or ("could not tell which assignment this notebook answers (its file name does not start "
                              f"with one of {', '.join(bank.ASSIGNMENTS)}, and the folder's names do not agree on "
                              "one); pass --assignment")
        elif claim and claim != assignment:
            notes.append(f"the notebook says it answers {str(claim)[:20]}; it was graded as {assignment}, the "
                         "assignment of its file name or folder")
    else:
        given = assignment
        assignment = identify_assignment(nb, path, assignment)
        claim = _claimed(nb)
        if given and claim and claim != given:
            notes.append(f"the notebook says it answers {str(claim)[:20]}; it was graded as {given} (--assignment)")
        elif not given and not _named(path) and assignment:
            notes.append(f"graded as {assignment}, the assignment the notebook's metadata names")
    report = {"submission": name, "path": _reports.display_name(os.path.abspath(path)), "sha256": digest,
              "assignment": assignment, "score": 0.0, "max_score": 0.0, "execution_time": 0.0, "error": error,
              "notes": notes, "sandbox": {}, "questions": []}
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
        report["notes"], report["sandbox"] = notes + execution.notes, dict(execution.sandbox)
        report["sandbox"]["enforced"] = enforced(execution.sandbox, questions)
        report["sandbox"].update(execution.peaks)
    # hints are read from the submitted file here, never from the run: learner code cannot add or remove one, and
    # only the ids of this assignment's questions are kept; a hint changes no score
    hinted = set(feedback.hints_used(nb)) if nb is not None else set()
    report["questions"] = [_grade_question(q, execution, error, q.id in hinted) for q in questions]
    report["score"] = round(sum(q["score"] for q in report["questions"]), 6)
    report["max_score"] = sum(q["max_score"] for q in report["questions"])
    if sha256(path) != digest:
        report["notes"].append("warning: the submission file changed on disk while it was graded; "
                               "the grade is for the version read at the start")
    report["execution_time"] = round(time.monotonic() - t0, 3)
    return report


def _grade_question(q, execution, error, hint_used=False):
    tests = []
    for ti, t in enumerate(q.tests):
        if execution is None:
            pts, msg, fixed = 0.0, error, True
        else:
            outcomes = [execution.outcomes[f"{q.id}.{ti}.{k}"] for k in range(len(t.calls))]
            pts, msg = _judge(q, t, outcomes)
            # the grader's own words, holding no value of the test (never a learner's exception text)
            fixed = any(o.error in _SPECIAL or o.error == "NotImplementedError" for o in outcomes)
        # a hidden test's message is cut here, once, to what learners may see (pass/fail and mistake names)
        tests.append({"name": t.name, "hidden": t.hidden, "score": round(pts, 6), "max_score": t.points,
                      "message": _reports.shown_message(msg, t.hidden, pts >= t.points - 1e-9, fixed,
                                                        mistakes.lines(t.judge))})
    score = sum(t["score"] for t in tests)
    status = (STATUS_PASSED if score >= q.points - 1e-9 else STATUS_PARTIAL if score > 0 else STATUS_FAILED)
    return {"id": q.id, "function": q.function, "title": q.title, "score": round(score, 6), "max_score": q.points,
            "status": status, "hint_used": bool(hint_used), "message": _question_message(q, tests, status),
            "tests": tests}


_SPECIAL = {
    "Missing": "{fn} is not defined after running the notebook: define a function named exactly {fn}",
    "NotRun": "{msg}",
    "Timeout": "{fn} {msg}",   # msg: bank.timeout_advice's words
    "ProcessDied": "calling {fn} {msg}",
    "TooLarge": "{msg}",
    "UnreadableOutput": "{msg}",
}


def _judge(q, t, outcomes):
    for o in outcomes:
        if o.error in _SPECIAL:
            msg = bank.timeout_advice(o.message) if o.error == "Timeout" else o.message
            return 0.0, _SPECIAL[o.error].format(fn=q.function, msg=msg)
    return bank.judge_test(t, outcomes)


def _question_message(q, tests, status):
    if status == STATUS_PASSED:
        return "all tests passed"
    msgs = [t["message"] for t in tests if t["score"] < t["max_score"]]
    if msgs and all(m == msgs[0] for m in msgs):
        return msgs[0]
    failed = sum(t["score"] < t["max_score"] for t in tests)
    return f"{failed} of {len(tests)} tests failed; first: {msgs[0]}"


ENFORCED = ("read confinement", "write confinement", "process bound", "process sweep", "disk bound", "engine blocking",
            "file metadata and sockets", "root powers dropped")

_MISSING = {
    "read confinement": "learner code can read every file the grading user can read (no Landlock read rights here); "
                        "grade as a user who can read only the submissions",
    "write confinement": "learner code can write wherever the grading user can (this kernel has no Landlock)",
    "process bound": "the number of processes a submission runs is not bounded here",
    "process sweep": "a process a submission detaches (double fork, setsid) may outlive its grading here",
    "disk bound": "what a submission writes in total is not bounded here",
    "engine blocking": "answers may call the engine's own implementation of the question",
    "file metadata and sockets": "learner code can change the mode, owner, times and attributes of files the grading "
                                 "user owns, and open sockets (no seccomp filter here)",
    "root powers dropped": "learner code runs as root with capabilities the grader could not drop; grade as an "
                           "unprivileged user",
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
        "file metadata and sockets": bool(sandbox.get("seccomp")),
        "root powers dropped": sandbox.get("uid", 0) != 0 or bool(sandbox.get("capabilities_dropped")),
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
    folder = folder_assignment(files, assignment) if root is not None else None
    warned, lock = set(), threading.Lock()
    warn = on_warning or (lambda text: print(text, file=sys.stderr, flush=True))

    def one(f):
        try:
            r = grade_file(f, assignment, limits, root, folder)
        except Exception as e:  # a grader bug must cost one submission its grade, not the whole folder
            r = _refused(_reports.display_name(os.path.relpath(f, root) if root else os.path.basename(f)), f,
                         assignment, f"internal grader error ({type(e).__name__}: {str(e)[:200]}); please report it",
                         sha256(f))
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
