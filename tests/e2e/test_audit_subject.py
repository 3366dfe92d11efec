"""A person hired through Greenhouse, then provisioned (SCIM), enrolled (Moodle) and paid
(Gusto), all by real `meltano run`s against the sandbox: `hrsync audit subject` lists each of
their transfers across the jobs, by keyed reference only, and nothing of anybody else."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog, verify
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import ScimServer, Slapd, start_scim_server, start_slapd
from sandbox.gusto import Gusto
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
HRSYNC = str(Path(sys.executable).parent / "hrsync")

TASKS = {
    "ats-to-hris": "tap-greenhouse map-ats-to-hris target-bamboohr",
    "hris-to-iam": "tap-bamboohr-iam map-bamboohr-to-canonical map-hris-to-iam target-scim",
    "hris-to-lms": "tap-bamboohr map-bamboohr-to-canonical map-hris-to-lms target-moodle",
    "hris-to-payroll": (
        "tap-bamboohr map-bamboohr-to-canonical map-hris-to-payroll target-payroll-api"
    ),
}

Env = tuple[Sandbox, dict[str, str], Path]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("subject")
    scim: ScimServer = start_scim_server()
    slapd: Slapd = start_slapd(workdir / "slapd")
    try:
        vendors = ("greenhouse", "bamboohr", "moodle", "gusto")
        with Sandbox(employees=30, vendors=vendors) as sb:
            gusto = sb.apps["gusto"]
            assert isinstance(gusto, Gusto)
            gusto.rate_limit = 100_000
            sys_dir = workdir / "meltano-sys"
            sys_dir.mkdir()
            for kind in ("extractors", "mappers", "loaders"):
                (sys_dir / kind).symlink_to(ROOT / ".meltano" / kind)
            env = (
                meltano_env(sb, workdir)
                | iam_env(scim, slapd, workdir)
                | {
                    "MELTANO_SYS_DIR_ROOT": str(sys_dir),
                    "HRSYNC_DLQ_PATH": str(workdir / "dlq.sqlite"),
                    "TARGET_MOODLE_STATE_PATH": str(workdir / "moodle.sqlite"),
                    "TARGET_PAYROLL_API_TOKEN_FILE": str(workdir / "gusto-token.json"),
                    "HRSYNC_AUDIT_KEY": "e2e-audit-checkpoint-key-0123456789",
                    "HRSYNC_OPS_FILE": str(workdir / "hrsync.yml"),
                }
            )
            (workdir / "hrsync.yml").write_text("retention: {dead_letters: 30d}\n")
            yield sb, env, Path(env["HRSYNC_AUDIT_LOG"])
    finally:
        scim.stop()
        slapd.stop()


def run(env: dict[str, str], job: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", "--full-refresh", *TASKS[job].split()],
        cwd=ROOT,
        env={**env, "HRSYNC_INTEGRATION": job},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def bamboohr(sb: Sandbox, method: str, path: str, **kw: Any) -> requests.Response:
    creds = sb.credentials["bamboohr"]
    resp = requests.request(
        method,
        f"{sb.bamboohr_url}/api/v1{path}",
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
        **kw,
    )
    resp.raise_for_status()
    return resp


def subject(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [HRSYNC, "audit", "subject", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_a_hire_is_traced_across_every_job(world: Env) -> None:
    sb, env, audit = world
    run(env, "ats-to-hris")
    report = bamboohr(
        sb,
        "POST",
        "/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "customATSCandidateID", "hireDate"]},
    ).json()["employees"]
    hires = {
        str(e["customATSCandidateID"]): str(e["id"])
        for e in report
        if e.get("customATSCandidateID")
    }
    created = [e for e in AuditLog.read(audit) if e["outcome"] == "created"]
    assert created, "the sandbox should have pending hires"
    candidate = str(created[0]["record_key"])
    employee = hires[candidate]
    # IT gives the new hire a work address, payroll a work state (US payroll's population),
    # and the start date arrives: now every job has them
    bamboohr(
        sb,
        "POST",
        f"/employees/{employee}",
        json={
            "workEmail": f"new.hire.{employee}@example.com",
            "hireDate": "2020-01-06",
            "customWorkState": "CA",
        },
    )
    for job in ("hris-to-iam", "hris-to-lms", "hris-to-payroll"):
        run(env, job)

    events = AuditLog.read(audit)
    # the person's events, found independently by the raw keys each stream uses
    theirs = [
        e
        for e in events
        if (e["job"] == "ats-to-hris" and e["record_key"] == candidate)
        or (e["job"] != "ats-to-hris" and str(e["record_key"]).split(":")[0] == employee)
    ]
    assert {e["job"] for e in theirs} == set(TASKS), {e["job"] for e in theirs}
    for e in events:  # no raw id of the person outside the record key
        assert employee not in {e["subject"], *e["links"]}
    by_employee = subject(env, employee)
    by_candidate = subject(env, candidate, "--candidate")
    assert by_employee["transfers"] == by_candidate["transfers"]
    listed = by_employee["transfers"]
    assert [(t["when"], t["job"], t["outcome"]) for t in listed] == [
        (e["ts"], e["job"], e["outcome"]) for e in theirs
    ]  # each transfer of theirs, and nothing of anybody else
    for t in listed:
        assert t["processor"] and t["legal_basis"] and t["destination"]
        assert t["legal_basis"].startswith("Art. 6(1)")
    payroll = next(t for t in listed if t["job"] == "hris-to-payroll")
    assert payroll["processor"].startswith("Gusto") and "Art. 9(2)(b)" in payroll["legal_basis"]
    # Markdown too, and the chain the four pipelines wrote verifies
    proc = subprocess.run(
        [HRSYNC, "audit", "subject", employee], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and f"# Transfers of employee {employee}" in proc.stdout
    assert proc.stdout.count("| hris-to-") + proc.stdout.count("| ats-to-hris") >= len(listed)
    assert verify(audit, key=env["HRSYNC_AUDIT_KEY"].encode()).ok
