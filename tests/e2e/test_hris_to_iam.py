"""`meltano run hris-to-iam` end to end: BambooHR sandbox -> map-hr x2 -> scim2-server and slapd."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import (
    DISABLED,
    GROUPS,
    PEOPLE,
    SUFFIX,
    ScimServer,
    Slapd,
    start_scim_server,
    start_slapd,
)
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
MANAGERS = f"cn=managers,{GROUPS}"

Env = tuple[Sandbox, dict[str, str], ScimServer, Slapd]


@pytest.fixture(scope="module")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("iam")
    scim, slapd = start_scim_server(), start_slapd(workdir / "slapd")
    try:
        with Sandbox(employees=60, vendors=("bamboohr",)) as sb:
            env = meltano_env(sb, workdir) | iam_env(scim, slapd, workdir)
            env["TARGET_LDAP_GROUP_RULES"] = second_title_rules(sb, env)
            yield sb, env, scim, slapd
    finally:
        scim.stop()
        slapd.stop()


def second_title_rules(sb: Sandbox, env: dict[str, str]) -> str:
    """The demo's group rules, plus cn=managers for the jobs (title and department) that
    people hold as their second position."""
    rules = [
        {"group": MANAGERS, "match": {"title": title, "department": department}}
        for title, department in second_jobs(sb)
    ]
    return json.dumps([*json.loads(env["TARGET_LDAP_GROUP_RULES"]), *rules])


def second_jobs(sb: Sandbox) -> set[tuple[str, str]]:
    return {
        (p.positions[1].job_title, p.positions[1].department)
        for p in sb.world.people()
        if len(p.positions) > 1
    }


def run_job(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [MELTANO, "run", *args, "hris-to-iam"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


def scim_users(scim: ScimServer) -> dict[str, dict[str, Any]]:
    body = requests.get(
        f"{scim.url('hrsync')}/Users",
        params={"count": 1000},
        headers={"Authorization": f"Bearer {scim.token}"},
        timeout=30,
    ).json()
    return {u["externalId"]: u for u in body.get("Resources", [])}


def ldap_people(slapd: Slapd, base: str = PEOPLE) -> dict[str, dict[str, Any]]:
    with slapd.connect() as conn:
        conn.search(base, "(objectClass=inetOrgPerson)", attributes=["*"])
        return {str(e.employeeNumber): e.entry_attributes_as_dict for e in conn.entries}


def test_joiners_and_leavers_reach_both_directories(iam: Env) -> None:
    sb, env, scim, slapd = iam
    logs = run_job(env, "--full-refresh")
    # the job's own view of BambooHR (tap-bamboohr-iam): people and positions only, so no pay,
    # status-history, deduction or deletion stream is read, mapped and then denied
    denied = set(re.findall(r"stream '(\w+)' is not in profile", logs))
    assert denied == {"position"}, denied  # the canonical positions hris_to_iam does not map
    synced = set(re.findall(r"Beginning sync of '(\w+)'", logs))  # singer-sdk, per stream
    assert synced == {"employees", "job_info"}, synced
    people = list(sb.world.people())
    today = sb.world.as_of
    # only people with a work e-mail get an account; leavers never get one created
    expected_active = {
        str(p.employee_id)
        for p in people
        if p.work_email and (p.termination_date is None or p.termination_date > today)
    }
    users = scim_users(scim)
    assert {k for k, u in users.items() if u["active"]} == expected_active
    zoe = users["1"]
    assert (zoe["name"]["givenName"], zoe["name"]["familyName"]) == ("Zoë", "O'Brien-Łukasiewicz")
    assert users["4"]["name"]["familyName"] == "王"
    ldap = ldap_people(slapd)
    assert set(ldap) == expected_active
    assert ldap["1"]["sn"] == ["O'Brien-Łukasiewicz"]
    # a second position reaches LDAP: its title, and the group only its title earns
    with slapd.connect() as conn:
        conn.search(MANAGERS, "(objectClass=*)", attributes=["member"])
        members = {str(m).lower() for m in conn.entries[0].entry_attributes_as_dict["member"]}
        conn.search(PEOPLE, "(objectClass=inetOrgPerson)", attributes=["employeeNumber"])
        dns = {str(e.employeeNumber): e.entry_dn.lower() for e in conn.entries}
    two = [p for p in people if len(p.positions) > 1 and str(p.employee_id) in expected_active]
    assert two, "the world should have an active employee with two positions"
    for p in two:
        key = str(p.employee_id)
        assert sorted(ldap[key]["title"]) == sorted(x.job_title for x in p.positions)
        assert dns[key] in members
        assert users[key]["title"] == p.positions[0].job_title  # SCIM: the primary one
    jobs = second_jobs(sb)
    holders = {
        dns[str(p.employee_id)]
        for p in people
        if str(p.employee_id) in expected_active
        and any((x.job_title, x.department) in jobs for x in p.positions)
    }
    assert members - {MANAGERS.lower()} == holders
    # no sensitive field reached either directory
    assert not any("ssn" in str(u).lower() or "birth" in str(u).lower() for u in users.values())


def test_leaver_is_deactivated_then_a_rerun_writes_nothing(iam: Env) -> None:
    sb, env, scim, slapd = iam
    leaver = next(
        p for p in sb.world.people() if p.work_email and p.status == "Active" and p.employee_id > 1
    )
    last = sb.world.person(leaver.employee_id)
    employment = last.employments[-1]
    ended = dataclasses.replace(employment, termination_date=sb.world.as_of - timedelta(days=1))
    sb.world.update_person(leaver.employee_id, employments=(*last.employments[:-1], ended))
    run_job(env)
    assert scim_users(scim)[str(leaver.employee_id)]["active"] is False
    assert str(leaver.employee_id) in ldap_people(slapd, DISABLED)
    assert str(leaver.employee_id) not in ldap_people(slapd)
    # nothing changed in the HRIS since: the next run writes nothing anywhere
    audit = Path(env["HRSYNC_AUDIT_LOG"])
    mark = len(AuditLog.read(audit))
    run_job(env)
    writes = [
        e for e in AuditLog.read(audit)[mark:] if e["outcome"] not in ("unchanged", "skipped")
    ]
    assert writes == []


def test_a_rehire_under_a_new_employee_id_keeps_one_account_in_both_directories(iam: Env) -> None:
    """HR terminates someone, frees their work e-mail and, later, rehires them under a new
    employee id with the same address: both directories keep the one account, re-keyed and
    active (before: SCIM failed the create, userName taken; LDAP made a second login)."""
    sb, env, scim, slapd = iam
    before = scim_users(scim)
    gone = next(
        p
        for p in sb.world.people()
        if p.work_email and p.employee_id > 2 and len(p.positions) == 1
        and before.get(str(p.employee_id), {}).get("active") is True
    )  # fmt: skip
    key, email = str(gone.employee_id), str(gone.work_email)
    last_day = sb.world.as_of - timedelta(days=1)
    ended = dataclasses.replace(gone.employments[-1], termination_date=last_day)
    sb.world.update_person(gone.employee_id, employments=(*gone.employments[:-1], ended))
    run_job(env)
    account = scim_users(scim)[key]
    assert account["active"] is False
    uid = ldap_people(slapd, DISABLED)[key]["uid"]

    api, creds = sb.info()["bamboohr"]["api_url"], (sb.credentials["bamboohr"]["api_key"], "x")
    freed = requests.post(f"{api}/employees/{key}", json={"workEmail": ""}, auth=creds, timeout=30)
    assert freed.status_code == 200, freed.text
    pos = gone.positions[0]
    hired = requests.post(
        f"{api}/employees",
        json={"firstName": gone.first_name, "lastName": gone.last_name, "workEmail": email,
              "hireDate": sb.world.as_of.isoformat(), "jobTitle": pos.job_title,
              "department": pos.department, "location": pos.location},
        auth=creds,
        timeout=30,
    )  # fmt: skip
    assert hired.status_code == 201, hired.text
    new_id = hired.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    run_job(env)  # one run of the job: both targets

    users = scim_users(scim)
    assert key not in users and users[new_id]["id"] == account["id"]
    assert users[new_id]["active"] is True and users[new_id]["userName"] == email
    assert [u for u in users.values() if u["userName"] == email] == [users[new_id]]
    ldap = ldap_people(slapd)
    assert ldap[new_id]["uid"] == uid and key not in ldap_people(slapd, DISABLED)
    with slapd.connect() as conn:
        conn.search(SUFFIX, f"(uid={uid[0]}*)", attributes=["uid"])
        assert len(conn.entries) == 1  # no second login
