"""The course website built once per test session (tests/test_site*.py import the `site` fixture)."""
from __future__ import annotations

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
        _BUILT.update(out=out, info=build.build(out, repo_url=REPO))
    return _BUILT
