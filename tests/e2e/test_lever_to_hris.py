"""`meltano run lever-to-hris` end to end: real Meltano, real plugins, the sandbox over HTTP."""

from __future__ import annotations

import subprocess
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from sandbox.demo import meltano_env
from sandbox.lever import LeverApp
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
JOB = "lever-to-hris"


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str], Path]]:
    workdir = tmp_path_factory.mktemp("e2e-lever")
    with Sandbox(employees=60, vendors=("lever", "bamboohr")) as sb:
        # meltano_env points tap-lever and target-bamboohr at the sandbox (sandbox.cli)
        env = meltano_env(sb, workdir) | {"HRSYNC_INTEGRATION": JOB}
        assert env["TAP_LEVER_API_URL"] == f"{sb.url('lever')}/v1"
        yield sb, env, workdir / "audit.jsonl"


def run_job(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [MELTANO, "run", *args, JOB], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def hris_employees(sb: Sandbox) -> list[dict[str, Any]]:
    creds = sb.credentials["bamboohr"]
    fields = ["id", "firstName", "lastName", "hireDate", "jobTitle", "department", "location"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": [*fields, "homeEmail", "employmentHistoryStatus", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return list(resp.json()["employees"])


def clean(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def outcomes(audit: Path, since: int = 0) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in AuditLog.read(audit)[since:]:
        counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
    return counts


def test_signed_offers_become_employees_once(e2e: tuple[Sandbox, dict[str, str], Path]) -> None:
    sb, env, audit = e2e
    app = sb.apps["lever"]
    assert isinstance(app, LeverApp)
    hires = app.hires()
    run_job(env, "--full-refresh")

    employees = hris_employees(sb)
    created = [e for e in employees if int(e["id"]) > sb.world.employees]
    by_contact = {str(e["customATSCandidateID"]): e for e in created}
    assert len(created) == len(by_contact) == len(hires)
    for contact in hires:
        got = by_contact[app.contact_id(contact.index)]
        first = clean(contact.legal_first)
        job = contact.job
        start = sb.world.as_of + timedelta(days=14 + contact.index % 40)
        assert got["firstName"] == first
        assert got["lastName"] == (clean(contact.legal_last) or first)  # mononym: first again
        assert got["hireDate"] == start.isoformat()
        assert got["jobTitle"] == job.title
        assert got["department"] == sb.world.department(job.department_id).name
        assert got["location"] == sb.world.office(job.office_id).name
        assert (got["homeEmail"] or None) == contact.email
    names = {(e["firstName"], e["lastName"]) for e in created}
    assert {("Zoë", "O'Brien-Łukasiewicz"), ("Sukarno", "Sukarno"), ("秀英", "王")} <= names
    assert ("Renée", "Zellweger") in names  # NFD + stray spaces in Lever, clean in the HRIS
    assert outcomes(audit).get("created") == len(hires)

    # a re-run (incremental) finds nothing new and writes nothing
    mark = len(AuditLog.read(audit))
    run_job(env)
    assert len(hris_employees(sb)) == len(employees)
    assert "created" not in outcomes(audit, mark) and "updated" not in outcomes(audit, mark)
