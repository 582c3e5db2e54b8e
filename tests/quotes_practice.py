"""Numbers quoted where the course explains its practice loop: notebook 00's section 6 and the README (see quoting.py)."""
from quoting import Quote

from mlcourse.practice.mastery import MASTERY
from mlcourse.practice.skills import SKILLS

QUOTED = [
    Quote("notebooks/00_welcome.ipynb", "A skill counts as mastered once P(known) ≥ <>", lambda: [MASTERY], ".2f"),
    Quote("README.md", "a skill is mastered at P(known) >= <>", lambda: [MASTERY], ".2f"),
    Quote("README.md", "Every skill of the lesson (<> of them", lambda: [len(SKILLS)], "d"),
]

INPUTS = {}
