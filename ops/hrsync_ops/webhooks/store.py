"""Durable event store of the webhook receiver (SQLite, WAL, ``synchronous=FULL``).

An event is committed — and the commit fsync'd — before the receiver answers 200, so an event
the vendor saw acknowledged survives a crash or restart. ``(source, event_key)`` is unique: a
replayed or re-delivered event is recognised and ignored. Each event gets one *trigger* row per
job it must run; the scheduler marks triggers done when a run that started after them succeeds,
so unprocessed events are found again after a restart (:meth:`EventStore.pending_jobs`).

The file is created mode 0600 (bodies carry what the vendor sent: candidate details for
Greenhouse, only ids and field names for BambooHR's event-based webhooks).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hrsync import sqlite

DEFAULT_PATH = Path(".hrsync/webhooks.sqlite")
ENV_PATH = "HRSYNC_WEBHOOK_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    event_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (source, event_key)
);
CREATE TABLE IF NOT EXISTS triggers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL REFERENCES events(id),
    job TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS triggers_pending ON triggers (job, status, id);
"""


def default_path() -> Path:
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Stored:
    """What :meth:`EventStore.add` did: ``event_id`` is None for a duplicate."""

    event_id: int | None
    jobs: tuple[str, ...]

    @property
    def duplicate(self) -> bool:
        return self.event_id is None


class EventStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        sqlite.connect(self.path, schema=_SCHEMA, name="webhook inbox").close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite.connect(self.path, synchronous="FULL", name="webhook inbox")
        try:
            yield conn  # synchronous=FULL: the WAL is fsync'd at every commit
        finally:
            conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db() as db, sqlite.transaction(db):
            yield db

    def add(
        self, source: str, event_key: str, event_type: str, body: bytes, jobs: Iterable[str]
    ) -> Stored:
        """Persist one event and its triggers in one durable transaction (or see a duplicate)."""
        jobs = tuple(dict.fromkeys(jobs))
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO events (source, event_key, event_type, received_at, body) "
                "VALUES (?,?,?,?,?)",
                (source, event_key, event_type, _now(), body),
            )
            if cur.rowcount == 0:
                return Stored(None, ())
            event_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO triggers (event_id, job) VALUES (?, ?)",
                [(event_id, job) for job in jobs],
            )
        return Stored(event_id, jobs)

    def pending_jobs(self) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT DISTINCT job FROM triggers WHERE status='pending' ORDER BY job"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def last_pending(self, job: str) -> int | None:
        """The newest pending trigger of ``job`` (a run covers every trigger up to it)."""
        with self._db() as db:
            row = db.execute(
                "SELECT MAX(id) FROM triggers WHERE job=? AND status='pending'", (job,)
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def complete(self, job: str, upto: int) -> int:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE triggers SET status='done', done_at=? "
                "WHERE job=? AND status='pending' AND id<=?",
                (_now(), job, upto),
            )
            return cur.rowcount

    def failed(self, job: str, upto: int, error: str) -> int:
        """Record a failed run; returns the attempts so far (the triggers stay pending)."""
        with self._tx() as db:
            db.execute(
                "UPDATE triggers SET attempts=attempts+1, last_error=? "
                "WHERE job=? AND status='pending' AND id<=?",
                (error[:2000], job, upto),
            )
            row = db.execute(
                "SELECT MAX(attempts) FROM triggers WHERE job=? AND status='pending'", (job,)
            ).fetchone()
        return int(row[0] or 0)

    def counts(self) -> dict[str, int]:
        """Events and triggers by status (for ``/healthz`` and tests)."""
        with self._db() as db:
            events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            rows = db.execute("SELECT status, COUNT(*) FROM triggers GROUP BY status").fetchall()
        return {"events": int(events), **{f"triggers_{s}": int(n) for s, n in rows}}

    def events(self, source: str | None = None) -> list[tuple[int, str, str, str]]:
        """(id, source, event_type, event_key) of stored events, oldest first."""
        sql = "SELECT id, source, event_type, event_key FROM events"
        args: tuple[str, ...] = ()
        if source:
            sql += " WHERE source=?"
            args = (source,)
        with self._db() as db:
            return [(int(i), str(s), str(t), str(k)) for i, s, t, k in db.execute(sql, args)]
