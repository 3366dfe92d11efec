"""`hrsync audit subject`: one person's transfers and the rows hrsync holds about them, found
by keyed references, with the dates retention removes them; nobody else's."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.transfer import TransferLedger
from hrsync_ops.cli import main
from map_hr.lookups import LookupStore
from target_benefits_834.store import Ledger
from target_moodle.state import StateStore, Worker


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAP_HR_HMAC_KEY", "subject-report-key-0123456789")
    monkeypatch.setenv("HRSYNC_DLQ_KEY", "subject-report-dlq-key-0123456789")
    for name in ("HRSYNC_AUDIT_LOG", "HRSYNC_INTEGRATION", "MELTANO_LOADER_NAME"):
        monkeypatch.delenv(name, raising=False)
    paths = {
        "dead_letters": tmp_path / "dlq.sqlite",
        "transfers": tmp_path / "transfers.sqlite",
        "benefits_ledger": tmp_path / "ledger.sqlite",
        "lookups": tmp_path / "map-hr",
        "audit": tmp_path / "audit.jsonl",
    }
    (tmp_path / "hrsync.yml").write_text(
        json.dumps(
            {
                "retention": {
                    "dead_letters": "30d",
                    "transfers": "365d",
                    "benefits_ledger": "365d",
                    "lookups": "30d",
                    "paths": {k: str(v) for k, v in paths.items()},
                }
            }
        )
    )
    monkeypatch.setenv("TARGET_MOODLE_STATE_PATH", str(tmp_path / "moodle.sqlite"))
    log = AuditLog(paths["audit"], integration="ats-to-hris")
    for cand, emp in (("4000000123", "2042"), ("4000000124", "2043")):  # 2042 and someone else
        log.record(
            stream="bamboohr_new_hires",
            record_key=cand,
            fields=["firstName"],
            destination="bamboohr",
            outcome="created",
            candidate_id=cand,
            employee_id=emp,
        )
    iam = AuditLog(paths["audit"], integration="hris-to-iam")
    for emp in ("2042", "2043", "20420"):
        iam.record(
            stream="iam_users",
            record_key=emp,
            fields=["userName"],
            destination="https://scim.example.com/v2",
            outcome="created",
            employee_id=emp,
        )
    dlq = DeadLetterStore(paths["dead_letters"])
    dlq.add(
        plugin="target-bamboohr",
        stream="bamboohr_new_hires",
        record_key="4000000123",
        record={"firstName": "Zoë"},
        error="hireDate: not a date",
    )
    dlq.add(plugin="target-scim", stream="iam_users", record_key="2043", record={}, error="409")
    with TransferLedger(paths["transfers"]).items("sftp://payroll/in") as sent:
        sent.add([("2042", "a" * 64), ("2043", "b" * 64)], "payroll_1.csv")
    Ledger(paths["benefits_ledger"]).close()
    with sqlite3.connect(paths["benefits_ledger"]) as db:
        db.executemany(
            "INSERT INTO members VALUES (?,?,?,?,?,?)",
            [
                ("E:2042", "2042", b"{}", "x", "active", "2026-01-05T00:00:00+00:00"),
                ("D:2042:1", "2042", b"{}", "x", "terminated", "2026-01-05T00:00:00+00:00"),
                ("E:2043", "2043", b"{}", "x", "active", "2026-01-05T00:00:00+00:00"),
            ],
        )
    lookups = LookupStore(paths["lookups"] / "ats_to_hris.sqlite")
    for cand in ("4000000123", "4000000124"):
        lookups.put("candidates", cand, {"first_name": "Zoë"})
    lookups.put("jobs", "4000000123", {"title": "a job with the same id"})  # not a person
    lookups.close()
    moodle = StateStore(tmp_path / "moodle.sqlite")
    moodle.save_worker(Worker("2042", 7, None, True, {}, False))
    moodle.save_worker(Worker("2043", 8, None, True, {}, False))
    moodle.close()
    return tmp_path


def report(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["audit", "subject", *args, "--root", str(root), "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_a_person_by_employee_or_candidate_id(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_employee = report(project, capsys, "2042")
    by_candidate = report(project, capsys, "4000000123", "--candidate")
    assert by_employee["transfers"] == by_candidate["transfers"]
    assert [(t["job"], t["outcome"]) for t in by_employee["transfers"]] == [
        ("ats-to-hris", "created"),
        ("hris-to-iam", "created"),
    ]
    stores = sorted((r["store"], r["what"]) for r in by_employee["stores"])
    assert stores == [
        ("benefits_ledger", "dependant (terminated)"),
        ("benefits_ledger", "subscriber (active)"),
        ("dead_letters", "letter 1 (target-bamboohr bamboohr_new_hires, waiting)"),
        ("lookups", "map-hr lookup candidates (ats_to_hris.sqlite)"),
        ("moodle_state", "worker (active), 0 enrolment(s)"),
        ("transfers", "item of file payroll_1.csv to sftp://payroll/in"),
    ]
    letter = next(r for r in by_employee["stores"] if r["store"] == "dead_letters")
    failed = datetime.fromisoformat(letter["stored_at"])
    until = datetime.fromisoformat(letter["retention_until"])
    assert timedelta(days=29) < until - failed <= timedelta(days=30)
    dependant = next(r for r in by_employee["stores"] if "dependant" in r["what"])
    assert dependant["retention_until"] == "2027-01-05T00:00:00+00:00"
    assert main(["audit", "subject", "2042", "--root", str(project)]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Transfers of employee 2042")
    assert "2043" not in md and "20420" not in md  # nobody else, no near-miss ids


def test_without_the_key_there_is_no_reference(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MAP_HR_HMAC_KEY")
    assert main(["audit", "subject", "2042", "--root", str(project)]) == 2
    assert "MAP_HR_HMAC_KEY" in capsys.readouterr().out
