"""Build a Gradescope autograder bundle (a zip with setup.sh and run_autograder).

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when building the image,
and runs run_autograder for each submission (the learner's files are in /autograder/submission;
the results go to /autograder/results/results.json).  The bundle carries the package source, so
the image grades with exactly the references and tests of this version.
"""
from __future__ import annotations

import os
import stat
import zipfile

from . import bank

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image set-up: install Python and this version of mlcourse (with the grader).
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip python3-venv
python3 -m venv /opt/mlcourse
/opt/mlcourse/bin/pip install --upgrade pip
/opt/mlcourse/bin/pip install "/autograder/source/mlcourse-src[grading]"
/opt/mlcourse/bin/python -c "import nbformat, IPython, mlcourse.grading.grader"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Grade one Gradescope submission with the same grader as `mlcourse grade`.
set -uo pipefail
mkdir -p /autograder/results
NB=$(find /autograder/submission -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort | head -n 1)
if [ -z "$NB" ]; then
  NB=$(find /autograder/submission -type f | sort | head -n 1)
fi
if [ -z "$NB" ]; then
  echo '{{"score": 0, "output": "No file was submitted: upload your {assignment} notebook (.ipynb).", "tests": []}}' \\
    > /autograder/results/results.json
  exit 0
fi
/opt/mlcourse/bin/mlcourse grade "$NB" --assignment {assignment} --timeout {timeout} --gradescope \\
  --out /autograder/results
"""


def _package_source():
    """The folder holding pyproject.toml and mlcourse/ (a source checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.exists(os.path.join(root, "pyproject.toml")):
        raise FileNotFoundError("building a bundle needs the mlcourse source checkout (pyproject.toml next to "
                                f"mlcourse/), not found at {root}; run from a clone of the course repository.")
    return root


def build_bundle(out_zip, assignment, timeout=30):
    """Write the Gradescope autograder zip for one assignment; returns the path."""
    bank.assignment_questions(assignment)
    from .runner import Limits
    Limits(cell_timeout=timeout).validate()  # the same rule as `mlcourse grade --timeout`, checked before upload
    if not out_zip.endswith(".zip"):
        raise ValueError(f"the bundle must be a .zip file, got {out_zip!r}.")
    root = _package_source()
    files = {"setup.sh": SETUP_SH, "run_autograder": RUN_AUTOGRADER.format(assignment=assignment, timeout=timeout)}
    os.makedirs(os.path.dirname(os.path.abspath(out_zip)), exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            z.writestr(info, text)
        z.write(os.path.join(root, "pyproject.toml"), "mlcourse-src/pyproject.toml")
        if os.path.exists(os.path.join(root, "README.md")):
            z.write(os.path.join(root, "README.md"), "mlcourse-src/README.md")
        else:  # pyproject names a readme; the build needs the file
            z.writestr("mlcourse-src/README.md", "mlcourse (grader bundle)\n")
        pkg = os.path.join(root, "mlcourse")
        for dirpath, dirs, fnames in os.walk(pkg):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in fnames:
                if f.endswith((".pyc", ".pyo")):
                    continue
                full = os.path.join(dirpath, f)
                z.write(full, os.path.join("mlcourse-src", os.path.relpath(full, root)))
    return out_zip
