"""The Dagster code location (orchestration/dagster): it loads one job per Meltano job and one
schedule per Meltano schedule; a job executed with Dagster's own API runs `hrsync run` against
the sandbox (the hires reach the HRIS, the run is in hrsync's ledger, records moved and dead
letters are op metadata); a failing run fails the op with its cause; the `dagster` CLI
validates the code location and executes a job fanned out over two tenants."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from tests import projectkit

from hrsync_dagster.definitions import build_definitions, dagster_name
from hrsync_dagster.runner import failure_cause
from hrsync_ops.runs import RunLedger
from hrsync_ops.tenants import Tenant
from sandbox.cli import env_lines
from sandbox.demo import meltano_env
from sandbox.server import Sandbox

ROOT = projectkit.ROOT
DAGSTER = str(Path(sys.executable).parent / "dagster")
MELTANO = projectkit.MELTANO


def new_hires(sb: Sandbox) -> list[dict[str, Any]]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return [e for e in resp.json()["employees"] if int(e["id"]) > sb.world.employees]


def test_one_dagster_job_and_schedule_per_meltano_job_and_schedule() -> None:
    meltano = yaml.safe_load((ROOT / "meltano.yml").read_text())
    defs = build_definitions(ROOT, tenants=[])
    repo = defs.get_repository_def()
    assert {j.name for j in repo.get_all_jobs()} == {
        dagster_name(j["name"]) for j in meltano["jobs"]
    }
    schedules = {s.name: s for s in repo.schedule_defs}
    assert set(schedules) == {dagster_name(s["name"]) for s in meltano["schedules"]}
    for entry in meltano["schedules"]:
        schedule = schedules[dagster_name(entry["name"])]
        assert schedule.cron_schedule == entry["interval"]
        assert schedule.job_name == dagster_name(entry["job"])
        assert schedule.execution_timezone == "UTC"
    job = defs.get_job_def("hris_to_iam")
    (node,) = job.nodes
    assert node.definition.tags == {"hrsync/job": "hris-to-iam"}
    # hrsync and the plugins retry: no op retry policy, no run retries
    assert node.definition.retry_policy is None
    assert "dagster/max_retries" not in job.tags


def test_tenants_fan_out_one_op_each(tmp_path: Path) -> None:
    for name in ("acme", "globex"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".env").write_text("TAP_GREENHOUSE_CLIENT_ID=x\n")
    os.environ["HRSYNC_TENANTS_DIR"] = str(tmp_path)
    try:
        tenants = Tenant.all(ROOT)
        defs = build_definitions(ROOT, max_concurrent=2)
    finally:
        del os.environ["HRSYNC_TENANTS_DIR"]
    assert [t.name for t in tenants] == ["acme", "globex"]
    job = defs.get_job_def("ats_to_hris")
    assert sorted(n.name for n in job.nodes) == ["run_ats_to_hris__acme", "run_ats_to_hris__globex"]
    assert {n.definition.tags["hrsync/tenant"] for n in job.nodes} == {"acme", "globex"}
    assert {n.definition.pool for n in job.nodes} == {"hrsync"}
    assert job.executor_def.name == "multiprocess"


def test_failure_cause_names_the_plugin_and_its_error_line() -> None:
    # Meltano's console output of a run whose tap was refused (as `hrsync run` relays it)
    console = (
        "2026-12-06T02:57:35.380664Z [info     ] tap-greenhouse     self.handle_error(\n"
        '2026-12-06T02:57:35.380812Z [info     ] tap-greenhouse   File "/x/hrsync/http.py", '
        "line 687, in handle_error\n"
        "2026-12-06T02:57:35.380975Z [info     ] tap-greenhouse     raise FatalAPIError(\n"
        "2026-12-06T02:57:35.381173Z [info     ] tap-greenhouse singer_sdk.exceptions."
        "FatalAPIError: OAuth token request failed with status 401: invalid_client\n"
        "2026-12-06T02:57:37.107038Z [error    ] meltano      Extractor failed\n"
        "2026-12-06T02:57:37.111018Z [error    ] meltano      Block run completed\n"
        "hrsync run ats-to-hris: failed (exit 1) in 32.6 s; records moved: 0 (none); "
        "dead letters added: 0\n"
    )
    assert failure_cause(console, 1) == (
        "tap-greenhouse: singer_sdk.exceptions.FatalAPIError: OAuth token request failed with "
        "status 401: invalid_client"
    )
    # the key=value format (MELTANO_CLI_LOG_CONFIG / --log-format=key_value)
    keyed = (
        "2026-01-01T00:00:01.2Z [error    ] jsonschema.exceptions.ValidationError: 'base_url' "
        "is a required property cmd_type=elb consumer=True name=target-scim stdio=stderr\n"
        "2026-01-01T00:00:01.3Z [error    ] Loader failed\n"
    )
    assert failure_cause(keyed, 1) == (
        "target-scim: jsonschema.exceptions.ValidationError: 'base_url' is a required property"
    )
    # nothing from a plugin: hrsync's own line
    busy = "hrsync run x: tap-bamboohr was still in use after 10 s: not run\n"
    assert failure_cause(busy, 75) == busy.strip()
    assert failure_cause("", 127) == "exit 127 without output"


@pytest.fixture(scope="module")
def installed() -> None:
    """The project's plugins, installed once per test run (as tests/e2e does)."""
    projectkit.install_plugins()


@pytest.fixture(scope="module")
def sandbox_env(
    installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Sandbox, dict]]:
    workdir = tmp_path_factory.mktemp("dagster")
    with Sandbox(employees=30, vendors=("greenhouse", "bamboohr")) as sb:
        ops_file = workdir / "hrsync.yml"  # no alert channels: nothing leaves loopback
        ops_file.write_text("jobs:\n  ats-to-hris: {critical: true}\n")
        env = meltano_env(sb, workdir) | {
            "HRSYNC_RUNS_PATH": str(workdir / "runs.sqlite"),
            "HRSYNC_OPS_FILE": str(ops_file),
        }
        env.pop("HRSYNC_TENANTS_DIR", None)
        yield sb, env


@pytest.mark.meltano
def test_job_runs_hrsync_in_process_with_metadata(
    sandbox_env: tuple[Sandbox, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    sb, env = sandbox_env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    defs = build_definitions(ROOT, tenants=[])
    result = defs.get_job_def("ats_to_hris").execute_in_process(
        run_config={"ops": {"run_ats_to_hris": {"config": {"meltano_args": ["--full-refresh"]}}}}
    )
    assert result.success
    pending = sb.world.pending_hires()
    assert sorted(str(e["customATSCandidateID"]) for e in new_hires(sb)) == sorted(
        str(c.id) for c in pending
    )
    (output,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    meta = output.step_output_data.metadata
    assert meta["records_moved"].value == len(pending)
    assert meta["dead_letters_added"].value == 0
    (run,) = RunLedger(Path(env["HRSYNC_RUNS_PATH"])).history("ats-to-hris")
    assert run.outcome == "success" and meta["hrsync_run_id"].value == run.id
    assert result.output_for_node("run_ats_to_hris")["id"] == run.id


@pytest.mark.meltano
def test_failed_run_fails_the_op_with_its_cause(
    sandbox_env: tuple[Sandbox, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, env = sandbox_env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TARGET_BAMBOOHR_API_KEY", "revoked-key")
    defs = build_definitions(ROOT, tenants=[])
    result = defs.get_job_def("ats_to_hris").execute_in_process(raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("run_ats_to_hris")
    assert failure is not None and failure.user_failure_data is not None
    description = failure.user_failure_data.description or ""
    # Meltano renders the plugin's structured log; hrsync names plugin, exception and message
    assert description == (
        "hrsync run ats-to-hris failed (exit 1): target-bamboohr: BambooHRError: "
        "GET /meta/fields -> 401: Invalid API key"
    )
    runs = RunLedger(Path(env["HRSYNC_RUNS_PATH"])).history("ats-to-hris")
    assert runs[0].outcome == "failed"  # hrsync recorded it; Dagster did not retry it
    assert len([r for r in runs if r.outcome == "failed"]) == 1


@pytest.mark.meltano
def test_dagster_cli_validates_and_executes_a_job_per_tenant(
    installed: None, tmp_path: Path
) -> None:
    specs = {"north": (25, 3, "north-key"), "south": (35, 5, "south-key")}
    sandboxes = {
        name: Sandbox(
            employees=n,
            seed=seed,
            vendors=("greenhouse", "bamboohr"),
            credentials={
                "greenhouse": {"client_id": name, "client_secret": f"{name}-s", "user_id": "4301"},
                "bamboohr": {"api_key": key, "company_domain": name},
            },
        )
        for name, (n, seed, key) in specs.items()
    }
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_", "TARGET_", "MAP_HR_", "HRSYNC_"))
    } | {
        "DAGSTER_HOME": str(home),
        "HRSYNC_TENANTS_DIR": str(tmp_path / "tenants"),
        "HRSYNC_DAGSTER_MAX_CONCURRENT": "2",
    }
    module = ["-m", "hrsync_dagster.definitions"]
    for sb in sandboxes.values():
        sb.__enter__()
    try:
        for name, sb in sandboxes.items():
            folder = tmp_path / "tenants" / name
            folder.mkdir(parents=True)
            (folder / ".env").write_text(
                "\n".join([*env_lines(sb.info()), f"MAP_HR_HMAC_KEY={name}-key-0123456789"]) + "\n"
            )
        validate = subprocess.run(
            [DAGSTER, "definitions", "validate", *module],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert validate.returncode == 0, validate.stdout[-2000:] + validate.stderr[-2000:]
        run = subprocess.run(
            [DAGSTER, "job", "execute", *module, "-j", "ats_to_hris"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "RUN_SUCCESS" in run.stdout + run.stderr
        for name, sb in sandboxes.items():
            got = sorted(str(e["customATSCandidateID"]) for e in new_hires(sb))
            assert got == sorted(str(c.id) for c in sb.world.pending_hires())
            ledger = RunLedger(tmp_path / "tenants" / name / ".hrsync" / "runs.sqlite")
            assert [r.outcome for r in ledger.history("ats-to-hris")] == ["success"]
    finally:
        for sb in sandboxes.values():
            sb.__exit__(None, None, None)
