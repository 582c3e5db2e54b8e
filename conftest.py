"""Test-session environment shared by the unit tests and nbval (its kernels inherit os.environ).

Jupyter, IPython and matplotlib write under $HOME: point them at a temporary folder so a test
run never touches the user's settings.  The learner's progress database (MLCOURSE_PROGRESS) is a
temporary file too, a fresh one for each notebook nbval runs: a developer's own progress never
changes a test's outcome, and every notebook's gate shows what a fresh database shows.  The Omniglot test data are read from ../shared/data/omniglot
unless MLCOURSE_OMNIGLOT already says where they are.
"""
import os
import tempfile

import pytest

_home = tempfile.mkdtemp(prefix="mlcourse-test-home-")
for var, sub in (("MPLCONFIGDIR", "mpl"), ("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                 ("JUPYTER_RUNTIME_DIR", "jupyter-runtime")):
    os.environ.setdefault(var, os.path.join(_home, sub))
os.environ.setdefault("MLCOURSE_CACHE", os.path.join(_home, "cache"))  # Omniglot array cache
os.environ["MLCOURSE_PROGRESS"] = os.path.join(_home, "progress", "session.sqlite3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data", "omniglot")
if "MLCOURSE_OMNIGLOT" not in os.environ and os.path.isdir(_shared):
    os.environ["MLCOURSE_OMNIGLOT"] = os.path.abspath(_shared)

# Notebooks under tests/grading_cases are misbehaving submissions for the grader's tests (data),
# not course notebooks for nbval to run.
collect_ignore_glob = ["tests/grading_cases/*.ipynb"]


_progress_for = [None]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before nbval starts a notebook's kernel (which inherits os.environ): a fresh progress database."""
    nb = getattr(item, "parent", None)
    if type(nb).__name__ == "IPyNbFile" and _progress_for[0] is not nb:
        _progress_for[0] = nb
        name = os.path.basename(str(getattr(nb, "path", getattr(nb, "fspath", "nb"))))
        os.environ["MLCOURSE_PROGRESS"] = os.path.join(tempfile.mkdtemp(prefix="progress-", dir=_home),
                                                       name + ".sqlite3")
