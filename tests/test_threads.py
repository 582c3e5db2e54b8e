"""The engine's worker threads (mlcourse._threads): OpenBLAS runs on one thread while blocks are open, and
its count comes back when the last block closes, also when several user threads overlap their blocks."""
import threading

import pytest

from mlcourse import _blas
from mlcourse._threads import Threads

pytestmark = pytest.mark.skipif(_blas.blas_threads() is None, reason="NumPy's BLAS is not OpenBLAS: one thread only")


def test_a_block_sets_one_blas_thread_and_restores_the_count():
    previous = _blas.limit_threads(2)
    try:
        with Threads() as run:
            assert run.n == 2 and _blas.blas_threads() == 1
            assert run.map_items(lambda i: i * i, 5, 1 << 30) == [0, 1, 4, 9, 16]   # on the pool, in order
        assert _blas.blas_threads() == 2
    finally:
        _blas.limit_threads(previous)


def test_overlapping_blocks_of_two_user_threads_restore_the_count_once_both_close():
    previous = _blas.limit_threads(2)
    inside, ready, first_out = [], threading.Barrier(2), threading.Event()

    def user(k):
        with Threads() as run:
            ready.wait()                       # both blocks are open now
            inside.append((run.n, _blas.blas_threads()))
            if k == 1:
                first_out.wait()               # the first block has closed, this one is still open
                inside.append(("second still open", _blas.blas_threads()))
        if k == 0:
            first_out.set()
    try:
        workers = [threading.Thread(target=user, args=(k,)) for k in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert sorted(inside[:2]) == [(2, 1), (2, 1)] and inside[2] == ("second still open", 1)
        assert _blas.blas_threads() == 2
    finally:
        _blas.limit_threads(previous)
