"""target-bamboohr against vendor behaviours: legacy 503 throttling, 409s, the XML default."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.bamboohr import CANDIDATE_FIELD, BambooHR
from sandbox.server import Sandbox
from target_bamboohr.target import TargetBambooHR

FIELDS = ("ats_candidate_id", "firstName", "lastName", "workEmail", "jobTitle", "payRate")
SCHEMA = {"type": "object", "properties": {f: {"type": ["string", "null"]} for f in FIELDS}}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=30, vendors=("bamboohr",)) as sandbox:
        yield sandbox


def app(sb: Sandbox) -> BambooHR:
    bamboo = sb.apps["bamboohr"]
    assert isinstance(bamboo, BambooHR)
    return bamboo


def run(sb: Sandbox, records: list[dict[str, Any]], **config: Any) -> None:
    msgs: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": "new_hires", "schema": SCHEMA, "key_properties": []}
    ]
    msgs += [{"type": "RECORD", "stream": "new_hires", "record": r} for r in records]
    text = "\n".join(json.dumps(m, ensure_ascii=False) for m in msgs) + "\n"
    cfg = {
        "api_url": f"{sb.bamboohr_url}/api/gateway.php/acme/v1",
        "api_key": sb.credentials["bamboohr"]["api_key"],
        "backoff_base_seconds": 0.01,
        **config,
    }
    TargetBambooHR(config=cfg).listen(io.StringIO(text))


def test_legacy_503_throttling_is_honoured_and_each_hire_written_once(sb: Sandbox) -> None:
    app(sb).legacy_503 = True  # BambooHR before 16 Sep 2026: 503 + Retry-After
    sb.faults.retry_after = 0
    sb.faults.paths = r"/employees$"  # throttle the creates themselves
    sb.faults.script[:] = ["429", "429", "ok", "429"]
    hires = [
        {"ats_candidate_id": "4300000001", "firstName": "Łucja", "lastName": "Wójcik"},
        {"ats_candidate_id": "4300000002", "firstName": "Kōji", "lastName": "Tanaka"},
    ]
    run(sb, hires)
    assert sb.faults.injected == {"429": 3}
    for hire in hires:
        (eid,) = app(sb).find(CANDIDATE_FIELD, hire["ats_candidate_id"])
        employee = app(sb).employee(eid)
        assert (employee["firstName"], employee["lastName"]) == (
            hire["firstName"],
            hire["lastName"],
        )
    assert len(app(sb).created) == 2


def test_duplicate_work_email_is_a_specific_error_and_earlier_hires_stay(
    sb: Sandbox, tmp_path: Path
) -> None:
    taken = sb.world.person(1).work_email
    assert taken
    audit = tmp_path / "audit.jsonl"
    records = [
        {"ats_candidate_id": "4300000011", "firstName": "Chloé", "lastName": "Dubois"},
        {"ats_candidate_id": "4300000012", "firstName": "Jean-Luc", "lastName": "Picard",
         "workEmail": taken},
    ]  # fmt: skip
    run(sb, records, audit_log_path=str(audit))
    (letter,) = DeadLetterStore().list()
    assert letter.record_key == "4300000012" and letter.error_class == "http_409"
    assert "field workEmail" in letter.error and "Duplicate value for workEmail" in letter.error
    assert len(app(sb).created) == 1
    outcomes = [(e["record_key"], e["outcome"]) for e in AuditLog.read(audit)]
    assert outcomes == [("4300000011", "created"), ("4300000012", "failed")]
    assert taken not in audit.read_text()


def test_seeded_employee_update_sends_only_the_difference_and_audits_names(
    sb: Sandbox, tmp_path: Path
) -> None:
    person = sb.world.person(4)  # 秀英 王, hired from the ATS
    record = {
        "ats_candidate_id": str(person.candidate_id),
        "firstName": person.first_name,
        "lastName": person.last_name,
        "jobTitle": "首席工程师",
    }
    audit = tmp_path / "audit.jsonl"
    run(sb, [record], audit_log_path=str(audit))
    assert app(sb).created == {}
    assert app(sb).writes == [("POST", 4, ["jobTitle"])]
    assert app(sb).employee(4)["jobTitle"] == "首席工程师"
    (event,) = AuditLog.read(audit)
    assert (event["outcome"], event["fields"]) == ("updated", ["jobTitle"])
    assert "首席" not in audit.read_text() and person.first_name not in audit.read_text()
    run(sb, [record], audit_log_path=str(audit))  # a re-run: nothing left to write
    assert len(app(sb).writes) == 1
    assert AuditLog.read(audit)[-1]["outcome"] == "unchanged"


def test_dry_run_plans_an_update_without_writing(sb: Sandbox, tmp_path: Path) -> None:
    person = sb.world.person(2)
    audit = tmp_path / "audit.jsonl"
    record = {"ats_candidate_id": str(person.candidate_id), "firstName": person.first_name,
              "lastName": person.last_name, "payRate": "1.00 EUR"}  # fmt: skip
    run(sb, [record], dry_run=True, audit_log_path=str(audit))
    assert app(sb).writes == []
    assert [e["outcome"] for e in AuditLog.read(audit)] == ["planned-updated"]


def test_a_pay_rate_written_back_in_another_format_is_not_rewritten(sb: Sandbox) -> None:
    person = sb.world.person(3)
    pos = person.positions[0]
    amount = int(pos.pay_rate) if pos.pay_rate == int(pos.pay_rate) else pos.pay_rate
    record = {"ats_candidate_id": str(person.candidate_id), "firstName": person.first_name,
              "lastName": person.last_name, "payRate": f"{amount} {pos.currency}"}  # fmt: skip
    assert app(sb).employee(3)["payRate"] != record["payRate"]  # "85000.00 USD" vs "85000 USD"
    run(sb, [record])
    assert app(sb).writes == []
