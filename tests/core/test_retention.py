"""Retention: with a day of retention and the clock moved forward, every store loses exactly
what is past due, logs counts only, and the audit chain still verifies."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hrsync.audit import AuditLog, audit_files, verify
from hrsync.deadletter import DeadLetterStore
from hrsync.transfer import TransferLedger, TransferResult
from hrsync_ops.cli import main
from hrsync_ops.runs import RunLedger
from hrsync_ops.webhooks.store import EventStore
from map_hr.lookups import LookupStore
from target_benefits_834.store import Ledger
from target_moodle.state import Enrolment, StateStore, Worker

OLD = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="milliseconds")


def backdate(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        assert db.execute(sql, (OLD,)).rowcount > 0


def count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(sql).fetchone()[0])


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("HRSYNC_AUDIT_KEY", "retention-test-key-0123456789")
    monkeypatch.setenv("HRSYNC_DLQ_KEY", "retention-test-dlq-key-0123456789")
    paths = {
        "dead_letters": tmp_path / "deadletters.sqlite",
        "runs": tmp_path / "runs.sqlite",
        "webhooks": tmp_path / "webhooks.sqlite",
        "transfers": tmp_path / "transfers.sqlite",
        "lookups": tmp_path / "map-hr",
        "benefits_ledger": tmp_path / "ledger.sqlite",
        "moodle_state": tmp_path / "moodle-state.sqlite",
        "audit": tmp_path / "audit.jsonl",
    }
    # dead letters: 2 resolved (1 old), 2 waiting (1 old)
    dlq = DeadLetterStore(paths["dead_letters"])
    for key in ("1", "2", "3", "4"):
        dlq.add(plugin="target-x", stream="s", record_key=key, record={"ssn": "x"}, error="bad")
    dlq.resolve(plugin="target-x", stream="s", record_keys=["1", "2"])
    backdate(
        paths["dead_letters"],
        "UPDATE dead_letters SET last_failed_at=?1, resolved_at="
        "CASE WHEN resolved_at IS NULL THEN NULL ELSE ?1 END WHERE record_key IN ('1','3')",
    )
    # run ledger: 3 runs, 2 old
    ledger = RunLedger(paths["runs"])
    for _ in range(3):
        run = ledger.start("hris-to-iam", [])
        ledger.finish(run, outcome="success", exit_code=0, moved={}, dead_letters=0)
    backdate(paths["runs"], "UPDATE runs SET started_at=? WHERE id <= 2")
    # webhook inbox: 3 events, 2 old of which one still pending
    inbox = EventStore(paths["webhooks"])
    for n in range(3):
        inbox.add("greenhouse", f"e{n}", "offer", b"{}", ["ats-to-hris" if n else "lever-to-hris"])
    inbox.complete("ats-to-hris", 10**6)
    backdate(paths["webhooks"], "UPDATE events SET received_at=? WHERE event_key IN ('e0','e1')")
    # transfer ledger: 2 files and 4 items, one file and its 2 items old
    book = TransferLedger(paths["transfers"])
    for n in range(2):
        book.record(
            f"k{n}",
            TransferResult(
                "sent",
                f"f{n}.csv",
                f"/in/f{n}.csv",
                "sftp://h/in",
                "a" * 64,
                1,
                "b" * 64,
                1,
                2,
                1,
                datetime.now(UTC).isoformat(),
            ),
            "hris-to-payroll",
        )
    with book.items("sftp://h/in") as sent:
        sent.add([("E1", "c" * 64), ("E2", "d" * 64)], "f0.csv")
        sent.add([("E3", "e" * 64), ("E4", "f" * 64)], "f1.csv")
    backdate(paths["transfers"], "UPDATE transfers SET sent_at=? WHERE file_name='f0.csv'")
    backdate(paths["transfers"], "UPDATE transfer_items SET sent_at=? WHERE file_name='f0.csv'")
    # map-hr lookups: one file written to long ago, one now
    for name in ("old", "new"):
        lookups = LookupStore(paths["lookups"] / f"{name}.sqlite")
        lookups.put("candidates", "4000000001", {"first_name": "Zoë"})
        lookups.close()
    stale = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for file in (paths["lookups"]).glob("old.sqlite*"):
        os.utime(file, (stale, stale))
    # 834 ledger: an active subscriber, two terminated ones (one long ago)
    Ledger(paths["benefits_ledger"]).close()
    with sqlite3.connect(paths["benefits_ledger"]) as db:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        db.executemany(
            "INSERT INTO members VALUES (?,?,?,?,?,?)",
            [
                ("E:1", "1", b"{}", "x", "active", OLD),
                ("E:2", "2", b"{}", "x", "terminated", OLD),
                ("E:3", "3", b"{}", "x", "terminated", now),
            ],
        )
    # Moodle state: an active worker, two leavers (one inactive since long ago), a rehire
    state = StateStore(paths["moodle_state"])
    for wid, active in (("1", True), ("2", False), ("3", False), ("4", False)):
        state.save_worker(Worker(wid, int(wid), None, active, {"role": "x"}, True))
        state.save_enrolment(wid, Enrolment(7, "active", 0, 0, "r", None))
    state.save_worker(Worker("4", 4, None, True, {"role": "x"}, True))  # 4 is back: active
    state.save_worker(Worker("3", 3, None, False, {"role": "y"}, True))  # still gone, kept time
    state.db.execute("UPDATE workers SET inactive_since=? WHERE worker_id IN ('2','4')", (OLD,))
    state.db.execute("UPDATE workers SET active=1, inactive_since=NULL WHERE worker_id='4'")
    state.close()
    (paths["audit"]).write_text("")
    return paths


def write_policy(tmp_path: Path, stores: dict[str, Path], keep: str = "1d") -> Path:
    policy = {
        "retention": {
            **dict.fromkeys(stores, keep),
            "paths": {name: str(path) for name, path in stores.items()},
        }
    }
    ops = tmp_path / "hrsync.yml"
    ops.write_text(json.dumps(policy))
    return ops


def test_every_store_loses_exactly_what_is_past_due(
    tmp_path: Path, stores: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ops = write_policy(tmp_path, stores)
    later = (datetime.now(UTC) + timedelta(hours=12)).isoformat()
    assert main(["retention", "apply", "--ops-file", str(ops), "--now", later, "--json"]) == 0
    report = {r["store"]: r for r in json.loads(capsys.readouterr().out)}
    assert report["dead_letters"]["removed"] == {"letters": 1}
    assert report["dead_letters"]["sealed"] == {"letters": 1}
    dlq = stores["dead_letters"]
    assert count(dlq, "SELECT COUNT(*) FROM dead_letters") == 3
    assert (
        count(
            dlq,
            "SELECT COUNT(*) FROM dead_letters WHERE status='expired' "
            "AND record_key='3' AND payload=X'6e756c6c'",
        )
        == 1
    )
    assert report["runs"]["removed"] == {"runs": 2}
    assert count(stores["runs"], "SELECT COUNT(*) FROM runs") == 1
    # e0 is old but its trigger is pending: kept; e1 old and done: gone; e2 new
    assert report["webhooks"]["removed"] == {"triggers": 1, "events": 1}
    with sqlite3.connect(stores["webhooks"]) as db:
        assert [r[0] for r in db.execute("SELECT event_key FROM events ORDER BY id")] == [
            "e0",
            "e2",
        ]
    assert report["transfers"]["removed"] == {"files": 1, "items": 2}
    with sqlite3.connect(stores["transfers"]) as db:
        assert [r[0] for r in db.execute("SELECT item_key FROM transfer_items ORDER BY 1")] == [
            "E3",
            "E4",
        ]
    assert report["lookups"]["removed"] == {"rows": 1}
    assert count(stores["lookups"] / "new.sqlite", "SELECT COUNT(*) FROM refs") == 1
    assert count(stores["lookups"] / "old.sqlite", "SELECT COUNT(*) FROM refs") == 0
    assert report["benefits_ledger"]["removed"] == {"members": 1}
    with sqlite3.connect(stores["benefits_ledger"]) as db:
        assert [r[0] for r in db.execute("SELECT member FROM members ORDER BY 1")] == ["E:1", "E:3"]
    # the leaver inactive for two days goes with the enrolments made for them; the new leaver
    # and the active workers stay
    assert report["moodle_state"]["removed"] == {"enrolments": 1, "workers": 1}
    with sqlite3.connect(stores["moodle_state"]) as db:
        assert [r[0] for r in db.execute("SELECT worker_id FROM workers ORDER BY 1")] == [
            "1",
            "3",
            "4",
        ]
        assert db.execute("SELECT COUNT(*) FROM enrolments WHERE worker_id='2'").fetchone() == (0,)
    # what was removed is logged as counts, in the chain, and the chain verifies
    (note,) = [
        json.loads(x)
        for x in stores["audit"].read_text().splitlines()
        if '"retention-applied"' in x
    ]
    assert note["stores"]["runs"] == {"removed_runs": 2}
    assert "Zoë" not in stores["audit"].read_text()
    assert verify(stores["audit"]).ok
    # applied again: nothing more is past due
    assert main(["retention", "apply", "--ops-file", str(ops), "--now", later, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert all(not any(r["removed"].values()) and not any(r["sealed"].values()) for r in again)


def test_old_audit_files_go_and_the_chain_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_AUDIT_KEY", "retention-test-key-0123456789")
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, integration="t")
    for n in range(3):
        for i in range(5):
            log.record(
                stream="s", record_key=f"{n}-{i}", fields=["a"], destination="d", outcome="updated"
            )
        log.rotate()
    log.record(stream="s", record_key="last", fields=["a"], destination="d", outcome="updated")
    assert len(audit_files(path)) == 4
    ops = write_policy(tmp_path, {"audit": path})
    assert (
        main(
            [
                "retention",
                "apply",
                "--ops-file",
                str(ops),
                "--now",
                (datetime.now(UTC) + timedelta(hours=12)).isoformat(),
            ]
        )
        == 0
    )
    assert len(audit_files(path)) == 4  # not yet due
    assert (
        main(
            [
                "retention",
                "apply",
                "--ops-file",
                str(ops),
                "--now",
                (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            ]
        )
        == 0
    )
    assert audit_files(path) == [path]  # every rotated file was past due; the current stays
    result = verify(path)
    assert result.ok, [str(p) for p in result.problems]
    events = AuditLog.read(path)
    assert [e["record_key"] for e in events] == ["last"]
