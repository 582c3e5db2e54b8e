"""A pool of worker threads for the engine's hand-derived gradients, OpenBLAS on one thread meanwhile.

NumPy releases the GIL inside its matrix products and element-wise loops on large arrays, so
independent chunks of a batch (images in ``fastconv``, tasks in ``rl.fastgrad``) run side by side on
Python threads.  ``Threads`` spreads them over as many threads as NumPy's OpenBLAS has
(``OPENBLAS_NUM_THREADS``; one without OpenBLAS) and sets OpenBLAS to one thread each while they run,
then resets it (blocks opened by several user threads at once share that: the first sets one thread,
the last to close restores the count it found).  The chunks, and the order in which their partial
results are combined, do not depend on the number of threads: neither do the results, bit for bit.

    with Threads() as run:
        parts = run.map(f, n, per_item_bytes)    # [f((start, stop)) for the chunks of n items]
        parts = run.map_items(g, len(chunks), work_bytes)   # [g(i) for i in range(len(chunks))]
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from . import _blas

__all__ = ["Threads", "CHUNK_BYTES", "MIN_CHUNKS", "PARALLEL_BYTES"]

CHUNK_BYTES = 4 * 2**20      # working set of one chunk (fastconv: im2col buffer and outputs)
MIN_CHUNKS = 4               # even a small batch is shared among up to 4 threads
PARALLEL_BYTES = 4 * 2**20   # below this much work a stage runs on the calling thread (same chunks)


class Threads:
    """Maps chunk functions over a pool of n threads, OpenBLAS on one thread meanwhile."""

    _lock = threading.Lock()
    _pool = None            # (pid, n, executor)
    _blas_fns = None        # (pid, OpenBLAS's (set, get) functions)
    _active = 0             # Threads blocks open in this process (several user threads may each open one)
    _saved = None           # OpenBLAS's count before the first of them, restored when the last one closes
    _saved_n = 1            # what the open blocks found: each of them spreads its chunks over that many threads

    def __init__(self):
        fns = self._blas()
        with self._lock:
            self.n = Threads._saved_n if Threads._active else (max(1, int(fns[0][1]())) if fns else 1)

    @classmethod
    def _blas(cls):
        with cls._lock:
            if cls._blas_fns is None or cls._blas_fns[0] != os.getpid():
                cls._blas_fns = (os.getpid(), _blas._functions())
            return cls._blas_fns[1]

    def _executor(self):
        with self._lock:
            pool = Threads._pool
            if pool is None or pool[0] != os.getpid() or pool[1] != self.n:   # new after a fork or a new count
                Threads._pool = pool = (os.getpid(), self.n, ThreadPoolExecutor(self.n, "mlcourse-engine"))
            return pool[2]

    def __enter__(self):
        fns = self._blas()
        with self._lock:   # the first block to open sets OpenBLAS to one thread, the last to close restores it
            if Threads._active == 0 and fns:
                Threads._saved, Threads._saved_n = int(fns[0][1]()), self.n
                if self.n > 1:
                    for set_f, _ in fns:
                        set_f(1)
            Threads._active += 1
        return self

    def __exit__(self, *exc):
        fns = self._blas()
        with self._lock:
            Threads._active -= 1
            if Threads._active == 0 and fns and Threads._saved is not None:
                if Threads._saved != int(fns[0][1]()):
                    for set_f, _ in fns:
                        set_f(Threads._saved)
                Threads._saved = None
        return False

    def map(self, f, n, per_item_bytes):
        """[f((start, stop)) for the chunks of n items], on the threads unless the work is too small to share."""
        items = self.chunks(n, per_item_bytes)
        if self.n == 1 or len(items) < 2 or n * per_item_bytes < PARALLEL_BYTES:
            return [f(i) for i in items]
        return list(self._executor().map(f, items))

    def map_items(self, f, n, work_bytes):
        """[f(i) for i in range(n)] for n chunks of a batch chosen by the caller (with ``chunks``), on the
        threads unless there is only one or the whole work (work_bytes) is too small to share."""
        if self.n == 1 or n < 2 or work_bytes < PARALLEL_BYTES:
            return [f(i) for i in range(n)]
        return list(self._executor().map(f, range(n)))

    @staticmethod
    def chunks(n, per_item_bytes):
        """Item ranges: CHUNK_BYTES of work each, and at least MIN_CHUNKS of them.  They do not depend
        on the number of threads, so neither do the results, bit for bit."""
        step = max(1, int(CHUNK_BYTES // max(per_item_bytes, 1)))
        step = min(step, -(-n // MIN_CHUNKS))
        return [(s, min(n, s + step)) for s in range(0, n, step)]
