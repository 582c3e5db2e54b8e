"""Exercises, instant feedback and the isolated autograder.

In a notebook:  ``from mlcourse.grading import check, check_all`` then ``check("q3")``.
On the command line:  ``mlcourse grade PATH`` (see ``docs/grading.md``).
"""
from .feedback import check, check_all

__all__ = ["check", "check_all"]
