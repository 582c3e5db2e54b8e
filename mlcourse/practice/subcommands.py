"""The `mlcourse practice` and `mlcourse progress` subcommands (added to the parser by cli.build_parser)."""
from __future__ import annotations

NEEDS = ("practice", ("fsrs",))   # (extra, modules): the review schedule needs fsrs


def cmd_practice(args):
    if args.diagnostic:
        if args.skill:
            raise ValueError("--diagnostic covers the prerequisites of the lesson; give it without a skill.")
        from .diagnostic import run_in_terminal
        run_in_terminal(seed=0 if args.seed is None else args.seed)
        return 0
    from .terminal import practice
    practice(args.skill, args.seed)
    return 0


def cmd_progress(args):
    from .terminal import reset, show_progress
    if args.reset:
        return reset(yes=args.yes)
    return show_progress(as_json=args.json)


def add_commands(sub):
    s = sub.add_parser("practice", help="practise a skill on fresh generated problems (default: what is due, "
                       "else the next skill to learn)",
                       description="Fresh problems with their numbers drawn at random; the answer is judged, and a "
                       "common mistake is named. Progress goes to $MLCOURSE_PROGRESS, else the data directory "
                       "(see `mlcourse progress`).")
    s.add_argument("skill", nargs="?", help="a skill id (the first column of `mlcourse progress`)")
    s.add_argument("--seed", type=int, help="seed of the sequence of problems (default: fresh each time; with "
                   "--diagnostic: 0, notebook 00's problems)")
    s.add_argument("--diagnostic", action="store_true", help="the prerequisite diagnostic of notebook 00: a few "
                   "problems on each prerequisite of the lesson, then what is in place and where to learn the rest")
    s.set_defaults(func=cmd_practice, needs=NEEDS)

    s = sub.add_parser("progress", help="each skill's P(known), mastery, next review and attempts",
                       description="Progress lives in one SQLite file: $MLCOURSE_PROGRESS, else progress.sqlite3 in "
                       "the data directory (~/.local/share/mlcourse on Linux).")
    s.add_argument("--json", action="store_true", help="print every skill's state as JSON (for an instructor)")
    s.add_argument("--reset", action="store_true", help="erase every attempt (asks first)")
    s.add_argument("--yes", action="store_true", help="with --reset: do not ask")
    s.set_defaults(func=cmd_progress, needs=NEEDS)
