"""Spill files: a run's working set kept on disk, so memory stays flat however large the input.

A target that must see its whole batch before it writes (the IAM targets: the
mass-deprovisioning guard decides before any write) keeps the batch, the destination's
current state and the plan in a private, temporary SQLite file instead of Python objects.
Rows are pickled (a record keeps its exact types: a ``datetime`` stays one) and read back in
key or insertion order, a chunk at a time.

The file lives in a fresh 0700 folder (``tempfile.mkdtemp``), is created 0600, holds personal
data only for the run and is deleted by :meth:`SpillDB.close` (or when the object is garbage
collected, or at interpreter exit). Nothing is fsynced: a crash loses the file, and a re-run
plans again from the destination.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import sqlite3
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Rows read per query when iterating (the memory of one chunk, not of the batch).
CHUNK = 2000
#: SQLite page cache of a spill file, in KiB.
CACHE_KIB = 32_768


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(blob: bytes) -> Any:
    """Only ever applied to rows this process wrote into its own private spill file."""
    return pickle.loads(blob)  # noqa: S301 - our own private temporary file


def _remove(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


class SpillDB:
    """One private temporary SQLite file; ``schema`` creates the caller's tables."""

    def __init__(self, schema: str, *, prefix: str = "hrsync-spill-") -> None:
        self.folder = tempfile.mkdtemp(prefix=prefix)  # 0700
        self.path = Path(self.folder) / "spill.sqlite"
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._finalizer = weakref.finalize(self, _remove, self.folder)
        # one connection, used by the thread that plans (writers hand results back to it)
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.executescript(schema)
        self.db.execute("BEGIN")  # one long transaction: the file is thrown away at the end

    def close(self) -> None:
        """Delete the file (idempotent)."""
        if self._finalizer.alive:
            self.db.close()
            self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def chunks(
        self, sql: str, params: tuple[Any, ...] = (), *, key: int = 0, size: int | None = None
    ) -> Iterator[list[Any]]:
        """Rows of ``sql`` a chunk at a time, by keyset pagination.

        ``sql`` must select a strictly increasing integer in column ``key``, have a
        ``{after}`` placeholder for the condition on that column (``seq > ?``: write
        ``WHERE {after}`` or ``AND {after}``) and end with ``ORDER BY`` that column. Between
        chunks the caller may write to the same file.
        """
        last = -(2**63)
        column = sql.split("ORDER BY", 1)[1].split()[0]
        while True:
            rows = self.db.execute(
                sql.format(after=f"{column} > ?") + f" LIMIT {int(size or CHUNK)}", (*params, last)
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][key]


class SpillList(Generic[T]):
    """An append-only list of pickled items, each with an optional tag (counted) and key."""

    def __init__(self, spill: SpillDB, name: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a table name: {name!r}")
        self.spill = spill
        self.name = name
        self.counts: Counter[str] = Counter()
        self._len = 0
        spill.db.execute(
            f"CREATE TABLE {name} (seq INTEGER PRIMARY KEY, tag TEXT, item_key TEXT, "
            "flag INTEGER NOT NULL, item BLOB)"
        )

    def append(self, item: T, tag: str | None = None, key: str | None = None, flag: int = 0) -> int:
        """Add ``item`` (``tag`` is counted; ``key`` and the integer ``flag`` can be selected
        on); returns its position."""
        self._len += 1
        self.spill.db.execute(
            f"INSERT INTO {self.name} VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - a checked name
            (self._len, tag, key, flag, dumps(item)),
        )
        if tag is not None:
            self.counts[tag] += 1
        return self._len

    def update(self, seq: int, item: T) -> None:
        """Replace the item at position ``seq`` (a changed copy read back earlier)."""
        self.spill.db.execute(
            f"UPDATE {self.name} SET item = ? WHERE seq = ?",  # noqa: S608 - a checked name
            (dumps(item), seq),
        )

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[T]:
        for chunk in self.iter_chunks():
            yield from chunk

    def iter_chunks(
        self, where: str = "", params: tuple[Any, ...] = (), *, size: int | None = None
    ) -> Iterator[list[T]]:
        """The items (optionally ``where`` a condition on ``seq``, ``tag`` or ``item_key``), in
        order, a chunk at a time."""
        for chunk in self.iter_numbered(where, params, size=size):
            yield [item for _, item in chunk]

    def iter_numbered(
        self, where: str = "", params: tuple[Any, ...] = (), *, size: int | None = None
    ) -> Iterator[list[tuple[int, T]]]:
        """Like :meth:`iter_chunks`, each item with its position (``seq``, from 1)."""
        condition = f"({where}) AND " if where else ""
        # the table name is checked; ``where`` is the caller's code, values go in ``params``
        sql = f"SELECT seq, item FROM {self.name} WHERE {condition}{{after}} ORDER BY seq"  # noqa: S608
        for rows in self.spill.chunks(sql, params, size=size):
            yield [(int(seq), loads(blob)) for seq, blob in rows]
