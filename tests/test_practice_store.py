"""The progress database (SQLite, WAL): concurrent writers, damaged files, the FSRS schedule, what counts."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from mlcourse.practice import session as session_mod
from mlcourse.practice.mastery import DEFAULT, MASTERY
from mlcourse.practice.session import Session, record_check
from mlcourse.practice.store import ENV, Progress, ProgressError, default_path, scheduler

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc).timestamp()


def test_default_path_and_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "mine.sqlite3"))
    assert default_path() == tmp_path / "mine.sqlite3"
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform.startswith("linux"):
        assert default_path() == tmp_path / "data" / "mlcourse" / "progress.sqlite3"


def test_attempts_are_kept_across_reopening_in_wal_mode(tmp_path):
    path = tmp_path / "p.sqlite3"
    with Progress(path) as p:
        p.record("chain_rule", "chain_rule", 7, "1.5", False, ("the inner derivative dropped",), False)
        assert p._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Progress(path) as p:   # a new process or a restarted kernel sees every attempt
        (a,) = p.attempts()
    assert (a["skill"], a["seed"], a["answer"], a["correct"], a["mistakes"], a["counted"]) == \
        ("chain_rule", 7, "1.5", 0, "the inner derivative dropped", 0)


WRITER = """
import sys
from mlcourse.practice.store import Progress
with Progress(sys.argv[1]) as p:
    for i in range(1000):
        p.record("sgd_step", "sgd_step", i, sys.argv[2], i % 2 == 0, (), None)
"""


def test_two_processes_writing_1000_attempts_each_lose_none(tmp_path):
    path = tmp_path / "p.sqlite3"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who]) for who in ("A", "B")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    with Progress(path) as p:
        rows = p.attempts()
    assert len(rows) == 2000
    for who in ("A", "B"):
        assert sorted(r["seed"] for r in rows if r["answer"] == who) == list(range(1000))


def _made_database(path, n=300):
    with Progress(path) as p:
        for i in range(n):
            p.record("expectation", "expectation", i, "0.5", True, (), None)
    return path.read_bytes()


def test_a_truncated_database_gives_one_clear_error_and_is_left_untouched(tmp_path):
    path = tmp_path / "p.sqlite3"
    data = _made_database(path)
    path.write_bytes(data[: len(data) // 2])
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="damaged.*truncated.*Move it away.*left untouched"):
        Progress(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_gives_one_clear_error_and_is_left_untouched(tmp_path):
    path = tmp_path / "p.sqlite3"
    path.write_bytes(b"my notes, not a database\n" * 200)
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="not an mlcourse progress database.*left untouched"):
        Progress(path)
    assert path.read_bytes() == before


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE songs (title TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="another program"):
        Progress(path)
    assert path.read_bytes() == before


def test_a_damaged_page_is_reported(tmp_path):
    path = tmp_path / "p.sqlite3"
    data = bytearray(_made_database(path, 2000))
    data[4096 + 8: 4096 + 4000] = b"\xff" * (4000 - 8)   # garbage in the second page
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(ProgressError, match="damaged|cannot be read"):
        Progress(path)
    assert path.read_bytes() == before


def _master(p, skill, t0=T0):
    for k in range(DEFAULT.attempts_to_mastery()):
        p.record(skill, skill, k, "x", True, (), True, when=t0 + 60 * k)
    return t0 + 60 * (DEFAULT.attempts_to_mastery() - 1)


def test_the_review_date_comes_from_fsrs_and_moves_after_a_pass_and_a_failure(tmp_path):
    from fsrs import Card, Rating
    sched = scheduler()
    with Progress(tmp_path / "a.sqlite3") as p:
        t_mastered = _master(p, "sgd_step")
        st = p.states()["sgd_step"]
        assert st.mastered
        card, _ = sched.review_card(Card(card_id=1, due=datetime.fromtimestamp(t_mastered, timezone.utc)), Rating.Good,
                                    datetime.fromtimestamp(t_mastered, timezone.utc))
        assert st.next_review == card.due
        first_interval = card.due - datetime.fromtimestamp(t_mastered, timezone.utc)
        assert first_interval >= timedelta(days=1)
        # a pass at the due date: the next review moves further out, as fsrs computes it
        passed, _ = sched.review_card(card, Rating.Good, card.due)
        p.record("sgd_step", "sgd_step", 99, "x", True, (), True, when=card.due.timestamp())
        st_pass = p.states(now=card.due)["sgd_step"]
        assert st_pass.next_review == passed.due
        assert passed.due - card.due > first_interval
    with Progress(tmp_path / "b.sqlite3") as p:
        _master(p, "sgd_step")
        failed, _ = sched.review_card(card, Rating.Again, card.due)
        p.record("sgd_step", "sgd_step", 99, "x", False, ("the inner step's sign",), False, when=card.due.timestamp())
        st_fail = p.states(now=card.due)["sgd_step"]
        assert st_fail.next_review == failed.due
        assert failed.due - card.due < passed.due - card.due
        assert st_fail.p_known < MASTERY and not st_fail.mastered      # a failed review lowers the skill again
        assert p.states(now=failed.due)["sgd_step"].due


def test_what_counts_first_attempts_hints_and_giving_up(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as p:
        s = Session(p, seed=3)
        inst = s.new_instance("linear_c")
        m, wrong = inst._mistake_values[0]
        s.submit(inst, f"{float(wrong[0]):.6g}")                  # first attempt: counted, wrong
        inst.give_up()
        right = f"{float(inst.answer[0]):.6g}"
        inst.finished = False
        s.submit(inst, right)                                      # a later attempt: recorded, not counted
        inst2 = s.new_instance("linear_c")
        s.hint(inst2)
        inst2.give_up()
        r2 = f"{float(inst2.answer[0]):.6g}"
        inst2.finished = False
        s.submit(inst2, r2)                                        # right, but after the hint: counts as wrong
        inst3 = s.new_instance("linear_c")
        s.give_up(inst3)                                           # the solution before any attempt: wrong
        rows = p.attempts("linear_c")
    assert [(r["correct"], r["counted"]) for r in rows] == [(0, 0), (1, None), (1, 0), (0, 0)]
    assert rows[0]["mistakes"] == m.name


class _Result:
    def __init__(self, passed):
        self.passed = passed


def test_graded_questions_passed_with_check_count_once_for_their_skills(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as p:
        assert record_check("q3", [_Result(True), _Result(False)], p) == []
        assert record_check("q3", [_Result(True)] * 3, p) == ["dtheta_prime"]
        assert record_check("q3", [_Result(True)] * 3, p) == []     # the same pass again is no new evidence
        assert record_check("q2", [_Result(True)], p) == ["meta_objective"]
        st = p.states()
        assert st["dtheta_prime"].p_known == pytest.approx(DEFAULT.update(DEFAULT.p_init, True))
        assert st["dtheta_prime"].attempts == 3


def test_recording_from_check_never_raises(monkeypatch, tmp_path):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    monkeypatch.setenv(ENV, str(bad))
    assert session_mod.record_check_quietly("q3", [_Result(True)]) == []


def test_what_comes_next_due_reviews_first_interleaved_else_the_next_skill(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as p:
        s = Session(p, seed=0)
        assert s.choose()[0] == "chain_rule"
        for skill in ("chain_rule", "expectation"):
            _master(p, skill)
        assert s.choose(now=datetime.fromtimestamp(T0, timezone.utc))[0] == "mse_gradient"
        later = datetime.fromtimestamp(T0, timezone.utc) + timedelta(days=60)   # both reviews due by then
        first, why = s.choose(now=later)
        assert first in ("chain_rule", "expectation") and "review due" in why
        s.last_skill = first
        second, _ = s.choose(now=later)
        assert {first, second} == {"chain_rule", "expectation"}


def test_after_the_diagnostics_practice_moves_on_to_the_lesson(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as p:
        for skill in ("chain_rule", "mse_gradient", "sgd_step", "hessian_quadratic", "expectation"):
            _master(p, skill)
        s = Session(p, seed=0)
        now = datetime.fromtimestamp(T0, timezone.utc)
        assert s.choose(now=now)[0] == "task_distribution"          # notebook 01's first skill
        for skill in ("task_distribution", "support_query"):
            _master(p, skill)
        # the inner step needs the SGD step and support vs query, both mastered now; episodes comes first in the map
        assert s.choose(now=now)[0] == "episodes"
        _master(p, "episodes")
        assert s.choose(now=now)[0] == "inner_step"
