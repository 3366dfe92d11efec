"""`meltano run` of the hris-to-payroll job's API task: BambooHR sandbox -> map-hr -> Gusto fake."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from tests import projectkit

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.bamboohr import DEDUCTIONS_TABLE, payroll_tax_fields, table_rows
from sandbox.demo import meltano_env
from sandbox.gusto import Gusto
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
API_TASK = "tap-bamboohr map-bamboohr-to-canonical map-hris-to-payroll target-payroll-api"


Env = tuple[Sandbox, dict[str, str]]


@pytest.fixture(scope="module")
def payroll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("payroll")
    with Sandbox(employees=60, vendors=("bamboohr", "gusto")) as sb:
        gusto = sb.apps["gusto"]
        assert isinstance(gusto, Gusto)
        gusto.rate_limit = 100_000  # one run is ~250 requests; the limit has its own tests
        # a private Meltano system dir (run files, state) sharing the installed plugin venvs:
        # other `meltano run`s in this checkout cannot clobber this run's config files
        sys_dir = workdir / "meltano-sys"
        sys_dir.mkdir()
        for kind in ("extractors", "mappers", "loaders"):
            (sys_dir / kind).symlink_to(ROOT / ".meltano" / kind)
        env = meltano_env(sb, workdir) | {
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "HRSYNC_INTEGRATION": "hris-to-payroll",
            "HRSYNC_DLQ_PATH": str(workdir / "dlq.sqlite"),
            "TARGET_PAYROLL_API_TOKEN_FILE": str(workdir / "gusto-token.json"),
        }
        yield sb, env


def test_the_job_starts_with_the_api_task() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text("utf-8"))
    job = next(j for j in project["jobs"] if j["name"] == "hris-to-payroll")
    assert job["tasks"][0] == API_TASK


def run_task(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, *API_TASK.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def gusto_state(sb: Sandbox) -> dict[str, Any]:
    return requests.get(f"{sb.url('gusto')}/_sandbox/gusto/state", timeout=30).json()


def test_payroll_gets_us_employees_pay_tax_terminations_and_rehires(payroll: Env) -> None:
    sb, env = payroll
    run_task(env, "--full-refresh")
    people = {str(p.employee_id): p for p in sb.world.people()}
    us = {k for k, p in people.items() if payroll_tax_fields(p)["customWorkState"]}
    state = gusto_state(sb)["employees"]
    assert set(state) == us and us
    letters: dict[str, list[str]] = {}
    for letter in DeadLetterStore(env["HRSYNC_DLQ_PATH"]).list(plugin="target-payroll-api"):
        assert letter.stream == "payroll_jobs", letter.error
        assert "field location: is not a work location" in letter.error
        letters.setdefault(letter.record_key.split(":")[0], []).append(letter.error)
    for key in us:
        person, emp = people[key], state[key]
        assert (emp["first_name"], emp["last_name"]) == (person.first_name, person.last_name)
        assert emp["ssn_on_file"] == bool(person.ssn)
        # pay: every current US position is a job with its compensation at its effective date
        held = {(c["effective_date"], c["rate"]) for j in emp["jobs"] for c in j["compensations"]}
        usd = [p for p in person.positions if p.currency == "USD"]
        for pos in usd:
            assert (pos.start_date.isoformat(), f"{pos.pay_rate:.2f}") in held
        assert len(emp["jobs"]) == len({(p.job_title, p.location) for p in usd})
        # a position abroad is not silently dropped: it waits in the dead-letter store
        abroad = len(person.positions) - len(usd)
        assert len(letters.get(key, [])) == abroad * len(person.employments)
        # terminations, with the final pay run, and rehires
        ends = sorted(
            e.termination_date.isoformat() for e in person.employments if e.termination_date
        )
        assert sorted(t["effective_date"] for t in emp["terminations"]) == ends
        assert all(t["run_termination_payroll"] for t in emp["terminations"])
        rehired = [e.hire_date.isoformat() for e in person.employments[1:]]
        assert [r["effective_date"] for r in emp["rehires"]] == rehired
        # deductions: one employee benefit per deduction row, percent or per pay period
        rows = table_rows(person, DEDUCTIONS_TABLE)
        benefits = {
            (b["effective_date"], b["employee_deduction"], b["deduct_as_percentage"])
            for b in emp["employee_benefits"]
        }
        assert benefits == {
            (r["date"], f"{float(r['amount']):.2f}", r["amountType"] == "Percent") for r in rows
        }
        tax = payroll_tax_fields(person)
        assert emp["federal_taxes"]["filing_status"] == tax["customFederalFilingStatus"]
    assert any(len(people[k].employments) > 1 for k in us), "the world has a US rehire"
    assert any(len(people[k].positions) > 1 for k in us), "the world has two positions"
    # nothing payroll does not need reached it
    text = str(state)
    assert "gender" not in text and "address" not in text and "phone" not in text.lower()


def test_rerun_writes_nothing(payroll: Env) -> None:
    sb, env = payroll
    before = gusto_state(sb)["writes"]
    audit = Path(env["HRSYNC_AUDIT_LOG"])
    mark = len(AuditLog.read(audit))
    run_task(env, "--full-refresh")
    assert gusto_state(sb)["writes"] == before
    events = AuditLog.read(audit)[mark:]
    assert events and {e["outcome"] for e in events} <= {"unchanged", "skipped", "failed"}
    # what fails again is only the positions abroad, still waiting in the dead-letter store
    assert {(e["stream"], tuple(e["fields"])) for e in events if e["outcome"] == "failed"} <= {
        ("payroll_jobs", ("location",))
    }
    assert {e["integration"] for e in events} == {"hris-to-payroll"}
