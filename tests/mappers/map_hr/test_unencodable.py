"""map-hr: a record holding an unpaired UTF-16 surrogate (a JSON ``\\ud800`` escape) or bytes
that are not UTF-8 is its own dead letter naming stream, record, field and reason; the records
around it are mapped. Before, the run stopped at that line ("input is not JSON")."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.errors import RecordError
from map_hr.engine import build_engine, run_stream

PROPS = ("id", "firstName", "lastName", "workEmail", "jobTitle", "status", "extra")


def person(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "firstName": "Ann", "lastName": "Lee", "workEmail": f"e{i}@acme.example",
            "status": "Active", **extra}  # fmt: skip


def feed(bad: bytes, stream: str = "employees") -> bytes:
    schema = {"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
              "schema": {"type": "object", "properties": {p: {} for p in PROPS}}}  # fmt: skip
    lines = [
        orjson.dumps(schema),
        orjson.dumps({"type": "RECORD", "stream": stream, "record": person(1)}),
        b'{"type": "RECORD", "stream": "%s", "record": %s}' % (stream.encode(), bad),
        orjson.dumps({"type": "RECORD", "stream": stream, "record": person(3)}),
    ]
    return b"\n".join(lines) + b"\n"


def run(data: bytes, tmp_path: Path, **config: Any) -> list[dict[str, Any]]:
    engine = build_engine(
        {"profile": "bamboohr_to_canonical", "state_dir": str(tmp_path / "s"), **config}
    )
    out = io.BytesIO()
    run_stream(engine, io.BytesIO(data), out)
    return [json.loads(x) for x in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        (b'{"id": 2, "firstName": "Bo\\ud800", "status": "Active"}', "firstName",
         "unpaired UTF-16 surrogate '\\ud800' at character 2"),
        (b'{"id": 2, "firstName": "Bo", "extra": {"aka": ["\\udfff"]}}', "extra.aka[0]",
         "unpaired UTF-16 surrogate '\\udfff' at character 0"),
        (b'{"id": 2, "firstName": "Jos\xe9", "status": "Active"}', "firstName",
         "(or byte 0xe9 of input that is not UTF-8)"),
    ],
    ids=["top-level", "nested", "latin-1-byte"],
)  # fmt: skip
def test_a_record_with_unencodable_text_is_its_own_dead_letter(
    tmp_path: Path, bad: bytes, field: str, reason: str
) -> None:
    out = run(feed(bad), tmp_path)
    assert [m["record"]["id"] for m in out if m["type"] == "RECORD"] == ["1", "3"]
    (letter,) = DeadLetterStore().list(plugin="map-hr:bamboohr_to_canonical")
    assert letter.record_key == "id=2" and letter.stream == "worker"
    assert f"stream employees, record id=2: field {field}: " in letter.error
    assert reason in letter.error


def test_a_surrogate_in_the_key_is_filed_under_its_escape(tmp_path: Path) -> None:
    out = run(feed(b'{"id": "2\\ud800", "firstName": "Bo"}'), tmp_path)
    assert [m["record"]["id"] for m in out if m["type"] == "RECORD"] == ["1", "3"]
    (letter,) = DeadLetterStore().list(plugin="map-hr:bamboohr_to_canonical")
    assert letter.record_key == "id=2\\ud800" and "field id: unpaired" in letter.error


def test_bad_records_fail_stops_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"record id=2: field firstName: unpaired UTF-16"):
        run(feed(b'{"id": 2, "firstName": "Bo\\ud800"}'), tmp_path, bad_records="fail")


def test_an_unmapped_stream_passes_the_line_on_as_it_came(tmp_path: Path) -> None:
    bad = b'{"id": 2, "firstName": "Bo\\ud800"}'
    data = feed(bad, stream="badges")
    out = run(data, tmp_path, unknown_streams="pass")
    assert len([m for m in out if m["type"] == "RECORD"]) == 3  # the target refuses it
    assert DeadLetterStore().list() == []
