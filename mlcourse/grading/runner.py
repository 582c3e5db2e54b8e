"""Run one submission in a fresh, limited child process and bring its outputs back as data.

The grader (this process) copies the submission's code cells into a private temporary folder,
starts ``harness.py`` there, and watches its events with its own clock: a cell or a call that
runs longer than ``cell_timeout`` seconds, or a process that dies (``os._exit``, out of memory,
a crash), costs only that cell or that question; the child is restarted without it and grading
goes on.  A submission that writes more than ``disk_mb`` in total or runs ``max_processes``
processes at once is stopped: its supervisor watches both every 20 ms, and the grader checks them
again before it believes each step the child reports, so a result never counts once a bound is
reached, however late the supervisor's tick.  The submission file itself is read
once, here, and never opened by the child; the work folder is removed when grading ends.
"""
from __future__ import annotations

import json
import os
import select
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import codec, sandbox
from .spec import Outcome

MAX_LINE = 4 * 2 ** 20
MAX_OUTPUT_FILE = 300 * 2 ** 20


@dataclass
class Limits:
    cell_timeout: float = 30.0     # seconds per cell and per function call
    total_timeout: float = 300.0   # seconds for the whole submission, restarts included
    memory_mb: int = 2048          # address space of the child
    file_mb: int = 64              # largest file the child may write
    disk_mb: int = 256             # everything the submission writes, all files together
    max_processes: int = 64        # processes (and threads) the submission may run at once
    confine_reads: bool = True     # Landlock read rights: only Python, the package and the work folder

    def validate(self):
        for name in ("cell_timeout", "total_timeout"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}.")
        if not (isinstance(self.memory_mb, int) and self.memory_mb >= 256):
            raise ValueError(f"memory_mb must be an integer >= 256 (the engine alone needs ~200 MB), "
                             f"got {self.memory_mb!r}.")
        if not (isinstance(self.disk_mb, int) and self.disk_mb >= 1):
            raise ValueError(f"disk_mb must be a whole number of MB >= 1, got {self.disk_mb!r}.")
        if not (isinstance(self.max_processes, int) and self.max_processes >= 4):
            raise ValueError(f"max_processes must be an integer >= 4 (Python itself may start a few threads), "
                             f"got {self.max_processes!r}.")
        return self


@dataclass
class Execution:
    outcomes: dict = field(default_factory=dict)   # call id -> Outcome (errors: Timeout, ProcessDied, ...)
    notes: list = field(default_factory=list)      # cell errors, timeouts, restarts, in order
    sandbox: dict = field(default_factory=dict)
    peaks: dict = field(default_factory=dict)      # largest disk use (MB) and process count seen by the supervisor
    seconds: float = 0.0
    runs: int = 0


def child_env(workdir):
    """A small, explicit environment: no learner setting leaks in, no grader secret leaks out."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "SYSTEMROOT") if k in os.environ}
    env.update(HOME=workdir, TMPDIR=workdir, MPLBACKEND="Agg", MPLCONFIGDIR=os.path.join(workdir, ".mpl"),
               IPYTHONDIR=os.path.join(workdir, ".ipython"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MLCOURSE_GRADING="1",
               PYTHONNOUSERSITE="1")
    return env


def _call_list(questions):
    """[{id, q, fn, args-spec}], and the arrays of all inputs (computed once per question set)."""
    key = tuple(q.id for q in questions)
    if key not in _CALLS or _CALLS[key][0] != list(questions):
        _CALLS[key] = (list(questions), _encode_calls(questions))
    return _CALLS[key][1]


_CALLS = {}


def _encode_calls(questions):
    calls, arrays = [], {}
    for q in questions:
        for ti, t in enumerate(q.tests):
            for k, args in enumerate(t.calls):
                spec, arr = codec.encode(tuple(args))
                spec = _rekey(spec, arr, arrays)
                calls.append({"id": f"{q.id}.{ti}.{k}", "q": q.id, "fn": q.function, "args": spec})
    return calls, arrays


def _rekey(spec, arr, into):
    """Merge one encoding's arrays into a shared dict, renaming keys in its spec."""
    mapping = {}
    for key, a in arr.items():
        mapping[key] = f"i{len(into)}"
        into[mapping[key]] = a

    def walk(s):
        if isinstance(s, dict):
            return {k: (mapping[v] if k in ("k", "X", "y") and isinstance(v, str) and v in mapping else walk(v))
                    for k, v in s.items()}
        if isinstance(s, list):
            return [walk(x) for x in s]
        return s
    return walk(spec)


def execute(cells, questions, limits: Limits) -> Execution:
    """Run code cells (list of str) and call every test of `questions`; outcomes by call id."""
    limits.validate()
    calls, arrays = _call_list(questions)
    qcalls = {}
    for c in calls:
        qcalls.setdefault(c["q"], []).append(c["id"])
    ex = Execution()
    start = time.monotonic()
    deadline = start + limits.total_timeout
    skip_cells, skip_q = set(), set()
    base = tempfile.mkdtemp(prefix="mlcourse-grade-")
    try:
        while True:
            workdir = os.path.join(base, f"run{ex.runs}")
            os.mkdir(workdir, 0o700)
            job = {"cells": cells, "skip_cells": sorted(skip_cells), "skip_questions": sorted(skip_q),
                   "calls": calls, "forbids": {q.id: list(q.forbids) for q in questions},
                   "limits": {"memory_bytes": limits.memory_mb * 2 ** 20,
                              "cpu_seconds": int(limits.total_timeout) + 5,
                              "file_bytes": min(limits.file_mb, limits.disk_mb) * 2 ** 20,
                              "disk_bytes": limits.disk_mb * 2 ** 20, "max_processes": limits.max_processes,
                              "confine_reads": bool(limits.confine_reads)}}
            with open(os.path.join(workdir, "job.json"), "w") as f:
                json.dump(job, f)
            np.savez(os.path.join(workdir, "inputs.npz"), **arrays)
            ex.runs += 1
            stop = _run_once(workdir, base, ex, limits, deadline, len(cells), set(qcalls_ids(qcalls)))
            shutil.rmtree(workdir, ignore_errors=True)
            if stop is None:
                break
            phase, index, why = stop
            if phase == "total":
                ex.notes.append(f"the whole submission took longer than {limits.total_timeout:g} s; "
                                "the remaining questions were not graded")
                break
            if phase in ("disk", "processes"):
                ex.notes.append(why + "; the submission was stopped, its work folder removed, and the remaining "
                                "questions were not graded")
                break
            if phase == "cell":
                skip_cells.add(index)
                ex.notes.append(f"code cell {index + 1} {why}; it was skipped and the notebook run again")
            elif phase == "call":
                q = index.split(".")[0]
                skip_q.add(q)
                ex.outcomes[index] = Outcome(error="Timeout" if "longer" in why else "ProcessDied", message=why)
                for cid in qcalls[q]:
                    ex.outcomes.setdefault(cid, Outcome(error="NotRun", message=f"not run: an earlier test of {q} {why}"))
                ex.notes.append(f"{q}: a call {why}; {q} was skipped and the notebook run again")
            elif phase == "process":
                ex.notes.append(f"the process {why} between two tests (a thread left running?); it was run again")
            else:
                ex.notes.append(f"the grading process {why} before running the notebook")
                break
            if ex.runs > len(cells) + len(qcalls) + 1:
                ex.notes.append("too many restarts; grading stopped")
                break
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for cid in (c["id"] for c in calls):
        ex.outcomes.setdefault(cid, Outcome(error="NotRun", message="not run (see the notes)"))
    ex.notes = list(dict.fromkeys(ex.notes))  # a restart repeats the cells' messages: keep each once
    ex.seconds = time.monotonic() - start
    return ex


def qcalls_ids(qcalls):
    return (cid for ids in qcalls.values() for cid in ids)


def _run_once(workdir, base, ex, limits, deadline, num_cells, call_ids):
    """One child process.  None when it finished, else (phase, index, why) of what stopped it."""
    rfd, wfd = os.pipe()
    err_path = os.path.join(base, f"stderr{ex.runs}.txt")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mlcourse.grading.harness", workdir, str(wfd)],
                                pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                cwd=workdir, env=child_env(workdir), start_new_session=True)
    os.close(wfd)
    phase, index, phase_start = "start", None, time.monotonic()
    buf = b""
    try:
        while True:
            now = time.monotonic()
            limit_at = min(deadline, phase_start + limits.cell_timeout) if phase in ("cell", "call") else deadline
            if phase == "start":
                limit_at = min(deadline, phase_start + max(limits.cell_timeout, 30.0))
            if now >= limit_at:
                _kill(proc)
                if now >= deadline:
                    return ("total", None, "")
                return (phase, index, f"ran longer than {limits.cell_timeout:g} s (time limit)")
            ready, _, _ = select.select([rfd], [], [], min(limit_at - now, 0.5))
            # EOF, or silence from a process that has exited (a process it forked may hold the pipe open)
            chunk = os.read(rfd, 65536) if ready else (b"" if proc.poll() is not None else None)
            if chunk is None:
                continue
            if not chunk:  # the child exited
                code = _wait(proc)
                status = _status(proc, ex)
                if status.get("reason") in _STOPS:
                    return _STOPS[status["reason"]](limits)
                why = _death(status.get("code", code), err_path)
                if phase in ("cells_done", "result"):
                    return ("process", None, why)
                return (phase if phase in ("cell", "call") else "start", index, why)
            buf += chunk
            if len(buf) > MAX_LINE and b"\n" not in buf:
                buf = b""  # an absurd line: drop it
            *lines, buf = buf.split(b"\n")
            for line in lines:
                ev = _parse(line)
                if ev is None:
                    continue
                kind = ev.get("ev")
                # the bounds are checked again before any step is believed, so what a cell or a call
                # started is caught before a later result counts, however late the supervisor's tick
                if kind in _STEPS:
                    bound = _bound(proc, workdir, limits)
                    if bound:
                        return bound
                if kind == "sandbox":
                    ex.sandbox = {k: v for k, v in ev.items() if k != "ev"}
                # events are only believed when they name a real cell or call: learner code can write to the pipe
                elif kind == "cell" and isinstance(ev.get("i"), int) and 0 <= ev["i"] < num_cells:
                    phase, index, phase_start = "cell", ev["i"], time.monotonic()
                elif kind == "cell_error" and isinstance(ev.get("i"), int):
                    ex.notes.append(f"code cell {ev['i'] + 1} raised {str(ev.get('error'))[:80]}: "
                                    f"{str(ev.get('message', ''))[:200]}")
                elif kind == "cells_done":
                    phase, index = "cells_done", None
                elif kind == "call" and ev.get("id") in call_ids:
                    phase, index, phase_start = "call", ev["id"], time.monotonic()
                elif kind in ("result", "raised", "missing") and ev.get("id") == index:
                    ex.outcomes[index] = _outcome(kind, ev, workdir)
                    phase = "result"
                elif kind == "done":
                    return None
    finally:
        os.close(rfd)
        _kill(proc)
        _status(proc, ex)


_STEPS = ("cell", "cell_error", "cells_done", "call", "result", "raised", "missing", "done")


def _bound(proc, workdir, limits):
    """The stop for a bound the submission has reached, or None (see ``sandbox.bound_reached``)."""
    reason = sandbox.bound_reached(proc.pid, workdir, limits.disk_mb * 2 ** 20, limits.max_processes,
                                   sandbox.cgroup_of(proc.pid))[0]
    return _STOPS[reason](limits) if reason else None


_STOPS = {
    "disk": lambda limits: ("disk", None, f"the submission wrote {limits.disk_mb} MB in total, all it may (disk limit)"),
    "processes": lambda limits: ("processes", None, f"the submission ran {limits.max_processes} processes or "
                                 "threads at once (process limit)"),
}


def _parse(line):
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def _outcome(kind, ev, workdir):
    if kind == "missing":
        return Outcome(error="Missing", message="")
    if kind == "raised":
        return Outcome(error=str(ev.get("error", "Exception"))[:80], message=str(ev.get("message", ""))[:300])
    path = os.path.join(workdir, os.path.basename(str(ev.get("file", ""))))
    try:
        if os.path.getsize(path) > MAX_OUTPUT_FILE:
            return Outcome(error="TooLarge", message="the returned arrays are larger than 300 MB")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return Outcome(value=codec.decode(ev.get("spec"), arrays))
    except Exception as e:  # a broken or forged output file: the learner's loss, never the grader's crash
        return Outcome(error="UnreadableOutput", message=f"the output could not be read ({type(e).__name__})")


def _status(proc, ex):
    """The supervisor's status line ({} before it exited or if it could not write one); kept in ex.supervisor."""
    if proc.poll() is None:
        return {}
    if not hasattr(proc, "_mlcourse_status"):
        status = {}
        try:
            line = proc.stdout.read(65536).split(b"\n")[0] if proc.stdout else b""
            status = json.loads(line) if line else {}
        except (OSError, ValueError):
            pass
        finally:
            if proc.stdout:
                proc.stdout.close()
        proc._mlcourse_status = status if isinstance(status, dict) else {}
        for key in ("peak_disk_mb", "peak_processes"):
            if isinstance(proc._mlcourse_status.get(key), (int, float)):
                ex.peaks[key] = max(ex.peaks.get(key, 0), proc._mlcourse_status[key])
    return proc._mlcourse_status


def _kill(proc):
    """End the submission: its supervisor kills every process it started, then exits; reap it.

    SIGTERM asks the supervisor to sweep (it is outside the sandbox: learner code cannot stop it
    where Landlock scopes signals); if it does not exit in time, its whole session is killed, and a
    pids cgroup it made is emptied and removed.
    """
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    _wait(proc)
    path = sandbox.cgroup_of(proc.pid)
    if path:
        sandbox.remove_cgroup(path)


def _wait(proc):
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def _death(code, err_path):
    if code is not None and code < 0:
        import signal as _signal
        try:
            name = _signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        how = f"was killed by {name}" + (" (CPU time limit)" if name == "SIGXCPU" else "")
    else:
        how = f"ended the process (exit code {code})"
    tail = ""
    try:
        with open(err_path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 400))
            tail = f.read().decode(errors="replace").strip().splitlines()[-1:] or ""
            tail = f": {tail[0][:200]}" if tail else ""
    except OSError:
        pass
    return how + ("" if "MemoryError" not in tail else tail)
