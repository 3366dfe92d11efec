"""A profile's population applies to every stream it emits: nobody outside it leaves.

Every shipped profile is listed here with who it is about; a profile that filters people on one
stream and emits others about them must declare a ``population`` (the profile loader refuses a
stream that does not name its person), and each is run on people inside and outside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from map_hr.profile import ProfileError, load_profile, parse_profile

Run = Callable[..., list[dict[str, Any]]]

#: profile -> (the input stream of people it filters, or None: everyone the source sends)
POPULATIONS: dict[str, str | None] = {
    "ats_to_hris": "offers",  # accepted offers (one emitted stream)
    "ats_to_hibob": "offers",  # accepted offers, as ats_to_hris (one emitted stream)
    "lever_to_hris": "offers",  # signed offers (one emitted stream)
    "bamboohr_to_canonical": None,
    "greenhouse_to_canonical": None,
    "hibob_to_canonical": None,
    "hris_to_analytics": None,
    "hris_to_benefits": None,  # every subscriber; elections are filtered by plan, not person
    "hris_to_iam": "worker",  # people with a work e-mail (one emitted stream)
    "hris_to_lms": None,
    "hris_to_payroll": "worker",  # US payroll: declared population, five streams
    "survey_to_analytics": None,
}


#: streams filtered on what the record is (its plan's type, a survey answer), not on whose it is
RECORD_FILTERS = {("survey_to_analytics", "answers"), ("hris_to_benefits", "benefit_election")}


def test_every_shipped_profile_has_a_known_population() -> None:
    import map_hr

    shipped = {p.stem for p in (Path(map_hr.__file__).parent / "profiles").glob("*.yml")}
    assert shipped == set(POPULATIONS)


@pytest.mark.parametrize("name", sorted(POPULATIONS))
def test_population_covers_every_emitted_stream(name: str) -> None:
    profile = load_profile(name)
    people = POPULATIONS[name]
    specs = profile.stream_specs()
    population = profile.data.get("population")
    if population is not None:
        assert population["stream"] == people
        # the loader enforces it; asserted here so a profile cannot drop the rule silently
        assert all("person" in spec for stream, _, spec in specs if stream != people)
        return
    filtered = [s for s, _, spec in specs if spec.get("filter") and s == people]
    if people is not None:
        # people are filtered on one stream: that is all the profile emits about them
        assert filtered and len(specs) == 1, f"{name}: declare a population"
    else:  # nobody filtered out: no stream filters on anything but what the record itself is
        for stream, _, spec in specs:
            conds = spec.get("filter") or []
            conds = conds if isinstance(conds, list) else [conds]
            assert all(
                str(c["field"]).startswith("$") or (name, stream) in RECORD_FILTERS for c in conds
            ), f"{name}.{stream} filters records: is that a population?"


def test_a_stream_without_its_person_is_refused() -> None:
    text = """\
name: p
destination: payroll
source_system: bamboohr
population: {stream: employees, key: id, filter: {field: country, equals: US}}
streams:
  employees:
    fields: {employee_id: {from: id, required: true}}
  job_info:
    fields: {employee_id: {from: employeeId, required: true}}
"""
    with pytest.raises(ProfileError, match=r"streams\.job_info: .*must name its person"):
        parse_profile(text, "p.yml")


EMPLOYEE = ("id", "firstName", "lastName", "customWorkState", "status", "ssn")
ROWS = {
    "job_info": ("id", "employeeId", "date", "jobTitle", "location"),
    "compensation": ("id", "employeeId", "startDate", "rate", "type", "paidPer"),
    "employment_status": ("id", "employeeId", "date", "employmentStatus"),
    "payroll_deductions": ("id", "employeeId", "date", "deductionType", "amount", "amountType"),
}


def _rows(emp: int, row: int) -> dict[str, dict[str, Any]]:
    return {
        "job_info": {"id": row, "employeeId": emp, "date": "2024-01-01", "jobTitle": "Engineer"},
        "compensation": {
            "id": row,
            "employeeId": emp,
            "startDate": "2024-01-01",
            "rate": {"value": "90000", "currency": "USD"},
            "type": "Salary",
            "paidPer": "Year",
        },
        "employment_status": {
            "id": row,
            "employeeId": emp,
            "date": "2024-01-01",
            "employmentStatus": "Full-Time",
        },
        "payroll_deductions": {
            "id": row,
            "employeeId": emp,
            "date": "2024-01-01",
            "deductionType": "401(k)",
            "amount": "5",
            "amountType": "Percent",
        },
    }


def _employee(emp: int, state: str | None) -> dict[str, Any]:
    rec = {"id": emp, "firstName": f"P{emp}", "lastName": "Test", "status": "Active"}
    if state:
        rec["customWorkState"] = state
    return rec


def test_hris_to_payroll_sends_nothing_about_people_outside_us_payroll(
    run_inprocess: Run, h: Any
) -> None:
    """1 is in US payroll; 2 works in the UK (paid in USD: the currency filter alone would let
    the line through); 3 is never sent as an employee; rows of 1 and 2 come before and after
    their employee records. BambooHR's streams reach the profile as canonical ones."""
    payroll = {"profile": "hris_to_payroll"}

    def run_payroll(cfg: dict[str, Any], msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return run_inprocess(cfg, run_inprocess({"profile": "bamboohr_to_canonical"}, msgs))

    cfg = payroll
    msgs: list[dict[str, Any]] = [h.schema_msg(s, props) for s, props in ROWS.items()]
    early, late, unknown = _rows(1, 11), _rows(2, 21), _rows(3, 31)
    msgs += [h.record(s, r) for s, r in early.items()]  # before anyone's employee record
    msgs.append(h.schema_msg("employees", EMPLOYEE))
    msgs += [h.record("employees", _employee(1, "CA")), h.record("employees", _employee(2, None))]
    msgs += [h.record(s, r) for s, r in [*late.items(), *unknown.items()]]
    out = run_payroll(cfg, msgs)
    records = [m for m in out if m["type"] == "RECORD"]
    people = {(m["stream"], m["record"]["employee_id"]) for m in records}
    assert people == {
        ("payroll_employees", "1"),
        ("payroll_jobs", "1"),
        ("payroll_compensations", "1"),
        ("payroll_employment_status", "1"),
        ("payroll_deductions", "1"),
    }
    # a later incremental run carries only new rows: membership was remembered
    more = [h.schema_msg(s, props) for s, props in ROWS.items()]
    more += [h.record(s, r) for s, r in [*_rows(1, 12).items(), *_rows(2, 22).items()]]
    out = run_payroll(cfg, more)
    assert {m["record"]["employee_id"] for m in out if m["type"] == "RECORD"} == {"1"}
    # a move out of the US payroll (work state removed) stops the rows from then on
    moved = [h.schema_msg("employees", EMPLOYEE), h.record("employees", _employee(1, None))]
    moved += [h.schema_msg("job_info", ROWS["job_info"])]
    moved += [h.record("job_info", _rows(1, 13)["job_info"])]
    out = run_payroll(cfg, moved)
    assert not [m for m in out if m["type"] == "RECORD"]


def test_hris_to_iam_sends_nobody_without_a_work_email(run_inprocess: Run, h: Any) -> None:
    props = ("id", "first_name", "last_name", "work_email", "employment_status")
    msgs = [
        h.schema_msg("worker", props),
        h.record(
            "worker",
            {"id": "1", "first_name": "A", "last_name": "B", "work_email": "a.b@acme.example"},
        ),
        h.record("worker", {"id": "2", "first_name": "C", "last_name": "D", "work_email": None}),
    ]
    out = run_inprocess({"profile": "hris_to_iam"}, msgs)
    assert [m["record"]["employee_id"] for m in out if m["type"] == "RECORD"] == ["1"]
