"""The learner's progress: every attempt in one local SQLite database (WAL mode), never lost.

Where it lives: the file named by the environment variable ``MLCOURSE_PROGRESS``, else
``progress.sqlite3`` in the data directory (``$XDG_DATA_HOME/mlcourse``, default
``~/.local/share/mlcourse``; ``~/Library/Application Support/mlcourse`` on macOS;
``%APPDATA%\\mlcourse`` on Windows).

What it holds: one row per attempt (skill, generator, instance seed, the answer as typed, right or
not, the mistakes named, time, and whether the mastery model counts it).  Everything else is
*computed* from those rows in their order: P(known) per skill (``mastery.BKT``) and, once a skill is
mastered, its review schedule (an ``fsrs`` card reviewed at every later counted attempt: Good when
right, Again when wrong).  So two notebooks (or a notebook and a terminal) writing at once cannot
overwrite each other's state: each only appends rows, one short transaction each.

A file that is not such a database, or a damaged one, gives one ProgressError that says what to do;
the file is opened for reading only until it has passed the checks, and is never overwritten.
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .mastery import DEFAULT, MASTERY
from .skills import SKILLS

__all__ = ["Progress", "ProgressError", "SkillState", "default_path", "ENV", "scheduler"]

ENV = "MLCOURSE_PROGRESS"
APPLICATION_ID = 0x6D6C6370          # "mlcp" in the SQLite header: this file is an mlcourse progress database
SCHEMA_VERSION = 1
MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL    NOT NULL,             -- seconds since the epoch (UTC)
    skill     TEXT    NOT NULL,
    generator TEXT    NOT NULL,             -- a problem generator, or check:qN for a graded question
    seed      INTEGER,                      -- the instance's seed
    answer    TEXT,                         -- as typed (NULL: gave up without answering)
    correct   INTEGER NOT NULL,             -- 1 right, 0 wrong
    mistakes  TEXT    NOT NULL DEFAULT '',  -- the mistakes named (joined by a semicolon and a space)
    counted   INTEGER,                      -- what the mastery model takes: 1 right, 0 wrong, NULL not counted
    source    TEXT    NOT NULL DEFAULT 'practice'
);
CREATE INDEX IF NOT EXISTS attempts_skill ON attempts (skill, id);
"""


class ProgressError(ValueError):
    """The progress database cannot be used; the message says what to do.  The file was left untouched."""


def default_path():
    """The progress database: $MLCOURSE_PROGRESS, else progress.sqlite3 in the platform's data directory."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "mlcourse" / "progress.sqlite3"


def scheduler():
    """The FSRS scheduler of reviews: fsrs's default model, no sub-day learning steps, no random fuzz (reproducible)."""
    from fsrs import Scheduler
    return Scheduler(learning_steps=(), relearning_steps=(), enable_fuzzing=False)


def _what_to_do(path):
    return (f"Move it away (or set {ENV} to another file) and run again: a new progress database is then created. "
            f"The file was left untouched.")


def _check_file(path):
    """Raise ProgressError unless path is missing, empty, or an undamaged SQLite file (reads only)."""
    if not path.exists():
        return
    if path.is_dir():
        raise ProgressError(f"the progress database {path} is a folder. Set {ENV} to a file name.")
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or head[:16] != MAGIC:
        raise ProgressError(f"{path} is not an mlcourse progress database (it is not an SQLite file). "
                            + _what_to_do(path))
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]
    if valid and pages and size < pages * page_size:
        raise ProgressError(f"the progress database {path} is damaged: it is truncated ({size} of "
                            f"{pages * page_size} bytes). " + _what_to_do(path))


@dataclass(frozen=True)
class SkillState:
    skill: str
    p_known: float
    mastered: bool
    attempts: int            # every recorded attempt (counted or not)
    counted: int             # attempts the mastery model took
    next_review: datetime | None
    due: bool


def _utc(t):
    return datetime.fromtimestamp(float(t), tz=timezone.utc)


class Progress:
    """The progress database at `path` (default: default_path()).  Use as a context manager or close()."""

    def __init__(self, path=None, bkt=DEFAULT):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.bkt = bkt
        _check_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        except sqlite3.Error as e:
            raise ProgressError(f"cannot open the progress database {self.path}: {e}. {_what_to_do(self.path)}") from None
        try:
            self._verify()
            self._setup()
        except BaseException:
            self._db.close()
            raise

    # -- opening ---------------------------------------------------------------------------------------
    def _verify(self):
        """Read-only checks before anything is written: undamaged, and ours (or new and empty)."""
        try:
            ok = self._db.execute("PRAGMA quick_check").fetchone()[0]
            app = self._db.execute("PRAGMA application_id").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise ProgressError(f"the progress database {self.path} cannot be read ({e}). "
                                + _what_to_do(self.path)) from None
        if ok != "ok":
            raise ProgressError(f"the progress database {self.path} is damaged ({ok}). " + _what_to_do(self.path))
        if app != APPLICATION_ID and tables:
            raise ProgressError(f"{self.path} is an SQLite database of another program, not mlcourse progress. "
                                + _what_to_do(self.path))

    def _setup(self):
        for attempt in range(200):   # another process may be creating the same file right now
            try:
                self._db.execute("PRAGMA busy_timeout = 60000")
                if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise ProgressError(f"cannot set up the progress database {self.path}: {e}.") from None
                time.sleep(0.05)
        raise ProgressError(f"the progress database {self.path} stayed locked by another process.")

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing ---------------------------------------------------------------------------------------
    def record(self, skill, generator, seed, answer, correct, mistakes=(), counted=None, source="practice", when=None):
        """Append one attempt (one transaction); returns its id.  counted: True/False for the mastery model, or None."""
        if skill not in SKILLS:
            raise ValueError(f"unknown skill {skill!r}; see `mlcourse progress` for the skills.")
        row = (time.time() if when is None else float(when), skill, str(generator),
               None if seed is None else int(seed), None if answer is None else str(answer), int(bool(correct)),
               "; ".join(mistakes), None if counted is None else int(bool(counted)), source)
        cur = self._db.execute("INSERT INTO attempts (time, skill, generator, seed, answer, correct, mistakes, counted, "
                               "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return cur.lastrowid

    def reset(self):
        """Erase every attempt (the caller asks the learner first)."""
        self._db.execute("DELETE FROM attempts")

    # -- reading ---------------------------------------------------------------------------------------
    def attempts(self, skill=None):
        """Every attempt (of one skill), oldest first, as dicts."""
        q = "SELECT id, time, skill, generator, seed, answer, correct, mistakes, counted, source FROM attempts"
        rows = self._db.execute(q + (" WHERE skill = ?" if skill else "") + " ORDER BY id", (skill,) if skill else ())
        keys = ("id", "time", "skill", "generator", "seed", "answer", "correct", "mistakes", "counted", "source")
        return [dict(zip(keys, r)) for r in rows]

    def count(self):
        return self._db.execute("SELECT count(*) FROM attempts").fetchone()[0]

    def seen(self, skill, generator, seed):
        """True when this problem (the same generator and seed) has been attempted before, in any session."""
        row = self._db.execute("SELECT 1 FROM attempts WHERE skill = ? AND generator = ? AND seed = ? LIMIT 1",
                               (skill, str(generator), None if seed is None else int(seed))).fetchone()
        return row is not None

    def states(self, now=None):
        """SkillState of every skill, replaying the attempts in order (BKT, then FSRS once mastered)."""
        from fsrs import Card, Rating
        now = datetime.now(timezone.utc) if now is None else now
        sched = scheduler()
        p = {s: self.bkt.p_init for s in SKILLS}
        card, last, n_all, n_counted = {}, {}, dict.fromkeys(SKILLS, 0), dict.fromkeys(SKILLS, 0)
        for r in self.attempts():
            s = r["skill"]
            if s not in SKILLS:
                continue
            n_all[s] += 1
            if r["counted"] is None:
                continue
            n_counted[s] += 1
            right = bool(r["counted"])
            p[s] = self.bkt.update(p[s], right)
            t = max(_utc(r["time"]), last.get(s, _utc(0)))
            last[s] = t
            if s in card:
                card[s], _ = sched.review_card(card[s], Rating.Good if right else Rating.Again, t)
            elif p[s] >= MASTERY:   # just mastered: the first review of its card is this right answer
                card[s], _ = sched.review_card(Card(card_id=list(SKILLS).index(s) + 1, due=t), Rating.Good, t)
        out = {}
        for s in SKILLS:
            due_at = card[s].due if s in card else None
            out[s] = SkillState(s, p[s], p[s] >= MASTERY, n_all[s], n_counted[s], due_at,
                                due_at is not None and due_at <= now)
        return out

    def export(self, now=None):
        """What `mlcourse progress --json` prints: every skill with its state."""
        st = self.states(now)
        return {"database": str(self.path), "mastery_threshold": MASTERY,
                "bkt": {"p_init": self.bkt.p_init, "p_learn": self.bkt.p_learn, "p_slip": self.bkt.p_slip,
                        "p_guess": self.bkt.p_guess},
                "skills": [{"id": s, "name": SKILLS[s].name, "prerequisites": list(SKILLS[s].prerequisites),
                            "diagnostic": SKILLS[s].diagnostic, "p_known": round(v.p_known, 6),
                            "mastered": v.mastered,
                            "next_review": v.next_review.isoformat() if v.next_review else None, "due": v.due,
                            "attempts": v.attempts} for s, v in st.items()]}


def export_json(progress, now=None):
    return json.dumps(progress.export(now), indent=2)
