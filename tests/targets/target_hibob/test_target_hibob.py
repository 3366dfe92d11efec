# ruff: noqa: RUF001  (typographic apostrophes and dashes are test data)
"""target-hibob against the HiBob sandbox over real HTTP: what reached the HRIS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetter, DeadLetterStore
from sandbox.hibob import CANDIDATE_FIELD, HiBob
from sandbox.server import Sandbox
from target_hibob.target import TargetHiBob

PROPERTIES = ("ats_candidate_id", "root.firstName", "root.surname", "root.email",
              "home.privateEmail", "work.department", "work.title", "work.site")  # fmt: skip
SCHEMA = {
    "type": "object",
    "properties": {name: {"type": ["string", "null"]} for name in PROPERTIES}
    | {"work.startDate": {"type": ["string", "null"], "format": "date"}},
}
HARD = [
    ("4100000001", "Zoë", "O'Brien-Łukasiewicz"),
    ("4100000002", "秀英", "王"),
    ("4100000003", "Giuseppe", "D’Alessandro"),
]


def hire(cid: str, first: str, last: str, **extra: Any) -> dict[str, Any]:
    return {
        "ats_candidate_id": cid,
        "root.firstName": first,
        "root.surname": last,
        "root.email": f"new.hire.{cid}@acme.example",
        "work.startDate": "2026-12-14",
        "work.department": "R&D – Europe",
        "work.title": "Ingénieur R&D",
        "work.site": "Zürich",
        **extra,
    }


def lines(records: list[dict[str, Any]], stream: str = "hibob_new_hires") -> str:
    msgs: list[dict[str, Any]] = [
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": SCHEMA,
            "key_properties": ["ats_candidate_id"],
        }
    ]
    msgs += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in msgs) + "\n"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=30, vendors=("hibob",)) as sandbox:
        yield sandbox


def config(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    info = sb.info()["hibob"]
    return {
        "api_url": info["api_url"],
        "service_user_id": info["service_user_id"],
        "token": info["token"],
        "candidate_id_field": info["candidate_id_field"],
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run(cfg: dict[str, Any], records: list[dict[str, Any]]) -> None:
    TargetHiBob(config=cfg).listen(io.StringIO(lines(records)))


def app(sb: Sandbox) -> HiBob:
    hibob = sb.apps["hibob"]
    assert isinstance(hibob, HiBob)
    return hibob


def by_candidate(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """The created employees as HiBob now shows them, by candidate id."""
    hibob = app(sb)
    field = CANDIDATE_FIELD.rsplit(".", 1)[1]
    return {
        str(doc["work"]["custom"][field]): doc for doc in (hibob.employee(e) for e in hibob.created)
    }


def letters() -> dict[str, DeadLetter]:
    return {letter.record_key: letter for letter in DeadLetterStore().list()}


def test_new_hires_arrive_with_their_candidate_id(sb: Sandbox, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    run(config(sb, audit_log_path=str(audit)), [hire(*h) for h in HARD])
    created = by_candidate(sb)
    assert set(created) == {h[0] for h in HARD}
    for cid, first, last in HARD:
        emp = created[cid]
        assert (emp["firstName"], emp["surname"]) == (first, last)
        assert emp["work"]["startDate"] == "2026-12-14"
        assert (emp["work"]["department"], emp["work"]["title"], emp["work"]["site"]) == (
            "R&D – Europe", "Ingénieur R&D", "Zürich")  # fmt: skip
    events = AuditLog.read(audit)
    assert [e["outcome"] for e in events] == ["created"] * len(HARD)
    assert "Zoë" not in audit.read_text()  # names of fields, never values
    assert CANDIDATE_FIELD in events[0]["fields"]


def test_rerun_writes_nothing_and_a_change_writes_only_it(sb: Sandbox, tmp_path: Path) -> None:
    records = [hire(*h) for h in HARD]
    run(config(sb), records)
    writes = len(app(sb).writes)
    audit = tmp_path / "a.jsonl"
    run(config(sb, audit_log_path=str(audit)), records)
    assert len(app(sb).writes) == writes
    assert {e["outcome"] for e in AuditLog.read(audit)} == {"unchanged"}
    changed = hire(*HARD[0], **{"work.startDate": "2027-01-04", "work.title": "Staff Engineer"})
    run(config(sb), [changed, *records[1:]])
    emp = by_candidate(sb)[HARD[0][0]]
    assert (emp["work"]["startDate"], emp["work"]["title"]) == ("2027-01-04", "Staff Engineer")
    assert [w[0] for w in app(sb).writes[writes:]] == ["PUT", "POST work"]
    after = len(app(sb).writes)
    run(config(sb), [changed, *records[1:]])  # what was written is what HiBob now shows
    assert len(app(sb).writes) == after and len(app(sb).created) == len(HARD)


def test_existing_seeded_employee_is_matched_not_duplicated(sb: Sandbox) -> None:
    person = sb.world.person(1)  # hired from the ATS: carries its candidate id in HiBob
    assert person.candidate_id is not None and person.work_email
    pos = person.positions[0]
    record = hire(str(person.candidate_id), person.first_name, person.last_name, **{
        "root.email": person.work_email, "work.startDate": person.hire_date.isoformat(),
        "work.department": pos.department, "work.title": pos.job_title,
        "work.site": pos.location})  # fmt: skip
    run(config(sb), [record])
    assert app(sb).created == {} and app(sb).writes == []


def test_a_hire_without_a_work_email_waits_as_a_dead_letter(sb: Sandbox) -> None:
    record = hire(*HARD[0])
    del record["root.email"]
    run(config(sb), [record, hire(*HARD[1])])
    assert set(by_candidate(sb)) == {HARD[1][0]}  # the others still arrive
    letter = letters()[HARD[0][0]]
    assert letter.error_class == "missing_required_field"
    assert "root.email" in letter.error and "requires" in letter.error
    run(config(sb), [hire(*HARD[0])])  # once IT adds the address, the hire is created
    assert HARD[0][0] in by_candidate(sb) and HARD[0][0] not in letters()


def test_a_refused_record_is_a_dead_letter_naming_the_field(sb: Sandbox) -> None:
    taken = sb.world.person(2).work_email
    run(config(sb), [hire(*HARD[0], **{"root.email": taken})])
    letter = letters()[HARD[0][0]]
    assert letter.error_class == "http_400" and "root.email" in letter.error
    assert app(sb).created == {}


def test_429_and_503_are_retried_and_each_hire_written_once(sb: Sandbox) -> None:
    sb.faults.retry_after = 0
    sb.faults.paths = r"^/v1/people$"
    sb.faults.script[:] = ["429", "503", "ok", "429"]
    run(config(sb), [hire(*h) for h in HARD])
    assert set(by_candidate(sb)) == {h[0] for h in HARD}
    assert len(app(sb).created) == len(HARD)
    assert sb.faults.injected == {"429": 2, "503": 1}


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"work.title": "Ing\ud800"}, "work.title"), ({"extra": {"aka": ["\udfff"]}}, "extra.aka[0]")],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    sb: Sandbox, bad: dict[str, Any], field: str
) -> None:
    broken = hire("4100000098", "Una", "Paired", **bad)
    run(config(sb), [hire(*HARD[0]), broken, hire(*HARD[1])])  # before: UnicodeEncodeError
    assert set(by_candidate(sb)) == {HARD[0][0], HARD[1][0]}
    (letter,) = letters().values()
    assert (letter.plugin, letter.record_key) == ("target-hibob", "4100000098")
    assert f"record 4100000098: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken and letter.error_class == "unpaired_surrogate"
