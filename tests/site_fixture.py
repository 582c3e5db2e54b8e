"""The course website built once per test session (tests/test_site*.py import the `site` fixture)."""
from __future__ import annotations

import os
import socket
import tempfile

import pytest

_BUILT = {}
REPO = "https://github.com/example-org/meta-course"


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(scope="session")
def site():
    """{"out": folder, "info": build.build's result}: built from this checkout with every socket refused."""
    if not _BUILT:
        from mlcourse.site import build
        out = tempfile.mkdtemp(prefix="mlcourse-site-test-") + "/site"
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        tried = []

        def refuse(self, address, *args):
            tried.append(address)
            raise NetworkUsed(f"the site build tried to connect to {address}")

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket.socket, "connect", refuse)
            mp.setattr(socket.socket, "connect_ex", refuse)
            mp.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(None, a[0]))
            info = build.build(out, root, repo_url=REPO)
        assert tried == []
        _BUILT.update(out=out, info=info)
    return _BUILT
