"""What target-moodle remembers between runs (SQLite, ``state_path``).

Per worker: the Moodle user id, the facts the rules look at (department, role, location,
country, state, manager flag, manager id, hire date, active) — never names or e-mail
addresses — and the enrolments *this target* made, with their dates and status. That is what
lets a rule change re-evaluate everyone on a run that receives no records (an incremental run
after a rules edit), lets a promotion to manager be noticed when only the new report's record
changed, and keeps the target's hands off enrolments people made by hand in Moodle.

Lose the file and nothing breaks: the next full-refresh run (``meltano run --full-refresh``)
reads the active enrolments back from Moodle and rebuilds it. That is also why a leaver's row
may go after a retention period (``inactive_since``; ``hrsync retention apply``, store
``moodle_state``): a rehire is found again in Moodle by the worker id.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hrsync import sqlite

DEFAULT_PATH = Path(".hrsync/target-moodle-state.sqlite")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT PRIMARY KEY,
    moodle_id INTEGER,
    manager_id TEXT,
    active INTEGER NOT NULL,
    facts TEXT NOT NULL,
    enrolments_known INTEGER NOT NULL DEFAULT 0,
    inactive_since TEXT            -- UTC ISO time the worker was first saved inactive
);
CREATE INDEX IF NOT EXISTS workers_manager ON workers (manager_id);
CREATE TABLE IF NOT EXISTS enrolments (
    worker_id TEXT NOT NULL,
    course_id INTEGER NOT NULL,
    status TEXT NOT NULL,          -- active | suspended | kept | unenrolled
    timestart INTEGER NOT NULL,
    timeend INTEGER NOT NULL,
    rules TEXT NOT NULL,
    assigned_on TEXT,
    PRIMARY KEY (worker_id, course_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Worker:
    worker_id: str
    moodle_id: int | None
    manager_id: str | None
    active: bool
    facts: dict[str, t.Any]
    enrolments_known: bool


@dataclass
class Enrolment:
    course_id: int
    status: str
    timestart: int
    timeend: int
    rules: str
    assigned_on: str | None


class StateStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else DEFAULT_PATH
        # drains run in worker threads (one at a time: the target sets max_parallelism = 1)
        self.db = sqlite.connect(
            self.path, schema=_SCHEMA, check_same_thread=False, name="Moodle state"
        )
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(workers)")}
        if "inactive_since" not in columns:  # a state file from before retention
            self.db.execute("ALTER TABLE workers ADD COLUMN inactive_since TEXT")
            self.db.execute(
                "UPDATE workers SET inactive_since=? WHERE active=0", (_now(),)
            )  # leavers of an old file age from now on

    def close(self) -> None:
        self.db.close()

    # --- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- workers ----------------------------------------------------------------------------

    @staticmethod
    def _worker(row: t.Sequence[t.Any]) -> Worker:
        return Worker(row[0], row[1], row[2], bool(row[3]), json.loads(row[4]), bool(row[5]))

    def worker(self, worker_id: str) -> Worker | None:
        row = self.db.execute(
            "SELECT worker_id, moodle_id, manager_id, active, facts, enrolments_known "
            "FROM workers WHERE worker_id=?",
            (worker_id,),
        ).fetchone()
        return self._worker(row) if row else None

    def workers(self, page: int = 500) -> Iterator[Worker]:
        """Every worker with a Moodle account, in id order, a page at a time (memory stays
        flat, and the caller may write between pages)."""
        after = ""
        while True:
            rows = self.db.execute(
                "SELECT worker_id, moodle_id, manager_id, active, facts, enrolments_known "
                "FROM workers WHERE moodle_id IS NOT NULL AND worker_id > ? "
                "ORDER BY worker_id LIMIT ?",
                (after, page),
            ).fetchall()
            if not rows:
                return
            yield from (self._worker(row) for row in rows)
            after = rows[-1][0]

    def save_worker(self, worker: Worker) -> None:
        """Insert or replace; a leaver keeps the time they were first saved inactive (what
        retention ages), a rehire clears it."""
        self.db.execute(
            "INSERT OR REPLACE INTO workers (worker_id, moodle_id, manager_id, active, facts, "
            "enrolments_known, inactive_since) VALUES (?, ?, ?, ?, ?, ?, CASE WHEN ? THEN NULL "
            "ELSE COALESCE((SELECT inactive_since FROM workers WHERE worker_id=?), ?) END)",
            (
                worker.worker_id,
                worker.moodle_id,
                worker.manager_id,
                int(worker.active),
                json.dumps(worker.facts, sort_keys=True, default=str),
                int(worker.enrolments_known),
                int(worker.active),
                worker.worker_id,
                _now(),
            ),
        )

    def has_reports(self, worker_id: str) -> bool:
        """Whether an active worker reports to ``worker_id``."""
        row = self.db.execute(
            "SELECT 1 FROM workers WHERE manager_id=? AND active=1 LIMIT 1", (worker_id,)
        ).fetchone()
        return row is not None

    # --- enrolments -------------------------------------------------------------------------

    def enrolments(self, worker_id: str) -> dict[int, Enrolment]:
        rows = self.db.execute(
            "SELECT course_id, status, timestart, timeend, rules, assigned_on FROM enrolments "
            "WHERE worker_id=?",
            (worker_id,),
        ).fetchall()
        return {int(r[0]): Enrolment(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def save_enrolment(self, worker_id: str, enrolment: Enrolment) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO enrolments (worker_id, course_id, status, timestart, "
            "timeend, rules, assigned_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                worker_id,
                enrolment.course_id,
                enrolment.status,
                enrolment.timestart,
                enrolment.timeend,
                enrolment.rules,
                enrolment.assigned_on,
            ),
        )

    def forget_enrolments(self, worker_id: str) -> None:
        """A brand-new Moodle account has no enrolments, whatever an old state file says."""
        self.db.execute("DELETE FROM enrolments WHERE worker_id=?", (worker_id,))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
