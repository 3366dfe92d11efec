"""Two SQLite files: this run's spool of input records, and the ledger of what was sent.

Spool (a temporary file, removed after the run): the three input streams, by employee, so a
family is assembled from indexed reads whatever the input size (memory stays flat), plus the
ledger rows the run will commit once its file is delivered.

Ledger (``state_path``, kept between runs, mode 0600): per member (``E:<employee id>`` or
``D:<dependant id>``) the snapshot last sent to the carrier: identity and coverages, a digest of
both, and a status. A re-run compares against it: nothing changed, nothing sent; a change is a
001, a new member a 021, an end of coverage a 024. It holds the personal data of the members
it describes (needed to send a termination for someone who left the HRIS feed): keep it
with the same care as the files themselves.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from hrsync import sqlite
from target_benefits_834.members import DEPENDENTS, ELECTIONS, STREAM_KEYS, SUBSCRIBERS

if TYPE_CHECKING:
    from target_benefits_834.plan import MemberLoop


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    return sqlite.connect(path, schema=schema, synchronous="NORMAL", name=f"834 store {path.name}")


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=str)


class Spool:
    """Input records of one run, keyed by stream and record key, indexed by employee."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = _connect(
            path,
            """
            CREATE TABLE IF NOT EXISTS records (
                stream TEXT NOT NULL, k TEXT NOT NULL, employee_id TEXT, v BLOB NOT NULL,
                PRIMARY KEY (stream, k));
            CREATE INDEX IF NOT EXISTS records_employee ON records (employee_id, stream);
            CREATE TABLE IF NOT EXISTS pending (
                member TEXT PRIMARY KEY, employee_id TEXT NOT NULL, snapshot BLOB,
                digest TEXT, status TEXT NOT NULL, stream TEXT NOT NULL, record_key TEXT NOT NULL,
                maint TEXT NOT NULL, fields BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS delivered_keys (
                stream TEXT NOT NULL, record_key TEXT NOT NULL, PRIMARY KEY (stream, record_key));
            CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY);
            """,
        )
        self.db.execute("BEGIN")
        self._rows: list[tuple[str, str, str | None, bytes]] = []

    def add(self, stream: str, records: Iterable[dict[str, Any]]) -> None:
        key_field = STREAM_KEYS[stream]
        for r in records:
            employee = r.get("employee_id")
            employee_id = None if employee in (None, "") else str(employee)
            self._rows.append((stream, str(r[key_field]), employee_id, _json(r)))
        if len(self._rows) >= 5_000:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)", self._rows)
            self._rows = []

    def seen(self, stream: str) -> bool:
        """Did this run's input carry the stream at all (a schema or a record)?"""
        return (
            self.db.execute("SELECT 1 FROM streams WHERE stream=?", (stream,)).fetchone()
            is not None
        )

    def mark_seen(self, stream: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO streams VALUES (?)", (stream,))

    def employees(self) -> list[str]:
        self.flush()
        rows = self.db.execute(
            "SELECT DISTINCT employee_id FROM records WHERE employee_id IS NOT NULL"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def without_employee(self) -> Iterator[tuple[str, dict[str, Any]]]:
        self.flush()
        for stream, v in self.db.execute(
            "SELECT stream, v FROM records WHERE employee_id IS NULL ORDER BY stream, k"
        ):
            yield stream, orjson.loads(v)

    def family(self, employee_id: str) -> dict[str, list[dict[str, Any]]]:
        self.flush()
        out: dict[str, list[dict[str, Any]]] = {SUBSCRIBERS: [], DEPENDENTS: [], ELECTIONS: []}
        for stream, v in self.db.execute(
            "SELECT stream, v FROM records WHERE employee_id=? ORDER BY stream, k", (employee_id,)
        ):
            out.setdefault(stream, []).append(orjson.loads(v))
        return out

    def stage(self, loop: MemberLoop) -> None:
        """A member loop written to the file: its ledger row once the file is delivered."""
        self.db.execute(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (loop.member, loop.employee_id, _json(loop.snapshot), loop.digest, loop.status,
             loop.stream, loop.record_key, loop.maint, _json(loop.fields)),
        )  # fmt: skip

    def deliverable(self, stream: str, record_key: str) -> None:
        """An input record the file carries (its dead letter, if any, resolves on delivery)."""
        self.db.execute("INSERT OR IGNORE INTO delivered_keys VALUES (?, ?)", (stream, record_key))

    def staged(self) -> Iterator[tuple[str, str, bytes, str, str, str, str, str, list[str]]]:
        for row in self.db.execute("SELECT * FROM pending ORDER BY employee_id, member"):
            yield (*row[:8], orjson.loads(row[8]))

    def delivered_keys(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for stream, key in self.db.execute("SELECT stream, record_key FROM delivered_keys"):
            out.setdefault(str(stream), []).append(str(key))
        return out

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self.db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class Ledger:
    """What the carrier was sent, per member (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = _connect(
            self.path,
            """
            CREATE TABLE IF NOT EXISTS members (
                member TEXT PRIMARY KEY, employee_id TEXT NOT NULL, snapshot BLOB NOT NULL,
                digest TEXT NOT NULL, status TEXT NOT NULL, sent_at TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS members_employee ON members (employee_id);
            """,
        )

    def family(self, employee_id: str) -> dict[str, tuple[dict[str, Any], str, str]]:
        """member key -> (snapshot, digest, status) for one family."""
        return {
            str(m): (orjson.loads(s), str(d), str(st))
            for m, s, d, st in self.db.execute(
                "SELECT member, snapshot, digest, status FROM members WHERE employee_id=?",
                (employee_id,),
            )
        }

    def employees(self) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT DISTINCT employee_id FROM members")]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM members").fetchone()[0])

    def commit(self, spool: Spool) -> int:
        """Apply the staged rows of a delivered file in one transaction; returns how many."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        n = 0
        with sqlite.transaction(self.db):
            for member, employee_id, snapshot, digest, status, *_ in spool.staged():
                self.db.execute(
                    "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?)",
                    (member, employee_id, snapshot, digest, status, now),
                )
                n += 1
        return n

    def close(self) -> None:
        self.db.close()
