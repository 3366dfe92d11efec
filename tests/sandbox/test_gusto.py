"""The Gusto fake over real HTTP: OAuth refresh and rotation, versions, paging, optimistic
locking, validation and error shape, terminations and rehires, rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox

VERSION = "2025-06-15"


@pytest.fixture
def gusto() -> Iterator[Sandbox]:
    with Sandbox(employees=5, vendors=("gusto",)) as sb:
        yield sb


def info(sb: Sandbox) -> dict[str, Any]:
    return sb.info()["gusto"]


def refresh(sb: Sandbox, token: str | None = None) -> requests.Response:
    g = info(sb)
    return requests.post(
        g["token_url"],
        data={
            "grant_type": "refresh_token",
            "client_id": g["client_id"],
            "client_secret": g["client_secret"],
            "refresh_token": token or g["refresh_token"],
        },
        timeout=10,
    )


class Api:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        g = info(sb)
        self.base, self.company = g["api_url"], g["company_uuid"]
        self.token = refresh(sb).json()["access_token"]

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", "X-Gusto-API-Version": VERSION}
        headers.update(kw.pop("headers", {}))
        return requests.request(method, self.base + path, headers=headers, timeout=10, **kw)

    def employee(self, first: str = "Zoë", last: str = "O'Brien-Łukasiewicz") -> dict[str, Any]:
        resp = self(
            "POST",
            f"/v1/companies/{self.company}/employees",
            json={"first_name": first, "last_name": last},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()


def test_refresh_token_grant_rotates_the_refresh_token(gusto: Sandbox) -> None:
    first = refresh(gusto)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["refresh_token"] != info(gusto)["refresh_token"]
    again = refresh(gusto)  # the used refresh token is dead
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert refresh(gusto, body["refresh_token"]).status_code == 200
    wrong = requests.post(
        info(gusto)["token_url"],
        data={"grant_type": "refresh_token", "client_id": "x", "client_secret": "y"},
        timeout=10,
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_bearer_token_required_and_expires(gusto: Sandbox) -> None:
    api = Api(gusto)
    assert api("GET", f"/v1/companies/{api.company}/employees").status_code == 200
    anon = requests.get(f"{api.base}/v1/companies/{api.company}/employees", timeout=10)
    assert anon.status_code == 401
    assert anon.json()["errors"][0]["category"] == "invalid_token"
    requests.post(f"{api.base}/_sandbox/gusto", json={"expire_tokens": True}, timeout=10)
    expired = api("GET", f"/v1/companies/{api.company}/employees")
    assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["message"]


def test_api_version_header_is_echoed_and_checked(gusto: Sandbox) -> None:
    api = Api(gusto)
    resp = api("GET", f"/v1/companies/{api.company}/employees")
    assert resp.headers["X-Gusto-API-Version"] == VERSION
    bad = api(
        "GET",
        f"/v1/companies/{api.company}/employees",
        headers={"X-Gusto-API-Version": "1999-01-01"},
    )
    assert bad.status_code == 406
    assert bad.json()["errors"][0]["error_key"] == "X-Gusto-API-Version"


def test_paging_headers(gusto: Sandbox) -> None:
    api = Api(gusto)
    for n in range(5):
        api.employee(f"P{n}", "Smith")
    resp = api("GET", f"/v1/companies/{api.company}/employees", params={"page": 2, "per": 2})
    assert [e["first_name"] for e in resp.json()] == ["P2", "P3"]
    assert (resp.headers["X-Page"], resp.headers["X-Per-Page"]) == ("2", "2")
    assert (resp.headers["X-Total-Count"], resp.headers["X-Total-Pages"]) == ("5", "3")
    too_many = api("GET", f"/v1/companies/{api.company}/employees", params={"per": 101})
    assert too_many.status_code == 422


def test_put_needs_the_current_version(gusto: Sandbox) -> None:
    api = Api(gusto)
    emp = api.employee()
    assert emp["first_name"] == "Zoë" and emp["ssn"] == "" and emp["has_ssn"] is False
    missing = api("PUT", f"/v1/employees/{emp['uuid']}", json={"first_name": "Zoe"})
    assert missing.status_code == 422
    ok = api(
        "PUT", f"/v1/employees/{emp['uuid']}", json={"first_name": "Zoe", "version": emp["version"]}
    )
    assert ok.status_code == 200 and ok.json()["version"] != emp["version"]
    stale = api(
        "PUT",
        f"/v1/employees/{emp['uuid']}",
        json={"first_name": "Zoey", "version": emp["version"]},
    )
    assert stale.status_code == 409
    error = stale.json()["errors"][0]
    assert set(error) == {"error_key", "category", "message", "metadata"}
    assert error["error_key"] == "version"


def test_jobs_compensations_and_validation(gusto: Sandbox) -> None:
    api = Api(gusto)
    emp = api.employee()
    job = api(
        "POST",
        f"/v1/employees/{emp['uuid']}/jobs",
        json={"title": "Accountant", "hire_date": "2024-01-02"},
    ).json()
    bad = api(
        "POST",
        f"/v1/jobs/{job['uuid']}/compensations",
        json={
            "rate": "x",
            "payment_unit": "Year",
            "flsa_status": "Exempt",
            "effective_date": "2024-01-02",
        },
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["error_key"] == "rate"
    for when, rate in (("2024-01-02", "90000"), ("2099-01-01", "95000")):
        made = api(
            "POST",
            f"/v1/jobs/{job['uuid']}/compensations",
            json={
                "rate": rate,
                "payment_unit": "Year",
                "flsa_status": "Exempt",
                "effective_date": when,
            },
        )
        assert made.status_code == 201, made.text
    comps = api("GET", f"/v1/jobs/{job['uuid']}/compensations").json()
    assert [(c["effective_date"], c["rate"]) for c in comps] == [
        ("2024-01-02", "90000.00"),
        ("2099-01-01", "95000.00"),
    ]
    jobs = api("GET", f"/v1/employees/{emp['uuid']}/jobs").json()
    assert jobs[0]["rate"] == "90000.00"  # the future raise is not current yet


def test_termination_then_rehire(gusto: Sandbox) -> None:
    api = Api(gusto)
    emp = api.employee()
    path = f"/v1/employees/{emp['uuid']}"
    early = api(
        "POST",
        f"{path}/rehire",
        json={
            "effective_date": "2024-06-01",
            "file_new_hire_report": True,
            "work_location_uuid": "nope",
        },
    )
    assert early.status_code == 422
    term = api(
        "POST",
        f"{path}/terminations",
        json={"effective_date": "2024-03-31", "run_termination_payroll": True},
    )
    assert term.status_code == 201 and term.json()["run_termination_payroll"] is True
    assert api("GET", path).json()["terminated"] is True
    location = api("GET", f"/v1/companies/{api.company}/locations").json()[0]["uuid"]
    rehire = api(
        "POST",
        f"{path}/rehire",
        json={
            "effective_date": "2024-06-01",
            "file_new_hire_report": True,
            "work_location_uuid": location,
        },
    )
    assert rehire.status_code == 201
    assert api("GET", path).json()["terminated"] is False
    assert api("GET", f"{path}/rehire").json()["effective_date"] == "2024-06-01"
    # only a termination that has not taken effect can be cancelled
    assert api("DELETE", f"{path}/terminations").status_code == 422
    api("POST", f"{path}/terminations", json={"effective_date": "2099-12-31"})
    assert api("DELETE", f"{path}/terminations").status_code == 204


def test_rate_limit_answers_429_with_retry_after(gusto: Sandbox) -> None:
    api = Api(gusto)
    requests.post(f"{api.base}/_sandbox/gusto", json={"rate_limit": 3}, timeout=10)
    statuses = [api("GET", f"/v1/companies/{api.company}/locations") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1
    assert statuses[-1].json()["errors"][0]["category"] == "rate_limit_exceeded"


def test_injected_faults_use_the_gusto_error_shape(gusto: Sandbox) -> None:
    api = Api(gusto)
    gusto.faults.script[:] = ["503", "429"]
    first = api("GET", f"/v1/companies/{api.company}/locations")
    second = api("GET", f"/v1/companies/{api.company}/locations")
    assert first.status_code == 503 and "errors" in first.json()
    assert second.status_code == 429 and second.headers["Retry-After"]
    assert refresh(gusto, None).status_code == 400  # the token endpoint is never faulted
