"""On-disk lookup store (SQLite) for joins, and the spill area for records waiting on one.

Reference records (candidates, jobs, ...) are kept with only the fields a profile reads, so an
incremental run whose offer changed but whose candidate did not can still join. Records whose
reference has not arrived yet wait in a table, not in memory: memory stays flat.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hrsync import sqlite

COMMIT_EVERY = 5_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    lookup TEXT NOT NULL, k TEXT NOT NULL, v BLOB NOT NULL, PRIMARY KEY (lookup, k));
DROP TABLE IF EXISTS pending;  -- parked records lived here before they moved to a TEMP table
"""
CACHE_SIZE = 20_000


class LookupStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Reference records are shared by every run of the profile; parked records are this
        # run's own (a TEMP table: another run of the same profile never sees or clears them).
        self._db = sqlite.connect(
            path,
            schema=_SCHEMA,
            synchronous="NORMAL",
            private=True,
            name=f"map-hr lookup store {self.path.name}",
        )
        self._db.execute(
            "CREATE TEMP TABLE pending (seq INTEGER PRIMARY KEY, stream TEXT, msg BLOB)"
        )
        self._writes = 0
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.pending_count = 0

    @staticmethod
    def key(value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def put(self, lookup: str, key: Any, record: dict[str, Any]) -> None:
        k = self.key(key)
        self._begin()
        self._db.execute(
            "INSERT OR REPLACE INTO refs (lookup, k, v) VALUES (?, ?, ?)",
            (lookup, k, orjson.dumps(record)),
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
        record: dict[str, Any] = orjson.loads(row[0])
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
