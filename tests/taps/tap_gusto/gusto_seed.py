"""A small Gusto company for tap-gusto's tests, made through the fake's own API (as
target-payroll-api, or a payroll administrator, would make it)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from sandbox.server import Sandbox

VERSION = "2025-06-15"
#: (HRIS id or None for an employee made by hand, first, last, job title)
PEOPLE = [
    ("E200", "Zoë", "O'Brien-Łukasiewicz", "Engineer"),
    ("E201", "秀英", "王", "Accountant"),
    ("E202", "Sukarno", "Sukarno", "Driver"),
    ("E203", "Giuseppe", "D\u2019Alessandro", "Chef"),
    ("E204", "Renée", "Zellweger", "Designer"),
    ("E205", "Ana", "Núñez", "Analyst"),
    ("E206", "Lars", "Øvergård", "Engineer"),
    (None, "Hand", "Made", "Consultant"),
]
PAST = (date.today() - timedelta(days=40)).isoformat()
FUTURE = (date.today() + timedelta(days=20)).isoformat()


class Admin:
    """Calls the fake as an administrator with its own access token."""

    def __init__(self, sb: Sandbox) -> None:
        self.base = sb.url("gusto")
        creds = sb.credentials["gusto"]
        self.company = creds["company_uuid"]
        refresh = self.post_sandbox({"issue_refresh_token": True})["refresh_token"]
        response = requests.post(
            f"{self.base}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "refresh_token": refresh,
            },
            timeout=10,
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]

    def post_sandbox(self, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.base}/_sandbox/gusto", json=body, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "X-Gusto-API-Version": VERSION},
            timeout=10,
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


def seed(sb: Sandbox) -> dict[str, str]:
    """PEOPLE with a job each (at the first company location) and its pay; a second job and a
    raise for E200; E201 terminated 40 days ago, E202 leaving in 20 days; E203 rehired after a
    termination. Returns HRIS id (or "hand-made") -> employee uuid."""
    admin = Admin(sb)
    company = admin.company
    field = admin.call("GET", f"/v1/companies/{company}/custom_fields")["custom_fields"][0]["uuid"]
    location = admin.call("GET", f"/v1/companies/{company}/locations")[0]["uuid"]
    ids: dict[str, str] = {}
    hire = (date.today() - timedelta(days=400)).isoformat()
    for hris_id, first, last, title in PEOPLE:
        body: dict[str, Any] = {"first_name": first, "last_name": last, "email": None}
        if hris_id:
            body["custom_fields"] = [{"id": field, "value": hris_id}]
        emp = admin.call("POST", f"/v1/companies/{company}/employees", body)
        ids[hris_id or "hand-made"] = emp["uuid"]
        job = admin.call(
            "POST",
            f"/v1/employees/{emp['uuid']}/jobs",
            {"title": title, "hire_date": hire, "location_uuid": location},
        )
        admin.call(
            "POST",
            f"/v1/jobs/{job['uuid']}/compensations",
            {"rate": "85000.00", "payment_unit": "Year", "flsa_status": "Exempt",
             "effective_date": hire},
        )  # fmt: skip
    first_job = admin.call("GET", f"/v1/employees/{ids['E200']}/jobs")[0]["uuid"]
    admin.call(
        "POST",
        f"/v1/jobs/{first_job}/compensations",
        {
            "rate": "92000.00",
            "payment_unit": "Year",
            "flsa_status": "Exempt",
            "effective_date": PAST,
        },
    )
    admin.call(
        "POST",
        f"/v1/employees/{ids['E200']}/jobs",
        {"title": "Mentor", "hire_date": PAST, "location_uuid": location},
    )
    admin.call(
        "POST",
        f"/v1/employees/{ids['E201']}/terminations",
        {"effective_date": PAST, "run_termination_payroll": True},
    )
    admin.call("POST", f"/v1/employees/{ids['E202']}/terminations", {"effective_date": FUTURE})
    old = (date.today() - timedelta(days=100)).isoformat()
    admin.call("POST", f"/v1/employees/{ids['E203']}/terminations", {"effective_date": old})
    admin.call(
        "POST",
        f"/v1/employees/{ids['E203']}/rehire",
        {"effective_date": PAST, "work_location_uuid": location, "file_new_hire_report": False},
    )
    return ids


def tap_config(sb: Sandbox, token_file: Path, **extra: Any) -> dict[str, Any]:
    """tap-gusto's settings with a refresh token of its own (as authorising the app gives)."""
    creds = sb.credentials["gusto"]
    response = requests.post(
        f"{sb.url('gusto')}/_sandbox/gusto", json={"issue_refresh_token": True}, timeout=10
    )
    response.raise_for_status()
    return {
        "company_uuid": creds["company_uuid"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "refresh_token": response.json()["refresh_token"],
        "token_file": str(token_file),
        "api_url": sb.url("gusto"),
        "api_version": VERSION,
        "backoff_base_seconds": 0.01,
        **extra,
    }
