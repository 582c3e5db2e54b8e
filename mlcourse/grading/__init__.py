"""Exercises, instant feedback and the isolated autograder (course machinery: above the engine and
the experiments; it never imports ``viz``; needs the ``grading`` extra for notebooks).

    spec.py         what a question is (Question, Test, judges)
    questions/      one file per assignment (ex01.py ... ex08.py), found automatically by bank.py;
                    _common_mistakes.py, the catalogue of the mistakes each question names
    feedback.py     check("qN") in a notebook          grader.py, runner.py, sandbox.py   mlcourse grade
    assign.py       solutions -> exercises              reports.py, bundle.py              outputs, Gradescope

In a notebook:  ``from mlcourse.grading import check, check_all, hint`` then ``check("q3")`` (``hint("q3")``
prints a hint; its use is recorded in the feedback).
On the command line:  ``mlcourse grade PATH`` (see ``docs/grading.md``).
"""
from .feedback import check, check_all, hint

__all__ = ["check", "check_all", "hint"]
