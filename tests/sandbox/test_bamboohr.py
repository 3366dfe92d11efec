# ruff: noqa: RUF001  (names in every script are test data)
"""The BambooHR API v1 fake over real HTTP: bases, auth, formats, reads, writes, feeds, faults."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.bamboohr import CANDIDATE_FIELD, BambooHR
from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("bamboohr",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[BambooHR]:
    app = sb.apps["bamboohr"]
    assert isinstance(app, BambooHR)
    yield app
    app.legacy_503 = False
    sb.faults.reset()


class Client:
    def __init__(self, sb: Sandbox, base: str | None = None, key: str | None = None) -> None:
        creds = sb.credentials["bamboohr"]
        self.base = base or f"{sb.bamboohr_url}/api/v1"
        self.auth = (key or creds["api_key"], "x")

    def get(self, path: str, *, xml: bool = False, **params: Any) -> requests.Response:
        headers = {} if xml else {"Accept": "application/json"}
        return requests.get(
            f"{self.base}{path}", params=params, auth=self.auth, headers=headers, timeout=10
        )

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        return requests.post(
            f"{self.base}{path}",
            params=params,
            json=body,
            auth=self.auth,
            headers={"Accept": "application/json"},
            timeout=10,
        )


@pytest.fixture
def api(sb: Sandbox) -> Client:
    return Client(sb)


def report(api: Client, fields: list[str], **filters: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"fields": fields}
    if filters:
        body["filters"] = filters
    resp = api.post("/reports/custom", body, format="json")
    assert resp.status_code == 200, resp.headers
    return list(resp.json()["employees"])


# --- bases, auth, formats -----------------------------------------------------------------


def test_both_bases_answer_the_same(sb: Sandbox, api: Client) -> None:
    legacy = Client(sb, f"{sb.bamboohr_url}/api/gateway.php/acme/v1")
    a = api.get("/employees/4", fields="firstName,lastName").json()
    b = legacy.get("/employees/4", fields="firstName,lastName").json()
    assert a == b == {"id": "4", "firstName": "秀英", "lastName": "王"}
    wrong = Client(sb, f"{sb.bamboohr_url}/api/gateway.php/globex/v1").get("/employees/4")
    assert wrong.status_code == 404 and "globex" in wrong.headers["X-BambooHR-Error-Message"]


@pytest.mark.parametrize("key", [None, "not-the-key"])
def test_auth_is_basic_with_the_key_as_user(sb: Sandbox, key: str | None) -> None:
    url = f"{sb.bamboohr_url}/api/v1/employees/1"
    resp = requests.get(url, auth=(key, "x") if key else None, timeout=10)
    assert resp.status_code == 401
    assert resp.content == b"" and resp.headers["X-BambooHR-Error-Message"]
    ok = requests.get(url, auth=(sb.credentials["bamboohr"]["api_key"], "anything"), timeout=10)
    assert ok.status_code == 200


def test_xml_by_default_json_on_request(api: Client) -> None:
    xml = api.get("/employees/1", xml=True, fields="firstName,lastName")
    assert xml.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(xml.content)  # noqa: S314 — our own sandbox
    assert root.tag == "employee" and root.get("id") == "1"
    assert {f.get("id"): f.text for f in root.iter("field")} == {
        "firstName": "Zoë",
        "lastName": "O'Brien-Łukasiewicz",
    }
    assert api.get("/employees/1").json()["lastName"] == "O'Brien-Łukasiewicz"


def test_errors_are_in_the_header_with_an_empty_body(api: Client) -> None:
    resp = api.get("/employees/999999")
    assert resp.status_code == 404 and resp.content == b""
    assert "999999" in resp.headers["X-BambooHR-Error-Message"]
    too_many = api.get("/employees/1", fields=",".join(f"f{i}" for i in range(401)))
    assert too_many.status_code == 400


# --- reads --------------------------------------------------------------------------------


def test_directory_lists_active_current_employees_only(sb: Sandbox, api: Client) -> None:
    body = api.get("/employees/directory").json()
    ids = {int(e["id"]) for e in body["employees"]}
    today = date.today()
    for k in range(1, 61):
        p = sb.world.person(k)
        expected = p.status == "Active" and p.hire_date <= today
        assert (k in ids) == expected, k
    assert {"displayName", "workEmail", "jobTitle"} <= {f["id"] for f in body["fields"]}
    future = api.get("/employees/directory", onlyCurrent="false").json()["employees"]
    assert 37 in {int(e["id"]) for e in future}  # k % 37: hired in the future


def test_fields_and_the_candidate_custom_field(sb: Sandbox, api: Client) -> None:
    meta = api.get("/meta/fields").json()
    by_alias = {f.get("alias"): f for f in meta}
    assert by_alias[CANDIDATE_FIELD]["type"] == "text"
    p = sb.world.person(2)
    emp = api.get("/employees/2", fields=f"{CANDIDATE_FIELD},preferredName,payRate,status").json()
    assert emp[CANDIDATE_FIELD] == str(p.candidate_id)
    assert emp["preferredName"] == "Pepe" and emp["status"] == "Active"
    assert emp["payRate"].endswith(f" {p.positions[0].currency}")
    # a field id works like its alias
    fid = str(by_alias["firstName"]["id"])
    assert api.get("/employees/2", fields=fid).json()[fid] == "José"
    assert sb.world.person(5).candidate_id is None  # hired before the ATS
    assert api.get("/employees/5", fields=CANDIDATE_FIELD).json()[CANDIDATE_FIELD] is None


def test_custom_report_includes_inactive_and_omits_unknown_fields(sb: Sandbox, api: Client) -> None:
    rows = report(api, ["id", "status", CANDIDATE_FIELD, "noSuchField"])
    assert len(rows) == 60
    assert {r["status"] for r in rows} == {"Active", "Inactive"}
    assert all("noSuchField" not in r for r in rows)
    only = report(api, ["firstName"], employeeIds=[4, 28])
    assert [(r["id"], r["firstName"]) for r in only] == [("4", "秀英"), ("28", "Madonna")]


def test_custom_report_formats_and_content_type(sb: Sandbox, api: Client) -> None:
    url = f"{api.base}/reports/custom"
    xml = requests.post(url, params={"format": "XML"}, json={"fields": ["firstName"]},
                        auth=api.auth, timeout=10)  # fmt: skip
    root = ET.fromstring(xml.content)  # noqa: S314 — our own sandbox
    assert root.tag == "report" and len(root.findall("employees/employee")) == 60
    odd = requests.post(url, params={"format": "bogus"}, json={"fields": ["id"]},
                        auth=api.auth, timeout=10)  # fmt: skip
    assert odd.status_code == 404
    # documented: JSON only with Content-Type exactly application/json, else parsed as XML
    charset = requests.post(
        url,
        params={"format": "json"},
        data=b'{"fields": ["id"]}',
        headers={"Content-Type": "application/json; charset=UTF-8"},
        auth=api.auth,
        timeout=10,
    )
    assert charset.status_code == 400 and "XML" in charset.headers["X-BambooHR-Error-Message"]


def test_tables_two_positions_rehire_termination(sb: Sandbox, api: Client) -> None:
    job = api.get("/employees/17/tables/jobInfo").json()  # k % 17: two concurrent positions
    current = [r for r in job if r["date"] == sb.world.person(17).hire_date.isoformat()]
    assert len(current) == 2 and len({r["jobTitle"] for r in current}) == 2
    status = api.get("/employees/29/tables/employmentStatus").json()  # k % 29: rehired
    assert [r["employmentStatus"] for r in status][1] == "Terminated"
    p29 = sb.world.person(29)
    assert api.get("/employees/29", fields="hireDate,originalHireDate").json() == {
        "id": "29",
        "hireDate": p29.hire_date.isoformat(),
        "originalHireDate": p29.original_hire_date.isoformat(),
    }
    assert p29.original_hire_date < p29.hire_date
    comp = api.get("/employees/1/tables/compensation").json()
    assert set(comp[0]["rate"]) == {"value", "currency"}
    everyone = api.get("/employees/all/tables/employmentStatus").json()
    assert {r["employeeId"] for r in everyone} >= {"13", "26"}  # terminated ones included
    assert api.get("/employees/1/tables/noSuchTable").status_code == 404
    tables = {t["alias"] for t in api.get("/meta/tables").json()}
    assert tables == {"jobInfo", "compensation", "employmentStatus", "customPayrollDeductions"}


def test_newer_employee_list_pages_with_a_cursor(sb: Sandbox, api: Client, app: BambooHR) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"page[limit]": 25, "fields": "workEmail"}
    while True:
        body = api.get("/employees", **params).json()
        assert body["meta"]["total"] == app.count()
        seen += [e["employeeId"] for e in body["data"]]
        cursor = body["meta"]["page"]["nextCursor"]
        if cursor is None:
            assert "next" not in body["_links"]
            break
        params["page[after]"] = cursor
    assert seen == [str(i) for i in app.employee_ids()]
    inactive = api.get("/employees", **{"filter[status]": "inactive"}).json()
    assert {e["status"] for e in inactive["data"]} == {"Inactive"}
    bad = api.get("/employees", **{"page[limit]": 2501})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    assert api.get("/employees", **{"page[after]": "%%%"}).json()["error"]["code"] == "BadPage"


# --- writes -------------------------------------------------------------------------------


def test_create_returns_201_location_and_stores_values_exactly(
    sb: Sandbox, api: Client, app: BambooHR
) -> None:
    body = {
        "firstName": "Siobhán",
        "lastName": "Ó Súilleabháin-D’Arcy",
        "preferredName": "Shiv",
        "hireDate": "2027-01-04",
        "department": "R&D – Europe",
        "payRate": "85000.00 EUR",
        "payType": "Salary",
        "payPer": "Year",
        "employmentHistoryStatus": "Full-Time",
        CANDIDATE_FIELD: "4000009999",
    }
    resp = api.post("/employees", body)
    assert resp.status_code == 201 and resp.content == b""
    new_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert new_id > sb.world.employees
    got = api.get(f"/employees/{new_id}", fields=",".join(body) + ",paidPer,originalHireDate")
    assert {k: got.json()[k] for k in body} == body
    assert got.json()["paidPer"] == "Year" and got.json()["originalHireDate"] == "2027-01-04"
    assert app.find(CANDIDATE_FIELD, "4000009999") == [new_id]
    comp = api.get(f"/employees/{new_id}/tables/compensation").json()
    assert comp[0]["rate"] == {"value": "85000.00", "currency": "EUR"}
    assert api.get(f"/employees/{new_id}/tables/jobInfo").json()[0]["date"] == "2027-01-04"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"firstName": "Cher"}, 400, "firstName and lastName are required"),
        ({"firstName": "A", "lastName": "B", "hireDate": "04/01/2027"}, 409, "hireDate"),
        ({"firstName": "A", "lastName": "B", "payRate": "lots"}, 409, "payRate"),
        ({"firstName": "A", "lastName": "B", "salaryBand": "7"}, 406, "salaryBand"),
        ({"firstName": "A", "lastName": "B", "workEmail": "zoe.obrienlukasiewicz1@acme.example"},
         409, "Duplicate value for workEmail"),
    ],
)  # fmt: skip
def test_rejected_writes_name_the_reason(
    api: Client, app: BambooHR, body: dict[str, str], status: int, reason: str
) -> None:
    before = len(app.created)
    resp = api.post("/employees", body)
    assert resp.status_code == status and resp.content == b""
    assert reason in resp.headers["X-BambooHR-Error-Message"]
    assert len(app.created) == before


def test_update_changes_fields_and_shows_in_the_changed_feeds(
    sb: Sandbox, api: Client, app: BambooHR
) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    resp = api.post("/employees/6", {"jobTitle": "Staff Engineer", "lastName": "العلي-Smith"})
    assert resp.status_code == 200 and resp.content == b""
    assert api.get("/employees/6", fields="lastName").json()["lastName"] == "العلي-Smith"
    changed = api.get("/employees/changed", since=since).json()
    assert changed["employees"]["6"]["action"] == "Updated"
    assert changed["latest"] == changed["employees"]["6"]["lastChanged"]
    rows = api.get("/employees/changed/tables/jobInfo", since=since).json()
    assert rows["employees"]["6"]["rows"][-1]["jobTitle"] == "Staff Engineer"
    assert api.post("/employees/6", {"lastName": ""}).status_code == 400


def test_deleted_and_inserted_in_the_changed_feed(sb: Sandbox, api: Client, app: BambooHR) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    new = api.post("/employees", {"firstName": "Ngozi", "lastName": "Okafor"})
    new_id = new.headers["Location"].rsplit("/", 1)[-1]
    gone = requests.delete(f"{sb.bamboohr_url}/_sandbox/bamboohr/employees/8", timeout=10)
    assert gone.status_code == 204
    deleted = api.get("/employees/changed", since=since, type="deleted").json()["employees"]
    assert deleted == {
        "8": {"id": "8", "action": "Deleted", "lastChanged": deleted["8"]["lastChanged"]}
    }
    inserted = api.get("/employees/changed", since=since, type="inserted").json()["employees"]
    assert inserted[new_id]["action"] == "Inserted"
    assert api.get("/employees/8").status_code == 404
    assert "8" not in {r["id"] for r in report(api, ["id"])}
    assert api.get("/employees/changed", since=since, type="moved").status_code == 400


def test_terminations_are_employment_status_rows(sb: Sandbox, api: Client) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    p = sb.world.person(10)
    ended = date.today() - timedelta(days=1)
    cur = p.current
    sb.world.update_person(
        10,
        employments=(
            *p.employments[:-1],
            type(cur)(cur.hire_date, ended, cur.employment_type, "Layoff", cur.positions),
        ),
    )
    feed = api.get("/employees/changed/tables/employmentStatus", since=since).json()
    last = feed["employees"]["10"]["rows"][-1]
    assert (last["employmentStatus"], last["date"]) == ("Terminated", ended.isoformat())
    assert api.get("/employees/10", fields="status").json()["status"] == "Inactive"


def test_since_with_an_unescaped_plus_is_rejected(sb: Sandbox, api: Client) -> None:
    url = f"{api.base}/employees/changed?since=2026-01-01T00:00:00+00:00"
    resp = requests.get(url, auth=api.auth, headers={"Accept": "application/json"}, timeout=10)
    assert resp.status_code == 400 and "%2B" in resp.headers["X-BambooHR-Error-Message"]
    ok = api.get("/employees/changed", since="2026-01-01T00:00:00+00:00")  # requests encodes it
    assert ok.status_code == 200


# --- faults -------------------------------------------------------------------------------


def test_rate_limit_is_429_or_legacy_503_with_retry_after(sb: Sandbox, api: Client) -> None:
    sb.faults.retry_after = 7
    sb.faults.script[:] = ["429"]
    first = api.get("/employees/1")
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert first.headers["X-BambooHR-Error-Message"] and first.content == b""
    switch = requests.post(f"{sb.bamboohr_url}/_sandbox/bamboohr", json={"legacy_503": True},
                           timeout=10)  # fmt: skip
    assert switch.json() == {"legacy_503": True}
    sb.faults.script[:] = ["429"]
    legacy = api.get("/employees/1")
    assert legacy.status_code == 503 and legacy.headers["Retry-After"] == "7"
    sb.faults.script[:] = ["429"]
    listed = api.get("/employees")
    assert listed.status_code == 503 and listed.json()["error"]["code"] == "TooManyRequests"
    assert api.get("/employees/1").status_code == 200
