"""The command line: subcommands, the main job end to end (shortened), and one-line errors."""
import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlcourse", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=600)


def test_help_lists_every_subcommand():
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("course", "init", "train", "check", "bench"):
        assert cmd in r.stdout


def test_main_job_shortened_writes_table_figure_summary(tmp_path):
    out = tmp_path / "run"
    r = run("train", "sinusoid", "--iterations", "150", "--pretrain-iterations", "150", "--eval-tasks", "40",
            "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "maml (paper)" in r.stdout and "0.67" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["results"]) == {"maml", "pretrain"}
    assert len(summary["results"]["maml"]["mse"]) == 11
    assert set(summary["results"]["maml"]["by_k"]) == {"5", "10", "20"}  # meta-test with K = 5, 10, 20
    assert "K=20" in r.stdout
    assert (out / "sinusoid.png").stat().st_size > 10_000
    before = (out / "maml.npz").read_bytes()
    r2 = run("train", "--iterations", "5", "--out", str(out))
    assert r2.returncode != 0 and "--overwrite" in r2.stderr and "Traceback" not in r2.stderr
    assert (out / "maml.npz").read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (("train", "--alpha", "-1", "--iterations", "2"), "alpha"),
    (("train", "--alpha", "nan", "--iterations", "2"), "alpha"),
    (("train", "--inner-steps", "-2", "--iterations", "2"), "inner_steps"),
    (("train", "--k-support", "0", "--iterations", "2"), "k_support"),
    (("train", "--iterations", "2.5"), "invalid int"),
    (("train", "omniglot-typo"), "unknown task"),
    (("train", "--methods", "maml,foo"), "unknown method"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_arguments_give_one_clear_line(args, words, tmp_path):
    r = run(*args, "--out", str(tmp_path / "o")) if args[0] == "train" else run(*args)
    assert r.returncode != 0
    assert words in r.stderr
    assert "Traceback" not in r.stderr


def test_check_and_init(tmp_path):
    r = run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installation OK" in r.stdout
    r = run("init", str(tmp_path / "mine"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mine" / "notebooks").is_dir()


def test_bench_runs_and_prints_ratios():
    r = run("bench", "--steps", "1", "--repeats", "3", "--quick")
    assert r.returncode == 0, r.stderr
    assert "x fastest" in r.stdout and "per-task loop" in r.stdout


def test_course_command_starts_jupyterlab_on_a_private_copy(tmp_path):
    import secrets
    import socket
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    env = dict(ENV, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen([sys.executable, "-m", "mlcourse", "course", str(tmp_path / "mine"), "--no-browser",
                             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                             f"--IdentityProvider.token={token}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}",
                                            timeout=2) as r:
                    listing = json.loads(r.read())
                break
            except OSError:
                assert time.time() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(0.5)
        names = {c["name"] for c in listing["content"]}
        assert any(n.startswith("00_") for n in names), names
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_allocator_tuning_is_safe_to_repeat():
    from mlcourse._runtime import tune_allocator
    first, again = tune_allocator(), tune_allocator()
    assert first == again  # True on Linux/glibc, False elsewhere; never an error
