"""The grading child: run a submission's cells, call its functions, write the outputs as data.

Started by the grader as ``python -m mlcourse.grading.harness WORKDIR FD``; never imported by
it.  The process forks at once: the parent stays outside the sandbox as the submission's
supervisor (``sandbox.Supervisor``: a child subreaper that bounds the disk and the processes the
submission uses, kills all of them when grading ends, and writes one status line on its stdout);
the child confines itself (``sandbox.apply``) and runs the learner's code.  Everything the child
reports goes through the pipe FD as JSON lines; every learner output is written as ``out_<n>.npz``
plus a JSON structure (``codec.encode``), never pickled.  While a question's function is called,
the engine functions that question asks the learner to write are blocked (``blocking``).  The
grader owns the clock: it watches the events and ends this process tree when a cell or a call
takes too long, so nothing here depends on the learner's code leaving a timer alone.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from . import blocking, codec, sandbox

# bound before any learner code runs, so rebinding numpy / json attributes cannot reach them
_dumps, _savez, _load, _write, _exit = json.dumps, np.savez, np.load, os.write, os._exit
_blocked = blocking.blocked


def main(argv):
    workdir, fd = argv[0], int(argv[1])
    with open(os.path.join(workdir, "job.json")) as f:
        job = json.load(f)
    lim = job["limits"]
    supervisor = sandbox.Supervisor(workdir, lim["disk_bytes"], lim["max_processes"])
    status_fd = os.dup(1)
    child = os.fork()
    if child == 0:
        try:
            os.close(status_fd)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)   # learner prints go nowhere; the supervisor's stdout stays its own
            os.close(devnull)
            grade(workdir, fd, job, supervisor)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            _exit(70)
    os.close(fd)
    status = supervisor.watch(child, lim["file_bytes"])
    sandbox.report_status(status_fd, status)
    _exit(0)


def grade(workdir, fd, job, supervisor):
    def send(**event):
        _write(fd, (_dumps(event) + "\n").encode())

    with _load(os.path.join(workdir, "inputs.npz"), allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    lim = job["limits"]
    forbids = job.get("forbids", {})
    # the blocked engine functions are found now, before any learner code can rebind a module's names
    fns = {c["q"]: c["fn"] for c in job["calls"]}
    blocks = {q: blocking.prepare(q, fns.get(q, q), names) for q, names in forbids.items() if names}
    info = sandbox.apply(workdir, lim["memory_bytes"], lim["cpu_seconds"], lim["file_bytes"],
                         lim["max_processes"], confine_reads=lim.get("confine_reads", True), cgroup=supervisor.cgroup)
    info.update(supervisor.info(), engine_blocking=bool(blocks))
    send(ev="sandbox", **info)
    os.chdir(workdir)
    sys.argv = ["submission"]

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=cfg)
    skip_cells = set(job["skip_cells"])
    for i, src in enumerate(job["cells"]):
        if i in skip_cells:
            continue
        send(ev="cell", i=i)
        res = shell.run_cell(src, store_history=False)
        err = res.error_before_exec or res.error_in_exec
        if err is not None:
            send(ev="cell_error", i=i, error=type(err).__name__, message=_text(err))
    send(ev="cells_done")

    skip_q = set(job["skip_questions"])
    for n, call in enumerate(job["calls"]):
        if call["q"] in skip_q:
            continue
        send(ev="call", id=call["id"])
        fn = shell.user_ns.get(call["fn"])
        if not callable(fn):
            send(ev="missing", id=call["id"])
            continue
        try:
            with _blocked(call["q"], call["fn"], blocks.get(call["q"], ())):
                value = fn(*codec.decode(call["args"], inputs))
            spec, arrays = codec.encode(value)
            path = os.path.join(workdir, f"out_{n}.npz")
            _savez(path, **arrays)
        except BaseException as e:  # SystemExit and KeyboardInterrupt included: one call, one outcome
            send(ev="raised", id=call["id"], error=type(e).__name__, message=_text(e))
            continue
        send(ev="result", id=call["id"], spec=spec, file=os.path.basename(path))
    send(ev="done")
    _exit(0)  # skip atexit handlers and threads the submission may have left behind


def _text(e):
    try:
        return str(e)[:300]
    except BaseException:
        return "(the exception could not be printed)"


if __name__ == "__main__":
    main(sys.argv[1:])
