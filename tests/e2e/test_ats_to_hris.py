"""`meltano run ats-to-hris` end to end: real Meltano, real plugins, the sandbox over HTTP."""

from __future__ import annotations

import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from sandbox.demo import meltano_env
from sandbox.seed import Candidate
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str], Path]]:
    workdir = tmp_path_factory.mktemp("e2e")
    with Sandbox(employees=60) as sb:
        yield sb, meltano_env(sb, workdir), workdir / "audit.jsonl"


def run_job(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [MELTANO, "run", *args, "ats-to-hris"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def hris_employees(sb: Sandbox) -> list[dict[str, Any]]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={
            "fields": [
                "id",
                "firstName",
                "lastName",
                "hireDate",
                "jobTitle",
                "department",
                "location",
                "workEmail",
                "homeEmail",
                "customATSCandidateID",
            ]
        },
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


def expected_hire(sb: Sandbox, cand: Candidate) -> dict[str, str]:
    (offer,) = sb.world.offers_for_candidate(cand.id)
    job = sb.world.job(offer.job_id)
    first = clean(cand.first_name)
    return {
        "firstName": first,
        "lastName": clean(cand.last_name) or first,
        "hireDate": offer.starts_on.isoformat() if offer.starts_on else "",
        "jobTitle": job.title,
        "department": sb.world.department(job.department_id).name,
        "location": sb.world.office(job.office_id).name,
    }


def test_ats_to_hris_creates_each_accepted_offer_once(
    e2e: tuple[Sandbox, dict[str, str], Path],
) -> None:
    sb, env, audit = e2e
    pending = sb.world.pending_hires()
    run_job(env, "--full-refresh")

    employees = hris_employees(sb)
    created = [e for e in employees if int(e["id"]) > sb.world.employees]
    by_candidate = {str(e["customATSCandidateID"]): e for e in created}
    assert len(created) == len(by_candidate) == len(pending)
    for cand in pending:
        got = by_candidate[str(cand.id)]
        want = expected_hire(sb, cand)
        assert {k: got[k] for k in want} == want
    # the already-hired candidates matched their existing employees: nothing rewritten
    assert outcomes(audit).get("created") == len(pending)
    assert outcomes(audit).get("updated", 0) == 0
    assert len(employees) == sb.world.employees + len(pending)

    # an incremental re-run finds nothing new and writes nothing
    mark = len(AuditLog.read(audit))
    run_job(env)
    assert len(hris_employees(sb)) == len(employees)
    assert "created" not in outcomes(audit, mark) and "updated" not in outcomes(audit, mark)


def test_changed_offer_updates_the_employee(e2e: tuple[Sandbox, dict[str, str], Path]) -> None:
    sb, env, audit = e2e
    cand = sb.world.pending_hires()[0]
    (offer,) = sb.world.offers_for_candidate(cand.id)
    assert offer.starts_on is not None
    new_start = offer.starts_on.replace(day=1)
    sb.world.update_offer(offer.id, starts_on=new_start)
    before = len(hris_employees(sb))
    mark = len(AuditLog.read(audit))
    run_job(env)
    after = hris_employees(sb)
    assert len(after) == before
    (emp,) = [e for e in after if str(e["customATSCandidateID"]) == str(cand.id)]
    assert emp["hireDate"] == new_start.isoformat()
    assert outcomes(audit, mark) == {"updated": 1}


def test_faults_are_retried_and_every_hire_arrives_once(tmp_path: Path) -> None:
    """429s, 5xx and dropped connections on both vendors: the job still converges."""
    with Sandbox(employees=40) as sb:
        # (decimal settings cannot come from the environment: Meltano 4.4.1 fails to serialise
        # them, so the default backoff base of 1 s applies here)
        env = meltano_env(sb, tmp_path)
        sb.faults.retry_after = 0
        sb.faults.rate_429, sb.faults.rate_5xx, sb.faults.rate_drop = 0.15, 0.1, 0.03
        run_job(env, "--full-refresh")
        sb.faults.reset()
        created = [e for e in hris_employees(sb) if int(e["id"]) > sb.world.employees]
        ids = [str(e["customATSCandidateID"]) for e in created]
        assert sorted(ids) == sorted(str(c.id) for c in sb.world.pending_hires())
        assert sum(sb.faults.injected.values()) >= 3  # the run really went through faults


def test_faults_past_the_budget_fail_the_run_with_a_specific_error(tmp_path: Path) -> None:
    with Sandbox(employees=20) as sb:
        env = meltano_env(sb, tmp_path) | {"TAP_GREENHOUSE_MAX_RETRIES": "3"}
        sb.faults.retry_after = 0
        sb.faults.rate_5xx = 1.0
        sb.faults.paths = "^/v3/"
        proc = subprocess.run(
            [MELTANO, "run", "ats-to-hris"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert proc.returncode != 0
        assert "failed after 3 attempts" in proc.stderr + proc.stdout
        assert sb.apps["bamboohr"].created == {}  # type: ignore[attr-defined]
