"""Operations end to end with real Meltano: `hrsync run ats-to-hris` while BambooHR refuses one
new hire -> a dead letter in the store, an alert for the critical job (no personal data), the
rest delivered; the fault removed, `hrsync dlq replay` (through `meltano invoke
target-bamboohr`) delivers it: every accepted offer in the HRIS exactly once. `hrsync status`
reads the run, the dead letters and Meltano's bookmark."""

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

from hrsync.deadletter import DeadLetterStore
from hrsync_ops.runs import RunLedger
from sandbox.demo import meltano_env
from sandbox.lever import LeverApp
from sandbox.server import Sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from opskit import WebhookReceiver

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
BIN = Path(sys.executable).parent
MELTANO, HRSYNC = str(BIN / "meltano"), str(BIN / "hrsync")


@pytest.fixture(scope="module")
def ops(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, dict[str, str], WebhookReceiver]]:
    workdir = tmp_path_factory.mktemp("ops")
    hook = WebhookReceiver()
    ops_file = workdir / "hrsync.yml"
    ops_file.write_text(
        "jobs:\n  ats-to-hris: {owner: people-eng, critical: true, expected_interval: 2h}\n"
        "alerts:\n  channels: [{type: webhook, url_env: E2E_ALERT_URL}]\n"
    )
    try:
        with Sandbox(employees=40, vendors=("greenhouse", "lever", "bamboohr")) as sb:
            env = meltano_env(sb, workdir) | {
                "HRSYNC_OPS_FILE": str(ops_file),
                "HRSYNC_RUNS_PATH": str(workdir / "runs.sqlite"),
                "E2E_ALERT_URL": hook.url,
                "TARGET_BAMBOOHR_MAX_RETRIES": "2",
            }
            yield sb, env, hook
    finally:
        hook.close()


def hrsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HRSYNC, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


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


def test_undeliverable_hire_is_dead_lettered_alerted_and_replayed_once(
    ops: tuple[Sandbox, dict[str, str], WebhookReceiver],
) -> None:
    sb, env, hook = ops
    pending = sb.world.pending_hires()
    assert len(pending) >= 2
    # BambooHR answers 503 to the first new-hire POST on both attempts (retries exhausted)
    sb.faults.retry_after = 0
    sb.faults.paths = "/employees$"
    sb.faults.script[:] = ["503", "503"]
    done = hrsync(env, "run", "ats-to-hris", "--full-refresh")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "dead letters added: 1" in done.stderr
    sb.faults.reset()

    store = DeadLetterStore(env["HRSYNC_DLQ_PATH"], key=env["HRSYNC_DLQ_KEY"])  # the demo seals
    (letter,) = store.list()
    assert (letter.integration, letter.plugin) == ("ats-to-hris", "target-bamboohr")
    assert letter.error_class == "RetryBudgetExhausted"
    assert "failed after 2 attempts" in letter.error
    delivered = {str(e["customATSCandidateID"]) for e in new_hires(sb)}
    assert len(delivered) == len(pending) - 1 and letter.record_key not in delivered

    # the critical job's dead letter reached the alert channel, without personal data
    (alert,) = hook.bodies
    assert alert["hrsync"]["kind"] == "dead_letters" and alert["hrsync"]["dead_letter_ids"] == [
        letter.id
    ]
    raw = hook.raw[0].decode("utf-8")
    assert letter.record_key not in raw
    assert letter.record is not None
    for value in (letter.record["firstName"], letter.record["lastName"]):
        assert value not in raw

    status = hrsync(env, "status", "--json")
    assert status.returncode == 1  # a dead letter waits: a person must look
    job = {j["job"]: j for j in json.loads(status.stdout)["jobs"]}["ats-to-hris"]
    assert job["last_outcome"] == "success" and job["dead_letters_waiting"] == 1
    assert job["records_moved"] == len(pending) - 1
    assert job["bookmark"]["age_s"] is not None  # Meltano saved the job's state

    # the fault is gone: replay through `meltano invoke target-bamboohr`
    replay = hrsync(env, "dlq", "replay", "--json")
    assert replay.returncode == 0, replay.stdout + replay.stderr[-4000:]
    assert json.loads(replay.stdout)["still_waiting"] == 0
    assert store.list() == [] and store.get(letter.id).status == "delivered"  # type: ignore[union-attr]
    hires = new_hires(sb)
    keys = [str(e["customATSCandidateID"]) for e in hires]
    assert sorted(keys) == sorted(str(c.id) for c in pending)  # each exactly once

    # replaying again changes nothing; the job is healthy again
    again = hrsync(env, "dlq", "replay")
    assert again.returncode == 0 and "no waiting dead letters" in again.stdout
    assert len(new_hires(sb)) == len(pending)
    status = hrsync(env, "status", "--json")
    job = {j["job"]: j for j in json.loads(status.stdout)["jobs"]}["ats-to-hris"]
    assert job["ok"] and job["dead_letters_waiting"] == 0, job["problems"]


def test_two_jobs_loading_one_hris_started_together_run_one_after_the_other(
    ops: tuple[Sandbox, dict[str, str], WebhookReceiver],
) -> None:
    """ats-to-hris and lever-to-hris both load through target-bamboohr, started at the same
    moment (two schedules, or a webhook burst): `hrsync run` runs them one after the other,
    and every hire of both ATSs is in the HRIS exactly once."""
    sb, env, _ = ops
    app = sb.apps["lever"]
    assert isinstance(app, LeverApp)
    before = new_hires(sb)
    procs = [
        subprocess.Popen(
            [HRSYNC, "run", job, "--full-refresh"],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in ("lever-to-hris", "ats-to-hris")
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for e in errors)
    assert any("waiting for target-bamboohr" in e for e in errors), errors
    ledger = RunLedger(env["HRSYNC_RUNS_PATH"])
    (lever,) = ledger.history("lever-to-hris")
    ats = ledger.history("ats-to-hris")[0]  # the newest
    first, second = sorted((lever, ats), key=lambda r: r.started_at)
    assert first.ended_at is not None and second.started_at >= first.ended_at

    hires = new_hires(sb)
    keys = [str(e["customATSCandidateID"]) for e in hires]
    assert len(keys) == len(set(keys))  # nobody twice
    assert {app.contact_id(c.index) for c in app.hires()} == set(keys) - {
        str(e["customATSCandidateID"]) for e in before
    }
