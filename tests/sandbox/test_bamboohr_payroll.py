"""Payroll data in the BambooHR fake: W-4 / work-state custom fields and the deductions table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.bamboohr import DEDUCTIONS_TABLE, payroll_tax_fields, table_rows
from sandbox.server import Sandbox

TAX_FIELDS = (
    "customFederalFilingStatus",
    "customFederalExtraWithholding",
    "customW4MultipleJobs",
    "customW4DependentsAmount",
    "customWorkState",
)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("bamboohr",)) as sandbox:
        yield sandbox


def get(sb: Sandbox, path: str, **params: Any) -> Any:
    creds = sb.info()["bamboohr"]
    resp = requests.get(
        f"{creds['api_url']}{path}",
        params=params,
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.headers
    return resp.json()


def test_tax_custom_fields_for_us_w2_employees_only(sb: Sandbox) -> None:
    aliases = {f["alias"] for f in get(sb, "/meta/fields")}
    assert set(TAX_FIELDS) <= aliases
    people = list(sb.world.people())
    for person in people:
        got = get(sb, f"/employees/{person.employee_id}", fields=",".join(TAX_FIELDS))
        us = person.positions[0].currency == "USD" and person.employment_type != "Contractor"
        assert (got["customWorkState"] is not None) == us
        assert {k: got[k] for k in TAX_FIELDS} == payroll_tax_fields(person)
    states = {payroll_tax_fields(p)["customWorkState"] for p in people} - {None}
    assert states <= {"CA", "NY", "TX", "CO"} and len(states) > 1


def test_deductions_table_is_effective_dated_and_deterministic(sb: Sandbox) -> None:
    tables = {t["alias"]: t for t in get(sb, "/meta/tables")}
    assert [f["alias"] for f in tables[DEDUCTIONS_TABLE]["fields"]] == [
        "date",
        "deductionType",
        "amount",
        "amountType",
        "endDate",
    ]
    rows = get(sb, f"/employees/all/tables/{DEDUCTIONS_TABLE}")
    assert rows and {r["amountType"] for r in rows} == {"Percent", "Amount"}
    assert {r["deductionType"] for r in rows} <= {"401(k)", "Medical", "Dental"}
    for row in rows:
        person = sb.world.person(int(row["employeeId"]))
        assert person.positions[0].currency == "USD"
    rehired = next(
        p for p in sb.world.people() if len(p.employments) > 1 and table_rows(p, DEDUCTIONS_TABLE)
    )
    ended = [r for r in table_rows(rehired, DEDUCTIONS_TABLE) if r["endDate"]]
    assert all(r["endDate"] == rehired.employments[0].termination_date.isoformat() for r in ended)
    again = Sandbox(employees=60, vendors=())
    assert table_rows(again.world.person(3), DEDUCTIONS_TABLE) == table_rows(
        sb.world.person(3), DEDUCTIONS_TABLE
    )
