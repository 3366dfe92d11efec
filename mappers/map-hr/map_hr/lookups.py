"""On-disk lookup store (SQLite) for joins, and the spill area for records waiting on one.

Reference records (candidates, jobs, ...) are kept with only the fields a profile reads, so an
incremental run whose offer changed but whose candidate did not can still join. Records whose
reference has not arrived yet wait in a table, not in memory: memory stays flat.

Reference records are personal data (a candidate who is never hired stays a name and a private
e-mail address): with the sealing key (``$HRSYNC_DLQ_KEY``, see :mod:`hrsync.sealing`) every
record is sealed at rest, and rows written before are sealed when the store opens; without
one a warning says the store is plaintext. Rows are kept ``retention_days`` (default
:data:`DEFAULT_RETENTION_DAYS`) after they were last written: older ones are purged (zeroed:
``secure_delete``) each time the store opens.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hrsync import sqlite
from hrsync.sealing import ENV_KEY, SALT_BYTES, TOKEN_PREFIX, Sealer, is_sealed, sealer

LOGGER = logging.getLogger("map_hr.lookups")
#: how long a reference record is kept after it was last written (days)
DEFAULT_RETENTION_DAYS = 180

COMMIT_EVERY = 5_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    lookup TEXT NOT NULL, k TEXT NOT NULL, v BLOB NOT NULL, stored_at REAL,
    PRIMARY KEY (lookup, k));
DROP TABLE IF EXISTS pending;  -- parked records lived here before they moved to a TEMP table
"""
CACHE_SIZE = 20_000
#: how many salts (of the runs that wrote a store last) a warm process derives keys for
RECENT_SALTS = 8


def recent_salts(path: str | Path, limit: int = RECENT_SALTS) -> list[bytes]:
    """The salts of the sealed rows written last in the store at ``path``, newest first (read
    only: nothing is written; none when there is no store). A sealed row carries its writer's
    salt; a process that forks runs derives their keys once (``hrsync.sealing.derive_keys``)."""
    if not Path(path).is_file():
        return []
    head = len(TOKEN_PREFIX)
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute(
            "SELECT substr(v, ?, ?) AS salt FROM refs WHERE substr(v, 1, ?) = ? "
            "GROUP BY salt ORDER BY max(stored_at) DESC LIMIT ?",
            (head + 1, SALT_BYTES, head, TOKEN_PREFIX, limit),
        ).fetchall()
    except sqlite3.Error:  # no refs table yet, or busy: the runs derive what they meet
        return []
    finally:
        conn.close()
    return [bytes(row[0]) for row in rows]


def _add_stored_at(conn: Any) -> None:
    """Stores written before retention existed get the column (rows count from now)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(refs)")}
    if "stored_at" not in columns:
        conn.execute("ALTER TABLE refs ADD COLUMN stored_at REAL")
    conn.execute("UPDATE refs SET stored_at = ? WHERE stored_at IS NULL", (time.time(),))


class LookupStore:
    """``LookupStore(path, *, retention_days=None, key=None)``: ``key`` defaults to
    ``$HRSYNC_DLQ_KEY`` (``""``: no sealing), ``retention_days`` to
    :data:`DEFAULT_RETENTION_DAYS`."""

    def __init__(
        self, path: str | Path, *, retention_days: float | None = None, key: str | None = None
    ) -> None:
        self.path = Path(path)
        self.retention_days = float(
            DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
        )
        self._sealer: Sealer | None = sealer(key)
        # Reference records are shared by every run of the profile; parked records are this
        # run's own (a TEMP table: another run of the same profile never sees or clears them).
        self._db = sqlite.connect(
            path,
            schema=_SCHEMA,
            synchronous="NORMAL",
            private=True,
            migrate=_add_stored_at,
            name=f"map-hr lookup store {self.path.name}",
        )
        self._db.execute("PRAGMA secure_delete=ON")  # purged rows are zeroed on disk
        self.purged = self._purge_expired()
        self._seal_plaintext_rows()
        self._db.execute(
            "CREATE TEMP TABLE pending (seq INTEGER PRIMARY KEY, stream TEXT, msg BLOB)"
        )
        self._writes = 0
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.pending_count = 0

    def _purge_expired(self) -> int:
        cutoff = time.time() - self.retention_days * 86400
        with sqlite.transaction(self._db):
            cur = self._db.execute("DELETE FROM refs WHERE stored_at < ?", (cutoff,))
        return int(cur.rowcount or 0)

    def _seal_plaintext_rows(self) -> None:
        rows = self._db.execute(
            "SELECT lookup, k, v FROM refs WHERE substr(v, 1, 6) NOT IN (?, ?)",
            (b"hrsK1:", b"gAAAAA"),
        ).fetchall()
        if self._sealer is None:
            LOGGER.warning(
                "UNSEALED PERSONAL DATA: %s is not set, so the lookup store %s keeps reference "
                "records (names, e-mail addresses of candidates...) in PLAINTEXT for %g days",
                ENV_KEY, self.path, self.retention_days,
            )  # fmt: skip
            return
        if not rows:
            return
        with sqlite.transaction(self._db):
            self._db.executemany(
                "UPDATE refs SET v = ? WHERE lookup = ? AND k = ?",
                ((self._seal(orjson.loads(v)), lookup, k) for lookup, k, v in rows),
            )
        self._db.execute("VACUUM")  # no page keeps a plaintext record
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _seal(self, record: dict[str, Any]) -> bytes:
        raw = orjson.dumps(record)
        return raw if self._sealer is None else self._sealer.seal(raw)

    def _unseal(self, blob: bytes) -> dict[str, Any]:
        blob = bytes(blob)
        if not is_sealed(blob):
            return dict(orjson.loads(blob))
        raw = self._sealer.open(blob) if self._sealer is not None else None
        if raw is None:
            raise RuntimeError(
                f"map-hr lookup store {self.path}: a record is sealed and does not open with "
                f"the configured key ({ENV_KEY}): set the key it was written with, or delete "
                "the store (the next full run rebuilds it)"
            )
        return dict(orjson.loads(raw))

    @staticmethod
    def key(value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def put(self, lookup: str, key: Any, record: dict[str, Any]) -> None:
        k = self.key(key)
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO refs (lookup, k, v, stored_at) VALUES (?, ?, ?, ?)",
            (lookup, k, self._seal(record), time.time()),
        )
        self._cache_set((lookup, k), record)
        self._tick()

    def get(self, lookup: str, key: Any) -> dict[str, Any] | None:
        ck = (lookup, self.key(key))
        hit = self._cache.get(ck)
        if hit is not None:
            self._cache.move_to_end(ck)
            return hit
        row = self._db.execute("SELECT v FROM refs WHERE lookup = ? AND k = ?", ck).fetchone()
        if row is None:
            return None
        record = self._unseal(row[0])
        self._cache_set(ck, record)
        return record

    def _cache_set(self, ck: tuple[str, str], record: dict[str, Any]) -> None:
        self._cache[ck] = record
        self._cache.move_to_end(ck)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def defer(self, stream: str, message: dict[str, Any]) -> None:
        """Park a record message until the end of input (its reference may still come)."""
        self._begin()
        self._db.execute(
            "INSERT INTO pending (stream, msg) VALUES (?, ?)", (stream, orjson.dumps(message))
        )
        self.pending_count += 1
        self._tick()

    def drain(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Parked messages in arrival order (removed as they are read)."""
        self.commit()
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT seq, stream, msg FROM pending WHERE seq > ? ORDER BY seq LIMIT 1000",
                (last,),
            ).fetchall()
            if not rows:
                break
            for seq, stream, msg in rows:
                last = seq
                yield stream, orjson.loads(msg)
        self._db.execute("DELETE FROM pending")
        self.pending_count = 0

    def _begin(self) -> None:
        """Writes go in batches of COMMIT_EVERY; a batch holds the write lock only while open."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")  # waits for another run's batch, never fails it

    def _tick(self) -> None:
        self._writes += 1
        if self._writes >= COMMIT_EVERY:
            self.commit()

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._writes = 0

    def close(self) -> None:
        self.commit()
        self._db.close()
