"""Process settings that make the engine's many small NumPy allocations cheap.

A meta-batch of per-task parameters is ~160 KB (25 x 40 x 40 float32): just above glibc's
default mmap threshold (128 KB), so every temporary of that size is mapped and unmapped from the
kernel, page faults included.  Raising the threshold lets malloc recycle them from the heap:
a meta-iteration gets about 1.5x faster (`mlcourse bench`).  ``import mlcourse`` applies it once
(process-wide, glibc only); set MLCOURSE_TUNE_MALLOC=0 before the import to turn that off.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator(mmap_threshold=16 * 2**20):
    """glibc only: serve blocks below mmap_threshold bytes from the heap and keep freed memory.

    Returns True when the setting was applied (Linux with glibc), False elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
                and mallopt(_M_TRIM_THRESHOLD, int(4 * mmap_threshold)) == 1
                and mallopt(_M_TOP_PAD, int(mmap_threshold)) == 1)


TUNE_ENV = "MLCOURSE_TUNE_MALLOC"   # "0" leaves malloc's settings alone


def tune_allocator_on_import():
    """What ``import mlcourse`` does: tune_allocator() unless MLCOURSE_TUNE_MALLOC=0 is set."""
    import os
    if os.environ.get(TUNE_ENV, "1").strip().lower() in ("0", "no", "false", "off"):
        return False
    return tune_allocator()
