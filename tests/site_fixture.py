"""The course website built once per test session (tests/test_site*.py import the `site` fixture)."""
from __future__ import annotations

import os
import tempfile

import pytest

_BUILT = {}
REPO = "https://github.com/example-org/meta-course"


@pytest.fixture(scope="session")
def site():
    """{"out": folder, "info": build.build's result}: built from this checkout, with no network use."""
    if not _BUILT:
        from mlcourse.site import build
        out = tempfile.mkdtemp(prefix="mlcourse-site-test-") + "/site"
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _BUILT.update(out=out, info=build.build(out, root, repo_url=REPO))
    return _BUILT
