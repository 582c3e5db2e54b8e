"""A third set of hostile submissions, written after reading mlcourse/grading/: each group of attacks
is built the way a determined student would, from the ex04 exercise (blank: 0/15) or solution (15/15).

1. the channel: forged events (answers for every call, a confinement section saying "off", a flood
   of errors, a result naming a link to a private file), answers sent after a call returned, an
   output file replaced by a link or a pipe;
2. the engine and the question bank from the child: the engine at cell time, while a value is
   encoded, after reloading its module; the bank's references imported for a lookup table;
3. what outlives a submission: file modes, times and attributes changed outside the work folder,
   sockets of every family;
4. files in and out: linked and special submissions, linked or foreign output folders, the child's
   error stream and the disk bound;
5. the reports: formula-like, non-UTF-8 and colliding names, a notebook claiming another
   assignment, hidden tests' messages.
"""
import csv
import io
import json
import os
import re
import socket
import stat
import threading
import uuid

import nbformat
import numpy as np
import pytest

from mlcourse import cli
from mlcourse.grading import bank, codec, grader, mistakes, reports, runner, sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTION = os.path.join(ROOT, "solutions", "ex04_maml_fomaml.ipynb")
EXERCISE = os.path.join(ROOT, "exercises", "ex04_maml_fomaml.ipynb")
EX04_POINTS = sum(q.points for q in bank.assignment_questions("ex04"))   # full marks of the solution
FUNCTIONS = ("inner_update", "maml_loss", "fomaml_grad", "maml_meta_gradient", "maml_minus_fomaml")
TOKEN = uuid.uuid4().hex[:12]
SECRET = f"PRIVATE-{TOKEN}"
LIMITS = runner.Limits(cell_timeout=8, total_timeout=120, disk_mb=48)


def _read(path):
    return nbformat.read(path, as_version=4)


def _cell(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.pop("id", None)  # the notebooks are nbformat 4.4, which has no cell ids
    return cell


def _def_cell(nb, fn):
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(f"def {fn}("))


def _replace_body(nb, fn, body):
    i = _def_cell(nb, fn)
    src = nb.cells[i].source
    head = src.split("### BEGIN SOLUTION")[0] if "### BEGIN SOLUTION" in src else src.split("# YOUR CODE HERE")[0]
    nb.cells[i].source = head.rstrip(" ") + body
    return nb


def _right_answers():
    """The solution's five functions, renamed _right_<name>: correct code pasted into a cell."""
    out = []
    for c in _read(SOLUTION).cells:
        if c.cell_type == "code" and c.source.startswith("def ") and c.source.split("(")[0][4:] in FUNCTIONS:
            src = c.source
            for name in FUNCTIONS:
                src = re.sub(rf"\b{name}\b", f"_right_{name}", src)
            out.append(src)
    return "\n\n".join(out) + "\n"


# every pipe this process may write to (the events pipe among them), found without knowing its number
_PIPES = ("import os, json, fcntl\n"
          "def _pipes():\n"
          "    out = []\n"
          "    for fd in os.listdir('/proc/self/fd'):\n"
          "        try:\n"
          "            if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:') and "
          "fcntl.fcntl(int(fd), fcntl.F_GETFL) & os.O_WRONLY:\n"
          "                out.append(int(fd))\n"
          "        except OSError:\n            pass\n"
          "    return out\n"
          "_PIPE_FDS = []\n"
          "def _send(ev):\n"
          "    _PIPE_FDS[:] = _PIPE_FDS or _pipes()\n"
          "    for fd in _PIPE_FDS:\n"
          "        try:\n            os.write(fd, (json.dumps(ev) + '\\n').encode())\n"
          "        except OSError:\n            pass\n")


def forging_cell(private):
    """Answers for every call the grader may make, computed by pasted correct code and sent as events
    in every layout the grader has used, plus a confinement section saying "off", a malformed one, a
    flood of errors and a result naming a link to a private file."""
    return (_right_answers() + _PIPES +
            "import numpy, time\nfrom mlcourse.grading import codec\n"
            "RIGHT = {" + ", ".join(f"'{n}': _right_{n}" for n in FUNCTIONS) + "}\n"
            "_send({'ev': 'sandbox', 'landlock_abi': 0, 'reads_confined': False, 'writes_confined': False, "
            "'pids_cgroup': False, 'subreaper': False, 'disk_bound_mb': 0, 'engine_blocking': False})\n"
            "_send({'ev': 'sandbox', 'limits': 5, 'disk_bound_mb': 'x'})\n"
            "for i in range(2000):\n"
            "    _send({'ev': 'cell_error', 'i': i % 40, 'error': 'Forged', 'message': 'FLOOD' * 20})\n"
            f"os.symlink({private!r}, 'leak.npz')\n"
            "job = json.load(open('job.json'))\n"
            "calls = job.get('calls', [])\n"
            "inputs = dict(numpy.load('inputs.npz')) if os.path.exists('inputs.npz') else {}\n"
            "for n, call in enumerate(calls):\n"
            "    _send({'ev': 'call', 'id': call['id']})\n"
            "    try:\n"
            "        value = RIGHT[call['fn']](*codec.decode(call['args'], inputs))\n"
            "        spec, arrays = codec.encode(value)\n"
            "        numpy.savez(f'forged_{n}.npz', **arrays)\n"
            "        _send({'ev': 'result', 'id': call['id'], 'spec': spec, 'file': f'forged_{n}.npz'})\n"
            "    except Exception as e:\n"
            "        _send({'ev': 'result', 'id': call['id'], 'spec': {'t': 'arr', 'k': 'a0'}, 'file': 'leak.npz'})\n"
            "for n in range(200):\n"
            "    _send({'ev': 'result', 'nonce': '%032x' % n})\n"
            "_send({'ev': 'cells_done'})\n"
            "_send({'ev': 'done'})\n")


# the answer of the call being made, sent again after it returned (its nonce read from the caller's frame)
_LATE = ("import sys, threading, time\nfrom mlcourse.grading import codec\n"
         "def _late(value, wait=0.3):\n"
         "    f = sys._getframe(2)\n"
         "    nonce, call = f.f_locals.get('nonce'), f.f_locals.get('call')\n"
         "    def later():\n"
         "        time.sleep(wait)\n"
         "        if nonce:\n"
         "            with open(f'out_{nonce}.bin', 'wb') as out:\n"
         "                out.write(codec.pack(*codec.encode(value)))\n"
         "            _send({'ev': 'result', 'nonce': nonce})\n"
         "        if call:\n"
         "            spec, arrays = codec.encode(value)\n"
         "            numpy.savez('late.npz', **arrays)\n"
         "            _send({'ev': 'result', 'id': call['id'], 'spec': spec, 'file': 'late.npz'})\n"
         "    threading.Thread(target=later).start()\n"
         "def _my_output():\n"
         "    nonce = sys._getframe(2).f_locals.get('nonce')\n"
         "    return f'out_{nonce}.bin'\n")


def make_channel_cases(folder, private):
    nb = _read(EXERCISE)
    nb.cells.append(_cell(forging_cell(private)))
    nbformat.write(nb, os.path.join(folder, "ex04_forged_events.ipynb"))
    # answers after the call returned; an output file replaced by a link, by a named pipe
    nb = _read(SOLUTION)
    nb.cells.insert(1, _cell(_right_answers() + _PIPES + "import numpy\n" + _LATE))
    nb = _replace_body(nb, "inner_update", "    _late(_right_inner_update(theta, x_support, y_support, alpha))\n"
                       "    return [(0 * W, 0 * b) for W, b in theta]\n")
    nb = _replace_body(nb, "maml_loss", "    value = _right_maml_loss(theta, x_support, y_support, x_query, y_query, "
                       "alpha, inner_steps)\n"
                       f"    os.remove(_my_output())\n    os.symlink({private!r}, _my_output())\n    return value\n")
    nb = _replace_body(nb, "fomaml_grad", "    value = _right_fomaml_grad(theta, x_support, y_support, x_query, "
                       "y_query, alpha, inner_steps)\n    os.remove(_my_output())\n    os.mkfifo(_my_output())\n"
                       "    return value\n")
    nbformat.write(nb, os.path.join(folder, "ex04_late_and_linked_answers.ipynb"))


@pytest.fixture(scope="module")
def private_file(tmp_path_factory):
    home = tmp_path_factory.mktemp("grading_user_home")
    path = home / "id_secret"
    path.write_text(SECRET)
    return str(path)


@pytest.fixture(scope="module")
def channel(tmp_path_factory, private_file):
    folder = tmp_path_factory.mktemp("channel")
    make_channel_cases(str(folder), private_file)
    reps = grader.grade_path(str(folder), limits=LIMITS, workers=2, on_warning=lambda t: None)
    out = tmp_path_factory.mktemp("channel_out")
    written = reports.write_all(reps, str(out), gradescope_json=True)
    texts = [reports.table(reps)] + [open(p, encoding="utf-8").read() for p in written]
    return {r["submission"]: r for r in reps}, texts


def _scores(r):
    return {q["id"]: q["score"] for q in r["questions"]}


def test_forged_events_on_a_blank_exercise_score_zero(channel):
    r = channel[0]["ex04_forged_events.ipynb"]
    assert r["error"] is None and r["score"] == 0 and r["max_score"] == EX04_POINTS, _scores(r)
    for q in r["questions"]:
        assert q["message"] == "not answered yet: the function raises NotImplementedError", q


def test_the_confinement_section_comes_from_the_trusted_side(channel):
    r = channel[0]["ex04_forged_events.ipynb"]
    assert r["sandbox"]["enforced"] == channel[0]["ex04_late_and_linked_answers.ipynb"]["sandbox"]["enforced"]
    assert r["sandbox"]["disk_bound_mb"] == LIMITS.disk_mb and "x" != r["sandbox"]["disk_bound_mb"]
    if sandbox.landlock_abi() >= 1:
        assert set(r["sandbox"]["enforced"].values()) == {"on"}, r["sandbox"]


def test_a_flood_of_forged_errors_adds_at_most_one_note_per_cell(channel):
    r = channel[0]["ex04_forged_events.ipynb"]
    cells = sum(c.cell_type == "code" for c in _read(EXERCISE).cells) + 1
    assert len(r["notes"]) <= cells, len(r["notes"])
    assert sum("FLOOD" in n for n in r["notes"]) <= 1
    assert len(json.dumps(r)) < 50_000


def test_only_the_answer_to_the_call_just_issued_counts(channel):
    r = channel[0]["ex04_late_and_linked_answers.ipynb"]
    got = {q["id"]: q for q in r["questions"]}
    # inner_update returned zeros and sent the right answer 0.3 s later: the late answer is not taken
    assert got["q8"]["score"] == 0, got["q8"]
    # an output file replaced by a link to a private file, or by a named pipe: never followed, never waited on
    assert got["q9"]["score"] == 0 and "could not be read" in got["q9"]["message"] or "raised" in got["q9"]["message"]
    assert got["q10"]["score"] == 0
    assert r["execution_time"] < LIMITS.total_timeout
    # what inner_update returned (zeros) is what was judged
    assert "got array shape (1, 8) [ 0.,  0.," in got["q8"]["tests"][0]["message"], got["q8"]


def test_the_private_file_never_reaches_an_output(channel):
    for text in channel[1]:
        assert SECRET not in text


def test_the_codec_reads_only_its_own_flat_format():
    spec, arrays = codec.encode([np.arange(3.0), {"a": 1}])
    data = codec.pack(spec, arrays)
    assert codec.decode(*codec.unpack(data))[1] == {"a": 1}
    buf = io.BytesIO()
    np.savez_compressed(buf, a0=np.zeros(2 ** 24))   # 128 MB of zeros in a few hundred KB
    for bad in (buf.getvalue(), data[:-3], data + b"\0", b"\xff" * 8 + data[8:],
                (len(b'{"spec":{},"arrays":[["a","<f8",[1000000000],8000000000]]}')).to_bytes(8, "little")
                + b'{"spec":{},"arrays":[["a","<f8",[1000000000],8000000000]]}',
                (len(b'{"spec":{},"arrays":[["a","|O",[1],8]]}')).to_bytes(8, "little")
                + b'{"spec":{},"arrays":[["a","|O",[1],8]]}' + b"\0" * 8):
        with pytest.raises(codec.Malformed):
            codec.unpack(bad)


# ---- 2. the engine and the question bank, from the child ------------------------------------------------

def make_engine_cases(folder):
    nb = _read(EXERCISE)
    nb.cells.insert(1, _cell(
        "import importlib, numbers\nfrom mlcourse import maml, fastpath\nfrom mlcourse.tasks import TaskBatch\n"
        "try:\n    AT_CELL_TIME = maml.adapt  # bound now, called later\n    maml.maml_loss\nexcept Exception:\n"
        "    pass\n"
        "class Sneaky:  # the engine runs while the grader's harness encodes the value\n"
        "    def __init__(self, args):\n        self.args = args\n"
        "    def __array__(self, dtype=None, copy=None):\n"
        "        theta, xs, ys, alpha = self.args\n"
        "        return numpy.asarray(fastpath.adapt(theta, xs, ys, alpha))\n"
        "numbers.Number.register(Sneaky)\nimport numpy\n"))
    nb = _replace_body(nb, "inner_update", "    return Sneaky((theta, x_support, y_support, alpha))\n")
    nb = _replace_body(nb, "maml_loss", (
        "    from mlcourse.grading import bank  # a lookup table of the bank's references\n"
        "    for t in bank.question('q9').tests:\n"
        "        return float(t.judge.reference(theta, TaskBatch(x_support, y_support, x_query, y_query), alpha, "
        "inner_steps))\n"))
    nb = _replace_body(nb, "fomaml_grad", (
        "    import mlcourse.maml as m\n    m = importlib.reload(m)  # a fresh copy of the module\n"
        "    return m.fomaml_grad(theta, TaskBatch(x_support, y_support, x_query, y_query), alpha, inner_steps)\n"))
    nb = _replace_body(nb, "maml_meta_gradient", (
        "    import inspect\n    src = inspect.getsource(maml)  # the engine's source, to run a copy of it\n"
        "    ns = {}\n    exec(compile(src, 'copy', 'exec'), ns)\n"
        "    return ns['maml_grad'](theta, TaskBatch(x_support, y_support, x_query, y_query), alpha, inner_steps)\n"))
    nbformat.write(nb, os.path.join(folder, "ex04_engine_everywhere.ipynb"))


def test_the_engine_and_the_bank_are_out_of_reach_for_the_whole_run(tmp_path):
    make_engine_cases(str(tmp_path))
    r = grader.grade_path(str(tmp_path), limits=LIMITS, on_warning=lambda t: None)[0]
    assert r["score"] == 0, [(q["id"], q["message"]) for q in r["questions"]]
    got = {q["id"]: q["message"] for q in r["questions"]}
    # the rule's message is the one learners know
    assert "mlcourse.fastpath.adapt is not available while q8 is graded" in got["q8"] or "Unsupported" in got["q8"] \
        or "could not" in got["q8"] or "raised" in got["q8"], got["q8"]
    assert "PermissionError" in got["q9"] or "ImportError" in got["q9"] or "ModuleNotFoundError" in got["q9"], got["q9"]
    assert "PermissionError" in got["q10"] or "raised" in got["q10"], got["q10"]
    assert "raised" in got["q23"], got["q23"]


# ---- 3. nothing a submission does touches what the next one uses -----------------------------------

def tamper_cell(target, unix_path, port):
    return (
        "import os, socket\nresults = {}\n"
        f"target = {target!r}\n"
        "def attempt(name, fn):\n"
        "    try:\n        fn()\n        results[name] = 'done'\n"
        "    except Exception as e:\n        results[name] = type(e).__name__\n"
        "attempt('chmod', lambda: os.chmod(target, 0))\n"
        "fd = os.open(target, os.O_RDONLY)\n"
        "attempt('fchmod', lambda: os.fchmod(fd, 0))\n"
        "attempt('chown', lambda: os.chown(target, 12345, 12345))\n"
        "attempt('utime', lambda: os.utime(target, (0, 0)))\n"
        "attempt('xattr', lambda: os.setxattr(target, 'user.mlcourse', b'x'))\n"
        f"attempt('tcp', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2))\n"
        f"attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port})))\n"
        f"attempt('unix', lambda: socket.socket(socket.AF_UNIX).connect({unix_path!r}))\n"
        "attempt('abstract', lambda: socket.socket(socket.AF_UNIX).connect('\\0mlcourse-listener'))\n"
        "attempt('inet6', lambda: socket.socket(socket.AF_INET6))\n"
        "attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n"
        "done = [k for k, v in sorted(results.items()) if v == 'done']\n"
        "raise RuntimeError(f'TAMPER {len(results)} attempts; went through: {done}')\n")


def test_a_submission_that_tampers_leaves_the_next_one_unchanged(tmp_path):
    target = codec.__file__  # a module the grading child imports
    before = os.stat(target)
    listeners = [socket.socket(socket.AF_INET, socket.SOCK_STREAM), socket.socket(socket.AF_UNIX)]
    listeners[0].bind(("127.0.0.1", 0))
    unix_path = str(tmp_path / "listener.sock")
    listeners[1].bind(unix_path)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0mlcourse-listener")
    for s in listeners + [abstract]:
        s.listen(5)
        s.settimeout(0.1)
    folder = tmp_path / "subs"
    folder.mkdir()
    nb = _read(SOLUTION)
    nb.cells.insert(1, _cell(tamper_cell(target, unix_path, listeners[0].getsockname()[1])))
    nbformat.write(nb, str(folder / "ex04_1_tamper.ipynb"))
    nbformat.write(_read(SOLUTION), str(folder / "ex04_2_honest.ipynb"))
    try:
        reps = grader.grade_path(str(folder), limits=LIMITS, workers=1, on_warning=lambda t: None)
        after = os.stat(target)
    finally:  # put the module back as it was, whatever happened
        os.chmod(target, stat.S_IMODE(before.st_mode))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        try:
            os.removexattr(target, "user.mlcourse")
        except OSError:
            pass
    accepted = []
    for s in listeners + [abstract]:
        try:
            accepted.append(s.accept())
        except OSError:
            pass
        s.close()
    assert accepted == []
    assert (after.st_mode, after.st_uid, after.st_mtime_ns) == (before.st_mode, before.st_uid, before.st_mtime_ns)
    by = {r["submission"]: r for r in reps}
    note = next(n for n in by["ex04_1_tamper.ipynb"]["notes"] if "TAMPER" in n)
    assert "TAMPER 11 attempts; went through: []" in note, note
    assert by["ex04_1_tamper.ipynb"]["score"] == EX04_POINTS  # its own answers are still graded
    assert by["ex04_2_honest.ipynb"]["score"] == EX04_POINTS, by["ex04_2_honest.ipynb"]["notes"]
    # root powers: none left that matters, checked from outside the child
    sb = by["ex04_2_honest.ipynb"]["sandbox"]
    if os.geteuid() == 0:
        assert sb["capabilities_dropped"] is True
    assert sb["seccomp"] is True and sb["no_new_privs"] is True


# ---- 4. files in and out --------------------------------------------------------------------------

def test_links_and_special_files_are_refused_and_the_rest_graded(tmp_path, private_file):
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(_read(EXERCISE), str(folder / "ex04_blank.ipynb"))
    os.symlink(SOLUTION, folder / "ex04_link_to_solution.ipynb")
    os.symlink(private_file, folder / "ex04_link_to_private.ipynb")
    os.mkfifo(folder / "ex04_never_ends.ipynb")
    reps = {r["submission"]: r for r in grader.grade_path(str(folder), limits=LIMITS, workers=2,
                                                           on_warning=lambda t: None)}
    assert reps["ex04_blank.ipynb"]["max_score"] == EX04_POINTS and reps["ex04_blank.ipynb"]["error"] is None
    for name, kind in (("ex04_link_to_solution.ipynb", "a symbolic link"),
                       ("ex04_link_to_private.ipynb", "a symbolic link"), ("ex04_never_ends.ipynb", "a named pipe")):
        assert reps[name]["score"] == 0 and kind in reps[name]["error"], reps[name]
    assert SECRET not in json.dumps(list(reps.values())) + reports.gradebook_csv(list(reps.values()))
    # a single linked file, named on the command line, is refused the same way
    assert "symbolic link" in grader.grade_file(str(folder / "ex04_link_to_solution.ipynb"))["error"]


def test_the_output_folder_is_never_written_through_a_link(tmp_path, capsys):
    sub = tmp_path / "ex04_blank.ipynb"
    nbformat.write(_read(EXERCISE), str(sub))
    real = tmp_path / "real_out"
    real.mkdir()
    os.symlink(real, tmp_path / "linked_out")
    assert cli.main(["grade", str(sub), "--out", str(tmp_path / "linked_out"), "--quiet"]) == 1
    assert "symbolic link" in capsys.readouterr().err and os.listdir(real) == []
    # links inside the output folder are replaced, their targets untouched
    out = tmp_path / "out"
    (out / "feedback").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, out / "gradebook.csv")
    os.symlink(victim, out / "feedback" / "ex04_blank.md")
    assert cli.main(["grade", str(sub), "--out", str(out), "--quiet"]) == 0
    assert victim.read_text() == "keep me"
    assert not os.path.islink(out / "gradebook.csv") and "ex04_blank" in (out / "gradebook.csv").read_text()
    assert not os.path.islink(out / "feedback" / "ex04_blank.md")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder owned by another user needs root")
def test_an_output_folder_of_another_user_is_refused(tmp_path, capsys):
    sub = tmp_path / "ex04_blank.ipynb"
    nbformat.write(_read(EXERCISE), str(sub))
    out = tmp_path / "theirs"
    out.mkdir()
    os.chown(out, 4242, 4242)
    assert cli.main(["grade", str(sub), "--out", str(out), "--quiet"]) == 1
    assert "belongs to another user" in capsys.readouterr().err and os.listdir(out) == []


def test_the_childs_error_stream_counts_against_the_disk_bound(tmp_path):
    nb = _read(SOLUTION)
    nb.cells.insert(1, _cell("import os\nfor _ in range(40):\n    try:\n"
                             "        os.write(2, b'E' * (4 * 2**20))\n    except OSError:\n        break\n"))
    nbformat.write(nb, str(tmp_path / "ex04_noisy.ipynb"))
    r = grader.grade_file(str(tmp_path / "ex04_noisy.ipynb"), limits=runner.Limits(cell_timeout=8, disk_mb=32))
    # what it wrote on its error stream is measured with its files, and stops at the bound
    assert 16 <= r["sandbox"]["peak_disk_mb"] <= 32 + 8, r["sandbox"]
    # two right outcomes, by timing: the file-size cap (what is left of the budget at the supervisor's last look)
    # refuses the writes below the bound and the notebook goes on to full marks; or the stream reaches the bound
    # (within 1 MB) before the notebook ends and the run is stopped there, with the disk note
    stopped = [n for n in r["notes"] if "(disk limit)" in n]
    assert r["score"] == EX04_POINTS or (stopped and r["score"] < EX04_POINTS), (r["score"], r["notes"])


# ---- 5. reports safe to open --------------------------------------------------------------------------

NAMES = ["=1+2.ipynb", '=HYPERLINK("https:example.com","click").ipynb', "-2+3.ipynb", "@SUM(A1).ipynb",
         "my notebook.ipynb", "my_notebook.ipynb", "My_Notebook.ipynb"]


def test_every_name_gets_a_safe_row_and_its_own_files(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    blank = nbformat.writes(_read(EXERCISE)).encode()
    for name in NAMES:
        (folder / name).write_bytes(blank)
    raw = os.fsencode(str(folder)) + b"/caf\xe9 \xff.ipynb"  # not UTF-8
    with open(raw, "wb") as f:
        f.write(blank)
    claims = _read(EXERCISE)
    claims.metadata["mlcourse"] = {"assignment": "ex03"}
    nbformat.write(claims, str(folder / "ex04_claims_ex03.ipynb"))
    reps = grader.grade_path(str(folder), limits=LIMITS, workers=2, on_warning=lambda t: None)
    assert len(reps) == len(NAMES) + 2
    # the folder's assignment comes from its files' names, once: every notebook is graded as ex04
    assert {r["assignment"] for r in reps} == {"ex04"} and all(r["max_score"] == EX04_POINTS for r in reps)
    claim = next(r for r in reps if r["submission"] == "ex04_claims_ex03.ipynb")
    assert any("says it answers ex03" in n and "graded as ex04" in n for n in claim["notes"])
    out = tmp_path / "out"
    written = reports.write_all(reps, str(out), gradescope_json=True)
    rows = list(csv.DictReader(open(out / "gradebook.csv", encoding="utf-8")))
    assert len(rows) == len(reps)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert "'=1+2.ipynb" in {row["submission"] for row in rows}
    assert any("caf\\xe9 \\xff.ipynb" == row["submission"] for row in rows), [row["submission"] for row in rows]
    feedback = sorted(os.listdir(out / "feedback"))
    assert len(feedback) == len(reps) == len(set(f.lower() for f in feedback))
    assert len(os.listdir(out / "gradescope")) == len(reps)
    assert sum("another submission's name also gives" in n for r in reps for n in r["notes"]) == 2
    assert all(os.path.exists(p) for p in written)


def test_hidden_tests_show_pass_or_fail_and_mistake_names_only(tmp_path):
    nb = _read(SOLUTION)
    # a wrong answer whose messages carry values, and a raised message made of the inputs themselves
    nb = _replace_body(nb, "inner_update", "    raise ValueError('INPUTS ' + repr(alpha) + ' ' + "
                       "repr(float(np.sum(x_support))))\n")
    nb = _replace_body(nb, "maml_minus_fomaml", "    T = len(x_support)\n    total = None\n"
                       "    raise ValueError('ALPHA ' + repr(alpha))\n")
    nbformat.write(nb, str(tmp_path / "ex04_leaky.ipynb"))
    r = grader.grade_file(str(tmp_path / "ex04_leaky.ipynb"), limits=LIMITS)
    out = tmp_path / "out"
    reports.write_all([r], str(out), gradescope_json=True)
    texts = [reports.table([r]), reports.table([r, r]), reports.feedback_markdown(r),
             (out / "results.json").read_text(), (out / "report.json").read_text(), (out / "gradebook.csv").read_text()]
    for q in r["questions"]:
        question = bank.question(q["id"])
        for t, test in zip(q["tests"], question.tests):
            if not t["hidden"]:
                continue
            lines = t["message"].splitlines()
            assert lines[0] in ("passed", "failed") and all(mistakes.PREFIX in ln for ln in lines[1:]), t
            # what the call raised, built from the hidden inputs, is nowhere
            args = test.calls[0]
            if q["id"] == "q8":
                secret = f"INPUTS {args[3]!r} {float(np.sum(args[1]))!r}"
            elif q["id"] == "q24":
                secret = f"ALPHA {args[5]!r}"
            else:
                continue
            for text in texts:
                assert secret not in text.replace("\\'", "'"), (q["id"], secret)
    # the public tests still show their messages
    assert "INPUTS" in reports.feedback_markdown(r)


def test_shown_message_keeps_only_mistake_lines_of_a_hidden_failure():
    msg = f"expected ... relative error 0.0213\n      {mistakes.PREFIX} (sign): the step goes uphill"
    assert reports.shown_message(msg, hidden=False, passed=False) == msg
    assert reports.shown_message(msg, hidden=True, passed=True) == "passed"
    shown = reports.shown_message(msg, hidden=True, passed=False)
    assert shown.splitlines()[0] == "failed" and "0.0213" not in shown and "(sign)" in shown
    assert reports.csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0" and reports.csv_cell("ok") == "ok"
    assert reports.display_name(os.fsdecode(b"a\xff\x1b[31m.ipynb")) == "a\\xff\\x1b[31m.ipynb"
    # learner text reaches the instructor's terminal without its escape sequences
    r = {"submission": "ex04_x.ipynb", "assignment": "ex04", "score": 0, "max_score": 1, "execution_time": 0.1,
         "notes": ["code cell 1 raised RuntimeError: \x1b[2J\x1b]0;owned\x07"], "sandbox": {},
         "questions": [{"id": "q8", "function": "inner_update", "score": 0, "max_score": 1, "status": "failed",
                        "message": "raised ValueError: \x1b[31mred"}], "error": None}
    for text in (reports.table([r]), reports.table([r, r])):
        assert "\x1b" not in text and "\\x1b" in text


def test_a_hidden_test_shows_none_of_the_learner_s_text_whatever_its_exception_says(tmp_path):
    """Learner code sees a hidden test's inputs and may put them in an exception: one named like the grader's own
    outcomes (Timeout, NotRun, ...) is not taken for one, and a message line holding the mistake prefix is not a
    mistake line; a hidden failure shows "failed" and nothing of it (public tests still show the message)."""
    nb = _read(EXERCISE)
    leak = "'LEAK ' + repr(np.asarray(x_support).ravel()[:2].tolist())"
    nb.cells.insert(1, _cell("import numpy as np\nclass Timeout(Exception):\n    pass\n"
                             "class TooLarge(Exception):\n    pass\n"))
    _replace_body(nb, "inner_update", f"    raise Timeout({leak})\n")
    _replace_body(nb, "maml_loss", f"    raise ValueError('{mistakes.PREFIX} (sign): the step goes uphill\\n' + {leak})\n")
    _replace_body(nb, "fomaml_grad", f"    raise ValueError({leak}.join(['', ' {mistakes.PREFIX} ']))\n")
    _replace_body(nb, "maml_meta_gradient", f"    raise TooLarge({leak})\n")
    path = tmp_path / "ex04_leak.ipynb"
    nbformat.write(nb, str(path))
    r = grader.grade_file(str(path), limits=LIMITS)
    assert r["error"] is None and r["score"] == 0, _scores(r)
    hidden = [(q["id"], t) for q in r["questions"] for t in q["tests"] if t["hidden"]]
    public = [(q["id"], t) for q in r["questions"] for t in q["tests"] if not t["hidden"]]
    by_q = {qid for qid, _ in hidden}
    assert {"q8", "q9", "q10"} <= by_q, by_q   # the questions above have hidden tests
    for qid, t in hidden:
        if qid in ("q8", "q9", "q10", "q23"):
            assert "LEAK" not in t["message"] and t["message"] == "failed", (qid, t)
    assert any("LEAK" in t["message"] for qid, t in public if qid == "q8")   # public: the learner's own message
    assert any("Timeout (an exception of the submission)" in t["message"] for qid, t in public if qid == "q8")
    md = [ln for ln in reports.feedback_markdown(r).splitlines() if ln.startswith("- [") and "hidden" in ln]
    assert md and not any("LEAK" in ln for ln in md), md
    gs = [t for t in reports.gradescope(r)["tests"] if t["visibility"] == reports.GRADESCOPE_HIDDEN]
    assert gs and not any("LEAK" in t["output"] for t in gs), gs


def test_the_grader_s_own_outcome_names_are_the_ones_it_shows_in_full():
    assert set(grader._SPECIAL) == runner.GRADER_OUTCOMES


# ---- grading as an unprivileged user -------------------------------------------------------------------

NOBODY = 65534


def _as_nobody(args, **kw):
    import subprocess
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args],
                          capture_output=True, text=True, **kw)


@pytest.fixture
def request_cleanup():
    import shutil
    folders = []
    yield folders
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)


def test_an_unprivileged_grader_keeps_its_confinements(request_cleanup):
    import shutil
    import sys
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching to an unprivileged user needs root and setpriv")
    probe = _as_nobody([sys.executable, "-c", "import subprocess, sys, mlcourse.grading.grader\n"
                        "subprocess.run([sys.executable, '-c', 'pass'], check=True)"], cwd="/")
    if probe.returncode != 0:
        pytest.skip("this machine's Python or the project is not readable by an unprivileged user: "
                    + probe.stderr.strip().splitlines()[-1][:120])
    import pathlib
    import tempfile
    folder = pathlib.Path(tempfile.mkdtemp(prefix="mlcourse-nobody-"))  # pytest's tmp_path is root's alone
    request_cleanup.append(folder)
    nbformat.write(_read(SOLUTION), str(folder / "ex04_solution.ipynb"))
    os.chown(folder, NOBODY, NOBODY)
    os.chmod(folder, 0o755)
    done = _as_nobody([sys.executable, "-m", "mlcourse", "grade", str(folder / "ex04_solution.ipynb"), "--out",
                       str(folder / "out"), "--quiet"], cwd="/", env={**os.environ, "HOME": str(folder)})
    assert done.returncode == 0, done.stderr
    r = json.load(open(folder / "out" / "report.json"))[0]
    assert r["score"] == EX04_POINTS and r["sandbox"]["uid"] == NOBODY
    enforced = r["sandbox"]["enforced"]
    assert enforced["file metadata and sockets"] == "on" and enforced["root powers dropped"] == "on"
    assert enforced["process bound"] == "on" and enforced["process sweep"] == "on"
    if sandbox.landlock_abi() >= 1:
        assert enforced["read confinement"] == enforced["write confinement"] == "on"
