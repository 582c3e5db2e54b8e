"""The grading child: run a submission's cells, then answer the grader's calls one at a time.

Started by the grader with ``runner.BOOT`` (``python -c BOOT GRADING_DIR WORKDIR EVENTS REQUESTS``),
which loads this module without ``mlcourse/grading/__init__.py``: the question bank, its inputs
and references, and the judges are never imported here, and the child may not read their files.
The process forks at once: the parent stays outside the sandbox as the submission's supervisor
(``sandbox.Supervisor``: a child subreaper that bounds the disk and the processes the submission
uses, kills all of them when grading ends, and writes two lines on its stdout, which no learner
process holds: the child's confinement, checked against what the kernel shows of it, and its last
status); the child blocks, for the whole run, every engine function a question of the assignment
forbids (``blocking.block_for_run``), confines itself (``sandbox.apply``), tells the supervisor
what holds on a private pipe that it then closes, and only then runs the learner's code.

What the child reports on the events pipe is a claim, not a fact: the grader takes a cell's start
and error only in order and once, and a call's answer only for the call it has just issued, named
by a random nonce the learner's code cannot know beforehand.  The call's inputs are in the file
``in_<nonce>.bin`` the grader wrote just before; the answer goes into ``out_<nonce>.bin``, which the
grader created and reads back through its own descriptor (``codec.pack``: no pickles, no
compression, no links).  The grader owns the clock: nothing here depends on the learner's code
leaving a timer alone.
"""
from __future__ import annotations

import json
import os
import sys
import types

from . import blocking, codec, sandbox

# bound before any learner code runs, so rebinding json / os attributes cannot reach them
_dumps, _loads, _write, _read, _exit, _open, _close = json.dumps, json.loads, os.write, os.read, os._exit, os.open, \
    os.close


def install_check_stub():
    """``from mlcourse.grading import check, check_all, hint`` works in the child without the question bank:
    each prints what it prints while grading ("check('q5') is skipped while grading"); the grader reads a
    notebook's hints from the submitted file itself (``feedback.hints_used``), not from this run."""
    pkg = sys.modules.get("mlcourse.grading")
    fb = types.ModuleType("mlcourse.grading.feedback")

    def check(qid, namespace=None):
        print(f"check({qid!r}) is skipped while grading")

    def check_all(assignment=None, namespace=None):
        print("check_all() is skipped while grading")

    def hint(qid):
        print(f"hint({qid!r}) is skipped while grading")
    fb.check, fb.check_all, fb.hint, fb.GRADING_ENV = check, check_all, hint, "MLCOURSE_GRADING"
    sys.modules["mlcourse.grading.feedback"] = fb
    if pkg is not None:
        pkg.check, pkg.check_all, pkg.hint, pkg.feedback = check, check_all, hint, fb


class BankFinder:
    """Refuses, with a clear message, an import of the grader's modules the child does not run (the
    question bank, the judges, the reports): their files are unreadable here anyway (Landlock)."""

    ALLOWED = ("mlcourse.grading.harness", "mlcourse.grading.codec", "mlcourse.grading.blocking",
               "mlcourse.grading.sandbox", "mlcourse.grading.feedback")

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("mlcourse.grading.") and ".".join(fullname.split(".")[:3]) not in self.ALLOWED:
            raise ImportError(f"{fullname} is not available while a notebook is graded (the question bank and the "
                              "grader's judges stay with the grader)", name=fullname)
        return None


def main(argv):
    workdir, events, requests = argv[0], int(argv[1]), int(argv[2])
    with open(os.path.join(workdir, "job.json")) as f:
        job = json.load(f)
    lim = job["limits"]
    supervisor = sandbox.Supervisor(workdir, lim["disk_bytes"], lim["max_processes"])
    status_fd = os.dup(1)
    info_r, info_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(status_fd)
            os.close(info_r)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 1)   # learner prints go nowhere; the supervisor's stdout stays its own
            os.close(devnull)
            grade(workdir, events, requests, info_w, job, supervisor)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            _exit(70)
    os.close(events)
    os.close(requests)
    os.close(info_w)
    sandbox.set_dumpable(False)  # the submission runs as the same user: keep it out of /proc/<this>/fd
    supervisor.relay_confinement(child, info_r, status_fd)
    status = supervisor.watch(child, lim["file_bytes"])
    sandbox.report_status(status_fd, status)
    _exit(0)


def grade(workdir, events, requests, info_fd, job, supervisor):
    def send(**event):
        _write(events, (_dumps(event) + "\n").encode())

    lim = job["limits"]
    install_check_stub()
    sys.meta_path.insert(0, BankFinder())
    # the engine functions any question forbids are blocked now, for the whole run, before any learner
    # code can rebind a module's names; their modules' files become unreadable with the confinement
    deny = blocking.block_for_run([tuple(e) for e in job.get("forbids", [])])
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    os.chdir(workdir)
    cfg = Config()
    cfg.HistoryManager.enabled = False
    # made before the confinement: setting up its profile folder (in the work folder) changes file modes
    shell = InteractiveShell.instance(config=cfg)
    info = sandbox.apply(workdir, lim["memory_bytes"], lim["cpu_seconds"], lim["file_bytes"],
                         lim["max_processes"], confine_reads=lim.get("confine_reads", True), cgroup=supervisor.cgroup,
                         deny=deny)
    info.update(engine_blocking=bool(job.get("forbids")))
    # the supervisor's account of the confinement: written, and the pipe closed, before any learner code
    _write(info_fd, (_dumps(info) + "\n").encode())
    _close(info_fd)
    sys.argv = ["submission"]
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
    answer(shell.user_ns, workdir, requests, send)
    _exit(0)  # skip atexit handlers and threads the submission may have left behind


def _requests(fd):
    """Request lines from the grader, one at a time, until it closes the pipe."""
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = _read(fd, 65536)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        try:
            req = _loads(line)
        except ValueError:
            continue
        if isinstance(req, dict):
            yield req


def answer(namespace, workdir, requests, send):
    """Call the learner's function for each request: inputs from in_<nonce>.bin, the value into out_<nonce>.bin."""
    for req in _requests(requests):
        nonce, fname = str(req.get("nonce", "")), str(req.get("fn", ""))
        if not nonce.isalnum():
            continue
        fn = namespace.get(fname)
        if not callable(fn):
            send(ev="missing", nonce=nonce)
            continue
        try:
            with open(os.path.join(workdir, f"in_{nonce}.bin"), "rb") as f:
                spec, arrays = codec.unpack(f.read())
            args = codec.decode(spec, arrays)
        except BaseException as e:  # the learner's code may have removed or changed the file
            send(ev="raised", nonce=nonce, error="InputsUnreadable", message=_text(e))
            continue
        try:
            value = fn(*args)
            data = codec.pack(*codec.encode(value))
            fd = _open(os.path.join(workdir, f"out_{nonce}.bin"),
                       os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                view = memoryview(data)
                while view:
                    view = view[_write(fd, view):]
            finally:
                _close(fd)
        except BaseException as e:  # SystemExit and KeyboardInterrupt included: one call, one outcome
            send(ev="raised", nonce=nonce, error=type(e).__name__, message=_text(e))
            continue
        send(ev="result", nonce=nonce)


def _text(e):
    try:
        return str(e)[:300]
    except BaseException:
        return "(the exception could not be printed)"
