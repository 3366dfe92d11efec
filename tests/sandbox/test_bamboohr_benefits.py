"""The BambooHR fake's benefits endpoints, over real HTTP (sandbox/docs/bamboohr.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=40, vendors=("bamboohr",)) as sandbox:
        yield sandbox


def get(sb: Sandbox, path: str, **kwargs: Any) -> requests.Response:
    creds = sb.credentials["bamboohr"]
    return requests.get(
        f"{sb.info()['bamboohr']['api_url']}{path}",
        auth=(creds["api_key"], "x"),
        timeout=10,
        **kwargs,
    )


def test_dependants_come_masked_in_the_documented_envelope(sb: Sandbox) -> None:
    body = get(sb, "/employeedependents", params={"employeeid": "2"}, headers=JSON).json()
    deps = body["Employee Dependents"]
    assert {d["relationship"] for d in deps} == {"spouse", "child"}
    spouse = next(d for d in deps if d["relationship"] == "spouse")
    assert spouse["maskedSSN"].startswith("xxx-xx-") and len(spouse["maskedSSN"]) == 11
    assert spouse["firstName"] == "Pádraig" and spouse["employeeId"] == "2"
    one = get(sb, f"/employeedependents/{spouse['id']}", headers=JSON).json()
    assert one["Employee Dependents"] == [spouse]
    missing = get(sb, "/employeedependents/123", headers=JSON)
    assert missing.status_code == 400 and "not found" in missing.headers["X-BambooHR-Error-Message"]
    xml = get(sb, "/employeedependents", params={"employeeid": "2"})
    assert xml.text.count("<EmployeeDependent ") == len(deps)


def test_elections_need_a_filter_and_follow_the_family(sb: Sandbox) -> None:
    assert get(sb, "/benefit/employee_benefit", headers=JSON).status_code == 400
    body = get(
        sb, "/benefit/employee_benefit", headers=JSON, json={"filters": {"companyBenefitId": "11"}}
    ).json()
    rows = [(g["employeeId"], r) for g in body["employeeBenefits"] for r in g["employeeBenefit"]]
    assert rows and all(r["companyBenefitId"] == "11" for _, r in rows)
    coverage = dict(rows)["2"]["benefitCoverageId"]
    assert coverage == "4"  # spouse and child: Family
    levels = get(sb, "/benefitcoverages", headers=JSON).json()["Benefit Coverages"]
    assert {c["id"]: c["shortName"] for c in levels}[coverage] == "Family"
    plans = get(sb, "/benefit/company_benefit", headers=JSON).json()
    assert {p["benefitType"] for p in plans} == {"medical", "dental", "vision"}


def test_life_events_change_dependants_and_elections(sb: Sandbox) -> None:
    app: Any = sb.apps["bamboohr"]
    k = next(
        p.employee_id
        for p in sb.world.people(29)
        if app.benefits.elections(p.employee_id) and not app.benefits.dependants(p.employee_id)
    )
    stamp = app.last_changed(k)
    today = dt.date.today()
    made = requests.post(
        f"{sb.bamboohr_url}/_sandbox/bamboohr/life_events",
        json={"employeeId": k, "type": "marriage", "date": today.isoformat(), "firstName": "Lé"},
        timeout=10,
    )
    assert made.status_code == 201
    assert {e.coverage for e in app.benefits.elections(k)} == {2}  # Employee + Spouse
    assert app.last_changed(k) > stamp  # the changed feed sees the employee
    app.benefits.terminate(k, today)
    assert all(e.end_date == today for e in app.benefits.elections(k))
