"""tap-bamboohr against the BambooHR sandbox over HTTP: data, tables, state, faults, drift."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from singer_sdk.exceptions import FatalAPIError
from tests.taps.tapkit import Messages, final_state, records, sync

from hrsync.errors import RecordError
from hrsync.http import InsecureURLError
from hrsync.shapes import UnexpectedPage
from sandbox.bamboohr import BambooHR, person_fields, table_rows
from sandbox.seed import HARD_NAMES
from sandbox.server import Sandbox
from tap_bamboohr.client import base_url
from tap_bamboohr.streams import DEFAULT_FIELDS, EmployeesStream, _money
from tap_bamboohr.tap import TapBambooHR

TAP = str(Path(sys.executable).parent / "tap-bamboohr")
TABLES = {
    "job_info": "jobInfo",
    "compensation": "compensation",
    "employment_status": "employmentStatus",
}


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
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, legacy: bool = False, **extra: Any) -> dict[str, Any]:
    creds = sb.credentials["bamboohr"]
    base = (
        f"{sb.bamboohr_url}/api/gateway.php/{creds['company_domain']}/v1"
        if legacy
        else f"{sb.bamboohr_url}/api/v1"
    )
    return {"api_key": creds["api_key"], "api_url": base, "backoff_base_seconds": 0.01, **extra}


def run_tap(config: dict[str, Any], state: dict[str, Any] | None = None) -> Messages:
    """Sync every stream in this process; return the Singer messages written."""
    tap = TapBambooHR(config=config, state=state, parse_env_config=False)
    return sync(tap)


def stamp(value: str) -> str:
    """The sandbox's ``...Z`` stamps in the tap's one output form."""
    return value.replace("Z", "+00:00")


def expected_employee(sb: Sandbox, eid: int) -> dict[str, Any]:
    raw = person_fields(sb.world.person(eid))
    want: dict[str, Any] = {k: (raw.get(k) or None) for k in DEFAULT_FIELDS}
    want["id"] = eid
    want["lastChanged"] = stamp(raw["lastChanged"])
    want["candidate_id"] = raw["customATSCandidateID"]
    return want


def expected_rows(sb: Sandbox, stream: str, eids: range | list[int]) -> list[dict[str, Any]]:
    rows = []
    for eid in eids:
        for row in table_rows(sb.world.person(eid), TABLES[stream]):
            row = {k: (v if v != "" else None) for k, v in row.items()}
            row["id"], row["employeeId"] = int(row["id"]), int(row["employeeId"])
            if stream == "compensation":
                row["rate"] = _money(row["rate"])
            rows.append(row)
    return rows


def without_stamps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in r.items() if k != "lastChanged" and v is not None} for r in rows),
        key=lambda r: (r["employeeId"], r["id"]),
    )


# --- data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("full_sync", ["list", "report"])
def test_employees_match_the_world_byte_for_byte(
    sb: Sandbox, app: BambooHR, full_sync: str
) -> None:
    msgs = run_tap(config_for(sb, full_sync=full_sync, page_size=7))
    emps = {r["id"]: r for r in records(msgs, "employees")}
    assert sorted(emps) == list(range(1, sb.world.employees + 1))  # active and inactive
    assert {r["status"] for r in emps.values()} == {"Active", "Inactive"}
    for eid, rec in emps.items():
        assert rec == expected_employee(sb, eid)
        person = sb.world.person(eid)
        assert (rec["firstName"], rec["middleName"], rec["lastName"], rec["preferredName"]) == (
            person.first_name,
            person.middle_name,
            person.last_name,
            person.preferred_name,
        )
        # a missing optional field is null, never ""
        assert "" not in rec.values()
        assert rec["candidate_id"] == (str(person.candidate_id) if person.candidate_id else None)
    names = {(r["firstName"], r["lastName"]) for r in emps.values()}
    for first, _, last, *_ in HARD_NAMES[: sb.world.employees]:
        assert (first, last) in names
    for hard in [
        ("Zoë", "O'Brien-Łukasiewicz"),
        ("秀英", "王"),
        ("Мария", "Иванова"),
        ("محمد", "العلي"),
        ("Αλέξανδρος", "Παπαδόπουλος"),
        ("Sukarno", "Sukarno"),  # mononym: BambooHR holds first = last
        ("Giuseppe", "D\u2019Alessandro"),  # typographic apostrophe kept as sent
        ("D'Arcy", "D'Angelo"),
    ]:
        assert hard in names
    assert emps[5]["candidate_id"] is None  # hired before the ATS
    assert emps[9]["workPhone"] is None and "workPhone" in emps[9]


def test_tables_show_two_positions_and_a_rehire(sb: Sandbox, app: BambooHR) -> None:
    msgs = run_tap(config_for(sb))
    everyone = range(1, sb.world.employees + 1)
    for stream in TABLES:
        got = records(msgs, stream)
        keys = [(r["employeeId"], r["id"]) for r in got]
        assert len(keys) == len(set(keys))
        assert without_stamps(got) == without_stamps(expected_rows(sb, stream, everyone))
        assert all(r["lastChanged"] is None for r in got)  # full sync: no per-row stamp
    jobs = [r for r in records(msgs, "job_info") if r["employeeId"] == 17]
    assert len(jobs) == 2 and jobs[0]["date"] == jobs[1]["date"]  # two concurrent positions
    assert jobs[0]["jobTitle"] != jobs[1]["jobTitle"]
    pay = [r for r in records(msgs, "compensation") if r["employeeId"] == 17]
    assert len(pay) == 2 and all(set(r["rate"]) == {"value", "currency"} for r in pay)
    history = sorted(
        (r for r in records(msgs, "employment_status") if r["employeeId"] == 29),
        key=lambda r: r["date"],
    )
    statuses = [r["employmentStatus"] for r in history]
    assert statuses[1] == "Terminated" and statuses[-1] != "Terminated"  # rehired
    assert len(statuses) == 3
    rehired = records(msgs, "employees")[28]
    assert rehired["id"] == 29 and rehired["hireDate"] > rehired["originalHireDate"]
    left = [r for r in records(msgs, "employment_status") if r["employeeId"] == 13]
    assert left[-1]["employmentStatus"] == "Terminated"


# --- incremental --------------------------------------------------------------------------


def test_second_run_emits_exactly_the_changed_people() -> None:
    with Sandbox(employees=60, vendors=("bamboohr",)) as sb:
        config = config_for(sb)
        first = run_tap(config)
        assert len(records(first, "employees")) == 60
        state = final_state(first)
        assert set(state["bookmarks"]) >= {"employees", *TABLES}

        sb.world.update_person(3, last_name="Wáng-Lí")
        sb.world.update_person(17, preferred_name="Ngozi")
        sb.world.update_person(29, work_email=None)

        second = run_tap(config, state)
        emps = {r["id"]: r for r in records(second, "employees")}
        assert sorted(emps) == [3, 17, 29]
        assert emps[3]["lastName"] == "Wáng-Lí"
        assert emps[17]["preferredName"] == "Ngozi"
        assert emps[29]["workEmail"] is None
        for stream in TABLES:
            got = records(second, stream)
            assert {r["employeeId"] for r in got} == {3, 17, 29}
            assert without_stamps(got) == without_stamps(expected_rows(sb, stream, [3, 17, 29]))
            assert all(r["lastChanged"] == emps[r["employeeId"]]["lastChanged"] for r in got)

        state = final_state(second)
        assert state["bookmarks"]["employees"]["seen_at_bookmark"]  # ids at the stamp's second
        third = run_tap(config, state)
        assert not [m for m in third if m["type"] == "RECORD"]

        # a change in the bookmark's own second (stamps have one-second precision) still comes
        sb.world.update_person(40, middle_name="Jo")
        fourth = run_tap(config, final_state(third))
        assert [r["id"] for r in records(fourth, "employees")] == [40]
        assert {r["employeeId"] for r in records(fourth, "job_info")} == {40}


def test_start_date_limits_the_first_run(sb: Sandbox, app: BambooHR) -> None:
    since = person_fields(sb.world.person(50))["lastChanged"]
    msgs = run_tap(config_for(sb, start_date=since))
    assert sorted(r["id"] for r in records(msgs, "employees")) == list(range(50, 61))
    assert {r["employeeId"] for r in records(msgs, "job_info")} == set(range(50, 61))


# --- bases and errors ---------------------------------------------------------------------


def test_legacy_gateway_base_gives_the_same_records(sb: Sandbox, app: BambooHR) -> None:
    current = run_tap(config_for(sb))
    legacy = run_tap(config_for(sb, legacy=True))
    for stream in ("employees", *TABLES):
        assert records(legacy, stream) == records(current, stream)


def test_base_url_from_settings() -> None:
    assert base_url({"company_domain": "acme"}) == "https://acme.bamboohr.com/api/v1"
    assert (
        base_url({"company_domain": "acme", "legacy_gateway": True})
        == "https://api.bamboohr.com/api/gateway.php/acme/v1"
    )
    assert base_url({"api_url": "http://127.0.0.1:8080/api/v1/"}) == "http://127.0.0.1:8080/api/v1"
    with pytest.raises(InsecureURLError):
        base_url({"api_url": "http://bamboohr.example.com/api/v1"})
    with pytest.raises(ValueError, match="company_domain"):
        base_url({})


def test_vendor_error_header_is_surfaced(sb: Sandbox, app: BambooHR) -> None:
    with pytest.raises(FatalAPIError, match=r"401 .*/api/v1/employees: Invalid API key"):
        run_tap({**config_for(sb), "api_key": "wrong"})
    bad_company = config_for(sb, legacy=True)
    bad_company["api_url"] = bad_company["api_url"].replace("/acme/", "/nope/")
    with pytest.raises(FatalAPIError, match=r"404 .*Unknown company 'nope'"):
        run_tap(bad_company)


# --- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy_503", [False, True], ids=["429", "legacy-503"])
def test_rate_limits_with_retry_after_are_retried(
    sb: Sandbox, app: BambooHR, legacy_503: bool
) -> None:
    app.legacy_503 = legacy_503
    sb.faults.script = ["429", "ok", "429", "500", "ok", "429"]
    msgs = run_tap(config_for(sb))
    assert sb.faults.injected.get("429", 0) >= 3
    assert sorted(r["id"] for r in records(msgs, "employees")) == list(range(1, 61))
    for stream in TABLES:
        keys = [(r["employeeId"], r["id"]) for r in records(msgs, stream)]
        assert len(keys) == len(set(keys)) == len(expected_rows(sb, stream, range(1, 61)))


def test_faults_past_the_budget_stop_the_tap(sb: Sandbox, app: BambooHR, tmp_path: Path) -> None:
    app.legacy_503 = True
    sb.faults.retry_after = 0
    sb.faults.script = ["429"] * 10
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(sb, max_retries=3)))
    proc = subprocess.run(
        [TAP, "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "GET /api/v1/employees failed after 3 attempts" in proc.stderr
    assert "503 Service Unavailable" in proc.stderr and "Rate limit exceeded" in proc.stderr
    assert '"type":"RECORD"' not in proc.stdout.replace(" ", "")


# --- schema -------------------------------------------------------------------------------


def test_schema_drift_is_reported_once_per_field(
    sb: Sandbox, app: BambooHR, caplog: pytest.LogCaptureFixture
) -> None:
    tap = TapBambooHR(config=config_for(sb), parse_env_config=False)
    stream = tap.streams["job_info"]
    del stream.schema["properties"]["division"]  # as if BambooHR had added the column
    with caplog.at_level(logging.WARNING), contextlib.redirect_stdout(io.StringIO()):
        stream.sync()
    drift = [r.getMessage() for r in caplog.records if "Schema drift" in r.getMessage()]
    assert drift == [
        "Schema drift in stream 'job_info': BambooHR sent field 'division', which the schema "
        "lacks; it is left out of the output until schemas/job_info.json (or the custom_fields "
        "setting) declares it"
    ]


def test_custom_fields_are_discovered_from_meta_fields(sb: Sandbox, app: BambooHR) -> None:
    config = config_for(sb, discover_custom_fields=True, candidate_id_field="")
    tap = TapBambooHR(config=config, parse_env_config=False)
    props = tap.streams["employees"].schema["properties"]
    assert props["customATSCandidateID"] == {"type": ["null", "string"]}
    emps = {r["id"]: r for r in records(run_tap(config), "employees")}
    assert emps[1]["customATSCandidateID"] == str(sb.world.person(1).candidate_id)
    assert "candidate_id" not in emps[1] or emps[1]["candidate_id"] is None


def test_a_non_numeric_id_names_the_record_and_field(sb: Sandbox) -> None:
    stream = EmployeesStream(tap=TapBambooHR(config=config_for(sb), parse_env_config=False))
    with pytest.raises(RecordError, match=r"stream employees, record E-7: field id: 'E-7'"):
        stream.clean({"id": "E-7", "firstName": "Ana"})


def page(body: bytes, url: str) -> requests.Response:
    """A 200 response with ``body``, as the session would hand it to parse_response."""
    response = requests.Response()
    response.status_code, response._content, response.url = 200, body, url
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request("GET", url).prepare()
    return response


@pytest.mark.parametrize(
    ("stream", "path", "body", "problem"),
    [
        ("employees", "/employees", b"null", 'expected an object with "data", got null'),
        ("employees", "/employees", b'{"data": [1]}', '"data": item 0 is number'),
        ("employees", "/reports/custom", b'{"employees": {"a": 1}}', '"employees" (an array'),
        ("employee_deletions", "/employees/changed", b"null", "got null"),
        ("employee_deletions", "/employees/changed", b'{"employees": [3]}', "got array"),
        ("employee_deletions", "/employees/changed", b'{"employees": {"7": 1}}', '"7"'),
        ("job_info", "/employees/all/tables/jobInfo", b"null", "got null"),
        ("job_info", "/employees/all/tables/jobInfo", b"[1, 2]", "item 0 is number"),
        ("job_info", "/employees/changed/tables/jobInfo", b'{"employees": "x"}', "got string"),
        ("job_info", "/employees/changed/tables/jobInfo", b'{"employees": {"4": []}}', '"4"'),
        ("job_info", "/employees/changed/tables/jobInfo", b"<html>", "not JSON"),
        ("employee_benefits", "/benefit/employee_benefit", b"null", "got null"),
        ("employee_benefits", "/benefit/employee_benefit", b'{"employeeBenefits": 3}', "number"),
        (
            "employee_benefits",
            "/benefit/employee_benefit",
            b'{"employeeBenefits": [{"employeeId": 1, "employeeBenefit": "x"}]}',
            "string",
        ),
    ],
)
def test_a_page_of_the_wrong_shape_fails_naming_the_endpoint(
    sb: Sandbox, stream: str, path: str, body: bytes, problem: str
) -> None:
    tap = TapBambooHR(config=config_for(sb), parse_env_config=False)
    response = page(body, f"{sb.bamboohr_url}/api/v1{path}")
    want = f"BambooHR .* GET /api/v1{path} .*{re.escape(problem)}"
    with pytest.raises(UnexpectedPage, match=want):
        list(tap.streams[stream].parse_response(response))


def test_an_empty_change_map_is_no_rows(sb: Sandbox) -> None:
    """PHP encodes an empty ``employees`` object as ``[]``: nothing changed, not an error."""
    tap = TapBambooHR(config=config_for(sb), parse_env_config=False)
    url = f"{sb.bamboohr_url}/api/v1/employees/changed/tables/jobInfo"
    assert list(tap.streams["job_info"].parse_response(page(b'{"employees": []}', url))) == []


def test_money_shapes() -> None:
    assert _money("56.00 USD") == {"value": "56.00", "currency": "USD"}
    money = {"value": "75000.00", "currency": "EUR"}
    assert _money(money) == money
    assert _money("") is None


def test_deselected_fields_are_never_requested(sb: Sandbox, app: BambooHR) -> None:
    config = config_for(sb)
    catalog = TapBambooHR(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if entry["tap_stream_id"] == "employees" and md["breadcrumb"] in (
                ["properties", "ssn"],
                ["properties", "candidate_id"],
            ):
                md["metadata"]["selected"] = False
    tap = TapBambooHR(config=config, catalog=catalog, parse_env_config=False)
    fields = tap.streams["employees"].get_url_params(None, None)["fields"].split(",")
    assert "ssn" not in fields and "customATSCandidateID" not in fields
    assert "firstName" in fields and "lastChanged" in fields
    report = TapBambooHR(
        config={**config, "full_sync": "report"}, catalog=catalog, parse_env_config=False
    )
    payload = report.streams["employees"].prepare_request_payload(None, None)
    assert payload is not None and payload["fields"] == fields
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    emps = records([json.loads(x) for x in out.getvalue().splitlines()], "employees")
    assert len(emps) == 60 and not any("ssn" in r or "candidate_id" in r for r in emps)


def test_list_mode_pages_with_the_cursor_and_bookmarks_the_start(
    sb: Sandbox, app: BambooHR
) -> None:
    before = app.requests
    msgs = run_tap(config_for(sb, page_size=7))
    assert sorted(r["id"] for r in records(msgs, "employees")) == list(range(1, 61))
    # ceil(60 / 7) pages, then deletions, 3 tables and payroll deductions
    assert app.requests - before == 9 + 5
    mark = final_state(msgs)["bookmarks"]["employees"]["replication_key_value"]
    newest = max(r["lastChanged"] for r in records(msgs, "employees"))
    assert mark > newest  # the run's start, not the newest change it happened to see


def test_deleted_employees_reach_the_deletions_stream() -> None:
    with Sandbox(employees=30, vendors=("bamboohr",)) as sb:
        app = sb.apps["bamboohr"]
        assert isinstance(app, BambooHR)
        config = config_for(sb)
        app.delete(7)
        first = run_tap(config)
        gone = records(first, "employee_deletions")
        assert [(r["id"], r["action"]) for r in gone] == [(7, "Deleted")]
        assert 7 not in {r["id"] for r in records(first, "employees")}
        assert 7 not in {r["employeeId"] for r in records(first, "job_info")}

        app.delete(12)
        app.delete(25)
        second = run_tap(config, final_state(first))
        assert sorted(r["id"] for r in records(second, "employee_deletions")) == [12, 25]
        assert not records(second, "employees")  # a deletion is not an update

        third = run_tap(config, final_state(second))
        assert not records(third, "employee_deletions")


def test_the_deletions_bookmark_moves_without_any_deletion() -> None:
    """Deletions are rare: a run that sees none still bookmarks the server's clock when it
    asked, so the next run does not ask for every deletion since the beginning again; a
    deletion after it still comes, once."""
    with Sandbox(employees=20, vendors=("bamboohr",)) as sb:
        app = sb.apps["bamboohr"]
        assert isinstance(app, BambooHR)
        config = config_for(sb)
        before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        first = run_tap(config)
        assert not records(first, "employee_deletions")
        mark = final_state(first)["bookmarks"]["employee_deletions"]["replication_key_value"]
        assert datetime.fromisoformat(mark) >= before
        app.delete(4)
        second = run_tap(config, final_state(first))
        assert [r["id"] for r in records(second, "employee_deletions")] == [4]
        third = run_tap(config, final_state(second))
        assert not records(third, "employee_deletions")
        fourth = run_tap(config, final_state(third))
        assert not records(fourth, "employee_deletions")
