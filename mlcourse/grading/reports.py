"""Reports from grading results: terminal table, JSON, Markdown feedback, gradebook CSV, Gradescope.

All functions are pure (report dicts in, text or dicts out) except ``write_all``, which writes the
files into an output folder and returns their paths.  A question whose hint the notebook used
(``hint_used``) is marked "(hint used)" in the console table, the Markdown feedback and each of its
tests in Gradescope's results.json; the score is the same.  What the reports are safe against:

- ``shown_message``: the one place that decides what a test's message may say; a hidden test shows
  "passed" or "failed", plus only the lines that name a common mistake (``mistakes.PREFIX``), which
  name it in words and never give a value;
- ``display_name``: a file name as printable text (a name that is not UTF-8, or holds control
  characters, is shown with backslash escapes), so every name gets its row;
- ``csv_cell``: the OWASP rule for CSV injection (a cell a spreadsheet would evaluate, starting with
  ``= + - @`` or a tab or carriage return, is prefixed with ``'``);
- ``write_all``: files are written by name inside a folder opened without following links, each as a
  new file renamed into place (a link already there is replaced, never written through); every
  submission gets its own feedback and results file, a name that collides gets a suffix, and the
  report notes it; an output folder that is a link or is not owned by the grading user is refused.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat

from . import bank
from .mistakes import PREFIX as MISTAKE_PREFIX

GRADESCOPE_HIDDEN = "after_published"  # hidden tests: shown to learners once grades are published


def _sentence(text):
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _pts(x):
    return f"{x:g}"


def table(reports):
    """A fixed-width table: one row per submission (folder) or per question (one submission)."""
    if len(reports) == 1 and reports[0]["questions"]:
        r = reports[0]
        rows = [(q["id"], q["function"], f"{_pts(q['score'])}/{_pts(q['max_score'])}", q["status"] + _hinted(q),
                 q["message"]) for q in r["questions"]]
        head = ("question", "function", "score", "status", "message")
        lines = _fmt([head] + rows, wrap_last=70)
        lines.append(f"total {_pts(r['score'])}/{_pts(r['max_score'])} for {display_name(r['submission'])} "
                     f"({r['assignment']}, {r['execution_time']:.1f} s)")
        lines += [f"note: {printable(n)}" for n in r["notes"]]
        if r.get("sandbox", {}).get("enforced"):
            lines.append(sandbox_line(r["sandbox"]))
        return "\n".join(lines)
    qids = sorted({q["id"] for r in reports for q in r["questions"]}, key=lambda s: int(s[1:]))
    head = ("submission",) + tuple(qids) + ("total", "time", "message")
    rows = []
    for r in reports:
        by = {q["id"]: q for q in r["questions"]}
        rows.append((display_name(r["submission"]),) + tuple(_pts(by[i]["score"]) if i in by else "-" for i in qids)
                    + (f"{_pts(r['score'])}/{_pts(r['max_score'])}", f"{r['execution_time']:.1f}s",
                       r["error"] or _first_problem(r)))
    return "\n".join(_fmt([head] + rows, wrap_last=60))


HINT_NOTE = " (hint used)"


def _hinted(q):
    """HINT_NOTE for a question whose hint the notebook used (it changes no score), else the empty string."""
    return HINT_NOTE if q.get("hint_used") is True else ""


def sandbox_line(sandbox):
    """One line: what confined the submission ("sandbox: read confinement on, ..., disk bound on (256 MB)")."""
    parts = []
    for name, state in sandbox.get("enforced", {}).items():
        extra = ""
        if name == "disk bound" and state == "on" and sandbox.get("disk_bound_mb"):
            extra = f" ({sandbox['disk_bound_mb']:g} MB)"
        if name == "process bound" and state == "on" and sandbox.get("max_processes"):
            extra = f" ({sandbox['max_processes']})"
        parts.append(f"{name} {state}{extra}")
    return "sandbox: " + ", ".join(parts)


def _first_problem(r):
    bad = [q for q in r["questions"] if q["status"] != "passed"]
    return f"{bad[0]['id']}: {bad[0]['message']}" if bad else ""


def _fmt(rows, wrap_last):
    rows = [tuple(printable(c) for c in row) for row in rows]
    rows = [row[:-1] + (row[-1][:wrap_last] + ("..." if len(row[-1]) > wrap_last else ""),) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def feedback_markdown(r):
    """Per-submission feedback for the learner; hidden tests show only their score."""
    lines = [f"# Feedback: {display_name(r['submission'])}", "",
             f"**Score: {_pts(r['score'])} / {_pts(r['max_score'])}**"
             + (f" (assignment {r['assignment']}: {bank.ASSIGNMENTS.get(r['assignment'], '')})" if r["assignment"] else ""),
             ""]
    if r["error"]:
        lines += [f"**Problem:** {r['error']}", ""]
    for q in r["questions"]:
        lines += [f"## {q['id']} `{q['function']}`: {_pts(q['score'])} / {_pts(q['max_score'])}{_hinted(q)}", "",
                  f"{q['title']}. {_sentence(q['message']) if q['status'] != 'passed' else 'All tests passed.'}", ""]
        for t in q["tests"]:
            mark = "pass" if t["score"] >= t["max_score"] else "FAIL"
            shown = shown_message(t["message"], t["hidden"], mark == "pass")
            detail = "" if mark == "pass" or shown == "failed" else ": " + (
                shown.removeprefix("failed\n") if t["hidden"] else shown)
            lines.append(f"- [{mark}] {t['name']} ({_pts(t['score'])}/{_pts(t['max_score'])}){detail}")
        lines.append("")
    if r["notes"]:
        lines += ["## Notes from running your notebook", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


def gradescope(r):
    """Gradescope's results.json for one submission."""
    tests = []
    for q in r["questions"]:
        for t in q["tests"]:
            tests.append({"name": f"{q['id']} {q['function']}: {t['name']}", "score": t["score"],
                          "max_score": t["max_score"],
                          "output": shown_message(t["message"], t["hidden"], t["score"] >= t["max_score"])
                          + ("\n" + HINT_NOTE.strip() if _hinted(q) else ""),
                          "visibility": GRADESCOPE_HIDDEN if t["hidden"] else "visible"})
    out = r["error"] or f"{_pts(r['score'])} / {_pts(r['max_score'])} points"
    if r["notes"]:
        out += "\n" + "\n".join(r["notes"])
    return {"score": r["score"], "execution_time": r["execution_time"], "output": out,
            "tests": tests, "visibility": "visible", "stdout_visibility": "hidden"}


def shown_message(message, hidden, passed, fixed=False, mistake_lines=None):
    """What a test's message may show: all of it for a public test; for a hidden one "passed" or
    "failed" plus the lines naming a common mistake (they hold words, never the test's values).

    fixed: the grader wrote the message itself from no value of the test ("not answered yet: the
    function raises NotImplementedError", a function not defined, a call out of time): shown as it is.
    mistake_lines: the exact lines the test's judge may write (``mistakes.lines``); the grader passes
    them, so a line of the learner's own text (an exception's message, which may carry the hidden
    inputs) is dropped even when it contains the prefix.  Without them (a message the grader has
    already cut) every line holding the prefix is kept.
    """
    if not hidden or (fixed and not passed):
        return message
    if passed:
        return "passed"
    lines = [ln.strip() for ln in str(message or "").splitlines() if MISTAKE_PREFIX in ln]
    if mistake_lines is not None:
        lines = [ln for ln in lines if ln in mistake_lines]
    return "\n".join(["failed"] + lines)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def display_name(name):
    """A file name as printable text: bytes that are not UTF-8 and control characters become escapes."""
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_TERMINAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text):
    """Text for a terminal: control characters (escape sequences, bidi overrides) shown as escapes."""
    return _TERMINAL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value):
    """A gradebook cell a spreadsheet shows as text: the OWASP rule for CSV injection (prefix ')."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def gradebook_csv(reports):
    qids = sorted({q["id"] for r in reports for q in r["questions"]}, key=lambda s: int(s[1:]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "assignment", "sha256"] + qids + ["score", "max_score", "error"])
    for r in reports:
        by = {q["id"]: q["score"] for q in r["questions"]}
        w.writerow([csv_cell(c) for c in [display_name(r["submission"]), r["assignment"] or "", r["sha256"] or ""]
                    + [by.get(i, "") for i in qids] + [r["score"], r["max_score"], r["error"] or ""]])
    return buf.getvalue()


def _stem(name):
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(display_name(name))[0]).strip(".")
    return stem[:120] or "submission"  # room for a suffix and the temporary name within 255 bytes


def file_stems(reports):
    """{index of report: stem of its feedback / results files}, unique (case ignored); a stem already
    taken gets "-2", "-3", ... and the report a note saying so."""
    taken, out = set(), {}
    for i, r in enumerate(reports):
        base = _stem(r["submission"])
        stem, k = base, 1
        while stem.lower() in taken:
            k += 1
            stem = f"{base}-{k}"
        taken.add(stem.lower())
        out[i] = stem
        if stem != base:
            r.setdefault("notes", []).append(f"the feedback file is {stem}.md: another submission's name also "
                                             f"gives {base}.md")
    return out


class OutputFolderError(ValueError):
    """The output folder cannot be written safely (a link, not a folder, or owned by someone else)."""


def _open_folder(path, parent_fd=None):
    """A descriptor of the folder at path (made if missing), opened without following a link."""
    try:
        os.mkdir(path, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        st = os.stat(path, dir_fd=parent_fd, follow_symlinks=False)
    except OSError as e:
        raise OutputFolderError(f"the output folder {display_name(path)} cannot be used ({e.strerror}).")
    shown = display_name(path)
    if stat.S_ISLNK(st.st_mode):
        raise OutputFolderError(f"the output folder {shown} is a symbolic link; the grader never writes through "
                                "links: pass the real folder (or a new one) as --out.")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputFolderError(f"{shown} exists and is not a folder; pass a folder (or a new name) as --out.")
    if st.st_uid != os.geteuid():
        raise OutputFolderError(f"the output folder {shown} belongs to another user (uid {st.st_uid}); the grader "
                                "writes only into a folder of its own: pass a new folder as --out.")
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)


def _put(dir_fd, name, text):
    """Write text as dir_fd/name: a new file renamed into place (a link there is replaced, not followed)."""
    tmp = f".{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def check_output_folder(out_dir):
    """Refuse (OutputFolderError) an output folder the grader may not write, before any grading."""
    os.close(_open_folder(out_dir))


def write_all(reports, out_dir, gradescope_json=False):
    """report.json, gradebook.csv, feedback/<name>.md and (optionally) Gradescope results; paths written.

    Raises OutputFolderError for an output folder (or its feedback/gradescope folder) that is a link,
    not a folder, or owned by another user.
    """
    stems = file_stems(reports)
    written = []
    top = _open_folder(out_dir)
    fds = [top]
    try:
        def put(sub, name, text):
            fd = top
            if sub:
                fd = _open_folder(sub, top)
                fds.append(fd)
            _put(fd, name, text)
            written.append(os.path.join(out_dir, sub, name) if sub else os.path.join(out_dir, name))
        put("", "report.json", json.dumps(reports, indent=1))
        put("", "gradebook.csv", gradebook_csv(reports))
        for i, r in enumerate(reports):
            put("feedback", stems[i] + ".md", feedback_markdown(r))
        if gradescope_json:
            if len(reports) == 1:
                put("", "results.json", json.dumps(gradescope(reports[0]), indent=1))
            else:
                for i, r in enumerate(reports):
                    put("gradescope", stems[i] + ".json", json.dumps(gradescope(r), indent=1))
    finally:
        for fd in set(fds):
            os.close(fd)
    return written
