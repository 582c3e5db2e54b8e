"""Deliberate practice and mastery (course machinery: the engine never imports it).

    skills.py     the skill map: the lesson's skills, prerequisites (a DAG), sections, graded questions
    problems.py   generators of fresh problem instances (answers from the engine, mistakes from the catalogue)
    mastery.py    Bayesian Knowledge Tracing, mastered at P(known) >= 0.95
    store.py      the progress database (SQLite, WAL) and the FSRS review schedule
    session.py    the practice loop and evidence from check();  terminal.py  `mlcourse practice` / `progress`
    widget.py     practice(skill) and gate("02") in a notebook

See docs/practice.md.  (Nothing is imported here until practice or gate is used, so that `mlcourse --help`
stays fast.)
"""

__all__ = ["practice", "gate"]


def __getattr__(name):
    if name in __all__:
        from . import widget
        return getattr(widget, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
