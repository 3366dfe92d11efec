"""Every Meltano job, executed through the Dagster code location with Dagster's own API,
against the whole sandbox (the vendor fakes, scim2-server, slapd, an sshd + PGP file drop):
each op runs `hrsync run`, the run succeeds, is in hrsync's ledger, and its targets audited
writes. The environment is the demo's, started once for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import projectkit

from hrsync_dagster.definitions import build_definitions, dagster_name
from hrsync_ops.ops import safe_load
from hrsync_ops.runs import RunLedger
from sandbox.benefits import carrier_env
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import start_scim_server, start_slapd
from sandbox.server import Sandbox
from sandbox.sftp import start_file_drop

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
#: in the order a deployment's first day runs them: hires first, then what reads the HRIS
#: (the HiBob jobs run end to end in tests/e2e/test_hibob_swap.py: not twice, for the budget)
JOBS = [
    j["name"]
    for j in safe_load((ROOT / "meltano.yml").read_text())["jobs"]
    if "hibob" not in j["name"]
]

pytestmark = pytest.mark.meltano


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    projectkit.install_plugins()
    workdir = tmp_path_factory.mktemp("dagster-every-job")
    scim = start_scim_server()
    slapd = start_slapd(workdir / "slapd")
    drop = start_file_drop(workdir / "sftp")
    try:
        with Sandbox(employees=30) as sb:
            sb.apps["gusto"].rate_limit = 100_000  # type: ignore[attr-defined]
            ops_file = workdir / "hrsync.yml"  # no alert channels: nothing leaves loopback
            ops_file.write_text("jobs: {}\n")
            env = meltano_env(sb, workdir) | iam_env(scim, slapd, workdir)
            env |= drop.env("TARGET_PAYROLL_FILE", "payroll")
            env |= drop.env("TARGET_BENEFITS_834", "benefits") | carrier_env(workdir)
            env |= {
                "HRSYNC_RUNS_PATH": str(workdir / "runs.sqlite"),
                "HRSYNC_OPS_FILE": str(ops_file),
            }
            env.pop("HRSYNC_TENANTS_DIR", None)
            yield env
    finally:
        scim.stop()
        slapd.stop()
        drop.stop()


@pytest.mark.parametrize("job", JOBS)
def test_every_job_runs_through_dagster(
    job: str, everything: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in everything.items():
        monkeypatch.setenv(key, value)
    defs = build_definitions(ROOT, tenants=[])
    op = f"run_{dagster_name(job)}"
    result = defs.get_job_def(dagster_name(job)).execute_in_process(
        run_config={"ops": {op: {"config": {"meltano_args": ["--full-refresh"]}}}},
        raise_on_error=False,
    )
    assert result.success, [
        e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ]
    (run,) = RunLedger(Path(everything["HRSYNC_RUNS_PATH"])).history(job)
    assert run.outcome == "success"
    assert run.records_moved > 0, f"{job}: nothing reached a destination"
    assert result.output_for_node(op)["id"] == run.id
