"""Two SQLite files: this run's spool of input records, and the ledger of what was sent.

Spool (a temporary file, removed after the run): the three input streams, by employee, so a
family is assembled from indexed reads whatever the input size (memory stays flat), plus the
ledger rows the run will commit once its file is delivered.

Ledger (``state_path``, kept between runs, mode 0600, snapshots sealed with ``ledger_key`` or
``$HRSYNC_DLQ_KEY``): per member (``E:<employee id>`` or
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
from hrsync.errors import ConfigError
from hrsync.sealing import LEGACY_PREFIX, TOKEN_PREFIX, Sealer, is_legacy, is_sealed
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

    def stage_family(self, loops: list[MemberLoop], election_keys: list[str]) -> None:
        """A family's member loops written to the file (their ledger rows once the file is
        delivered) and the input records the file carries (their dead letters, if any,
        resolve on delivery): one statement per table."""
        self.db.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(loop.member, loop.employee_id, _json(loop.snapshot), loop.digest, loop.status,
              loop.stream, loop.record_key, loop.maint, _json(loop.fields)) for loop in loops],
        )  # fmt: skip
        self.db.executemany(
            "INSERT OR IGNORE INTO delivered_keys VALUES (?, ?)",
            [(loop.stream, loop.record_key) for loop in loops]
            + [(ELECTIONS, key) for key in election_keys],
        )

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
    """What the carrier was sent, per member (see the module docstring).

    With a ``sealer`` every snapshot is sealed at rest (hrsync.sealing): the SSNs, birth dates and
    addresses the ledger must keep to terminate members who left the feed are unreadable
    without the key. Opening a ledger written before sealing seals its rows and rewrites the
    file so no plaintext page survives. A sealed ledger opened without its key stops the run
    (it cannot compare, and treating every member as new would enrol them twice).
    """

    def __init__(self, path: str | Path, sealer: Sealer | None = None) -> None:
        self.path = Path(path)
        self._sealer = sealer
        self.db = _connect(
            self.path,
            """
            CREATE TABLE IF NOT EXISTS members (
                member TEXT PRIMARY KEY, employee_id TEXT NOT NULL, snapshot BLOB NOT NULL,
                digest TEXT NOT NULL, status TEXT NOT NULL, sent_at TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS members_employee ON members (employee_id);
            """,
        )
        self.db.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed, not left readable
        try:
            self.plaintext_rows = self._check_keys()
        except BaseException:
            self.db.close()
            raise

    def _check_keys(self) -> int:
        """Refuse a sealed ledger without its key; seal a plaintext one when there is a key.

        Returns how many rows stay plaintext (no key configured)."""
        sealed, plain = self.db.execute(
            "SELECT COALESCE(SUM(substr(snapshot, 1, 6) IN (?, ?)), 0), "
            "COALESCE(SUM(substr(snapshot, 1, 6) NOT IN (?, ?)), 0) FROM members",
            (TOKEN_PREFIX, LEGACY_PREFIX, TOKEN_PREFIX, LEGACY_PREFIX),
        ).fetchone()
        how = (
            "set the target's ledger_key (or $HRSYNC_DLQ_KEY) to the key it was written with; "
            "nothing was sent"
        )
        if sealed:
            (sample,) = self.db.execute(
                "SELECT snapshot FROM members WHERE substr(snapshot, 1, 6) IN (?, ?) LIMIT 1",
                (TOKEN_PREFIX, LEGACY_PREFIX),
            ).fetchone()
            if self._sealer is None:
                raise ConfigError(f"the 834 ledger {self.path} is sealed and no key is set: {how}")
            if self._sealer.open(bytes(sample)) is None:
                raise ConfigError(
                    f"the 834 ledger {self.path} was sealed with another key than the one "
                    f"configured: {how}"
                )
        (legacy,) = self.db.execute(
            "SELECT COUNT(*) FROM members WHERE substr(snapshot, 1, 6) = ?", (LEGACY_PREFIX,)
        ).fetchone()
        if (not plain and not legacy) or self._sealer is None:
            return int(plain)
        sealer = self._sealer
        with sqlite.transaction(self.db):
            rows = self.db.execute(
                "SELECT member, snapshot FROM members WHERE substr(snapshot, 1, 6) != ?",
                (TOKEN_PREFIX,),
            ).fetchall()
            for member, snapshot in rows:
                raw = bytes(snapshot)
                if is_legacy(raw):  # sealed before the salted KDF: re-seal
                    opened = sealer.open(raw)
                    if opened is None:
                        raise ConfigError(
                            f"the 834 ledger {self.path}: member {member}'s snapshot does not "
                            "open with the configured key; nothing was sent"
                        )
                    raw = opened
                self.db.execute(
                    "UPDATE members SET snapshot=? WHERE member=?", (sealer.seal(raw), member)
                )
        self.db.execute("VACUUM")  # rewrite the file: no page keeps an unsealed snapshot
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return 0

    def _snapshot(self, member: str, blob: bytes) -> dict[str, Any]:
        if not is_sealed(blob):
            return dict(orjson.loads(blob))
        raw = self._sealer.open(bytes(blob)) if self._sealer is not None else None
        if raw is None:  # _check_keys opened one row; this one was altered or sealed otherwise
            raise ConfigError(
                f"the 834 ledger {self.path}: member {member}'s snapshot does not open with the "
                "configured key (altered, or sealed with another key); nothing was sent"
            )
        return dict(orjson.loads(raw))

    def family(self, employee_id: str) -> dict[str, tuple[dict[str, Any], str, str]]:
        """member key -> (snapshot, digest, status) for one family."""
        return {
            str(m): (self._snapshot(str(m), s), str(d), str(st))
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
                if self._sealer is not None:
                    snapshot = self._sealer.seal(bytes(snapshot))
                self.db.execute(
                    "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?)",
                    (member, employee_id, snapshot, digest, status, now),
                )
                n += 1
        return n

    def close(self) -> None:
        self.db.close()
