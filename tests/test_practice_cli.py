"""`mlcourse practice` driven through a pseudo-terminal, and `mlcourse progress` (--json, --reset)."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

import numpy as np
import pytest

from mlcourse.practice.problems import generate
from mlcourse.practice.store import ENV, Progress

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

TIMEOUT = 120


class Terminal:
    """A child process on a pseudo-terminal: send lines, read until a pattern shows."""

    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.text = ""
        self.seen = 0          # everything before this offset was matched already

    def expect(self, pattern, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.compile(pattern).search(self.text, self.seen)
            if m:
                self.seen = m.end()
                return m
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    break
                self.text += chunk.decode("utf-8", "replace")
        raise AssertionError(f"{pattern!r} not shown; the terminal showed:\n{self.text}")

    def send(self, line):
        os.write(self.master, (line + "\n").encode())

    def close(self):
        try:
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            os.close(self.master)


def _env(tmp_path):
    env = dict(os.environ)
    env[ENV] = str(tmp_path / "progress.sqlite3")
    return env


def test_practice_in_a_terminal_one_wrong_one_right_then_quit(tmp_path):
    env = _env(tmp_path)
    term = Terminal([sys.executable, "-m", "mlcourse", "practice", "meta_gradient_1d", "--seed", "11"], env)
    m = term.expect(r"problem meta_gradient_1d #(\d+)")
    term.expect(r"answer> ")
    inst = generate("meta_gradient_1d", int(m.group(1)))        # the same instance, from its seed
    mistake, wrong = inst._mistake_values[0]
    term.send(f"{float(wrong):.5g}")
    term.expect(re.escape(f"this looks like a common mistake ({mistake.name})"))
    term.expect(r"answer> ")
    inst.give_up()
    term.send(f"{float(inst.answer):.5g}")
    term.expect(r"right\.")
    term.expect(r"answer> ")                                    # the next problem
    term.send("q")
    assert term.close() == 0
    with Progress(env[ENV]) as p:
        rows = p.attempts()
    assert [(r["skill"], r["seed"], r["correct"], r["mistakes"], r["counted"]) for r in rows] == [
        ("meta_gradient_1d", inst.seed, 0, mistake.name, 0), ("meta_gradient_1d", inst.seed, 1, "", None)]


def _mlcourse(args, env, stdin=""):
    return subprocess.run([sys.executable, "-m", "mlcourse", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=TIMEOUT)


def test_progress_json_lists_every_skill_and_reset_asks_first(tmp_path):
    env = _env(tmp_path)
    with Progress(env[ENV]) as p:
        for k in range(3):
            p.record("expectation", "expectation", k, "1", True, (), True)
    out = _mlcourse(["progress", "--json"], env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    from mlcourse.practice.skills import SKILLS
    assert [s["id"] for s in data["skills"]] == list(SKILLS)
    e = next(s for s in data["skills"] if s["id"] == "expectation")
    assert e["mastered"] and e["attempts"] == 3 and e["next_review"] and e["p_known"] >= 0.95
    assert set(e) >= {"name", "prerequisites", "p_known", "mastered", "next_review", "attempts"}
    table = _mlcourse(["progress"], env)
    assert table.returncode == 0 and re.search(r"expectation\s+0\.97\s+ok\s+3", table.stdout), table.stdout
    no = _mlcourse(["progress", "--reset"], env, stdin="no\n")
    assert no.returncode == 1 and "nothing erased" in no.stdout
    with Progress(env[ENV]) as p:
        assert p.count() == 3
    yes = _mlcourse(["progress", "--reset"], env, stdin="yes\n")
    assert yes.returncode == 0 and "erased 3 attempts" in yes.stdout
    with Progress(env[ENV]) as p:
        assert p.count() == 0


def test_a_damaged_progress_file_is_one_line_and_exit_1(tmp_path):
    env = _env(tmp_path)
    with open(env[ENV], "wb") as f:
        f.write(b"\x00not sqlite" * 50)
    out = _mlcourse(["progress"], env)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "not an mlcourse progress database" in out.stderr
    fresh = dict(env, **{ENV: str(tmp_path / "fresh.sqlite3")})
    unknown = _mlcourse(["practice", "no_such_skill"], fresh)
    assert unknown.returncode == 1 and "unknown skill 'no_such_skill'" in unknown.stderr


def test_without_fsrs_the_commands_say_which_extra_to_install(tmp_path):
    from labtools import mlcourse_without
    for command in ("practice", "progress"):
        r = mlcourse_without({"fsrs"}, command, cwd=tmp_path)
        assert r.returncode == 3 and r.stdout == ""
        assert r.stderr.strip() == f"mlcourse {command}: needs the practice extra (fsrs not installed): " \
                                   "pip install 'mlcourse[practice]'"


def test_the_loop_in_process_a_wrong_diagnostic_answer_says_where_to_learn(tmp_path):
    from mlcourse.practice.skills import SKILLS
    from mlcourse.practice.terminal import practice
    shown, answers = [], iter(["2e9", "oops", "q"])
    n = practice("chain_rule", seed=4, path=tmp_path / "p.sqlite3", read=lambda prompt: next(answers),
                 write=shown.append)
    text = "\n".join(shown)
    assert n == 1 and SKILLS["chain_rule"].learn in text and "could not read that" in text
    with Progress(tmp_path / "p.sqlite3") as p:
        assert [(r["answer"], r["correct"], r["counted"]) for r in p.attempts()] == [("2e9", 0, 0)]
