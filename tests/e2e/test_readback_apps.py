"""Read-back end to end: hris-to-lms and hris-to-payroll write Moodle and Gusto with the real
`meltano run`, then `meltano run tap-moodle target-warehouse` and `tap-gusto target-warehouse`
read them back into DuckDB, and the warehouse holds exactly what the fakes hold (tap-gusto on
the token file target-payroll-api rotated its refresh token into)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
import requests
from tests import projectkit

from sandbox.demo import meltano_env
from sandbox.gusto import Gusto
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
LMS_TASK = "tap-bamboohr map-bamboohr-to-canonical map-hris-to-lms target-moodle"
PAYROLL_TASK = "tap-bamboohr map-bamboohr-to-canonical map-hris-to-payroll target-payroll-api"

Env = tuple[Sandbox, dict[str, str]]


def run(env: dict[str, str], task: str, integration: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", "--full-refresh", *task.split()],
        cwd=ROOT,
        env={**env, "HRSYNC_INTEGRATION": integration},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def read_back(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("readback")
    with Sandbox(employees=40, vendors=("bamboohr", "moodle", "gusto")) as sb:
        gusto = sb.apps["gusto"]
        assert isinstance(gusto, Gusto)
        gusto.rate_limit = 100_000  # the write job is ~200 requests; the limit has its own tests
        sys_dir = workdir / "meltano-sys"  # run files of this test's own (see test_hris_to_lms)
        sys_dir.mkdir()
        for kind in ("extractors", "mappers", "loaders"):
            (sys_dir / kind).symlink_to(ROOT / ".meltano" / kind)
        token_file = str(workdir / "gusto-token.json")
        env = meltano_env(sb, workdir) | {
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "HRSYNC_DLQ_PATH": str(workdir / "dlq.sqlite"),
            "TARGET_MOODLE_STATE_PATH": str(workdir / "target-moodle-state.sqlite"),
            "TARGET_PAYROLL_API_TOKEN_FILE": token_file,
            "TAP_GUSTO_TOKEN_FILE": token_file,
        }
        # two Meltano invocations, not four (each start-up costs seconds): the writes, the reads
        run(env, f"{LMS_TASK} {PAYROLL_TASK}", "hris-to-lms-and-payroll")
        run(env, "tap-moodle target-warehouse tap-gusto target-warehouse", "read-back")
        yield sb, env


def query(env: dict[str, str], sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(env["TARGET_WAREHOUSE_DATABASE"], read_only=True) as db:
        return db.execute(sql).fetchall()


def test_moodle_accounts_and_enrolments_reach_the_warehouse(read_back: Env) -> None:
    sb, env = read_back
    state = requests.get(f"{sb.url('moodle')}/_sandbox/moodle/state", timeout=30).json()
    accounts = {(u["idnumber"], u["suspended"]) for u in state["users"] if u.get("idnumber")}
    assert accounts  # hris-to-lms made them
    got = set(query(env, "select idnumber, suspended from users where idnumber is not null"))
    assert got == accounts
    enrolled = {(e["userid"], e["courseid"]) for e in state["enrolments"]}
    rows = query(env, "select userid, courseid from enrolments")
    assert len(rows) == len(enrolled) and set(rows) == enrolled


def test_gusto_employees_jobs_and_terminations_reach_the_warehouse(read_back: Env) -> None:
    sb, env = read_back
    state = requests.get(f"{sb.url('gusto')}/_sandbox/gusto/state", timeout=30).json()
    people = state["employees"]
    assert people  # hris-to-payroll made them
    got = dict(query(env, "select hris_employee_id, terminated from employees"))
    assert got == {key: emp["terminated"] for key, emp in people.items()}
    jobs = {j["uuid"] for emp in people.values() for j in emp["jobs"]}
    assert {r[0] for r in query(env, "select uuid from jobs")} == jobs
    comps = {c["uuid"] for emp in people.values() for j in emp["jobs"] for c in j["compensations"]}
    assert {r[0] for r in query(env, "select uuid from compensations")} == comps
    ends = {(t["uuid"], t["effective_date"]) for e in people.values() for t in e["terminations"]}
    assert ends  # the world has leavers
    got_ends = {(u, str(d)) for u, d in query(env, "select uuid, effective_date from terminations")}
    assert got_ends == ends
