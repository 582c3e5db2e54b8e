"""How many threads NumPy's OpenBLAS uses, changed after NumPy has loaded it.

The engine's matrices are tiny (40 x 40, a meta-batch of 25): BLAS threads only add start-up
overhead, and on a busy 2-core machine they make a meta-iteration several times slower.
``OMP_NUM_THREADS=1`` works only if it is set before NumPy is imported; this module does the
same afterwards, the way threadpoolctl does it: find the OpenBLAS that this process has loaded
(``/proc/self/maps`` on Linux, NumPy's bundled libraries elsewhere) and call its
``openblas_set_num_threads``.

    limit_threads(1)   -> the previous count (None when no OpenBLAS is loaded: nothing changed)
    blas_threads()     -> the current count, or None

The notebooks' widget modules (``mlcourse.viz``, except the figure of the command line) call
``limit_threads(1)`` when they are imported.  To undo it in a notebook::

    from mlcourse import _blas
    _blas.limit_threads(os.cpu_count())

The engine never changes the count for good: ``fastconv`` and ``rl.fastgrad`` spread their work over
as many threads of their own as OpenBLAS has (``_threads.Threads``), set OpenBLAS to one thread while
they run, and restore the count before they return.
"""
from __future__ import annotations

import ctypes
import glob
import os

__all__ = ["limit_threads", "blas_threads", "openblas_paths"]

# symbol prefixes and suffixes of OpenBLAS builds: plain, 64-bit interface, scipy-openblas (NumPy's wheels)
_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "_64_", "")


def openblas_paths():
    """Files of the OpenBLAS libraries loaded in this process (NumPy's own when it bundles one)."""
    import numpy  # noqa: F401  (makes sure NumPy's BLAS is loaded)
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = os.path.basename(path).lower()
                if "openblas" in name and ".so" in name and path not in found:
                    found.append(path)
    except OSError:   # no /proc (macOS, Windows): the libraries NumPy's wheels bundle
        here = os.path.dirname(os.path.dirname(os.path.abspath(numpy.__file__)))
        for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
            found += sorted(glob.glob(os.path.join(here, pattern)))
    return found


def _functions():
    """(set_num_threads, get_num_threads) of every loaded OpenBLAS that exports them."""
    out = []
    for path in openblas_paths():
        try:
            lib = ctypes.CDLL(path)   # already loaded: the same handle, nothing new is loaded
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                set_f = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                get_f = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if set_f is not None and get_f is not None:
                    set_f.argtypes, set_f.restype, get_f.restype = [ctypes.c_int], None, ctypes.c_int
                    out.append((set_f, get_f))
                    break
            else:
                continue
            break
    return out


def blas_threads():
    """Threads the loaded OpenBLAS uses now (the first one found), or None without OpenBLAS."""
    fs = _functions()
    return int(fs[0][1]()) if fs else None


def limit_threads(n=1):
    """Set every loaded OpenBLAS to n threads; return the previous count (None: no OpenBLAS found)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (threads), got {n!r}; e.g. limit_threads(1) or "
                         "limit_threads(os.cpu_count()).")
    fs = _functions()
    if not fs:
        return None
    previous = int(fs[0][1]())
    for set_f, _ in fs:
        set_f(n)
    return previous
