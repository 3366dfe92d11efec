"""`meltano run` of the hris-to-payroll job's file task: BambooHR sandbox -> map-hr ->
target-payroll-file -> a real sshd; the file that arrived is decrypted and checked."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests import projectkit

from hrsync.audit import AuditLog
from sandbox.bamboohr import payroll_tax_fields
from sandbox.demo import meltano_env
from sandbox.pgp import Recipient
from sandbox.server import Sandbox
from sandbox.sftp import Sshd, start_sshd, target_env

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
FILE_TASK = "tap-bamboohr map-bamboohr-to-canonical map-hris-to-payroll target-payroll-file"

Env = tuple[Sandbox, dict[str, str], Sshd, Recipient, Path]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("payroll-file")
    sshd = start_sshd(workdir / "sshd")
    recipient = Recipient.create()
    drop = sshd.upload_dir / "payroll"
    try:
        with Sandbox(employees=60, vendors=("bamboohr",)) as sb:
            env = (
                meltano_env(sb, workdir)
                | target_env("TARGET_PAYROLL_FILE", sshd, recipient.public_key, drop, workdir)
                | {
                    "HRSYNC_INTEGRATION": "hris-to-payroll",
                    "TARGET_PAYROLL_FILE_COMPANY_CODE": "ACME",
                }
            )
            yield sb, env, sshd, recipient, drop
    finally:
        sshd.stop()
        recipient.close()


def run_task(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, *FILE_TASK.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_the_job_has_the_file_task() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text("utf-8"))
    job = next(j for j in project["jobs"] if j["name"] == "hris-to-payroll")
    assert FILE_TASK in job["tasks"]


def test_the_file_carries_us_payroll_and_a_rerun_sends_nothing(feed: Env) -> None:
    sb, env, _sshd, recipient, drop = feed
    run_task(env, "--full-refresh")
    (name,) = [p.name for p in drop.iterdir()]
    assert name.startswith("payroll_ACME_") and name.endswith(".csv.pgp")
    rows = list(csv.DictReader(io.StringIO(recipient.decrypt_file(drop / name).decode("utf-8"))))
    people = {str(p.employee_id): p for p in sb.world.people()}
    us = {k for k, p in people.items() if payroll_tax_fields(p)["customWorkState"]}
    employees = {r["EMPLOYEE_ID"]: r for r in rows if r["RECORD_TYPE"] == "EMP"}
    assert set(employees) == us and us
    # the profile's population applies to every line: no job, pay, status or deduction line
    # of anyone outside US payroll (a foreign contractor, a UK employee) is in the file
    assert {r["EMPLOYEE_ID"] for r in rows} == us
    for key in us:
        person, row = people[key], employees[key]
        assert (row["FIRST_NAME"], row["LAST_NAME"]) == (person.first_name, person.last_name)
        assert row["SSN"] == (person.ssn or "").replace("-", "")
        assert row["HIRE_DATE"] == person.hire_date.isoformat()
        pay = {(r["EFFECTIVE_DATE"], r["PAY_RATE"]) for r in rows
               if r["RECORD_TYPE"] == "PAY" and r["EMPLOYEE_ID"] == key}  # fmt: skip
        usd = [x for x in person.positions if x.currency == "USD"]  # a US payroll pays USD
        for position in usd:  # two positions: two PAY lines
            assert (position.start_date.isoformat(), f"{position.pay_rate:.2f}") in pay
        if person.termination_date:  # a leaver: the termination line asks for final pay
            finals = [r for r in rows if r["EMPLOYEE_ID"] == key and r["FINAL_PAY"] == "Y"]
            assert person.termination_date.isoformat() in {r["EFFECTIVE_DATE"] for r in finals}
    rehired = [k for k in us if len(people[k].employments) > 1]
    assert rehired, "the seed has rehires"
    for key in rehired:
        assert employees[key]["HIRE_DATE"] == people[key].hire_date.isoformat()
    sent = [e for e in AuditLog.read(env["HRSYNC_AUDIT_LOG"]) if e["outcome"] == "sent"]
    assert [e["record_key"] for e in sent] == [name]
    assert (
        sent[0]["integration"] == "hris-to-payroll" and f"records={len(rows)}" in sent[0]["detail"]
    )

    # everything read again from the HRIS: every line was sent already, no second file
    run_task(env, "--full-refresh")
    assert [p.name for p in drop.iterdir()] == [name]
