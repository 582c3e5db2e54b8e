"""Run one submission in a fresh, limited child process and bring its outputs back as data.

The grader (this process) copies the submission's code cells into a private temporary folder,
starts ``harness.py`` there, and watches its events with its own clock: a cell or a call that
runs longer than ``cell_timeout`` seconds, or a process that dies (``os._exit``, out of memory,
a crash), costs only that cell or that question; the child is restarted without it and grading
goes on.  A submission that writes more than ``disk_mb`` in total or runs ``max_processes``
processes at once is stopped: its supervisor watches both every 20 ms, and the grader checks them
again before it believes each step the child reports, so a result never counts once a bound is
reached, however late the supervisor's tick.  The submission file itself is read
once, by the grader, and never opened by the child; the work folder is removed when grading ends.

The grader issues the calls one at a time (``_Call``: the inputs in a file it writes, an empty
output file it creates and keeps open, a random nonce); it takes one answer per call, for the call
just issued, and reads the value only through its own descriptor of that output file
(``codec.unpack``: a regular file of bounded size, no links, no compression).  The confinement of
the child comes from its supervisor's stdout (``_status``), never from the events pipe.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import signal
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import blocking, codec, sandbox
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
    """[{id, q, fn, data}] in order: each call's inputs packed once per question set (``codec.pack``)."""
    key = tuple(q.id for q in questions)
    if key not in _CALLS or _CALLS[key][0] != list(questions):
        _CALLS[key] = (list(questions), _encode_calls(questions))
    return _CALLS[key][1]


_CALLS = {}


def _encode_calls(questions):
    calls = []
    for q in questions:
        for ti, t in enumerate(q.tests):
            for k, args in enumerate(t.calls):
                calls.append({"id": f"{q.id}.{ti}.{k}", "q": q.id, "fn": q.function,
                              "data": codec.pack(*codec.encode(tuple(args)))})
    return calls


# Loads harness.py without mlcourse/grading/__init__.py (which would import the question bank)
BOOT = ("import sys, types\n"
        "grading, args = sys.argv[1], sys.argv[2:]\n"
        "import mlcourse\n"
        "pkg = types.ModuleType('mlcourse.grading')\n"
        "pkg.__path__, pkg.__package__ = [grading], 'mlcourse.grading'\n"
        "sys.modules['mlcourse.grading'] = mlcourse.grading = pkg\n"
        "from mlcourse.grading import harness\n"
        "harness.main(args)\n")
GRADING_DIR = os.path.dirname(os.path.abspath(__file__))


def execute(cells, questions, limits: Limits) -> Execution:
    """Run code cells (list of str) and call every test of `questions`; outcomes by call id."""
    limits.validate()
    calls = _call_list(questions)
    qcalls = {}
    for c in calls:
        qcalls.setdefault(c["q"], []).append(c["id"])
    ex = Execution()
    start = time.monotonic()
    deadline = start + limits.total_timeout
    skip_cells, skip_q = set(), set()
    forbids = [list(e) for e in blocking.for_run(questions)]
    base = tempfile.mkdtemp(prefix="mlcourse-grade-")
    try:
        while True:
            workdir = os.path.join(base, f"run{ex.runs}")
            os.mkdir(workdir, 0o700)
            job = {"cells": cells, "skip_cells": sorted(skip_cells), "forbids": forbids,
                   "limits": {"memory_bytes": limits.memory_mb * 2 ** 20,
                              "cpu_seconds": int(limits.total_timeout) + 5,
                              "file_bytes": min(limits.file_mb, limits.disk_mb) * 2 ** 20,
                              "disk_bytes": limits.disk_mb * 2 ** 20, "max_processes": limits.max_processes,
                              "confine_reads": bool(limits.confine_reads)}}
            with open(os.path.join(workdir, "job.json"), "w") as f:
                json.dump(job, f)
            ex.runs += 1
            todo = [c for c in calls if c["q"] not in skip_q]
            stop = _run_once(workdir, ex, limits, deadline, len(cells), todo)
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


def _grader_file(workdir, name, data=None):
    """Create workdir/name afresh (never through a link) as the grader's own file; (fd open for reading).

    data: bytes written into it (the call's inputs); None for an empty file the child fills.
    """
    path = os.path.join(workdir, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if data:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return fd


class _Call:
    """The call the grader has issued and not yet had answered: its id, nonce and output descriptor."""

    def __init__(self, call, workdir, req_fd):
        self.id, self.nonce = call["id"], secrets.token_hex(16)
        self.inputs = _grader_file(workdir, f"in_{self.nonce}.bin", call["data"])
        os.close(self.inputs)
        self.out = _grader_file(workdir, f"out_{self.nonce}.bin")
        line = (json.dumps({"nonce": self.nonce, "fn": call["fn"]}) + "\n").encode()
        try:
            os.write(req_fd, line)  # small (< PIPE_BUF) and alone in the pipe: never blocks
        except OSError:
            pass  # the child has gone: the events pipe's end says how

    def close(self):
        if self.out is not None:
            os.close(self.out)
            self.out = None


def _run_once(workdir, ex, limits, deadline, num_cells, calls):
    """One child process.  None when every call was answered, else (phase, index, why) of what stopped it."""
    rfd, wfd = os.pipe()          # events: child -> grader
    req_r, req_w = os.pipe()      # call requests: grader -> child
    os.set_blocking(req_w, False)
    # the child's stderr: a file the grader creates in the work folder (so it counts against --disk)
    # and reads back only through its own descriptor
    err_fd = _grader_file(workdir, "stderr.txt")
    proc = subprocess.Popen([sys.executable, "-c", BOOT, GRADING_DIR, workdir, str(wfd), str(req_r)],
                            pass_fds=(wfd, req_r), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=err_fd, cwd=workdir, env=child_env(workdir), start_new_session=True)
    os.close(wfd)
    os.close(req_r)
    phase, index, phase_start, last_cell, errors_taken = "start", None, time.monotonic(), -1, set()
    pending, queue = None, list(calls)
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
                why = _death(status.get("code", code), err_fd)
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
                # learner code can write to this pipe too: a claim is taken only where it fits the
                # grader's own account (cells in order, each error once, an answer only for the call
                # just issued, under its nonce), and nothing once every call is answered
                if phase in ("start", "cell") and kind == "cell" and type(ev.get("i")) is int \
                        and last_cell < ev["i"] < num_cells:
                    step = "cell"
                elif phase == "cell" and kind == "cell_error" and ev.get("i") == index and index not in errors_taken:
                    step = "cell_error"
                elif kind == "cells_done" and phase in ("start", "cell"):
                    step = "cells_done"
                elif pending is not None and kind in ("result", "raised", "missing") \
                        and ev.get("nonce") == pending.nonce:
                    step = "answer"
                else:
                    continue
                # the bounds are checked again before any step is believed, so what a cell or a call
                # started is caught before a later result counts, however late the supervisor's tick
                bound = _bound(proc, workdir, limits)
                if bound:
                    return bound
                if step == "cell":
                    phase, index, phase_start, last_cell = "cell", ev["i"], time.monotonic(), ev["i"]
                elif step == "cell_error":
                    errors_taken.add(index)
                    ex.notes.append(f"code cell {index + 1} raised {str(ev.get('error'))[:80]}: "
                                    f"{str(ev.get('message', ''))[:200]}")
                elif step == "cells_done":
                    phase = "cells_done"
                else:
                    ex.outcomes[pending.id] = _outcome(kind, ev, pending.out)
                    pending.close()
                    _remove(workdir, pending.nonce)
                    pending, phase = None, "result"
                if phase in ("cells_done", "result") and pending is None:
                    if not queue:
                        return None  # every call answered: nothing the child says later is read
                    pending = _Call(queue.pop(0), workdir, req_w)
                    phase, index, phase_start = "call", pending.id, time.monotonic()
                    bound = _bound(proc, workdir, limits)
                    if bound:
                        return bound
    finally:
        if pending is not None:
            pending.close()
        os.close(rfd)
        os.close(req_w)
        _kill(proc)
        _status(proc, ex)
        os.close(err_fd)


def _remove(workdir, nonce):
    for name in (f"in_{nonce}.bin", f"out_{nonce}.bin"):
        try:
            os.unlink(os.path.join(workdir, name))
        except OSError:
            pass


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


# the outcomes the grader itself writes (their messages are its own words, shown even for a hidden test)
GRADER_OUTCOMES = frozenset({"Missing", "NotRun", "Timeout", "ProcessDied", "TooLarge", "UnreadableOutput"})


def _parse(line):
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def _outcome(kind, ev, out_fd):
    """The outcome of the call just answered; a value only from the grader's own output file."""
    if kind == "missing":
        return Outcome(error="Missing", message="")
    if kind == "raised":
        error = str(ev.get("error", "Exception"))[:80]
        if error in GRADER_OUTCOMES:  # an exception class of the submission may not pass for the grader's own words
            error = f"{error} (an exception of the submission)"
        return Outcome(error=error, message=str(ev.get("message", ""))[:300])
    try:
        st = os.fstat(out_fd)
        if not stat.S_ISREG(st.st_mode):
            raise codec.Malformed("not a regular file")
        if st.st_size > MAX_OUTPUT_FILE:
            return Outcome(error="TooLarge", message="the returned arrays are larger than 300 MB")
        data = os.pread(out_fd, st.st_size + 1, 0)
        if len(data) > MAX_OUTPUT_FILE:
            return Outcome(error="TooLarge", message="the returned arrays are larger than 300 MB")
        spec, arrays = codec.unpack(data, MAX_OUTPUT_FILE)
        return Outcome(value=codec.decode(spec, arrays))
    except Exception as e:  # a broken or forged output file: the learner's loss, never the grader's crash
        return Outcome(error="UnreadableOutput", message=f"the output could not be read ({type(e).__name__})")


def _status(proc, ex):
    """The supervisor's status line ({} before it exited or if it could not write one); kept in ex.supervisor."""
    if proc.poll() is None:
        return {}
    if not hasattr(proc, "_mlcourse_status"):
        status = {}
        try:
            for line in (proc.stdout.read(65536).split(b"\n") if proc.stdout else [])[:2]:
                try:
                    got = json.loads(line)
                except ValueError:
                    continue
                if isinstance(got, dict) and isinstance(got.get("sandbox"), dict):
                    ex.sandbox = got["sandbox"]   # from the supervisor: what held, checked against the kernel
                elif isinstance(got, dict) and isinstance(got.get("status"), dict):
                    status = got["status"]
        except OSError:
            pass
        finally:
            if proc.stdout:
                proc.stdout.close()
        proc._mlcourse_status = status
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


def _death(code, err_fd):
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
        size = os.fstat(err_fd).st_size
        tail = os.pread(err_fd, 400, max(0, size - 400)).decode(errors="replace").strip().splitlines()[-1:] or ""
        tail = f": {tail[0][:200]}" if tail else ""
    except OSError:
        pass
    return how + ("" if "MemoryError" not in tail else tail)
