"""Benchmark workers run on as many CPUs as they have threads (``experiments._cpus``)."""
import os
import subprocess
import sys

import pytest

from mlcourse.experiments import _cpus

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"),
                                    reason="this platform has no sched_setaffinity (workers are not pinned there)")


@needs_affinity
def test_cpus_are_the_last_n_allowed_and_never_more_than_there_are():
    allowed = sorted(os.sched_getaffinity(0))
    assert _cpus.cpus(1) == allowed[-1:]
    assert _cpus.cpus(len(allowed)) == allowed
    assert _cpus.cpus(len(allowed) + 3) == allowed
    assert _cpus.describe(1) == f"CPU {allowed[-1]}"
    assert _cpus.describe(len(allowed) + 1).endswith(f"(only {len(allowed)} available for {len(allowed) + 1} threads)")


@needs_affinity
def test_a_pinned_child_sees_exactly_its_cpus_and_the_parent_keeps_its_own():
    before = os.sched_getaffinity(0)
    code = "import os; print(sorted(os.sched_getaffinity(0)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_cpus.pin(1),
                         check=True).stdout
    assert out.strip() == str(_cpus.cpus(1))
    assert os.sched_getaffinity(0) == before


def test_describe_spans_and_lists():
    assert _cpus._span([0, 1, 2]) == "0-2"
    assert _cpus._span([1, 3]) == "1,3"
    assert _cpus._span([5]) == "5"


def test_unpinned_platforms_say_so(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert _cpus.cpus(1) is None and _cpus.pin(1) is None
    assert "not pinned" in _cpus.describe(2)

