"""The audit log: names not values, whole lines under concurrency, where it goes, who wrote it."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hrsync.audit import AuditLog, default_integration
from hrsync_ops.cli import main

EVENT_KEYS = {
    "ts",
    "integration",
    "stream",
    "record_key",
    "fields",
    "destination",
    "outcome",
    "detail",
    "job",  # why and to whom: see test_processing_record
    "legal_basis",
    "processor",
    "subject",  # a keyed reference of the person: see test_audit_chain
    "links",
    "seq",  # the hash chain: see test_audit_chain
    "prev",
    "hash",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HRSYNC_AUDIT_LOG",
        "HRSYNC_INTEGRATION",
        "MELTANO_EXTRACTOR_NAME",
        "MELTANO_LOADER_NAME",
    ):
        monkeypatch.delenv(name, raising=False)


def test_records_names_never_values(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="ats-to-hris")
    record = {"lastName": "O'Brien-Ødegård", "firstName": "Zoë", "ssn": "900-12-3456"}
    log.record(
        stream="new_hires",
        record_key="4000000001",
        fields=record.keys(),
        destination="bamboohr",
        outcome="created",
    )
    text = path.read_text(encoding="utf-8")
    assert "Zoë" not in text and "900-12-3456" not in text and "O'Brien" not in text
    (event,) = AuditLog.read(path)
    assert set(event) == EVENT_KEYS
    assert event["fields"] == ["firstName", "lastName", "ssn"]  # sorted
    assert event["integration"] == "ats-to-hris" and event["outcome"] == "created"
    assert event["record_key"] == "4000000001" and event["detail"] is None
    ts = datetime.fromisoformat(event["ts"])
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 3600


@pytest.mark.parametrize(
    "fields",
    [
        {"ssn": "900-12-3456"},
        {"ssn": "900-12-3456"}.values(),
        {"ssn": "900-12-3456"}.items(),
        "firstName",
        [("ssn", "900-12-3456")],
        ["ok", 42],
    ],
    ids=["dict", "values", "items", "str", "pairs", "non-str"],
)
def test_values_are_refused(tmp_path: Path, fields: object) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(TypeError, match="field names"):
        log.record(
            stream="s",
            record_key=1,
            fields=fields,  # type: ignore[arg-type]
            destination="d",
            outcome="created",
        )
    assert AuditLog.read(tmp_path / "audit.jsonl") == []


def test_outcome_detail_destination_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="hris-to-iam")
    with pytest.raises(ValueError, match="outcome"):
        log.record(stream="s", record_key=1, fields=[], destination="d", outcome=" ")
    log.record(
        stream="workers",
        record_key=("E1", 2),
        fields=["active"],
        destination="https://svc:p4ss@scim.example.com/v2/Users?token=abc#x",
        outcome="failed",
        detail="409 uniqueness:\n  userName\ttaken " + "x" * 1000,
    )
    (event,) = AuditLog.read(path)
    assert event["destination"] == "https://scim.example.com/v2/Users"
    assert event["record_key"] == "('E1', 2)"
    assert event["detail"].startswith("409 uniqueness: userName taken x")
    assert len(event["detail"]) == 300


def test_concurrent_threads_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    shared = AuditLog(path, integration="t")

    def write(n: int) -> None:
        own = AuditLog(path, integration="t")  # separate descriptors, same file
        for i in range(200):
            (own if i % 2 else shared).record(
                stream="s",
                record_key=f"{n}-{i}",
                fields=[f"field_{j}_{'a' * 40}" for j in range(20)],
                destination="d",
                outcome="created",
            )
        own.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = AuditLog.read(path)  # json.loads on every line: a torn line would fail here
    assert len(events) == 1600
    assert len({e["record_key"] for e in events}) == 1600


def test_concurrent_processes_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "audit.jsonl"  # parent directories are created
    script = (
        "import sys\n"
        "from hrsync.audit import AuditLog\n"
        "log = AuditLog(sys.argv[1], integration='p')\n"
        "for i in range(300):\n"
        "    log.record(stream='s', record_key=f'{sys.argv[2]}-{i}',\n"
        "               fields=[f'f{j}' * 30 for j in range(40)], destination='d',\n"
        "               outcome='updated')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)]) for n in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    events = AuditLog.read(path)
    assert len(events) == 1200
    assert len({e["record_key"] for e in events}) == 1200
    assert all(len(e["fields"]) == 40 for e in events)


def test_path_from_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    AuditLog().record(stream="s", record_key=1, fields=[], destination="d", outcome="skipped")
    assert (tmp_path / ".hrsync" / "audit.jsonl").exists()
    assert len(AuditLog.read()) == 1
    monkeypatch.setenv("HRSYNC_AUDIT_LOG", str(tmp_path / "env" / "a.jsonl"))
    AuditLog().record(stream="s", record_key=2, fields=[], destination="d", outcome="skipped")
    assert [e["record_key"] for e in AuditLog.read()] == [2]
    explicit = tmp_path / "explicit.jsonl"
    AuditLog(explicit).record(stream="s", record_key=3, fields=[], destination="d", outcome="x")
    assert [e["record_key"] for e in AuditLog.read(explicit)] == [3]


def test_integration_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_integration() == "adhoc"
    # what `meltano run tap-greenhouse map-hr target-bamboohr` puts in the target's environment
    monkeypatch.setenv("MELTANO_EXTRACTOR_NAME", "tap-greenhouse")
    assert default_integration() == "tap-greenhouse"
    monkeypatch.setenv("MELTANO_LOADER_NAME", "target-bamboohr")
    assert default_integration() == "tap-greenhouse-to-target-bamboohr"
    monkeypatch.setenv("HRSYNC_INTEGRATION", "ats-to-hris")
    assert default_integration() == "ats-to-hris"
    log = AuditLog(tmp_path / "a.jsonl")
    log.record(stream="s", record_key=1, fields=[], destination="d", outcome="unchanged")
    AuditLog(tmp_path / "a.jsonl", integration="explicit").record(
        stream="s", record_key=2, fields=[], destination="d", outcome="unchanged"
    )
    events = AuditLog.read(tmp_path / "a.jsonl")
    assert [e["integration"] for e in events] == ["ats-to-hris", "explicit"]


def test_cli_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, integration="ats-to-hris") as log:
        for outcome in ("created", "created", "unchanged"):
            log.record(
                stream="new_hires",
                record_key=1,
                fields=["a"],
                destination="bamboohr",
                outcome=outcome,
            )
    assert main(["audit", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "created" in out and " 2" in out
    assert main(["audit", "--path", str(path), "--json"]) == 0
    assert '"count": 2' in capsys.readouterr().out
