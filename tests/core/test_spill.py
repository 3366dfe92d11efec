"""hrsync.spill: a private temporary SQLite file, read back in order a chunk at a time."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest

from hrsync import spill
from hrsync.spill import SpillDB, SpillList


def test_the_file_is_private_and_gone_after_close() -> None:
    db = SpillDB("CREATE TABLE t (x);")
    folder, path = Path(db.folder), db.path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db.close()
    db.close()  # idempotent
    assert db.closed and not folder.exists()


def test_items_come_back_in_order_with_their_types_across_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spill, "CHUNK", 3)
    db = SpillDB("")
    items: SpillList[dict[str, object]] = SpillList(db, "items")
    when = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    for i in range(10):
        items.append({"i": i, "at": when}, "even" if i % 2 == 0 else "odd", f"k{i}", i % 3)
    assert len(items) == 10 and items.counts == {"even": 5, "odd": 5}
    assert [x["i"] for x in items] == list(range(10))
    assert next(iter(items))["at"] == when  # a datetime stays one
    chunks = list(items.iter_chunks("tag = 'odd'"))
    assert [[x["i"] for x in c] for c in chunks] == [[1, 3, 5], [7, 9]]
    assert [x["i"] for c in items.iter_chunks("flag = ?", (2,)) for x in c] == [2, 5, 8]
    # appending while reading: keyset paging sees the new rows, never a row twice
    seen = []
    for chunk in items.iter_numbered():
        for seq, _ in chunk:
            seen.append(seq)
            if seq == 1:
                items.append({"i": 10})
    assert seen == list(range(1, 12))
    items.update(4, {"i": 30})
    assert [x["i"] for x in items][3] == 30
    db.close()


def test_a_table_name_must_be_a_plain_identifier() -> None:
    db = SpillDB("")
    with pytest.raises(ValueError, match="not a table name"):
        SpillList(db, "x; DROP TABLE y")
    db.close()
