"""Reports from grading results: terminal table, JSON, Markdown feedback, gradebook CSV, Gradescope.

All functions are pure (report dicts in, text or dicts out) except ``write_all``, which writes the
files into an output folder and returns their paths.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re

from . import bank

GRADESCOPE_HIDDEN = "after_published"  # hidden tests: shown to learners once grades are published


def _sentence(text):
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _pts(x):
    return f"{x:g}"


def table(reports):
    """A fixed-width table: one row per submission (folder) or per question (one submission)."""
    if len(reports) == 1 and reports[0]["questions"]:
        r = reports[0]
        rows = [(q["id"], q["function"], f"{_pts(q['score'])}/{_pts(q['max_score'])}", q["status"], q["message"])
                for q in r["questions"]]
        head = ("question", "function", "score", "status", "message")
        lines = _fmt([head] + rows, wrap_last=70)
        lines.append(f"total {_pts(r['score'])}/{_pts(r['max_score'])} for {r['submission']} "
                     f"({r['assignment']}, {r['execution_time']:.1f} s)")
        lines += [f"note: {n}" for n in r["notes"]]
        if r.get("sandbox", {}).get("enforced"):
            lines.append(sandbox_line(r["sandbox"]))
        return "\n".join(lines)
    qids = sorted({q["id"] for r in reports for q in r["questions"]}, key=lambda s: int(s[1:]))
    head = ("submission",) + tuple(qids) + ("total", "time", "message")
    rows = []
    for r in reports:
        by = {q["id"]: q for q in r["questions"]}
        rows.append((r["submission"],) + tuple(_pts(by[i]["score"]) if i in by else "-" for i in qids)
                    + (f"{_pts(r['score'])}/{_pts(r['max_score'])}", f"{r['execution_time']:.1f}s",
                       r["error"] or _first_problem(r)))
    return "\n".join(_fmt([head] + rows, wrap_last=60))


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
    rows = [tuple(str(c) for c in row) for row in rows]
    rows = [row[:-1] + (row[-1][:wrap_last] + ("..." if len(row[-1]) > wrap_last else ""),) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def feedback_markdown(r):
    """Per-submission feedback for the learner; hidden tests show only their score."""
    lines = [f"# Feedback: {r['submission']}", "",
             f"**Score: {_pts(r['score'])} / {_pts(r['max_score'])}**"
             + (f" (assignment {r['assignment']}: {bank.ASSIGNMENTS.get(r['assignment'], '')})" if r["assignment"] else ""),
             ""]
    if r["error"]:
        lines += [f"**Problem:** {r['error']}", ""]
    for q in r["questions"]:
        lines += [f"## {q['id']} `{q['function']}`: {_pts(q['score'])} / {_pts(q['max_score'])}", "",
                  f"{q['title']}. {_sentence(q['message']) if q['status'] != 'passed' else 'All tests passed.'}", ""]
        for t in q["tests"]:
            mark = "pass" if t["score"] >= t["max_score"] else "FAIL"
            detail = "" if t["hidden"] or mark == "pass" else f": {t['message']}"
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
                          "output": t["message"] if not t["hidden"] else ("passed" if t["score"] >= t["max_score"]
                                                                          else "failed (hidden test)"),
                          "visibility": GRADESCOPE_HIDDEN if t["hidden"] else "visible"})
    out = r["error"] or f"{_pts(r['score'])} / {_pts(r['max_score'])} points"
    if r["notes"]:
        out += "\n" + "\n".join(r["notes"])
    return {"score": r["score"], "execution_time": r["execution_time"], "output": out,
            "tests": tests, "visibility": "visible", "stdout_visibility": "hidden"}


def gradebook_csv(reports):
    qids = sorted({q["id"] for r in reports for q in r["questions"]}, key=lambda s: int(s[1:]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "assignment", "sha256"] + qids + ["score", "max_score", "error"])
    for r in reports:
        by = {q["id"]: q["score"] for q in r["questions"]}
        w.writerow([r["submission"], r["assignment"] or "", r["sha256"]] + [by.get(i, "") for i in qids]
                   + [r["score"], r["max_score"], r["error"] or ""])
    return buf.getvalue()


def _stem(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(name)[0]) or "submission"


def write_all(reports, out_dir, gradescope_json=False):
    """report.json, gradebook.csv, feedback/<name>.md and (optionally) Gradescope results; paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def put(rel, text):
        p = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        written.append(p)
    put("report.json", json.dumps(reports, indent=1))
    put("gradebook.csv", gradebook_csv(reports))
    for r in reports:
        put(os.path.join("feedback", _stem(r["submission"]) + ".md"), feedback_markdown(r))
    if gradescope_json:
        if len(reports) == 1:
            put("results.json", json.dumps(gradescope(reports[0]), indent=1))
        else:
            for r in reports:
                put(os.path.join("gradescope", _stem(r["submission"]) + ".json"), json.dumps(gradescope(r), indent=1))
    return written
