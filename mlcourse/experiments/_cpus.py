"""The CPUs a benchmark worker runs on: as many as it is given threads, the same for every library.

Thread settings alone do not hold every library to its count: with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` JAX 0.10's CPU runtime still spent 1.3-1.5 s of CPU time (getrusage) per second
of a "one-thread" ANIL meta-iteration on the 2-core development machine: it borrows a second core that a
one-thread NumPy process does not use.  Each timed process of ``mlcourse bench`` (the sinusoid table,
``bench rl``, ``bench omniglot``) is therefore also confined to n CPUs for n threads (Linux
``sched_setaffinity``, set before the interpreter starts, so every thread pool sizes itself to them): "1
thread" then means one core of work, whatever the library.  ``mlcourse bench``'s workers also report their
CPU time per wall second (the table's "cpu/wall" column).

    preexec = pin(n)                  # for subprocess.run(..., preexec_fn=preexec); None where unsupported
    describe(n)                       # "CPU 1", "CPUs 0-1" or why the workers are not pinned
"""
from __future__ import annotations

import os

__all__ = ["cpus", "pin", "describe"]


def cpus(n):
    """The n CPUs a worker with n threads runs on: the last n of this process's CPUs (all of them when it has
    fewer; CPU 0 is the one that most often serves interrupts), or None where affinity cannot be set."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[-n:] if n < len(allowed) else allowed


def pin(n):
    """A preexec_fn that confines the child process to cpus(n), or None where affinity cannot be set."""
    chosen = cpus(n)
    if chosen is None:
        return None
    chosen = set(chosen)

    def preexec():
        os.sched_setaffinity(0, chosen)
    return preexec


def describe(n):
    """How workers with n threads are placed, for the printed table and the JSON."""
    chosen = cpus(n)
    if chosen is None:
        return "not pinned (this platform has no sched_setaffinity)"
    if len(chosen) < n:
        return f"CPUs {_span(chosen)} (only {len(chosen)} available for {n} threads)"
    return f"CPU{'s' if len(chosen) > 1 else ''} {_span(chosen)}"


def _span(chosen):
    if len(chosen) > 1 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{chosen[0]}-{chosen[-1]}"
    return ",".join(str(c) for c in chosen)

