"""Deliberate practice and mastery (course machinery: the engine never imports it).

    skills.py     the skill map: the lesson's skills, prerequisites (a DAG), sections, graded questions
    problems.py   generators of fresh problem instances (answers from the engine, mistakes from the catalogue)
    mastery.py    Bayesian Knowledge Tracing, mastered at P(known) >= 0.95
    store.py      the progress database (SQLite, WAL) and the FSRS review schedule
    session.py    the practice loop and evidence from check();  terminal.py  `mlcourse practice` / `progress`

See docs/practice.md.  (Nothing is imported here, so that `mlcourse --help` stays fast.)
"""
