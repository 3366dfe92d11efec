# ruff: noqa: RUF001  (typographic apostrophes and dashes are test data)
"""target-bamboohr against the BambooHR sandbox over real HTTP: what reached the HRIS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetter, DeadLetterStore
from hrsync.errors import RecordError
from sandbox.bamboohr import BambooHR
from sandbox.server import Sandbox
from target_bamboohr.target import TargetBambooHR

SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": ["string", "null"]}
        for name in (
            "ats_candidate_id", "firstName", "lastName", "preferredName", "workEmail",
            "homeEmail", "department", "jobTitle", "location", "employmentHistoryStatus",
            "payRate", "payType", "payPer",
        )
    }
    | {"hireDate": {"type": ["string", "null"], "format": "date"}},
}  # fmt: skip

HARD = [
    ("4100000001", "Zoë", "O'Brien-Łukasiewicz"),
    ("4100000002", "秀英", "王"),
    ("4100000003", "محمد", "العلي"),
    ("4100000004", "Sukarno", "Sukarno"),
    ("4100000005", "Giuseppe", "D’Alessandro"),
    ("4100000006", "Mary Ann", "van der Berg"),
]


def hire(cid: str, first: str, last: str, **extra: Any) -> dict[str, Any]:
    return {
        "ats_candidate_id": cid,
        "firstName": first,
        "lastName": last,
        "hireDate": "2026-12-14",
        "department": "R&D – Europe",
        "jobTitle": "Ingénieur R&D",
        "location": "Zürich",
        "employmentHistoryStatus": "Full-Time",
        "payRate": "120000.00 CHF",
        "payType": "Salary",
        "payPer": "Year",
        **extra,
    }


def lines(records: list[dict[str, Any]], stream: str = "bamboohr_new_hires") -> str:
    msgs: list[dict[str, Any]] = [
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": SCHEMA,
            "key_properties": ["ats_candidate_id"],
        }
    ]
    msgs += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    msgs.append({"type": "STATE", "value": {"bookmarks": {"offers": {"n": len(records)}}}})
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in msgs) + "\n"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=30, vendors=("bamboohr",)) as sandbox:
        yield sandbox


def config(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    creds = sb.credentials["bamboohr"]
    return {
        "api_url": f"{sb.bamboohr_url}/api/v1",
        "api_key": creds["api_key"],
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run(cfg: dict[str, Any], records: list[dict[str, Any]]) -> None:
    TargetBambooHR(config=cfg).listen(io.StringIO(lines(records)))


def app(sb: Sandbox) -> BambooHR:
    return sb.apps["bamboohr"]  # type: ignore[return-value]


def by_candidate(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {r["customATSCandidateID"]: r for r in app(sb).created.values()}


def letters() -> dict[str, DeadLetter]:
    """Waiting dead letters (the store of $HRSYNC_DLQ_PATH, one per test), by record key."""
    return {letter.record_key: letter for letter in DeadLetterStore().list()}


def test_new_hires_arrive_byte_for_byte(sb: Sandbox, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    run(config(sb, audit_log_path=str(audit)), [hire(*h) for h in HARD])
    created = by_candidate(sb)
    assert len(created) == len(HARD)
    for cid, first, last in HARD:
        emp = created[cid]
        assert (emp["firstName"], emp["lastName"]) == (first, last)
        assert emp["hireDate"] == "2026-12-14"
        assert (emp["department"], emp["jobTitle"], emp["location"]) == (
            "R&D – Europe", "Ingénieur R&D", "Zürich",
        )  # fmt: skip
    events = AuditLog.read(audit)
    assert [e["outcome"] for e in events] == ["created"] * len(HARD)
    text = audit.read_text()
    assert "Zoë" not in text and "120000" not in text  # names of fields, never values
    assert "firstName" in events[0]["fields"] and "customATSCandidateID" in events[0]["fields"]


def test_rerun_creates_nothing_and_writes_nothing(sb: Sandbox, tmp_path: Path) -> None:
    records = [hire(*h) for h in HARD]
    run(config(sb), records)
    writes = len(app(sb).writes)
    audit = tmp_path / "a.jsonl"
    run(config(sb, audit_log_path=str(audit)), records)
    assert len(app(sb).created) == len(HARD)
    assert len(app(sb).writes) == writes
    assert {e["outcome"] for e in AuditLog.read(audit)} == {"unchanged"}


def test_existing_seeded_employee_is_matched_not_duplicated(sb: Sandbox) -> None:
    person = sb.world.person(1)  # hired from the ATS: carries its candidate id
    assert person.candidate_id is not None
    record = hire(str(person.candidate_id), person.first_name, person.last_name,
                  hireDate=person.hire_date.isoformat())  # fmt: skip
    run(config(sb), [record])
    assert app(sb).created == {}
    (write,) = app(sb).writes  # only what differs from the HRIS is sent
    assert write[1] == 1 and "firstName" not in write[2] and "hireDate" not in write[2]


def test_changed_offer_updates_only_what_changed(sb: Sandbox) -> None:
    run(config(sb), [hire(*HARD[0])])
    run(config(sb), [hire(*HARD[0], hireDate="2027-01-04", jobTitle="Staff Engineer")])
    emp = by_candidate(sb)[HARD[0][0]]
    assert (emp["hireDate"], emp["jobTitle"]) == ("2027-01-04", "Staff Engineer")
    assert app(sb).writes[-1][2] == ["hireDate", "jobTitle"]
    assert len(app(sb).created) == 1


def test_429_and_503_are_retried_and_each_hire_written_once(sb: Sandbox) -> None:
    sb.faults.retry_after = 0
    sb.faults.script[:] = ["ok", "ok", "429", "503", "ok", "drop", "500"]
    run(config(sb), [hire(*h) for h in HARD[:3]])
    assert sorted(by_candidate(sb)) == [h[0] for h in HARD[:3]]
    assert sb.faults.injected == {"429": 1, "503": 1, "drop": 1, "500": 1}


def test_a_record_past_the_retry_budget_is_a_dead_letter_and_the_run_goes_on(
    sb: Sandbox,
) -> None:
    sb.faults.retry_after = 0
    sb.faults.paths = "/employees$"
    sb.faults.script[:] = ["503", "503", "503"]  # the first create's three attempts
    run(config(sb, max_retries=3), [hire(*h) for h in HARD[:3]])
    assert sorted(by_candidate(sb)) == [h[0] for h in HARD[1:3]]
    (letter,) = letters().values()
    assert letter.record_key == HARD[0][0] and letter.plugin == "target-bamboohr"
    assert "POST /api/v1/employees failed after 3 attempts" in letter.error
    assert letter.error_class == "RetryBudgetExhausted"
    assert letter.record == hire(*HARD[0])  # as it arrived: replayable
    assert letter.key_properties == ["ats_candidate_id"]
    # delivered on a later run (the fault gone): the letter resolves itself, no duplicate
    run(config(sb), [hire(*HARD[0])])
    assert letters() == {}
    assert sorted(by_candidate(sb)) == [h[0] for h in HARD[:3]]


def test_bamboohr_down_for_several_records_stops_the_run(sb: Sandbox) -> None:
    sb.faults.retry_after = 0
    sb.faults.rate_5xx = 1.0
    sb.faults.paths = "/employees$"
    with pytest.raises(Exception, match=r"3 records in a row failed after every retry"):
        run(config(sb, max_retries=2), [hire(*h) for h in HARD])
    assert len(letters()) == 3


def test_missing_last_name_names_the_candidate_and_keeps_earlier_hires(sb: Sandbox) -> None:
    records = [hire(*HARD[0]), hire("4100000099", "Cher", ""), hire(*HARD[1])]
    run(config(sb), records)
    assert list(by_candidate(sb)) == [HARD[0][0], HARD[1][0]]
    error = letters()["4100000099"].error
    assert "record 4100000099: field lastName: BambooHR requires" in error


def test_bad_date_names_the_candidate(sb: Sandbox) -> None:
    run(config(sb), [hire(*HARD[0], hireDate="2026-13-45")])
    assert app(sb).writes == []
    letter = letters()["4100000001"]
    assert "record 4100000001: field hireDate: not a valid date" in letter.error
    assert letter.record["hireDate"] == "2026-13-45"  # kept as it came, to be fixed


def test_a_schema_violation_is_a_dead_letter_naming_the_field_not_the_value(sb: Sandbox) -> None:
    run(config(sb), [hire(*HARD[0], jobTitle=42), hire(*HARD[1])])
    assert list(by_candidate(sb)) == [HARD[1][0]]
    letter = letters()[HARD[0][0]]
    assert "field jobTitle: does not match the stream's schema (type:" in letter.error
    assert "42" not in letter.error and letter.error_class == "invalid_record"


def test_records_without_candidate_id_are_dead_letters_each(sb: Sandbox) -> None:
    run(config(sb), [hire("", "Cher", "Sarkisian"), hire("", "Prince", "Nelson")])
    found = list(letters().values())
    assert len(found) == 2 and all(x.record_key.startswith("<missing:") for x in found)
    assert all("the ATS candidate id is required" in x.error for x in found)
    assert {x.record["firstName"] for x in found} == {"Cher", "Prince"}


def test_vendor_rejection_carries_the_error_header(sb: Sandbox) -> None:
    # a plain-string field the SDK does not parse, which BambooHR checks as a date
    schema = {"type": "object", "properties": {**SCHEMA["properties"], "originalHireDate": {}}}
    text = lines([hire(*HARD[0], originalHireDate="14/12/2026")])
    text = text.replace(json.dumps(SCHEMA), json.dumps(schema), 1)
    TargetBambooHR(config=config(sb)).listen(io.StringIO(text))
    letter = letters()["4100000001"]
    assert "record 4100000001: field originalHireDate" in letter.error
    assert "Invalid date for originalHireDate" in letter.error
    assert letter.error_class.startswith("http_4")  # a refusal, not a transient fault
    assert letter.schema == schema


def test_legacy_gateway_base(sb: Sandbox) -> None:
    cfg = config(sb, api_url=f"{sb.bamboohr_url}/api/gateway.php/acme/v1")
    run(cfg, [hire(*HARD[1])])
    assert list(by_candidate(sb)) == [HARD[1][0]]


def test_dry_run_writes_nothing(sb: Sandbox, tmp_path: Path) -> None:
    audit = tmp_path / "a.jsonl"
    bad = hire("4100000099", "Cher", "")
    run(config(sb, dry_run=True, audit_log_path=str(audit)), [*(hire(*h) for h in HARD), bad])
    assert app(sb).writes == []
    assert letters() == {}  # not even a dead letter: the real run keeps it
    assert {e["outcome"] for e in AuditLog.read(audit)} == {"planned-created"}


def test_a_field_bamboohr_lacks_is_refused_before_any_write(sb: Sandbox) -> None:
    schema_field = {"type": "object", "properties": {**SCHEMA["properties"], "salaryBand": {}}}
    text = lines([hire(*HARD[0])]).replace(json.dumps(SCHEMA), json.dumps(schema_field), 1)
    with pytest.raises(RecordError, match="salaryBand: BambooHR has no such field"):
        TargetBambooHR(config=config(sb)).listen(io.StringIO(text))
    assert app(sb).writes == []


def test_plain_http_to_a_real_host_is_refused() -> None:
    target = TargetBambooHR(config={"api_url": "http://acme.bamboohr.com/api/v1", "api_key": "k"})
    with pytest.raises(ValueError, match="only allowed for loopback"):
        _ = target.client


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"jobTitle": "Ing\ud800"}, "jobTitle"), ({"extra": {"aka": ["\udfff"]}}, "extra.aka[0]")],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    sb: Sandbox, bad: dict[str, Any], field: str
) -> None:
    broken = hire("4100000098", "Una", "Paired", **bad)
    run(config(sb), [hire(*HARD[0]), broken, hire(*HARD[1])])  # before: UnicodeEncodeError
    assert list(by_candidate(sb)) == [HARD[0][0], HARD[1][0]]
    (letter,) = letters().values()
    assert (letter.plugin, letter.record_key) == ("target-bamboohr", "4100000098")
    assert f"record 4100000098: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken and letter.error_class == "unpaired_surrogate"
