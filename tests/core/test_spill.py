"""hrsync.spill: a private temporary SQLite file, read back in order a chunk at a time."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
from pathlib import Path

import pytest

from hrsync import spill
from hrsync.spill import SpillDB, SpillList


@pytest.fixture(autouse=True)
def _sealed_file_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the sealed file: no in-memory phase (the tests of the memory
    budget pass ``memory_budget`` themselves)."""
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "0")


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


def _raw(db: SpillDB) -> bytes:
    db.db.execute("COMMIT")  # the pages reach the file (nothing is committed until then)
    db.db.execute("BEGIN")
    return db.path.read_bytes()


def test_the_file_holds_no_personal_data_in_clear() -> None:
    db = SpillDB("CREATE TABLE people (eid TEXT PRIMARY KEY, email TEXT, person BLOB);")
    items: SpillList[dict[str, object]] = SpillList(db, "items")
    people = [
        {"employee_id": f"EMP{i:05d}", "name": f"Zelda Quixote{i}", "email": f"zq{i}@corp.example"}
        for i in range(50)
    ]
    for p in people:
        items.append(p, "create", str(p["employee_id"]))
        db.db.execute(
            "INSERT INTO people VALUES (?, ?, ?)",
            (db.key(str(p["employee_id"])), db.key(str(p["email"])), db.dumps(p)),
        )
    raw = _raw(db)
    for p in people:
        for value in p.values():
            assert str(value).encode() not in raw
    assert b"Quixote" not in raw and b"corp.example" not in raw and b"EMP000" not in raw
    # and it all comes back, and the keys work for equality
    assert [x["name"] for x in items] == [p["name"] for p in people]
    (blob,) = db.db.execute(
        "SELECT person FROM people WHERE eid = ?", (db.key("EMP00007"),)
    ).fetchone()
    assert db.loads(blob, "people", 7)["email"] == "zq7@corp.example"
    assert [
        x["name"] for c in items.iter_chunks("item_key = ?", (db.key("EMP00003"),)) for x in c
    ] == ["Zelda Quixote3"]
    db.close()


def test_a_leftover_file_cannot_be_read_by_another_run() -> None:
    one, two = SpillDB(""), SpillDB("")
    blob = one.dumps({"name": "Zelda"})
    assert one.key("E1") != two.key("E1")  # the keys are per run
    with pytest.raises(spill.SpillTamperedError):
        two.loads(blob, "items", 1)
    one.close()
    two.close()


def test_a_flipped_byte_fails_authentication_before_anything_is_unpickled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = SpillDB("")
    items: SpillList[dict[str, object]] = SpillList(db, "items")
    for i in range(3):
        items.append({"i": i, "name": f"Person {i}"})
    (blob,) = db.db.execute("SELECT item FROM items WHERE seq = 2").fetchone()
    altered = bytearray(blob)
    altered[-20] ^= 0x01
    db.db.execute("UPDATE items SET item = ? WHERE seq = 2", (bytes(altered),))

    def never(*args: object, **kwargs: object) -> object:
        raise AssertionError("pickle.loads reached on a row that failed authentication")

    monkeypatch.setattr(spill.pickle, "loads", never)
    with pytest.raises(spill.SpillTamperedError) as caught:
        list(items.iter_numbered("seq = 2"))
    error = caught.value
    assert error.table == "items" and error.row == 2 and error.path == db.path
    assert str(db.path) in str(error) and "row 2 of table items" in str(error)
    db.close()


def test_a_dead_runs_folder_is_removed_at_the_next_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(child.stdout)  # that process has exited: its pid is gone
    stale = tmp_path / f"target-scim-plan-{dead}-abc123{spill.SUFFIX}"
    stale.mkdir(mode=0o700)
    (stale / "spill.sqlite").write_bytes(b"leftover")
    alive = tmp_path / f"target-scim-plan-{os.getpid()}-live{spill.SUFFIX}"
    alive.mkdir(mode=0o700)
    other = tmp_path / f"unrelated-{dead}-x"
    other.mkdir()
    spill._OURS.add(str(alive))  # a live SpillDB of this process
    try:
        assert spill.remove_stale(str(tmp_path)) == [str(stale)]
    finally:
        spill._OURS.discard(str(alive))
    assert not stale.exists() and alive.exists() and other.exists()
    # a folder of this pid that no live SpillDB owns is a dead run's (pid reused)
    assert spill.remove_stale(str(tmp_path)) == [str(alive)]


def test_a_new_spill_removes_a_killed_runs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    script = (
        "import os, signal; from hrsync.spill import SpillDB; "
        "db = SpillDB('CREATE TABLE t (x);'); print(db.folder, flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    left = Path(child.stdout.strip())
    assert child.returncode == -9 and left.parent == tmp_path and left.exists()
    db = SpillDB("")
    assert not left.exists() and Path(db.folder).exists()
    db.close()


# -- in memory below the budget, sealed in the file beyond it ---------------------------------

SCHEMA = (
    "CREATE TABLE people (eid KEYTEXT PRIMARY KEY, eid_s BLOB, n INTEGER, person BLOB);"
    "CREATE INDEX people_n ON people (n);"
)


def _fill(
    db: SpillDB, items: SpillList[dict[str, object]], people: list[dict[str, object]]
) -> None:
    for i, p in enumerate(people):
        db.settle()
        items.append(p, "create", str(p["employee_id"]))
        db.db.execute(
            "INSERT INTO people VALUES (?, ?, ?, ?)",
            (db.key(str(p["employee_id"])), db.seal_text(str(p["employee_id"])), i, db.dumps(p)),
        )


def _answers(db: SpillDB, items: SpillList[dict[str, object]]) -> list[object]:
    """What the SQL and the reads give back: the same whichever path the rows took."""
    (blob,) = db.db.execute(
        "SELECT person FROM people WHERE eid = ?", (db.key("EMP00007"),)
    ).fetchone()
    eids = [
        db.open_text(e, "people", n)
        for n, e in db.db.execute("SELECT n, eid_s FROM people ORDER BY n").fetchall()
    ]
    return [
        db.loads(blob, "people", 7),
        eids,
        [x["name"] for x in items],
        [x["name"] for c in items.iter_chunks("item_key = ?", (db.key("EMP00003"),)) for x in c],
        db.db.execute("SELECT count(*) FROM temp.clear").fetchone()[0],
        items.counts,
    ]


@pytest.mark.parametrize("budget", [None, 0, 2_000], ids=["memory", "file", "moves"])
def test_memory_and_file_give_the_same_answers_and_the_file_is_sealed(
    budget: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(spill.ENV_MEMORY_MB)  # the default budget: far above this test's rows
    monkeypatch.setattr(spill, "CHUNK", 7)
    people: list[dict[str, object]] = [
        {"employee_id": f"EMP{i:05d}", "name": f"Zelda Quixote{i}", "at": dt.date(2024, 1, i + 1)}
        for i in range(30)
    ]
    db = SpillDB(SCHEMA, memory_budget=budget)
    db.db.execute("CREATE TEMP TABLE clear (x TEXT)")
    db.db.execute("CREATE INDEX temp.clear_x ON clear (x)")
    db.db.execute("INSERT INTO temp.clear VALUES ('a'), ('b')")
    items: SpillList[dict[str, object]] = SpillList(db, "items")
    assert db.spilled is (budget == 0)
    _fill(db, items, people)
    answers = _answers(db, items)
    assert answers == [
        people[7],
        [p["employee_id"] for p in people],
        [p["name"] for p in people],
        ["Zelda Quixote3"],
        2,
        {"create": 30},
    ]
    folder = Path(db.folder)
    if budget is None:  # the memory path: nothing on disk at all
        assert not db.spilled and db.held < db.memory_budget
        assert list(folder.iterdir()) == []
    else:
        assert db.spilled  # "moves": past 2,000 bytes after a few people
        raw = _raw(db)
        assert b"Quixote" not in raw and b"EMP000" not in raw
        keys = [k for (k,) in db.db.execute("SELECT eid FROM people")]
        assert len(keys) == 30 and all(len(k) == 32 and not k.startswith("=") for k in keys)
        (blob,) = db.db.execute("SELECT item FROM items WHERE seq = 1").fetchone()
        assert bytes(blob).startswith(spill.TOKEN_PREFIX)  # sealed before the move too
    db.close()
    assert not folder.exists()


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "1.5")
    assert SpillDB("").memory_budget == 1_572_864
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "lots")
    with pytest.raises(ValueError, match="HRSYNC_SPILL_MEMORY_MB='lots': not a number of MiB"):
        SpillDB("")
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "-1")
    with pytest.raises(ValueError, match="must be 0 or more MiB"):
        SpillDB("")


def test_in_memory_rows_are_the_objects_themselves_and_the_move_seals_their_latest_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below the budget a row read back is the object that was added (no pickle, no copy): a
    change made to it in place is the row, and updating it with itself writes nothing. The
    move to the file pickles and seals each object as it is then; from there a read gives a
    copy, which only an update stores."""
    monkeypatch.delenv(spill.ENV_MEMORY_MB)
    db = SpillDB("", memory_budget=10**9)
    items: SpillList[dict[str, object]] = SpillList(db, "items")
    first = {"name": "Zelda Quixote", "at": dt.date(2024, 1, 2), "seen": 0}
    items.append(first, "create", "EMP1")
    items.append({"name": "Ana Lima", "seen": 0}, "create", "EMP2")
    (read,) = next(items.iter_chunks("item_key = ?", (db.key("EMP1"),)))
    assert read is first
    read["seen"] = 1  # changed in place: that is the row now
    statements: list[str] = []
    db.db.set_trace_callback(statements.append)
    items.update(1, read)
    assert not [s for s in statements if s.startswith("UPDATE")]  # the same object: no write
    db.db.set_trace_callback(None)
    items.update(2, {"name": "Ana Lima", "seen": 2})  # another object: stored
    assert [x["seen"] for x in items] == [1, 2] and db.held > 0
    assert db.db.execute("SELECT typeof(item) FROM items").fetchall() == [("integer",)] * 2

    db.memory_budget = 0
    db.settle()  # past the budget: every object pickled and sealed as it is now
    assert db.spilled
    raw = _raw(db)
    assert b"Quixote" not in raw and b"Ana Lima" not in raw
    copy = next(iter(items))
    assert copy == {"name": "Zelda Quixote", "at": dt.date(2024, 1, 2), "seen": 1}
    assert copy is not first
    copy["seen"] = 3  # a copy: not stored until updated
    assert next(iter(items))["seen"] == 1
    items.update(1, copy)
    assert next(iter(items))["seen"] == 3
    db.close()
