"""hrsync.sqlite: every store opens safely when several processes create it at the same moment."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from hrsync import sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (k TEXT PRIMARY KEY, writer INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS items_writer ON items (writer);
"""


def _writer(path: str, writer: int, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    conn = sqlite.connect(path, schema=SCHEMA, name="race test")
    for i in range(25):
        with sqlite.transaction(conn):
            conn.execute("INSERT INTO items VALUES (?, ?)", (f"{writer}-{i}", writer))
    conn.close()


def test_processes_racing_to_create_one_store_all_succeed(tmp_path: Path) -> None:
    """Twelve processes open a store that does not exist yet, released at one instant.

    Before hrsync.sqlite, the losers of the WAL switch died with 'database is locked' (CI saw
    it through map-hr's lookup store); now each retries its set-up and every row lands.
    """
    ctx = multiprocessing.get_context("fork")
    path = tmp_path / "fresh.sqlite"
    for round_ in range(3):  # three fresh files: the race is at creation
        target = path.with_name(f"fresh-{round_}.sqlite")
        start = ctx.Event()
        procs = [ctx.Process(target=_writer, args=(str(target), w, start)) for w in range(12)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 12
        conn = sqlite3.connect(target)
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 12 * 25
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert target.stat().st_mode & 0o077 == 0  # private by default
        conn.close()


def test_transaction_rolls_back_when_the_block_raises(tmp_path: Path) -> None:
    conn = sqlite.connect(tmp_path / "t.sqlite", schema=SCHEMA)
    with pytest.raises(RuntimeError), sqlite.transaction(conn):
        conn.execute("INSERT INTO items VALUES ('a', 1)")
        raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    assert not conn.in_transaction


def test_a_store_held_locked_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process stuck holding an exclusive lock: the error names the store and its path."""
    path = tmp_path / "held.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(sqlite, "SETUP_DEADLINE", 0.3)
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT", 0.05)
    with pytest.raises(sqlite3.OperationalError, match=r"dead-letter store at .*held\.sqlite"):
        sqlite.connect(path, schema=SCHEMA, name="dead-letter store")
    holder.execute("ROLLBACK")
    holder.close()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="syntax error"):
        sqlite.connect(tmp_path / "bad.sqlite", schema="CREATE TABLEX nope (a);")
