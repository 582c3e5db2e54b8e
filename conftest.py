"""Test-session environment shared by the unit tests and nbval (its kernels inherit os.environ).

Jupyter, IPython and matplotlib write under $HOME: point them at a temporary folder so a test
run never touches the user's settings (nor, through MLCOURSE_PROGRESS, their practice progress).
The Omniglot test data are read from ../shared/data/omniglot unless MLCOURSE_OMNIGLOT already says
where they are.
"""
import os
import tempfile

_home = tempfile.mkdtemp(prefix="mlcourse-test-home-")
for var, sub in (("MPLCONFIGDIR", "mpl"), ("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                 ("JUPYTER_RUNTIME_DIR", "jupyter-runtime")):
    os.environ.setdefault(var, os.path.join(_home, sub))
os.environ.setdefault("MLCOURSE_CACHE", os.path.join(_home, "cache"))  # Omniglot array cache
# a fresh progress database for every test run (not setdefault: a developer's own progress never changes an outcome)
os.environ["MLCOURSE_PROGRESS"] = os.path.join(_home, "progress.sqlite3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "data", "omniglot")
if "MLCOURSE_OMNIGLOT" not in os.environ and os.path.isdir(_shared):
    os.environ["MLCOURSE_OMNIGLOT"] = os.path.abspath(_shared)

# Notebooks under tests/grading_cases are misbehaving submissions for the grader's tests (data),
# not course notebooks for nbval to run.
collect_ignore_glob = ["tests/grading_cases/*.ipynb"]
