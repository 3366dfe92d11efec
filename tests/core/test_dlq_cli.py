# ruff: noqa: RUF001  (typographic apostrophes are test data)
"""``hrsync dlq``: list and show never print a record unless asked; discard keeps the reason;
replay sends SCHEMA + RECORDs through the target command with the letter's integration, and
reports what the target delivered (tests/e2e/test_operations.py replays through Meltano)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync_ops.cli import main

PEOPLE = {
    "E1": {"employee_id": "E1", "given_name": "Zoë", "family_name": "O’Brien"},
    "E2": {"employee_id": "E2", "given_name": "秀英", "family_name": "王", "fail": True},
    "E3": {"employee_id": "E3", "given_name": "Sukarno", "family_name": None},
}
SCHEMA = {"type": "object", "properties": {"employee_id": {"type": "string"}}}

# A target as the real ones behave: it resolves what it delivers and dead-letters what fails.
FAKE_TARGET = """
import json, os, sys
from hrsync.deadletter import TargetDeadLetters
letters = TargetDeadLetters(sys.argv[1])
seen = []
for line in sys.stdin:
    msg = json.loads(line)
    seen.append(msg)
    if msg["type"] == "SCHEMA":
        letters.stream(msg["stream"], msg["schema"], msg["key_properties"])
    elif msg["record"].get("fail"):
        letters.dead(stream=msg["stream"], record_key=msg["record"]["employee_id"],
                     record=msg["record"], error="still refused", error_class="http_409")
    else:
        letters.delivered(msg["stream"], [msg["record"]["employee_id"]])
letters.flush()
with open(os.environ["FAKE_SEEN"], "a") as fh:
    fh.write(json.dumps({"messages": seen, "integration": os.environ.get("HRSYNC_INTEGRATION"),
                         "replay": os.environ.get("HRSYNC_REPLAY")}) + "\\n")
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeadLetterStore:
    path = tmp_path / "dl.sqlite"
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(path))
    dlq = DeadLetterStore(path)
    for key, record in PEOPLE.items():
        dlq.add(
            plugin="target-scim",
            stream="iam_users",
            record_key=key,
            record=record,
            error=f"[iam_users] employee {key}: create failed on userName: conflict",
            error_class="http_409_uniqueness",
            schema=SCHEMA,
            key_properties=["employee_id"],
            integration="hris-to-iam",
        )
    dlq.add(plugin="target-bamboohr", stream="new_hires", record_key="9", record={"x": 1},
            error="e", schema=SCHEMA, integration="ats-to-hris")  # fmt: skip
    return dlq


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["dlq", "--project-root", ".", *args])
    return code, capsys.readouterr().out


def test_list_shows_summaries_never_records(
    store: DeadLetterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "list")
    assert code == 0
    assert "E1" in out and "http_409_uniqueness" in out and "target-bamboohr" in out
    assert "Zoë" not in out and "O’Brien" not in out
    code, out = cli(capsys, "list", "--integration", "hris-to-iam", "--json")
    rows = json.loads(out)
    assert [r["record_key"] for r in rows] == ["E1", "E2", "E3"]
    assert all("record" not in r for r in rows)
    assert "Zoë" not in out


def test_show_prints_the_record_only_when_asked(
    store: DeadLetterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    first = store.list()[0].id
    code, out = cli(capsys, "show", str(first), "--json")
    assert code == 0 and json.loads(out)["record_key"] == "E1" and "Zoë" not in out
    code, out = cli(capsys, "show", str(first), "--record", "--json")
    doc = json.loads(out)
    assert doc["record"] == PEOPLE["E1"] and doc["key_properties"] == ["employee_id"]
    code, out = cli(capsys, "show", str(first), "--record")
    assert "Zoë" in out
    assert cli(capsys, "show", "999")[0] == 1


def test_discard_keeps_the_reason(
    store: DeadLetterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    e3 = next(x.id for x in store.list() if x.record_key == "E3")
    assert cli(capsys, "discard", str(e3), "--reason", "contractor, provisioned by hand")[0] == 0
    assert cli(capsys, "discard", str(e3), "--reason", "again")[0] == 1
    (letter,) = list(store.list(status="discarded"))
    assert (letter.record_key, letter.note) == ("E3", "contractor, provisioned by hand")
    _code, out = cli(capsys, "list", "--status", "discarded", "--json")
    assert [r["record_key"] for r in json.loads(out)] == ["E3"]


def replay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    script = tmp_path / "fake_target.py"
    script.write_text(FAKE_TARGET)
    seen = tmp_path / "seen.jsonl"
    command = f"{sys.executable} {script} {{plugin}}"
    code, out = cli(capsys, "replay", "--command", command, "--json", *extra)
    lines = seen.read_text().splitlines() if seen.exists() else []
    return code, json.loads(out), [json.loads(x) for x in lines]


def test_replay_sends_schema_and_records_and_reports_what_remains(
    store: DeadLetterStore,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SEEN", str(tmp_path / "seen.jsonl"))
    code, report, runs = replay(capsys, tmp_path, "--integration", "hris-to-iam")
    assert code == 1  # E2 still fails
    (entry,) = report["replayed"]
    assert entry["plugin"] == "target-scim" and entry["command"][-1] == "target-scim"
    assert len(entry["delivered"]) == 2 and len(entry["still_waiting"]) == 1
    (run,) = runs
    assert run["integration"] == "hris-to-iam" and run["replay"] == "1"
    kinds = [(m["type"], m.get("record", {}).get("employee_id")) for m in run["messages"]]
    assert kinds == [("SCHEMA", None), ("RECORD", "E1"), ("RECORD", "E2"), ("RECORD", "E3")]
    assert run["messages"][0]["key_properties"] == ["employee_id"]
    assert run["messages"][1]["record"] == PEOPLE["E1"]  # byte for byte
    waiting = {x.record_key: x for x in store.list(integration="hris-to-iam")}
    assert list(waiting) == ["E2"] and waiting["E2"].attempts == 2
    assert store.list(integration="ats-to-hris")  # the other integration was not touched

    # idempotent: replaying again sends only what still waits
    code, report, runs = replay(capsys, tmp_path, "--integration", "hris-to-iam")
    assert [m["record"]["employee_id"] for m in runs[-1]["messages"][1:]] == ["E2"]
    assert store.list(integration="hris-to-iam")[0].attempts == 3


def test_replay_dry_run_and_by_id(
    store: DeadLetterStore,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_SEEN", str(tmp_path / "seen.jsonl"))
    code, report, runs = replay(capsys, tmp_path, "--dry-run")
    assert code == 0 and runs == []
    assert sorted(e["plugin"] for e in report["replayed"]) == ["target-bamboohr", "target-scim"]
    e1 = next(x.id for x in store.list() if x.record_key == "E1")
    code, report, runs = replay(capsys, tmp_path, "--id", str(e1))
    assert code == 0 and report["still_waiting"] == 0
    assert [m["type"] for m in runs[0]["messages"]] == ["SCHEMA", "RECORD"]
    assert "E1" not in {x.record_key for x in store.list()}


def test_encrypted_letters_need_the_key_to_be_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sealed.sqlite"
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(path))
    monkeypatch.setenv("FAKE_SEEN", str(tmp_path / "seen.jsonl"))
    DeadLetterStore(path, key="k1").add(
        plugin="target-scim", stream="iam_users", record_key="E1", record=PEOPLE["E1"],
        error="x", schema=SCHEMA, key_properties=["employee_id"], integration="hris-to-iam",
    )  # fmt: skip
    code, report, runs = replay(capsys, tmp_path)
    assert code == 1 and runs == [] and report["replayed"][0]["unreadable"] == [1]
    monkeypatch.setenv("HRSYNC_DLQ_KEY", "k1")
    code, report, runs = replay(capsys, tmp_path)
    assert code == 0 and runs[0]["messages"][1]["record"] == PEOPLE["E1"]


def test_a_mappers_letters_are_fixed_at_source_not_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dl.sqlite"
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(path))
    monkeypatch.setenv("FAKE_SEEN", str(tmp_path / "seen.jsonl"))
    DeadLetterStore(path).add(
        plugin="map-hr:bamboohr_to_canonical", stream="worker", record_key="id=7",
        record={"id": "7"}, error="stream employees, record id=7: field work_email: bad",
        integration="hris-to-iam",
    )  # fmt: skip
    code, report, runs = replay(capsys, tmp_path)
    entry = report["replayed"][0]
    assert code == 1 and runs == [] and entry["sent"] == []
    assert entry["fix_at_source"] == [1] and entry["unreadable"] == []


def test_replay_with_a_missing_command_keeps_every_letter(
    store: DeadLetterStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "replay", "--command", "/nonexistent/target {plugin}", "--json")
    report = json.loads(out)
    assert code == 1 and report["still_waiting"] == 4
    assert {e["exit_code"] for e in report["replayed"]} == {127}
    assert len(store.list()) == 4
