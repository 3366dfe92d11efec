"""The HiBob fake over HTTP: service-user auth, people search (fields, filters, showInactive,
humanReadable), employee tables and their bulk cursor paging, writes, errors, rate limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.hibob import HiBob, list_item_id
from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("hibob", "bamboohr")) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[HiBob]:
    app = sb.apps["hibob"]
    assert isinstance(app, HiBob)
    yield app
    sb.faults.reset()


def auth(sb: Sandbox) -> tuple[str, str]:
    creds = sb.credentials["hibob"]
    return creds["service_user_id"], creds["token"]


def call(sb: Sandbox, method: str, path: str, **kw: Any) -> requests.Response:
    kw.setdefault("auth", auth(sb))
    return requests.request(method, f"{sb.url('hibob')}/v1{path}", timeout=10, **kw)


def equals(path: str, *values: str) -> list[dict[str, Any]]:
    return [{"fieldPath": path, "operator": "equals", "values": list(values)}]


def search(sb: Sandbox, **body: Any) -> list[dict[str, Any]]:
    resp = call(sb, "POST", "/people/search", json=body)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["employees"])


def test_basic_auth_needs_the_service_user_id_and_its_token(sb: Sandbox, app: HiBob) -> None:
    wrong = call(sb, "POST", "/people/search", json={}, auth=(auth(sb)[0], "nope"))
    assert wrong.status_code == 401
    assert wrong.json()["key"] == "unauthorized" and "error" in wrong.json()
    assert call(sb, "POST", "/people/search", json={}).status_code == 200


def test_search_returns_the_requested_fields_nested_by_path(sb: Sandbox, app: HiBob) -> None:
    rows = search(sb, fields=["/root/id", "root.firstName", "/work/startDate", "no.such"],
                  showInactive=True)  # fmt: skip
    assert len(rows) == sb.world.employees  # no paging: every match in one response
    zoe = next(r for r in rows if r["id"] == "1")
    person = sb.world.person(1)
    assert zoe == {
        "id": "1",
        "firstName": person.first_name,
        "work": {"startDate": person.hire_date.isoformat()},
    }  # the unknown field id is silently left out


def test_active_only_unless_show_inactive(sb: Sandbox, app: HiBob) -> None:
    leavers = {str(p.employee_id) for p in sb.world.people() if p.status == "Inactive"}
    assert leavers
    active = {r["id"] for r in search(sb, fields=["root.id"])}
    assert not active & leavers
    everyone = search(sb, fields=["root.id", "internal.lifecycleStatus", "internal.status"],
                      showInactive=True)  # fmt: skip
    gone = {r["id"] for r in everyone if r["internal"]["lifecycleStatus"] == "terminated"}
    assert gone == leavers
    assert {r["internal"]["status"] for r in everyone if r["id"] in leavers} == {"Inactive"}


def test_list_fields_are_item_ids_unless_human_readable(sb: Sandbox, app: HiBob) -> None:
    p = sb.world.person(2)
    fields = ["root.id", "work.department", "work.startDate"]
    department = p.positions[0].department
    machine = search(sb, fields=fields, filters=equals("root.id", "2"))
    work = {
        "department": list_item_id("work.department", department),
        "startDate": p.hire_date.isoformat(),
    }
    assert machine == [{"id": "2", "work": work}]
    appended = search(sb, fields=fields, humanReadable="APPEND", filters=equals("/root/id", "2"))
    assert appended[0]["work"] == work
    readable = appended[0]["humanReadable"]
    assert readable["work"]["department"] == department
    y, m, d = p.hire_date.isoformat().split("-")
    assert readable["work"]["startDate"] == f"{d}/{m}/{y}"
    replaced = search(sb, fields=fields, humanReadable="REPLACE", filters=equals("root.id", "2"))
    assert replaced == [readable]


def test_filters_by_email_and_refuses_what_it_does_not_support(sb: Sandbox, app: HiBob) -> None:
    p = next(p for p in sb.world.people() if p.work_email and p.status == "Active")
    rows = search(sb, fields=["root.id"], filters=equals("root.email", str(p.work_email).upper()))
    assert rows == [{"id": str(p.employee_id)}]
    bad = call(sb, "POST", "/people/search", json={"filters": equals("work.title", "x")})
    assert bad.status_code == 400 and "work.title" in bad.json()["error"]
    assert call(sb, "POST", "/people/search", json={"humanReadable": "YES"}).status_code == 400


def test_tables_one_employee_and_bulk_with_cursor_paging(sb: Sandbox, app: HiBob) -> None:
    rehired = sb.world.person(29)  # terminated, then rehired
    life = call(sb, "GET", "/people/29/lifecycle").json()["values"]
    assert [r["status"] for r in life] == ["employed", "terminated", "employed"]
    assert [r["isCurrent"] for r in life] == [False, False, True]
    assert life[1]["effectiveDate"] == rehired.employments[0].termination_date.isoformat()
    work = call(sb, "GET", "/people/29/work").json()["values"]
    assert work[-1]["title"] == rehired.positions[0].job_title
    seen: list[str] = []
    cursors: set[str] = set()
    params: dict[str, Any] = {"limit": 25}
    while True:
        body = call(sb, "GET", "/bulk/people/employment", params=params).json()
        seen += [r["employeeId"] for r in body["results"]]
        nxt = body["response_metadata"]["next_cursor"]
        if not nxt:
            break
        assert nxt not in cursors
        cursors.add(nxt)
        params["cursor"] = nxt
    assert seen == [str(i) for i in range(1, sb.world.employees + 1)]  # each once
    some = call(sb, "GET", "/bulk/people/work", params={"employeeIds": "3,5"}).json()
    assert [r["employeeId"] for r in some["results"]] == ["3", "5"]
    assert call(sb, "GET", "/bulk/people/work", params={"limit": 201}).status_code == 400
    assert call(sb, "GET", "/bulk/people/equities").status_code == 404  # not served


def test_the_salary_table_holds_each_employments_base_pay(sb: Sandbox) -> None:
    """``GET /bulk/people/salaries``: one entry per employment (its primary position's base
    pay), the numbers the BambooHR fake's compensation rows hold."""
    body = call(sb, "GET", "/bulk/people/salaries", params={"limit": 200}).json()
    entries = {r["employeeId"]: r["values"] for r in body["results"]}
    for p in sb.world.people():
        got = entries[str(p.employee_id)]
        assert [(e["effectiveDate"], e["base"]) for e in got] == [
            (emp.positions[0].start_date.isoformat(),
             {"value": float(emp.positions[0].pay_rate), "currency": emp.positions[0].currency})
            for emp in p.employments
        ]  # fmt: skip
        assert {e["payPeriod"] for e in got} <= {"Annual", "Hourly"}
        assert sum(e["isCurrent"] for e in got) <= 1


def test_create_then_update_an_employee(sb: Sandbox, app: HiBob) -> None:
    start = sb.world.as_of.isoformat()
    missing = call(sb, "POST", "/people", json={"firstName": "Ada", "surname": "Byron"})
    assert missing.status_code == 400 and "root.email" in missing.json()["error"]
    made = call(sb, "POST", "/people", json={
        "firstName": "Ada", "surname": "Byron", "email": "ada.byron@acme.example",
        "work": {"site": "London", "startDate": start, "title": "Engineer",
                 "department": "Engineering"}})  # fmt: skip
    assert made.status_code == 200, made.text
    new_id = made.json()["id"]
    dup = call(sb, "POST", "/people", json={
        "firstName": "A", "surname": "B", "email": "ADA.byron@acme.example",
        "work": {"site": "London", "startDate": start}})  # fmt: skip
    assert dup.status_code == 400 and dup.json()["key"] == "duplicate.email"
    assert call(sb, "PUT", f"/people/{new_id}", json={"surname": "Lovelace"}).status_code == 200
    assert call(sb, "PUT", f"/people/{new_id}", json={"salary": 1}).status_code == 400
    fields = ["root.surname", "work.title", "work.site"]
    row = search(sb, fields=fields, humanReadable="REPLACE", filters=equals("root.id", new_id))
    assert row == [{"surname": "Lovelace", "work": {"title": "Engineer", "site": "London"}}]
    assert call(sb, "POST", "/people/ada.byron@acme.example", json={"fields": ["root.id"]}
                ).json() == {"id": new_id}  # fmt: skip


def test_a_termination_in_the_world_shows_in_hibob(sb: Sandbox, app: HiBob) -> None:
    p = next(p for p in sb.world.people(40) if p.status == "Active" and p.termination_date is None)
    ended = dataclasses.replace(p.employments[-1], termination_date=sb.world.as_of - timedelta(1))
    sb.world.update_person(p.employee_id, employments=(*p.employments[:-1], ended))
    ids = {r["id"] for r in search(sb, fields=["root.id"])}
    assert str(p.employee_id) not in ids


def test_rate_limited_with_ratelimit_headers(sb: Sandbox, app: HiBob) -> None:
    sb.faults.script = ["429"]
    resp = call(sb, "POST", "/people/search", json={})
    assert resp.status_code == 429
    assert resp.headers["X-RateLimit-Limit"] == "50"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert int(resp.headers["X-RateLimit-Reset"]) > 0
    assert "Retry-After" not in resp.headers
    assert resp.json()["error"] == "Too Many Requests"
