"""The HRIS swap end to end: `hris-to-iam@hibob`, `hris-to-lms@hibob`, `hris-to-payroll@hibob`
and `survey-to-analytics@hibob` run from the HiBob fake, through map-hibob-to-canonical and the
unchanged downstream profiles and targets, and their destinations hold what the BambooHR jobs'
tests expect of the same world. Each job runs once (a module fixture); the leaver test adds one
incremental re-run of the IAM job, and the last test runs `ats-to-hibob` twice (new hires
written into HiBob by target-hibob).

HiBob keeps one effective work entry per employee, so workers hold their primary position only:
where the BambooHR tests expect a second position's title, group or course, these expect none.
Its salary table holds the primary position's base pay, and its public API has no deductions
(nor dependants or benefit elections: there is no hris-to-benefits@hibob).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.e2e.test_ats_to_hris import expected_hire, outcomes
from tests.e2e.test_hris_to_iam import MELTANO, ROOT, ldap_people, scim_users
from tests.e2e.test_hris_to_lms import courses, private_run_dir, rules_with_finance, users
from tests.e2e.test_survey_to_analytics import query

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.pseudonym import Pseudonymizer
from sandbox.bamboohr import payroll_tax_fields
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import DISABLED, ScimServer, Slapd, start_scim_server, start_slapd
from sandbox.hibob import CANDIDATE_FIELD, HiBob
from sandbox.server import Sandbox
from sandbox.sftp import FileDrop, start_file_drop

pytestmark = pytest.mark.meltano

JOBS = (
    "hris-to-iam@hibob",
    "hris-to-lms@hibob",
    "hris-to-payroll@hibob",
    "survey-to-analytics@hibob",
)

Env = tuple[Sandbox, dict[str, str], ScimServer, Slapd]


def run_job(env: dict[str, str], job: str, *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, job],
        cwd=ROOT,
        env={**env, "HRSYNC_INTEGRATION": job},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDrop]:
    """The payroll provider's SFTP drop (a real sshd) and its PGP key."""
    files = start_file_drop(tmp_path_factory.mktemp("hibob-drop"))
    try:
        yield files
    finally:
        files.stop()


@pytest.fixture(scope="module")
def swap(tmp_path_factory: pytest.TempPathFactory, drop: FileDrop) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("hibob-swap")
    scim, slapd = start_scim_server(), start_slapd(workdir / "slapd")
    vendors = ("hibob", "moodle", "surveymonkey", "greenhouse", "gusto")
    try:
        with Sandbox(employees=60, vendors=vendors) as sb:
            sb.apps["gusto"].rate_limit = 100_000  # type: ignore[attr-defined]
            env = meltano_env(sb, workdir) | iam_env(scim, slapd, workdir)
            env |= private_run_dir(workdir)
            env |= drop.env("TARGET_PAYROLL_FILE", "payroll")
            env["TARGET_PAYROLL_FILE_COMPANY_CODE"] = "ACME"
            env["TARGET_PAYROLL_API_TOKEN_FILE"] = str(workdir / "gusto-token.json")
            env["TARGET_MOODLE_RULES_PATH"] = str(rules_with_finance(workdir))
            for job in JOBS:
                run_job(env, job, "--full-refresh")
            yield sb, env, scim, slapd
    finally:
        scim.stop()
        slapd.stop()


def current_ids(sb: Sandbox) -> set[str]:
    today = sb.world.as_of
    return {
        str(p.employee_id)
        for p in sb.world.people()
        if p.work_email and (p.termination_date is None or p.termination_date > today)
    }


def test_joiners_and_leavers_reach_both_directories_from_hibob(swap: Env) -> None:
    sb, _, scim, slapd = swap
    expected_active = current_ids(sb)
    accounts = scim_users(scim)
    assert {k for k, u in accounts.items() if u["active"]} == expected_active
    zoe = accounts["1"]
    assert (zoe["name"]["givenName"], zoe["name"]["familyName"]) == ("Zoë", "O'Brien-Łukasiewicz")
    assert accounts["4"]["name"]["familyName"] == "王"
    ldap = ldap_people(slapd)
    assert set(ldap) == expected_active
    assert ldap["1"]["sn"] == ["O'Brien-Łukasiewicz"]
    for p in sb.world.people():
        key = str(p.employee_id)
        if key in expected_active:
            assert ldap[key]["title"] == [p.positions[0].job_title]  # the primary one only
            assert accounts[key]["title"] == p.positions[0].job_title
    assert not any("ssn" in str(u).lower() or "birth" in str(u).lower() for u in accounts.values())


def test_workers_reach_moodle_with_their_compliance_courses_from_hibob(swap: Env) -> None:
    sb = swap[0]
    current = current_ids(sb)
    active = {k for k, u in users(sb).items() if not u["suspended"]}
    assert active == current
    zoe = users(sb)["1"]
    assert (zoe["firstname"], zoe["lastname"]) == ("Zoë", "O'Brien-Łukasiewicz")
    people = {str(p.employee_id): p for p in sb.world.people()}
    for wid in current:
        held = courses(sb, wid)
        assert {2, 3} <= held  # everyone's courses
        primary = people[wid].positions[0]
        if primary.location == "Berlin":
            assert {7, 8} <= held
        # course 11 comes with Finance or Sales: the primary position's, as HiBob holds one
        assert (11 in held) == (primary.department in ("Finance", "Sales")), wid
    assert 10 in courses(sb, "1")  # person 1 has reports in every world: the manager course
    assert not any("ssn" in str(u).lower() or "1960" in str(u) for u in users(sb).values())


def test_hris_segments_land_pseudonymised_from_hibob(swap: Env) -> None:
    sb, env, _, _ = swap
    keyed = Pseudonymizer(env["MAP_HR_HMAC_KEY"]).context("analytics")
    rows = {
        r[0]: r
        for r in query(
            Path(env["TARGET_WAREHOUSE_DATABASE"]),
            "SELECT employee_key, email_key, department, location, manager_key, hire_month "
            "FROM employees",
        )
    }
    people = list(sb.world.people())
    assert set(rows) == {keyed(str(p.employee_id)) for p in people}
    for p in people:
        pos = p.positions[0]
        assert rows[keyed(str(p.employee_id))] == (
            keyed(str(p.employee_id)),
            keyed(p.work_email.lower()) if p.work_email else None,
            pos.department,
            pos.location,
            keyed(str(pos.reports_to)) if pos.reports_to else None,
            p.hire_date.isoformat()[:7],
        ), p.employee_id
    responses = query(
        Path(env["TARGET_WAREHOUSE_DATABASE"]), "SELECT count(*) FROM survey_responses"
    )
    assert responses[0][0] > 0


def us_payroll(sb: Sandbox) -> dict[str, Any]:
    return {
        str(p.employee_id): p for p in sb.world.people() if payroll_tax_fields(p)["customWorkState"]
    }


def test_us_payroll_reaches_gusto_from_hibob(swap: Env) -> None:
    """The same US payroll employees as from BambooHR (tests/e2e/test_hris_to_payroll.py), with
    their W-4 filing status, each employment's base pay at its start, terminations with the
    final pay run and rehires; no deductions (HiBob's API has none) and nothing else."""
    sb = swap[0]
    people = us_payroll(sb)
    state = requests.get(f"{sb.url('gusto')}/_sandbox/gusto/state", timeout=30).json()
    employees = state["employees"]
    assert set(employees) == set(people) and people
    for key, person in people.items():
        emp = employees[key]
        assert (emp["first_name"], emp["last_name"]) == (person.first_name, person.last_name)
        assert emp["ssn_on_file"] == bool(person.ssn)
        tax = payroll_tax_fields(person)
        assert emp["federal_taxes"]["filing_status"] == tax["customFederalFilingStatus"]
        held = {(c["effective_date"], c["rate"]) for j in emp["jobs"] for c in j["compensations"]}
        paid = {
            (e.positions[0].start_date.isoformat(), f"{e.positions[0].pay_rate:.2f}")
            for e in person.employments
            if e.positions[0].currency == "USD"
        }
        assert held == paid, key
        ends = sorted(
            e.termination_date.isoformat() for e in person.employments if e.termination_date
        )
        assert sorted(t["effective_date"] for t in emp["terminations"]) == ends
        assert all(t["run_termination_payroll"] for t in emp["terminations"])
        rehired = [e.hire_date.isoformat() for e in person.employments[1:]]
        assert [r["effective_date"] for r in emp["rehires"]] == rehired
        assert emp["employee_benefits"] == []
    assert any(len(p.employments) > 1 for p in people.values()), "the world has a US rehire"
    text = str(employees)
    assert "gender" not in text and "address" not in text and "phone" not in text.lower()


def test_the_payroll_file_from_hibob_carries_us_payroll_only(swap: Env, drop: FileDrop) -> None:
    sb = swap[0]
    people = us_payroll(sb)
    (sent,) = (drop.sshd.upload_dir / "payroll").iterdir()
    text = drop.recipient.decrypt_file(sent).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["EMPLOYEE_ID"] for r in rows} == set(people)
    employees = {r["EMPLOYEE_ID"]: r for r in rows if r["RECORD_TYPE"] == "EMP"}
    for key, person in people.items():
        assert employees[key]["SSN"] == (person.ssn or "").replace("-", "")
        assert employees[key]["HIRE_DATE"] == person.hire_date.isoformat()
        pay = {(r["EFFECTIVE_DATE"], r["PAY_RATE"]) for r in rows
               if r["RECORD_TYPE"] == "PAY" and r["EMPLOYEE_ID"] == key}  # fmt: skip
        assert pay == {
            (e.positions[0].start_date.isoformat(), f"{e.positions[0].pay_rate:.2f}")
            for e in person.employments
            if e.positions[0].currency == "USD"
        }


def test_a_leaver_is_deactivated_and_nobody_else_is_written(swap: Env) -> None:
    """HiBob has no change feed: every run reads everyone, and the targets write only what
    changed (here one leaver, in both directories, and their reports' manager in LDAP)."""
    sb, env, scim, slapd = swap
    leaver = next(
        p for p in sb.world.people() if p.work_email and p.status == "Active" and p.employee_id > 1
    )
    key = str(leaver.employee_id)
    current = current_ids(sb)
    ended = dataclasses.replace(
        leaver.employments[-1], termination_date=sb.world.as_of - timedelta(days=1)
    )
    sb.world.update_person(leaver.employee_id, employments=(*leaver.employments[:-1], ended))
    audit = Path(env["HRSYNC_AUDIT_LOG"])
    mark = len(AuditLog.read(audit))
    run_job(env, "hris-to-iam@hibob")
    assert scim_users(scim)[key]["active"] is False
    assert key in ldap_people(slapd, DISABLED) and key not in ldap_people(slapd)
    writes = {
        e["record_key"]
        for e in AuditLog.read(audit)[mark:]
        if e["outcome"] not in ("unchanged", "skipped")
    }
    # the leaver, and in LDAP the people who report to them (their manager's DN moved)
    reports = {
        str(p.employee_id)
        for p in sb.world.people()
        if p.positions[0].reports_to == leaver.employee_id and str(p.employee_id) in current
    }
    assert key in writes and writes <= {key} | reports


def test_accepted_offers_become_hibob_employees_once_they_have_a_work_email(swap: Env) -> None:
    """HiBob requires the work e-mail to create an employee: a hire whose address IT has not
    made yet waits as a dead letter naming root.email, and is created by a run after it is
    added; hires already written are left alone, seeded hires are matched, not duplicated."""
    sb, env, _, _ = swap
    hibob = sb.apps["hibob"]
    assert isinstance(hibob, HiBob)
    pending = sb.world.pending_hires()
    first, later = pending[: len(pending) // 2], pending[len(pending) // 2 :]
    assert first and later
    for cand in first:
        sb.world.update_candidate(cand.id, work_email=f"hire.{cand.id}@acme.example")
    audit = Path(env["HRSYNC_AUDIT_LOG"])
    mark = len(AuditLog.read(audit))
    run_job(env, "ats-to-hibob", "--full-refresh")
    field = CANDIDATE_FIELD.rsplit(".", 1)[1]

    def created() -> dict[str, dict[str, object]]:
        docs = (hibob.employee(e) for e in hibob.created)
        return {str(d["work"]["custom"][field]): d for d in docs}  # type: ignore[index]

    assert set(created()) == {str(c.id) for c in first}
    counts = outcomes(audit, mark)
    assert counts.get("created") == len(first) and "updated" not in counts
    waiting = {dl.record_key: dl for dl in DeadLetterStore(env["HRSYNC_DLQ_PATH"]).list()}
    assert set(waiting) >= {str(c.id) for c in later}
    assert all("root.email" in waiting[str(c.id)].error for c in later)

    for cand in later:
        sb.world.update_candidate(cand.id, work_email=f"hire.{cand.id}@acme.example")
    mark = len(AuditLog.read(audit))
    # a full read: the offers did not change (only the candidates' addresses), and an
    # incremental run re-reads changed offers only
    run_job(env, "ats-to-hibob", "--full-refresh")
    hires = created()
    assert set(hires) == {str(c.id) for c in pending}  # each once
    for cand in pending:
        want = expected_hire(sb, cand)
        doc: dict = hires[str(cand.id)]  # type: ignore[type-arg]
        got = {
            "firstName": doc["firstName"],
            "lastName": doc["surname"],
            "hireDate": doc["work"]["startDate"],
            "jobTitle": doc["work"]["title"],
            "department": doc["work"]["department"],
            "location": doc["work"]["site"],
        }
        assert got == want
        assert doc["email"] == f"hire.{cand.id}@acme.example"
    assert outcomes(audit, mark).get("created") == len(later)
    assert "updated" not in outcomes(audit, mark)
    left = {dl.record_key for dl in DeadLetterStore(env["HRSYNC_DLQ_PATH"]).list()}
    assert not left & {str(c.id) for c in pending}
