"""Two tenants at once share nothing: `hrsync run --tenant alpha|beta ats-to-hris` started
together, each tenant's folder holding the credentials of its own sandbox (different companies,
different people, different API keys). Each HRIS gets only its tenant's new hires; each tenant's
audit log, run ledger, Meltano state and map-hr store hold only its own; the process's own
settings and store locations (pointing elsewhere on purpose) are not used."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from hrsync_ops.runs import RunLedger
from sandbox.cli import env_lines
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
HRSYNC = str(Path(sys.executable).parent / "hrsync")
TENANTS = {
    # name: (employees, seed, greenhouse secret, bamboohr key, bamboohr domain)
    "alpha": (30, 7, "alpha-greenhouse-secret", "alpha-bamboohr-key", "alpha"),
    "beta": (45, 23, "beta-greenhouse-secret", "beta-bamboohr-key", "beta"),
}


def tenant_sandbox(employees: int, seed: int, gh_secret: str, key: str, domain: str) -> Sandbox:
    credentials = {
        "greenhouse": {
            "client_id": f"{domain}-client",
            "client_secret": gh_secret,
            "user_id": "4301",
        },
        "bamboohr": {"api_key": key, "company_domain": domain},
    }
    return Sandbox(
        employees=employees, seed=seed, credentials=credentials, vendors=("greenhouse", "bamboohr")
    )


def write_tenant(folder: Path, sb: Sandbox) -> None:
    folder.mkdir(parents=True)
    lines = [*env_lines(sb.info()), f"MAP_HR_HMAC_KEY=tenant-{folder.name}-pseudonym-key"]
    (folder / ".env").write_text("\n".join(lines) + "\n")
    (folder / ".env").chmod(0o600)


def new_hires(sb: Sandbox) -> list[dict[str, Any]]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "firstName", "lastName", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return [e for e in resp.json()["employees"] if int(e["id"]) > sb.world.employees]


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Sandbox], Path]]:
    base = tmp_path_factory.mktemp("tenants")
    sandboxes = {name: tenant_sandbox(*spec) for name, spec in TENANTS.items()}
    for sb in sandboxes.values():
        sb.__enter__()
    try:
        for name, sb in sandboxes.items():
            write_tenant(base / "tenants" / name, sb)
        yield sandboxes, base
    finally:
        for sb in sandboxes.values():
            sb.__exit__(None, None, None)


def test_two_tenants_at_once_share_nothing(tenants: tuple[dict[str, Sandbox], Path]) -> None:
    sandboxes, base = tenants
    elsewhere = base / "shared"  # where a tenant must NOT write, though the process says so
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_", "TARGET_", "MAP_HR_", "HRSYNC_"))
    } | {
        "HRSYNC_TENANTS_DIR": str(base / "tenants"),
        "MELTANO_DATABASE_URI": f"sqlite:///{elsewhere / 'meltano.db'}",
        "HRSYNC_AUDIT_LOG": str(elsewhere / "audit.jsonl"),
        "HRSYNC_DLQ_PATH": str(elsewhere / "deadletters.sqlite"),
        "HRSYNC_RUNS_PATH": str(elsewhere / "runs.sqlite"),
        "MAP_HR_STATE_DIR": str(elsewhere / "map-hr"),
        "TAP_GREENHOUSE_CLIENT_SECRET": "not-any-tenants-secret",
    }
    procs = {
        name: subprocess.Popen(
            [HRSYNC, "run", "--json", "--tenant", name, "ats-to-hris", "--full-refresh"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in TENANTS
    }
    results = {name: proc.communicate(timeout=900) for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {results[name][1][-4000:]}"
    assert not elsewhere.exists()

    pending = {name: sb.world.pending_hires() for name, sb in sandboxes.items()}
    names = {n: {(c.first_name.strip(), str(c.id)) for c in p} for n, p in pending.items()}
    assert names["alpha"] != names["beta"]  # different companies, different people
    for name, sb in sandboxes.items():
        folder = base / "tenants" / name
        hires = new_hires(sb)
        got = {str(e["customATSCandidateID"]) for e in hires}
        assert got == {str(c.id) for c in pending[name]}
        assert len(hires) == len(pending[name])  # each once
        # the tenant's audit log: its own hires and nothing else
        events = AuditLog.read(folder / ".hrsync" / "audit.jsonl")
        created = {e["record_key"] for e in events if e["outcome"] == "created"}
        assert created == got
        assert {e["integration"] for e in events} == {"ats-to-hris"}
        # its run ledger: this one run
        (run,) = RunLedger(folder / ".hrsync" / "runs.sqlite").history("ats-to-hris")
        record = json.loads(results[name][0])["run"]
        assert run.outcome == "success" and run.id == record["id"]
        assert run.moved_by_outcome == {"created": len(pending[name])}
        # its Meltano state (its own system database) and its own run files
        with sqlite3.connect(folder / ".meltano" / "meltano.db") as db:
            ids = {row[0] for row in db.execute("SELECT state_id FROM state")}
        assert ids == {"dev:tap-greenhouse-to-target-bamboohr"}
        assert (folder / ".meltano" / "run" / "tap-greenhouse" / "tap.properties.json").exists()
        # its map-hr lookup store
        assert any((folder / ".hrsync" / "map-hr").iterdir())

    # state is the tenant's: an incremental run of alpha finds nothing new to write
    again = subprocess.run(
        [HRSYNC, "run", "--json", "--tenant", "alpha", "ats-to-hris"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert json.loads(again.stdout)["run"]["records_moved"] == 0
    assert len(new_hires(sandboxes["alpha"])) == len(pending["alpha"])


def test_unknown_tenant_is_refused_with_its_folder(tmp_path: Path) -> None:
    env = {**os.environ, "HRSYNC_TENANTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        [HRSYNC, "run", "--tenant", "gamma", "ats-to-hris"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "tenant 'gamma' has no .env" in proc.stderr
    assert str(tmp_path / "gamma" / ".env") in proc.stderr
    bad = subprocess.run(
        [HRSYNC, "run", "--tenant", "../etc", "ats-to-hris"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "a tenant name is lower-case letters" in bad.stderr
