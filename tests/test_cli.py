"""The command line: subcommands, the main job end to end (shortened), and one-line errors."""
import json
import os
import re
import subprocess
import sys

import pytest

from labtools import mlcourse_without
from mlcourse import cli
from mlcourse.experiments import direction_trace, shipped, sinusoid_job

ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlcourse", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=600)


COMMANDS = {"course", "init", "train", "refresh-results", "check", "bench", "grade", "assign", "validate",
            "gradescope-bundle", "data", "eval-oneshot", "site", "practice", "progress"}
GRADING_STACK = {"nbformat", "nbclient", "IPython", "ipykernel"}
PACKAGE = os.path.dirname(os.path.abspath(cli.__file__))


def listed_commands(help_text):
    """The subcommands `mlcourse --help` lists: the first word of each indented line of its table."""
    return set(re.findall(r"^    (\S+)", help_text, re.M))


def one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_help_lists_every_subcommand():
    r = run("--help")
    assert r.returncode == 0
    assert listed_commands(r.stdout) == COMMANDS


def test_main_job_shortened_writes_table_figure_summary(tmp_path):
    out = tmp_path / "run"
    r = run("train", "sinusoid", "--iterations", "150", "--pretrain-iterations", "150", "--eval-tasks", "40",
            "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    # no --methods: the paper's row, the multi-step loss, FOMAML on the same objective, the tuned-step baseline,
    # in a 5-shot table beside the paper's Table 2, named
    assert sinusoid_job.PAPER["table"] in r.stdout and "0.67 / 0.38 / 0.35" in r.stdout and "2.41 / 2.23 / 2.19" in r.stdout
    for label in ("MAML, 1 step, last-step loss", "MAML, multi-step loss, 2 steps", "FOMAML, 1 step, last-step loss",
                  "pretrained, tuned alpha", "pretrained, alpha = 0 "):
        assert label in r.stdout, label
    summary = json.loads((out / "summary.json").read_text())
    assert tuple(summary["results"]) == sinusoid_job.DEFAULT_METHODS
    assert (summary["config"]["k_support"], summary["config"]["inner_steps"], summary["config"]["eval_k_shot"]) == (10, 1, 5)
    assert len(summary["results"]["maml"]["mse"]) == 11
    assert set(summary["results"]["maml"]["by_k"]) == {"5", "10", "20"}  # meta-test with K = 5, 10, 20
    assert "K=20" in r.stdout
    assert (out / "sinusoid.png").stat().st_size > 10_000
    before = (out / "maml.npz").read_bytes()
    r2 = run("train", "--iterations", "5", "--out", str(out))
    assert r2.returncode != 0 and "--overwrite" in r2.stderr and "Traceback" not in r2.stderr
    assert (out / "maml.npz").read_bytes() == before


@pytest.mark.parametrize("args, words, code", [
    (("train", "--alpha", "-1", "--iterations", "2"), "alpha", 1),
    (("train", "--alpha", "nan", "--iterations", "2"), "alpha", 1),
    (("train", "--beta", "inf", "--iterations", "2"), "beta", 1),
    (("train", "--inner-steps", "-2", "--iterations", "2"), "inner_steps", 1),
    (("train", "--k-support", "0", "--iterations", "2"), "k_support", 1),
    (("train", "--iterations", "-5"), "iterations must be >= 0", 1),
    (("train", "--meta-batch-size", "0", "--iterations", "2"), "meta_batch_size", 1),
    (("train", "omniglot-typo"), "unknown task", 2),
    (("train", "--methods", "maml,foo"), "unknown method", 2),
    (("train", "--methods", "maml,maml", "--iterations", "2"), "twice", 2),
    (("grade", "no-such-folder"), "does not exist", 1),
    (("grade", ".", "--workers", "0"), "workers must be an integer >= 1", 1),
    (("grade", ".", "--timeout", "-1"), "cell_timeout must be a positive number", 1),
    (("gradescope-bundle", "ex03", "--out", "bundle.txt"), ".zip", 1),
    (("gradescope-bundle", "ex03", "--timeout", "0"), "cell_timeout must be a positive number", 1),
])
def test_bad_values_give_one_line_and_a_nonzero_exit(args, words, code, tmp_path):
    """1: a value the engine refuses (ValueError); 2: a command line the CLI itself refuses."""
    train = ("--out", str(tmp_path / "o"), "--pretrain-iterations", "2")  # the baseline trains beside MAML
    r = run(*args, *train) if args[0] == "train" else run(*args, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    assert words in one_line(r.stderr) and one_line(r.stderr).startswith(f"mlcourse {args[0]}: error: ")
    assert not (tmp_path / "o" / "maml.npz").exists()   # refused before any training


@pytest.mark.parametrize("args, words", [
    (("train", "--iterations", "2.5"), "invalid int"),
    (("train", "--seed", "-1"), "--seed: must be an integer >= 0"),
    (("train", "--workers", "0"), "--workers: must be an integer >= 1"),
    (("train", "--eval-tasks", "0"), "--eval-tasks: must be an integer >= 1"),
    (("grade", ".", "--assignment", "ex99"), "invalid choice"),
    (("frobnicate",), "invalid choice"),
])
def test_bad_arguments_give_usage_and_one_error_line(args, words):
    r = run(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert words in r.stderr.strip().splitlines()[-1]


def test_user_errors_are_the_users_mistakes_only():
    assert not set(cli.USER_ERRORS) & {KeyError, TypeError, AttributeError, IndexError, AssertionError}


@pytest.mark.parametrize("bug", [KeyError, TypeError])
def test_a_bug_of_the_package_shows_its_traceback(bug, monkeypatch, tmp_path):
    def broken(*a, **k):
        raise bug("internal")
    monkeypatch.setattr(sinusoid_job, "run", broken)
    with pytest.raises(bug, match="internal"):
        cli.main(["train", "--iterations", "2", "--out", str(tmp_path / "o")])
    from mlcourse.grading import grader
    monkeypatch.setattr(grader, "grade_path", broken)
    with pytest.raises(bug, match="internal"):
        cli.main(["grade", str(tmp_path)])


def test_a_bug_prints_a_traceback_on_the_command_line(tmp_path):
    code = ("from mlcourse.experiments import sinusoid_job\n"
            "def broken(*a, **k):\n    raise KeyError('internal')\n"
            "sinusoid_job.run = broken\nfrom mlcourse.cli import main\n"
            f"sys.exit(main(['train', '--out', {str(tmp_path / 'o')!r}]))")
    from labtools import run_without
    r = run_without(set(), code)
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError: 'internal'" in r.stderr


def _no_training(monkeypatch):
    calls = []
    monkeypatch.setattr(sinusoid_job, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(direction_trace, "make_results", lambda *a, **k: calls.append(a))
    return calls


def test_refresh_results_refuses_unknown_names(monkeypatch, capsys):
    calls = _no_training(monkeypatch)
    assert cli.main(["refresh-results", "sinusoid", "sinusiod"]) == 2
    err = capsys.readouterr().err
    assert "unknown result(s) ['sinusiod']" in err and "sinusoid_reptile5" in err
    assert calls == []   # nothing is refreshed when one name is wrong


def test_refresh_results_refuses_an_installed_package(monkeypatch, capsys):
    calls = _no_training(monkeypatch)
    monkeypatch.setattr(shipped, "is_source_checkout", lambda: False)
    assert cli.main(["refresh-results", "sinusoid"]) == 2
    assert "installed package" in one_line(capsys.readouterr().err)
    assert calls == []


def test_refresh_results_runs_each_named_result_into_the_package(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sinusoid_job, "run", lambda out, **k: seen.append((out, k)) or {"results": {}})
    monkeypatch.setattr(sinusoid_job, "format_table", lambda summary: "table")
    monkeypatch.setattr(shipped, "is_source_checkout", lambda: True)
    assert cli.main(["refresh-results", "sinusoid_variants", "--no-progress"]) == 0
    (out, kw), = seen
    assert out == shipped.path("sinusoid_variants") and kw["refresh_shipped"] and kw["overwrite"]
    assert kw["maml_loss"] == "multistep" and kw["inner_steps"] == 2 and kw["k_support"] == 5 and callable(kw["figure"])


def test_train_refuses_an_out_folder_inside_the_package(tmp_path, capsys):
    out = os.path.join(PACKAGE, "experiments", "results", "a-run-of-mine")
    code = cli.main(["train", "--iterations", "2", "--eval-tasks", "10", "--out", out, "--no-progress"])
    assert code == 1
    assert "inside the mlcourse package" in one_line(capsys.readouterr().err)
    assert not os.path.exists(out)


# ---- commands whose optional extra is missing (packages hidden in a fresh process) -------------------

def test_grading_commands_are_listed_without_the_grading_extra():
    r = mlcourse_without(GRADING_STACK, "--help")
    assert r.returncode == 0 and listed_commands(r.stdout) == COMMANDS


@pytest.mark.parametrize("args, extra", [
    (("grade", "submissions"), "grading"),
    (("validate",), "grading"),
    (("assign", "--solutions", "s", "--exercises", "e"), "grading"),
    (("course", "--no-browser"), "course"),
])
def test_a_command_without_its_extra_says_which_to_install(args, extra, tmp_path):
    hidden = GRADING_STACK if extra == "grading" else {"jupyterlab"}
    r = mlcourse_without(hidden, *args, cwd=tmp_path)
    assert r.returncode == 3 and r.stdout == ""
    line = one_line(r.stderr)
    assert line.startswith(f"mlcourse {args[0]}: needs the {extra} extra")
    assert line.endswith(f"pip install 'mlcourse[{extra}]'")
    assert os.listdir(tmp_path) == []   # nothing was started or written


def test_commands_need_only_what_they_use(tmp_path):
    """assign --check only reads notebooks; a Gradescope bundle is a zip of the package source."""
    r = mlcourse_without({"nbclient", "ipykernel", "IPython"}, "assign", "--check")
    assert r.returncode == 0 and "in sync" in r.stdout, r.stderr
    r = mlcourse_without({"nbclient"}, "assign", "--solutions", "s", "--exercises", "e", cwd=tmp_path)
    assert r.returncode == 3 and "(nbclient not installed)" in one_line(r.stderr)
    r = mlcourse_without(GRADING_STACK, "gradescope-bundle", "ex03", "--out", str(tmp_path / "ag.zip"))
    assert r.returncode == 0 and (tmp_path / "ag.zip").exists(), r.stderr


def test_train_without_matplotlib_trains_and_says_how_to_get_the_figure(tmp_path):
    out = tmp_path / "run"
    r = mlcourse_without({"matplotlib"}, "train", "--methods", "maml", "--iterations", "2", "--eval-tasks", "10",
                         "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (out / "summary.json").exists() and (out / "maml.npz").exists() and not (out / "sinusoid.png").exists()
    notes = [line for line in r.stdout.splitlines() if "figure" in line]
    assert notes == ["no figure written: matplotlib is not installed; pip install 'mlcourse[plots]' and run again "
                     "for sinusoid.png"]
    assert "sinusoid.png" not in r.stdout.split("wrote ")[-1].split("\n")[0]


def test_check_reports_what_is_missing_per_extra():
    r = mlcourse_without({"matplotlib", "nbclient"}, "check")
    assert r.returncode == 0, r.stdout + r.stderr   # the engine works; extras are optional
    assert "[plots] extra: matplotlib missing; pip install 'mlcourse[plots]'" in r.stdout
    assert "[course] extra: matplotlib missing; pip install 'mlcourse[course]'" in r.stdout
    assert "[grading] extra: nbclient missing; pip install 'mlcourse[grading]'" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == ("installation OK for the engine; extras not installed: plots, "
                                                 "course, grading (see above)")


def test_check_and_init(tmp_path):
    r = run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "installation OK"   # every extra installed here
    assert "relative error" in r.stdout
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


def test_allocator_tuning_applies_on_glibc_and_can_be_turned_off(monkeypatch):
    import platform

    from mlcourse import _runtime
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert _runtime.tune_allocator() is glibc and _runtime.tune_allocator() is glibc   # repeating is safe
    monkeypatch.setattr(_runtime, "tune_allocator", lambda: pytest.fail("MLCOURSE_TUNE_MALLOC=0 must skip it"))
    for off in ("0", "off", "False"):
        monkeypatch.setenv(_runtime.TUNE_ENV, off)
        assert _runtime.tune_allocator_on_import() is False


JOB_MODULE = '''"""A toy job with its own options (the shape of omniglot_job and navigation_job)."""
ONE_THREAD = False
def add_arguments(p):
    p.add_argument("--steps", type=int, required=True)
def cli(args):
    if args.steps < 0:
        raise ValueError("--steps must be >= 0")
    print("toy ran", args.steps)
    return 0
'''


def test_train_and_bench_dispatch_to_job_modules_with_their_own_options(tmp_path, monkeypatch, capsys):
    """`mlcourse train NAME` runs experiments/NAME_job.py; its errors are one line like every command's."""
    from mlcourse import experiments
    (tmp_path / "toy_job.py").write_text(JOB_MODULE)
    monkeypatch.setattr(experiments, "__path__", [*experiments.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "mlcourse.experiments.toy_job", raising=False)
    try:
        assert "toy" in cli.job_modules("_job") and "sinusoid" not in cli.job_modules("_job")
        assert cli.main(["train", "toy", "--steps", "3"]) == 0
        assert "toy ran 3" in capsys.readouterr().out
        assert cli.main(["train", "toy", "--steps", "-1"]) == 1
        assert "mlcourse train toy: error: --steps must be >= 0" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            cli.main(["train", "toy"])            # its own parser: --steps is required
        assert "--steps" in capsys.readouterr().err
        assert cli.main(["train", "nosuch"]) == 2
        assert "available: sinusoid, " in capsys.readouterr().err
    finally:
        sys.modules.pop("mlcourse.experiments.toy_job", None)
