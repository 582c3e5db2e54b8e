"""The grading child: run a submission's cells, call its functions, write the outputs as data.

Started by the grader as ``python -m mlcourse.grading.harness WORKDIR FD``; never imported by
it.  Everything it reports goes through the pipe FD as JSON lines; every learner output is
written as ``out_<n>.npz`` plus a JSON structure (``codec.encode``), never pickled.  The grader
owns the clock: it watches the events and kills this process when a cell or a call takes too
long, so nothing here depends on the learner's code leaving a timer alone.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from . import codec, sandbox

# bound before any learner code runs, so rebinding numpy / json attributes cannot reach them
_dumps, _savez, _load, _write, _exit = json.dumps, np.savez, np.load, os.write, os._exit


def main(argv):
    workdir, fd = argv[0], int(argv[1])

    def send(**event):
        _write(fd, (_dumps(event) + "\n").encode())

    with open(os.path.join(workdir, "job.json")) as f:
        job = json.load(f)
    with _load(os.path.join(workdir, "inputs.npz"), allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    lim = job["limits"]
    info = sandbox.apply(workdir, lim["memory_bytes"], lim["cpu_seconds"], lim["file_bytes"])
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
