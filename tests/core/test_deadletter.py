"""The dead-letter store: one letter per waiting key, resolve, discard, encryption at rest."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from hrsync.deadletter import DeadLetterStore

RECORD = {"id": "42", "firstName": "Zoë", "lastName": "O'Brien-Łukasz"}
SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}}


def add(store: DeadLetterStore, key: str = "42", error: str = "field hireDate: bad") -> int:
    return store.add(
        plugin="target-x",
        stream="employees",
        record_key=key,
        record={**RECORD, "id": key},
        error=error,
        schema=SCHEMA,
        key_properties=["id"],
        integration="job-a",
    )


def test_same_key_is_one_letter_with_growing_attempts(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite", key="")
    first = add(store)
    again = add(store, error="field hireDate: still bad")
    assert first == again
    [letter] = store.list()
    assert letter.attempts == 2
    assert letter.error == "field hireDate: still bad"
    assert letter.record == RECORD
    assert letter.schema == SCHEMA
    assert letter.key_properties == ["id"]
    assert store.counts() == {"job-a": 1}
    assert (tmp_path / "dl.sqlite").stat().st_mode & 0o077 == 0


def test_resolve_and_discard(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path / "dl.sqlite", key="")
    add(store, "1")
    two = add(store, "2")
    resolved = store.resolve(
        plugin="target-x", stream="employees", record_keys=["1", "9"], integration="job-a"
    )
    assert resolved == 1
    assert [letter.record_key for letter in store.list()] == ["2"]
    assert store.discard(two, "left the company before start")
    assert not store.discard(two, "twice")
    assert store.list() == []
    assert {letter.status for letter in store.list(status=None)} == {"delivered", "discarded"}
    # A key that fails again after delivery is a new waiting letter, history kept.
    add(store, "1")
    assert len(store.list(status=None)) == 3


def test_encrypted_at_rest_with_a_key(tmp_path: Path) -> None:
    path = tmp_path / "dl.sqlite"
    add(DeadLetterStore(path, key="correct horse"))
    raw = sqlite3.connect(path).execute("SELECT payload FROM dead_letters").fetchone()[0]
    assert b"Brien" not in raw and "Zoë".encode() not in raw
    assert DeadLetterStore(path, key="correct horse").list()[0].record == RECORD
    locked = DeadLetterStore(path, key="wrong").list()[0]
    assert locked.record is None and locked.error == "field hireDate: bad"


def test_concurrent_writers_never_double(tmp_path: Path) -> None:
    path = tmp_path / "dl.sqlite"

    def worker() -> None:
        store = DeadLetterStore(path, key="")
        for i in range(20):
            add(store, str(i))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    letters = DeadLetterStore(path, key="").list()
    assert len(letters) == 20
    assert {letter.attempts for letter in letters} == {4}
