"""The warehouse's batch audit event names the people of its loaded rows by their keyed
subject references (from the analytics pseudonym), so `hrsync audit subject` finds it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hrsync import subject
from hrsync.audit import AuditLog
from hrsync_ops.subject_report import transfers
from target_warehouse.target import TargetWarehouse

SEGMENTS = {
    "type": "object",
    "properties": {
        "employee_key": {"type": "string"},
        "department": {"type": ["string", "null"]},
        "headcount": {"type": ["integer", "null"]},
    },
}


def test_a_batch_names_its_people_by_reference_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAP_HR_HMAC_KEY", "warehouse-subjects-key-0123456789")
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(tmp_path / "dlq.sqlite"))
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HRSYNC_AUDIT_LOG", str(audit))
    people = {emp: subject.analytics_pseudonym(emp) for emp in ("2042", "2043")}
    messages = [
        {
            "type": "SCHEMA",
            "stream": "segments",
            "schema": SEGMENTS,
            "key_properties": ["employee_key"],
        },
        *(
            {
                "type": "RECORD",
                "stream": "segments",
                "record": {"employee_key": p, "department": "Sales", "headcount": 1},
            }
            for p in people.values()
        ),
        {
            "type": "RECORD",
            "stream": "segments",  # not an integer: a dead letter, not loaded
            "record": {"employee_key": subject.analytics_pseudonym("2044"), "headcount": "x"},
        },
    ]
    text = "".join(json.dumps(m) + "\n" for m in messages)
    TargetWarehouse(config={"database": str(tmp_path / "w.duckdb")}).listen(io.StringIO(text))
    failed, event = AuditLog.read(audit)
    assert event["subjects"] == sorted(subject.employee_ref(e) for e in people)
    assert subject.employee_ref("2044") not in event["subjects"]
    assert not {p for p in people.values() if p and p in json.dumps(event)}  # no pseudonym
    found, _ = transfers(audit, {str(subject.employee_ref("2042"))})
    assert [(t.stream, t.outcome) for t in found] == [("segments", "partial")]
    # the dead-lettered row's person: their failed transfer, not the batch
    assert failed["subject"] == subject.employee_ref("2044")
    found, _ = transfers(audit, {str(subject.employee_ref("2044"))})
    assert [(t.stream, t.outcome) for t in found] == [("segments", "failed")]
