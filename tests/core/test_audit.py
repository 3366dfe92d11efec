"""The audit log: names not values, whole lines under concurrency, readable summary."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hrsync.audit import AuditLog
from hrsync.cli import main


def test_records_names_never_values(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="ats-to-hris")
    record = {"firstName": "Zoë", "ssn": "900-12-3456"}
    log.record(
        stream="new_hires",
        record_key="4000000001",
        fields=record.keys(),
        destination="bamboohr",
        outcome="created",
    )
    with pytest.raises(TypeError, match="field names"):
        log.record(
            stream="new_hires",
            record_key=1,
            fields=record,  # type: ignore[arg-type]
            destination="bamboohr",
            outcome="created",
        )
    text = path.read_text()
    assert "Zoë" not in text and "900-12-3456" not in text
    (event,) = AuditLog.read(path)
    assert event["fields"] == ["firstName", "ssn"]
    assert event["integration"] == "ats-to-hris" and event["outcome"] == "created"
    assert event["ts"].endswith("+00:00")


def test_concurrent_writers_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    def write(n: int) -> None:
        log = AuditLog(path)
        for i in range(200):
            log.record(
                stream="s",
                record_key=f"{n}-{i}",
                fields=["a" * 50] * 3,
                destination="d",
                outcome="created",
            )

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = AuditLog.read(path)
    assert len(events) == 1600
    assert len({e["record_key"] for e in events}) == 1600


def test_integration_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRSYNC_INTEGRATION", "hris-to-iam")
    log = AuditLog(tmp_path / "a.jsonl")
    log.record(stream="s", record_key=1, fields=[], destination="d", outcome="unchanged")
    assert AuditLog.read(tmp_path / "a.jsonl")[0]["integration"] == "hris-to-iam"


def test_cli_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="ats-to-hris")
    for outcome in ("created", "created", "unchanged"):
        log.record(
            stream="new_hires", record_key=1, fields=["a"], destination="bamboohr", outcome=outcome
        )
    assert main(["audit", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "created" in out and " 2" in out
    assert main(["audit", "--path", str(path), "--json"]) == 0
    assert '"count": 2' in capsys.readouterr().out
