"""`mlcourse grade`, `mlcourse assign`, `mlcourse validate`, `mlcourse gradescope-bundle`.

Each command declares what it needs from the ``grading`` extra (``needs``: the extra and the modules it
imports); the command line checks them first and, when one is missing, says which extra to install.
Building a Gradescope bundle needs nothing beyond the engine.
"""
from __future__ import annotations

import os
import sys

from . import bank  # the rest is imported by the command that needs it: `mlcourse --help` stays fast

# the command line imports nbformat to check the extra before any command runs: skip the optional
# grammar package jsonschema would build at that import (2-8 s), as ``_nb`` does
sys.modules.setdefault("rfc3987_syntax", None)


def _course_dir(sub):
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), sub)


def cmd_grade(args):
    from . import grader, reports, runner
    limits = runner.Limits(cell_timeout=args.timeout, total_timeout=args.total_timeout, memory_mb=args.memory,
                           disk_mb=args.disk, max_processes=args.max_processes)
    limits.validate()
    if args.gradescope and not args.out:
        raise ValueError("--gradescope writes results.json into the --out folder; add --out DIR.")
    if args.assignment:
        bank.assignment_questions(args.assignment)
    if args.out:
        reports.check_output_folder(args.out)  # a link or another user's folder is refused before grading
    done = []

    def progress(r):
        done.append(r)
        if not args.quiet:
            print(f"[{len(done)}] {r['submission']}: {r['score']:g}/{r['max_score']:g} ({r['execution_time']:.1f} s)",
                  file=sys.stderr, flush=True)
    reps = grader.grade_path(args.path, args.assignment, limits, args.workers, on_report=progress)
    print(reports.table(reps))
    if args.out:
        written = reports.write_all(reps, args.out, gradescope_json=args.gradescope)
        print(f"wrote {len(written)} file(s) in {os.path.abspath(args.out)} "
              "(report.json, gradebook.csv, feedback/" + (", results.json" if args.gradescope else "") + ")")
    return 0


def cmd_assign(args):
    from . import assign as assign_mod
    if args.check:
        problems = assign_mod.drift(args.solutions, args.exercises)
        for p in problems:
            print(p)
        print("exercises are in sync with the solutions" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    written = assign_mod.assign(args.solutions, args.exercises, run=not args.no_execute, timeout=args.timeout,
                                only=args.only)
    for w in written:
        print("wrote", w)
    return 0


def cmd_validate(args):
    from . import assign as assign_mod
    from . import blocking
    problems = assign_mod.validate(args.solutions) + blocking.problems(bank.QUESTIONS.values())
    for q in bank.QUESTIONS.values():
        hidden = sum(t.hidden for t in q.tests)
        print(f"{q.id:<4} {q.assignment}  {q.function:<20} {q.points:g} points, {len(q.tests)} tests ({hidden} hidden), "
              f"{len(q.forbids)} engine function(s) blocked")
    for p in problems:
        print("problem:", p)
    print("question bank OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_bundle(args):
    from . import bundle
    path = bundle.build_bundle(args.out, args.assignment, timeout=args.timeout)
    print(f"wrote {path}: upload it as the Gradescope autograder for {args.assignment}")
    return 0


def _assign_needs(args):
    """--check only reads notebooks; regenerating executes them in a Python kernel."""
    return ("grading", ("nbformat",) if args.check or args.no_execute else ("nbformat", "nbclient", "ipykernel"))


def add_commands(sub):
    s = sub.add_parser("grade", help="grade a notebook or a folder of notebooks in isolated processes")
    s.add_argument("path", help="a submitted notebook, or a folder (every *.ipynb under it is graded)")
    s.add_argument("--out", help="write report.json, gradebook.csv, feedback/*.md (and results.json) here")
    s.add_argument("--workers", type=int, default=1, help="submissions graded at the same time (default 1)")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per cell and per test call (30)")
    s.add_argument("--total-timeout", type=float, default=300.0, help="seconds allowed per submission (300)")
    s.add_argument("--memory", type=int, default=2048, help="memory limit per submission in MB (2048)")
    s.add_argument("--disk", type=int, default=256, metavar="MB",
                   help="disk a submission may fill in total, all files together, in MB (256); past it it is stopped")
    s.add_argument("--max-processes", type=int, default=64,
                   help="processes and threads a submission may run at once (64); a fork storm is stopped")
    s.add_argument("--assignment", choices=sorted(bank.ASSIGNMENTS),
                   help="grade as this assignment (default: from the notebook's metadata or file name)")
    s.add_argument("--gradescope", action="store_true", help="also write Gradescope results.json into --out")
    s.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    s.set_defaults(func=cmd_grade, needs=("grading", ("nbformat", "IPython")))

    s = sub.add_parser("assign", help="regenerate exercises/ from solutions/ (and execute both)")
    s.add_argument("--solutions", default=_course_dir("solutions"), help="folder of solution notebooks")
    s.add_argument("--exercises", default=_course_dir("exercises"), help="folder for the learner versions")
    s.add_argument("--no-execute", action="store_true", help="write without executing (no stored outputs)")
    s.add_argument("--check", action="store_true", help="only report whether exercises/ is in sync; exit 1 if not")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds per cell when executing (120)")
    s.add_argument("--only", action="append", metavar="EXNN",
                   help="regenerate only this assignment (for example ex06; repeatable)")
    s.set_defaults(func=cmd_assign, needs=_assign_needs)

    s = sub.add_parser("validate", help="check that every question has tests, points and a solution")
    s.add_argument("--solutions", default=_course_dir("solutions"), help="folder of solution notebooks")
    s.set_defaults(func=cmd_validate, needs=("grading", ("nbformat",)))

    s = sub.add_parser("gradescope-bundle", help="build a Gradescope autograder zip for one assignment")
    s.add_argument("assignment", choices=sorted(bank.ASSIGNMENTS))
    s.add_argument("--out", default="autograder.zip", help="zip to write (default autograder.zip)")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds per cell and per test call (30)")
    s.set_defaults(func=cmd_bundle)
