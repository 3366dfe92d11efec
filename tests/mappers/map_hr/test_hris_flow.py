"""bamboohr_to_canonical then hris_to_lms on seeded people: rehires, two positions, gaps."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from sandbox.bamboohr import table_rows
from sandbox.seed import Person, World

Run = Callable[..., list[dict[str, Any]]]


def bamboo(p: Person) -> dict[str, Any]:
    """A BambooHR-shaped employee (US dates as BambooHR's reports can return them)."""
    pos = p.positions[0]
    return {
        "id": str(p.employee_id),
        "employeeNumber": p.employee_number,
        "firstName": p.first_name,
        "middleName": p.middle_name,
        "lastName": p.last_name,
        "preferredName": p.preferred_name,
        "workEmail": p.work_email,
        "homeEmail": p.personal_email,
        "mobilePhone": p.mobile,
        "workPhone": p.phone,
        "ssn": p.ssn,
        "dateOfBirth": p.date_of_birth.isoformat() if p.date_of_birth else None,
        "gender": p.gender,
        "status": p.status,
        "employmentHistoryStatus": p.employment_type,
        "hireDate": f"{p.hire_date.month}/{p.hire_date.day}/{p.hire_date.year}",
        "originalHireDate": p.original_hire_date.isoformat(),
        "terminationDate": p.termination_date.isoformat() if p.termination_date else None,
        "jobTitle": pos.job_title,
        "department": pos.department,
        "division": pos.division,
        "location": pos.location,
        "country": p.address.country if p.address else None,
        "supervisorEId": pos.reports_to,
        "payRate": f"{pos.pay_rate} {pos.currency}",
        "lastChanged": p.updated_at.isoformat(),
    }


def test_hris_to_canonical_to_lms(world: World, run_inprocess: Run, h: Any) -> None:
    people = list(world.people())
    msgs = [h.schema_msg("employees", ("id",)), *(h.record("employees", bamboo(p)) for p in people)]
    canonical = run_inprocess({"profile": "bamboohr_to_canonical"}, msgs)
    workers = {
        m["record"]["id"]: m["record"]
        for m in canonical
        if m["type"] == "RECORD" and m["stream"] == "worker"
    }
    assert len(workers) == len(people)
    rehired = [p for p in people if len(p.employments) > 1]
    two_positions = [p for p in people if len(p.positions) > 1]
    assert rehired and two_positions
    for p in rehired:
        w = workers[str(p.employee_id)]
        assert w["hire_date"] == p.hire_date.isoformat()  # the latest hire
        assert w["original_hire_date"] == p.original_hire_date.isoformat()
    for p in people:
        w = workers[str(p.employee_id)]
        assert w["employment_status"] == p.status.lower()
        assert w["first_name"] == unicodedata.normalize("NFC", p.first_name)
        if p.date_of_birth is None:
            assert "date_of_birth" not in w  # missing stays missing
        if p.phone is not None and "work_phone" in w:
            assert w["work_phone"].startswith("+")

    lms = run_inprocess({"profile": "hris_to_lms"}, canonical)
    schema = next(m for m in lms if m["type"] == "SCHEMA")
    allowed = set(schema["schema"]["properties"])
    # leavers reach the LMS too (to be suspended): status and termination date, no username or
    # display name (the LMS builds those); manager_id only for the target's manager flag
    assert allowed == {
        "worker_id", "first_name", "last_name", "email", "department", "role", "location",
        "country", "state", "is_manager", "manager_id", "hire_date", "employment_status",
        "termination_date", "positions",
    }  # fmt: skip
    users = [m["record"] for m in lms if m["type"] == "RECORD"]
    assert len(users) == len(people)  # no status filter: every worker, leavers included
    for u in users:
        assert set(u) <= allowed
        assert u["is_manager"] in (True, False)
    by_id = {u["worker_id"]: u for u in users}
    for p in people:
        u = by_id[str(p.employee_id)]
        assert u["employment_status"] == p.status.lower()
        if p.termination_date is not None:
            assert u["termination_date"] == p.termination_date.isoformat()
        else:
            assert u.get("termination_date") is None
    leavers = [p for p in people if p.status != "Active"]
    assert leavers and all(
        by_id[str(p.employee_id)]["employment_status"] != "active" for p in leavers
    )
    madonna = next(p for p in people if p.first_name == "Madonna" and p.status == "Active")
    mononym = by_id[str(madonna.employee_id)]
    assert mononym["first_name"] == mononym["last_name"] == "Madonna"


def test_second_positions_reach_iam_and_lms(world: World, run_inprocess: Run, h: Any) -> None:
    """jobInfo rows come after the employees (as tap-bamboohr sends them): every current
    position reaches the canonical worker, and the other ones the IAM and LMS records."""
    people = list(world.people())
    msgs = [h.schema_msg("employees", ("id",)), *(h.record("employees", bamboo(p)) for p in people)]
    msgs.append(
        h.schema_msg("job_info", ("employeeId", "id", "date", "jobTitle"), ("employeeId", "id"))
    )
    msgs += [h.record("job_info", row) for p in people for row in table_rows(p, "jobInfo")]
    msgs.append({"type": "STATE", "value": {"bookmarks": {"job_info": {"n": 1}}}})
    canonical = run_inprocess({"profile": "bamboohr_to_canonical"}, msgs)
    assert canonical[-1]["type"] == "STATE"  # held until the workers waiting for it are out
    workers = {
        m["record"]["id"]: m["record"]
        for m in canonical
        if m["type"] == "RECORD" and m["stream"] == "worker"
    }
    assert len(workers) == len(people)
    two = [p for p in people if len(p.positions) > 1 and p.hire_date <= world.as_of]
    rehired = [p for p in people if len(p.employments) > 1]
    assert two and rehired
    for p in people:
        held = workers[str(p.employee_id)]["positions"]
        if p.hire_date > world.as_of:
            continue
        assert [(x["job_title"], x["department"]) for x in held] == [
            (pos.job_title, pos.department) for pos in p.positions
        ], p.employee_id  # the current employment's only, the primary first
        assert [x["is_primary"] for x in held] == [True] + [False] * (len(p.positions) - 1)

    iam = run_inprocess({"profile": "hris_to_iam"}, canonical)
    lms = run_inprocess({"profile": "hris_to_lms"}, canonical)
    iam_users = {m["record"]["employee_id"]: m["record"] for m in iam if m["type"] == "RECORD"}
    lms_users = {m["record"]["worker_id"]: m["record"] for m in lms if m["type"] == "RECORD"}
    for p in two:
        second = p.positions[1]
        key = str(p.employee_id)
        assert lms_users[key]["positions"] == [
            {"role": second.job_title, "department": second.department, "location": second.location}
        ]
        if key in iam_users:  # people without a work e-mail get no account
            assert iam_users[key]["positions"] == [
                {"title": second.job_title, "department": second.department}
            ]
            assert iam_users[key]["title"] == p.positions[0].job_title
    single = next(p for p in people if len(p.positions) == 1 and str(p.employee_id) in iam_users)
    assert iam_users[str(single.employee_id)]["positions"] == []


def test_an_incremental_run_without_job_rows_keeps_the_positions(
    world: World, run_inprocess: Run, h: Any
) -> None:
    """jobInfo rows are kept in the lookup store: a later run in which only the employee
    changed (no jobInfo rows re-sent) still knows both positions; a re-sent row replaces its
    earlier version instead of adding a third position."""
    two = next(p for p in world.people() if len(p.positions) > 1 and p.hire_date <= world.as_of)
    rows = table_rows(two, "jobInfo")
    job_schema = h.schema_msg("job_info", ("employeeId", "id", "date"), ("employeeId", "id"))
    first = [
        h.schema_msg("employees", ("id",)),
        h.record("employees", bamboo(two)),
        job_schema,
        *(h.record("job_info", r) for r in rows),
    ]
    out = run_inprocess({"profile": "bamboohr_to_canonical"}, first)
    [worker] = [m["record"] for m in out if m["type"] == "RECORD" and m["stream"] == "worker"]
    assert len(worker["positions"]) == 2
    renamed = dict(rows[-1], jobTitle="Principal " + str(rows[-1]["jobTitle"]))
    later = [h.schema_msg("employees", ("id",)), h.record("employees", bamboo(two)), job_schema,
             h.record("job_info", renamed)]  # fmt: skip
    out = run_inprocess({"profile": "bamboohr_to_canonical"}, later)
    [worker] = [m["record"] for m in out if m["type"] == "RECORD" and m["stream"] == "worker"]
    assert [p["job_title"] for p in worker["positions"]] == [
        two.positions[0].job_title,
        renamed["jobTitle"],
    ]
    out = run_inprocess({"profile": "bamboohr_to_canonical"}, later[:2])  # employee only
    [worker] = [m["record"] for m in out if m["type"] == "RECORD" and m["stream"] == "worker"]
    assert len(worker["positions"]) == 2
