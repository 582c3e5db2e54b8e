"""Numbers quoted where the course explains its practice loop: notebook 00's section 6 and the README (see quoting.py)."""
from quoting import Quote

from mlcourse.practice.diagnostic import PER_SKILL, diagnostic_skills
from mlcourse.practice.mastery import MASTERY
from mlcourse.practice.skills import SKILLS

NB00 = "notebooks/00_welcome.ipynb"
WORDS = dict(enumerate(("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")))


def word(n):
    return WORDS[int(n)]


QUOTED = [
    Quote(NB00, "A skill counts as mastered once P(known) ≥ <>", lambda: [MASTERY], ".2f"),
    Quote(NB00, "On the map they are the <> skills with a dashed border. Below are <> problems on each.",
          lambda: [len(diagnostic_skills()), PER_SKILL], (word, word)),
    Quote("README.md", "a skill is mastered at P(known) >= <>", lambda: [MASTERY], ".2f"),
    Quote("README.md", "Every skill of the lesson (<> of them", lambda: [len(SKILLS)], "d"),
]

INPUTS = {}
