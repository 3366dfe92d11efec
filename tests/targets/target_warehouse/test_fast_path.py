"""target-warehouse's fast record path against the plain one: the same warehouse, to the byte.

The fast path (hrsync.direct hands a stream's records to ``WarehouseSink.take_many`` in
chunks, validation by remembered shapes, a declared-fields record written as its own JSON,
dates parsed in one pass) must leave exactly what the plain path leaves: singer-sdk's own
per-record ``_process_record_message``, every record validated by the compiled function or
the reference, each row built column by column, dates parsed in the record's order. Both
load the same messy feed (accents, nulls, nested objects, rehires of one key, a deletions
stream, wrong types, bad dates, missing keys, a 70-bit number, undeclared and ``_sdc_``
fields, a schema change mid-stream, STATE between records, batches of 7 so drains fall
inside chunks) and must agree on every table (columns, types, rows), every dead letter, every
audit event and the STATE output; a feed broken by an unreadable line in the middle must
fail the same way with the same records dead-lettered before it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from target_warehouse.sinks import WarehouseSink
from target_warehouse.target import TargetWarehouse

PEOPLE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "headcount": {"type": ["integer", "null"]},
        "active": {"type": ["boolean", "null"]},
        "hired": {"type": ["string", "null"], "format": "date"},
        "changed_at": {"type": ["string", "null"], "format": "date-time"},
        "starts": {"type": ["string", "null"], "format": "time"},
    },
}
# the same stream later in the run, with a nested object and a new column
PEOPLE_V2: dict[str, Any] = {
    **PEOPLE,
    "properties": {
        **PEOPLE["properties"],
        "address": {"type": ["object", "null"], "properties": {"city": {"type": "string"}}},
        "grade": {"type": ["number", "null"]},
    },
}
DELETIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "deleted_at": {"type": "string", "format": "date-time"},
    },
}
NAMES = ["Zoë", "Ægir Þórsson", "王 🙂", 'O\'Brien "Jr"', "línea\nnueva", "", "Ñandú"]


def _person(i: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": str(i % 40),  # every key comes back: rehires and updates
        "name": NAMES[i % len(NAMES)] if i % 9 else None,
        "headcount": i if i % 5 else None,
        "active": bool(i % 2) if i % 6 else None,
        "hired": f"20{10 + i % 15}-0{1 + i % 9}-1{i % 9}",
        "changed_at": f"2026-03-0{1 + i % 9}T10:0{i % 10}:00{'+02:00' if i % 4 else 'Z'}",
    }
    if i % 11 == 0:
        rec["starts"] = "08:30:00"
    if i % 13 == 0:
        rec["undeclared"] = {"nested": [i, "é"]}  # a field the schema does not declare
    if i % 17 == 0:
        rec["_sdc_extracted_at"] = "2026-03-01T00:00:00Z"  # singer-sdk metadata: dropped
    return rec


BROKEN: dict[int, dict[str, Any]] = {
    23: {"id": "b23", "headcount": "twelve"},  # wrong type
    31: {"id": "b31", "hired": "2019-02-30"},  # not a date
    37: {"name": "no key"},  # key missing
    41: {"id": None, "name": "null key"},  # key null: refused by the schema
    47: {"id": "b47", "headcount": 2**70},  # beyond BIGINT
    53: {"id": "b53", "changed_at": "yesterday"},  # not a date-time
    59: {"id": "b59", "starts": "25:61"},  # not a time
    61: {"id": "b61", "headcount": 1.5},  # a fraction for an integer
}


def feed() -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": "people", "schema": PEOPLE, "key_properties": ["id"]},
        {"type": "SCHEMA", "stream": "deletions", "schema": DELETIONS, "key_properties": ["id"]},
    ]
    for i in range(120):
        rec = BROKEN.get(i, _person(i))
        msgs.append({"type": "RECORD", "stream": "people", "record": rec})
        if i % 15 == 14:
            deleted = {"id": str(i % 40), "deleted_at": "2026-03-02T00:00:00Z"}
            msgs.append({"type": "RECORD", "stream": "deletions", "record": deleted})
        if i % 25 == 24:
            msgs.append({"type": "STATE", "value": {"bookmarks": {"people": i}}})
    msgs.append(
        {"type": "SCHEMA", "stream": "people", "schema": PEOPLE_V2, "key_properties": ["id"]}
    )
    for i in range(120, 160):
        rec = _person(i)
        rec["address"] = {"city": "Tromsø"} if i % 3 else {"city": 5}  # a wrong nested type
        rec["grade"] = i / 8 if i % 2 else i
        msgs.append({"type": "RECORD", "stream": "people", "record": rec})
    msgs.append({"type": "STATE", "value": {"bookmarks": {"people": "done"}}})
    return msgs


class PlainSink(WarehouseSink):
    """Dates parsed in the record's order, no chunks."""

    take_many = None  # type: ignore[assignment]  # not a chunked sink
    _parse_timestamps_in_record = WarehouseSink._parse_timestamps_in_order


class PlainPath(TargetWarehouse):
    """The plain path: singer-sdk's own per-record steps, nothing remembered or taken whole."""

    default_sink_class = PlainSink

    def _process_record_message(self, message_dict: dict) -> None:
        for active in self._sinks_active.values():
            sink: Any = active
            sink._plain_rows = False  # every row built column by column
            if sink._compiled is not None:
                sink._compiled.shapes = None  # every record through the compiled function
        Target._process_record_message(self, message_dict)


def load(
    cls: type[TargetWarehouse], tmp: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Run one target over ``text``; everything it left behind, comparable."""
    tmp.mkdir()
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(tmp / "dlq.sqlite"))
    monkeypatch.setenv("HRSYNC_AUDIT_LOG", str(tmp / "audit.jsonl"))
    db = tmp / "w.duckdb"
    out, error = io.StringIO(), None
    monkeypatch.setattr("sys.stdout", out)
    target = cls(config={"database": str(db), "batch_size_rows": 7})
    try:
        target.listen(io.StringIO(text))
    except Exception as exc:  # the broken feed: compared, not hidden
        error = f"{type(exc).__name__}: {exc}"
        target.warehouse.close()  # the process would end here
    monkeypatch.undo()
    tables: dict[str, Any] = {}
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            names = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
            for (name,) in names:
                cols = con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = ? ORDER BY ordinal_position",
                    [name],
                ).fetchall()
                rows = con.execute(
                    f'SELECT * EXCLUDE (_loaded_at) FROM "{name}" ORDER BY ALL'  # noqa: S608
                ).fetchall()
                tables[name] = (cols, rows)
    letters = [
        (x.stream, x.record_key, x.record, x.error, x.error_class, x.status)
        for x in DeadLetterStore(tmp / "dlq.sqlite").list(plugin="target-warehouse", status=None)
    ]
    audit = [  # less the time, the hash chain and the batch's random id
        {
            **{k: v for k, v in e.items() if k not in ("ts", "hash", "prev")},
            "record_key": "batch" if e["record_key"].startswith("batch:") else e["record_key"],
        }
        for e in AuditLog.read(tmp / "audit.jsonl")
    ]
    state = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return {"tables": tables, "letters": sorted(letters, key=repr), "audit": audit,
            "state": state, "error": error}  # fmt: skip


def test_the_fast_path_leaves_what_the_plain_path_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in feed())
    fast = load(TargetWarehouse, tmp_path / "fast", text, monkeypatch)
    plain = load(PlainPath, tmp_path / "plain", text, monkeypatch)
    assert fast["error"] is None
    assert fast == plain
    # the feed is worth something: rows, every kind of dead letter, several batches
    (cols, rows) = fast["tables"]["people"]
    assert len(rows) >= 40 and ("address", "JSON") in cols
    assert {x[4] for x in fast["letters"]} == {
        "invalid_record", "invalid_date", "missing_key", "type_conversion"
    }  # fmt: skip
    assert len(fast["audit"]) > 20 and fast["state"][-1] == {"bookmarks": {"people": "done"}}


def test_a_broken_line_fails_both_paths_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    msgs = feed()[:80]
    lines = [json.dumps(m, ensure_ascii=False) for m in msgs]
    # cut short, right after a record that is dead-lettered
    at = next(i for i, m in enumerate(msgs) if m.get("record") == BROKEN[53]) + 1
    lines.insert(at, '{"type": "RECORD", "stream": "people", "record": {"id": ')
    text = "\n".join(lines) + "\n"
    fast = load(TargetWarehouse, tmp_path / "fast", text, monkeypatch)
    plain = load(PlainPath, tmp_path / "plain", text, monkeypatch)
    assert fast["error"] is not None and f"line {at + 1}" in fast["error"]
    assert fast == plain
    # the records before the broken line were handled: their dead letters are there
    assert {x[1] for x in fast["letters"]} >= {"b23", "b31", "b53"}
