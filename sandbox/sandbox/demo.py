"""``hrsync-sandbox demo``: every pipeline end to end against a fresh sandbox, with a summary.

Starts the sandbox in this process, runs each Meltano job twice (a full refresh, then an
incremental re-run that must write nothing), and prints what reached each destination, read
back from the destination's own API, plus the audit log's outcome counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hrsync.audit import AuditLog
from sandbox.benefits import carrier_env
from sandbox.cli import env_lines
from sandbox.directories import (
    ADMIN,
    DISABLED,
    GROUPS,
    PASSWORD,
    PEOPLE,
    ScimServer,
    Slapd,
    start_scim_server,
    start_slapd,
)
from sandbox.server import Sandbox
from sandbox.sftp import FileDrop, start_file_drop


@dataclass(frozen=True)
class Job:
    name: str
    description: str


JOBS = (
    Job("ats-to-hris", "accepted offers in Greenhouse -> new employees in BambooHR"),
    Job("lever-to-hris", "signed offers in Lever -> new employees in BambooHR"),
    Job(
        "hris-to-iam", "BambooHR joiners/movers/leavers -> SCIM 2.0 (scim2-server) and LDAP (slapd)"
    ),
    Job("hris-to-lms", "BambooHR workers -> Moodle users + compliance courses by rules"),
    Job(
        "hris-to-payroll",
        "BambooHR pay, tax, deductions, terminations -> Gusto API and a PGP file over SFTP",
    ),
    Job(
        "hris-to-benefits",
        "BambooHR enrolments, dependants, life events -> X12 834 (pyx12-valid), PGP + SFTP",
    ),
    Job(
        "survey-to-analytics",
        "SurveyMonkey responses + BambooHR segments (pseudonymised) -> DuckDB warehouse",
    ),
)


def iam_env(scim: ScimServer, slapd: Slapd, workdir: Path) -> dict[str, str]:
    """Settings that point target-scim and target-ldap at the local identity stores."""
    rules = [
        {"group": f"cn=engineering,{GROUPS}", "match": {"department": "Engineering"}},
        {"group": f"cn=sales,{GROUPS}", "match": {"department": "Sales"}},
        {"group": f"cn=all-staff,{GROUPS}", "match": {}},
    ]
    return {
        "TARGET_SCIM_BASE_URL": scim.url("hrsync"),
        "TARGET_SCIM_BEARER_TOKEN": scim.token,
        "TARGET_LDAP_URL": slapd.url,
        "TARGET_LDAP_BIND_DN": ADMIN,
        "TARGET_LDAP_BIND_PASSWORD": PASSWORD,
        "TARGET_LDAP_BASE_DN": PEOPLE,
        "TARGET_LDAP_MODE": "openldap",
        "TARGET_LDAP_DN_TEMPLATE": f"uid={{uid}},ou={{department}},{PEOPLE}",
        "TARGET_LDAP_DISABLED_OU": DISABLED,
        "TARGET_LDAP_GROUP_RULES": json.dumps(rules),
        # the read-back taps (hrsync reconcile) read what the targets wrote
        "TAP_SCIM_BASE_URL": scim.url("hrsync"),
        "TAP_SCIM_BEARER_TOKEN": scim.token,
        "TAP_LDAP_URL": slapd.url,
        "TAP_LDAP_BIND_DN": ADMIN,
        "TAP_LDAP_BIND_PASSWORD": PASSWORD,
        "TAP_LDAP_BASE_DN": PEOPLE,
        "TAP_LDAP_GROUPS_BASE_DN": GROUPS,
        "TAP_LDAP_MODE": "openldap",
        "TAP_LDAP_DISABLED_OU": DISABLED,
    }


def demo_sealing_key(workdir: Path) -> str:
    """The demo's sealing passphrase: generated once per work folder, kept 0600 beside it."""
    path = workdir / "sealing.key"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
    return path.read_text("utf-8").strip()


def meltano_env(sandbox: Sandbox, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for line in env_lines(sandbox.info()):
        name, _, value = line.partition("=")
        env[name] = value
    env.update(
        {
            # a private system database: demo state never mixes with a real project's state
            "MELTANO_DATABASE_URI": f"sqlite:///{(workdir / 'meltano.db').resolve()}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "HRSYNC_AUDIT_LOG": str((workdir / "audit.jsonl").resolve()),
            "HRSYNC_DLQ_PATH": str((workdir / "deadletters.sqlite").resolve()),
            # dead letters hold personal data: sealed with a key generated for this demo
            "HRSYNC_DLQ_KEY": env.get("HRSYNC_DLQ_KEY") or demo_sealing_key(workdir),
            "TARGET_WAREHOUSE_DATABASE": str((workdir / "warehouse.duckdb").resolve()),
            # e-mail collectors link respondents by address (pseudonymised by map-hr at once)
            "TAP_SURVEYMONKEY_INCLUDE_RESPONDENT_EMAIL": "true",
            "MAP_HR_STATE_DIR": str((workdir / "map-hr").resolve()),
            "TARGET_MOODLE_STATE_PATH": str((workdir / "target-moodle-state.sqlite").resolve()),
            # demo-only key; a real deployment sets its own secret in .env
            "MAP_HR_HMAC_KEY": env.get("MAP_HR_HMAC_KEY", "hrsync-demo-key-not-for-production"),
        }
    )
    return env


def _run(job: str, env: dict[str, str], log: Path, *, full_refresh: bool) -> tuple[int, float]:
    cmd = ["meltano", "run", *(["--full-refresh"] if full_refresh else []), job]
    env = {**env, "HRSYNC_INTEGRATION": job}  # Meltano does not tell plugins the job's name
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        code = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    return code.returncode, time.monotonic() - started


def _outcomes(audit_path: Path, since: int) -> Counter[str]:
    events = AuditLog.read(audit_path)[since:] if audit_path.exists() else []
    return Counter(str(e["outcome"]) for e in events)


def _hris_new_hires(sandbox: Sandbox) -> list[dict[str, str]]:
    """Employees the job created, read back through BambooHR's documented directory API."""
    creds = sandbox.credentials["bamboohr"]
    resp = requests.post(
        f"{sandbox.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "firstName", "lastName", "hireDate", "jobTitle", "location"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return [e for e in resp.json()["employees"] if int(e["id"]) > sandbox.world.employees]


def _iam_summary(scim: ScimServer, slapd: Slapd) -> list[str]:
    users = requests.get(
        f"{scim.url('hrsync')}/Users",
        params={"count": 1000},
        headers={"Authorization": f"Bearer {scim.token}"},
        timeout=30,
    ).json()
    resources = users.get("Resources", [])
    active = sum(1 for u in resources if u.get("active") in (True, "true", "True"))
    with slapd.connect() as conn:
        conn.search(PEOPLE, "(objectClass=inetOrgPerson)", attributes=["uid"])
        enabled = len(conn.entries)
        conn.search(DISABLED, "(objectClass=inetOrgPerson)", attributes=["uid"])
        disabled = len(conn.entries)
    return [
        f"  SCIM users: {users.get('totalResults', len(resources))} ({active} active)",
        f"  LDAP people: {enabled} enabled under {PEOPLE}, {disabled} in {DISABLED}",
    ]


def _lms_summary(sandbox: Sandbox) -> list[str]:
    """Moodle users and course enrolments, read back through Moodle's web services."""
    url = f"{sandbox.url('moodle')}/webservice/rest/server.php"
    token = sandbox.credentials["moodle"]["token"]

    def call(function: str, **args: str) -> Any:
        data = {"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **args}
        return requests.post(url, data=data, timeout=30).json()

    criteria = {"criteria[0][key]": "auth", "criteria[0][value]": "manual"}
    users = [u for u in call("core_user_get_users", **criteria)["users"] if u.get("idnumber")]
    suspended = sum(1 for u in users if u.get("suspended"))
    lines = [f"  Moodle users: {len(users)} ({suspended} suspended)"]
    for course in call("core_course_get_courses"):
        if course["id"] == 1:
            continue
        enrolled = call(
            "core_enrol_get_enrolled_users",
            courseid=str(course["id"]),
            **{"options[0][name]": "onlyactive", "options[0][value]": "1"},
        )
        if enrolled:
            lines.append(f"    {len(enrolled):>5}  {course['fullname']}")
    return lines


def _engagement_summary(workdir: Path) -> str:
    """``hrsync report engagement`` by department on what the job loaded."""
    from hrsync_ops.report import ReportError, engagement, to_markdown, write_outputs

    database = workdir / "warehouse.duckdb"
    if not database.exists():
        return "  engagement report: no warehouse (the job did not load anything)"
    try:
        reports = engagement(database, [("department",)])
    except ReportError as exc:
        return f"  engagement report: {exc}"
    write_outputs(reports, workdir / "reports")
    table = to_markdown(reports[0]).rstrip().splitlines()
    lines = [f"  {line}" if line else "" for line in table]
    return "\n".join([*lines, f"  (table, CSV and chart in {workdir}/reports)"])


def run_demo(*, employees: int, seed: int, workdir: Path) -> int:
    if shutil.which("meltano") is None:
        print("meltano is not on PATH: run scripts/demo (it installs everything)", file=sys.stderr)
        return 2
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    scim = start_scim_server()
    slapd = start_slapd(workdir / "slapd")
    drop = start_file_drop(workdir / "sftp")  # a real sshd + PGP recipient for file feeds
    try:
        return _run_jobs(employees, seed, workdir, scim, slapd, drop)
    finally:
        scim.stop()
        slapd.stop()
        drop.stop()


def _reconcile(env: dict[str, str], workdir: Path, as_of: object) -> bool:
    """The reconcile job (every destination read back into DuckDB) and `hrsync reconcile`'s
    report on it; True if either could not run (drift found is a finding, not a failure)."""
    database = workdir / "reconcile.duckdb"
    env = {**env, "HRSYNC_RECONCILE_DB": str(database)}
    for loader in ("RECONCILE", "SCIM", "LDAP", "MOODLE", "GUSTO"):
        env[f"TARGET_WAREHOUSE_{loader}_DATABASE"] = str(database)
    database.unlink(missing_ok=True)
    log = workdir / "reconcile.log"
    print("== reconcile: what SCIM, LDAP, Moodle and Gusto hold, against the HRIS")
    code, seconds = _run("reconcile", env, log, full_refresh=True)
    state = "ok" if code == 0 else f"FAILED (exit {code}, see {log})"
    print(f"  read back {state}  {seconds:.1f} s")
    if code != 0:
        return True
    report = subprocess.run(
        ["hrsync", "reconcile", "--out", str(workdir / "reconcile"), f"--as-of={as_of}"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    database.unlink(missing_ok=True)  # names and work addresses: not kept
    for line in report.stdout.splitlines()[:12]:
        print(f"  {line}")
    print()
    return report.returncode not in (0, 3)  # 3: drift found, listed in the report


def _run_jobs(
    employees: int, seed: int, workdir: Path, scim: ScimServer, slapd: Slapd, drop: FileDrop
) -> int:
    audit_path = workdir / "audit.jsonl"
    failed = False
    with Sandbox(employees=employees, seed=seed) as sandbox:
        env = meltano_env(sandbox, workdir) | iam_env(scim, slapd, workdir)
        env |= drop.env("TARGET_PAYROLL_FILE", "payroll")
        env |= drop.env("TARGET_BENEFITS_834", "benefits") | carrier_env(workdir)
        world = sandbox.world
        # one full payroll refresh is a few reads per employee: more than Gusto's 200 per minute
        sandbox.apps["gusto"].rate_limit = 100_000  # type: ignore[attr-defined]
        print(
            f"hrsync demo — sandbox with {world.employees} employees, {world.candidates} "
            f"candidates, {len(world.pending_hires())} accepted offers not yet in the HRIS"
        )
        print(f"  Greenhouse {sandbox.greenhouse_url}/v3   BambooHR {sandbox.bamboohr_url}/api/v1")
        print(f"  logs: {workdir}/<job>.log   audit log: {audit_path}\n")
        for job in JOBS:
            log = workdir / f"{job.name}.log"
            print(f"== {job.name}: {job.description}")
            for label, full in (("first run", True), ("re-run", False)):
                mark = len(AuditLog.read(audit_path)) if audit_path.exists() else 0
                code, seconds = _run(job.name, env, log, full_refresh=full)
                outcomes = _outcomes(audit_path, mark)
                status = "ok" if code == 0 else f"FAILED (exit {code}, see {log})"
                counts = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) or "no writes"
                print(f"  {label:<9} {status:<6} {seconds:6.1f} s   {counts}")
                failed |= code != 0
            if job.name == "hris-to-iam":
                print("\n".join(_iam_summary(scim, slapd)))
            if job.name == "hris-to-payroll":
                print("\n".join(drop.summary("payroll")))
            if job.name == "hris-to-benefits":
                print("\n".join(drop.summary("benefits")))
            if job.name == "survey-to-analytics":
                print(_engagement_summary(workdir))
            if job.name == "hris-to-lms":
                print("\n".join(_lms_summary(sandbox)))
            if job.name == "ats-to-hris":
                hires = _hris_new_hires(sandbox)
                print(f"  new employees now in BambooHR: {len(hires)}")
                for e in hires[:10]:
                    name = f"{e['firstName']} {e['lastName']}"
                    print(
                        f"    #{e['id']:<6} {name:<32} hired {e['hireDate']}  "
                        f"{e.get('jobTitle') or ''} @ {e.get('location') or ''}"
                    )
                if len(hires) > 10:
                    print(f"    ... and {len(hires) - 10} more")
            print()
        failed |= _reconcile(env, workdir, world.as_of)
    print("demo " + ("FAILED" if failed else "finished: every job ran end to end"))
    return 1 if failed else 0
