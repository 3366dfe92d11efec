"""A hire in the Greenhouse fake reaches the BambooHR fake through real webhooks: the sandbox
signs and sends ``hire_candidate``, ``hrsync webhooks serve`` verifies and stores it and runs
the real ``ats-to-hris`` job (real Meltano), which creates the employee."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests import projectkit

from sandbox.demo import meltano_env
from sandbox.seed import CANDIDATE_BASE
from sandbox.server import Sandbox
from sandbox.webhooks import ReceiverProcess, start_receiver

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
SECRETS = {"greenhouse": "e2e-greenhouse-webhook-secret", "bamboohr": "e2e-bamboohr-private-key"}

Env = tuple[Sandbox, dict[str, str], ReceiverProcess]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("webhooks-e2e")
    with Sandbox(employees=60) as sb:
        env = meltano_env(sb, workdir) | {
            "HRSYNC_INTEGRATION": "ats-to-hris",
            "HRSYNC_RUNS_PATH": str(workdir / "runs.sqlite"),
            "HRSYNC_DLQ_PATH": str(workdir / "deadletters.sqlite"),
        }
        # the first sync, as a schedule would have run it: later runs are incremental
        first = subprocess.run(
            [MELTANO, "run", "--full-refresh", "ats-to-hris"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert first.returncode == 0, first.stderr[-3000:]
        receiver = start_receiver(
            workdir / "receiver",
            secrets=SECRETS,
            args=["--window", "0.5", "--route", "greenhouse=ats-to-hris"],
            env=env,
            cwd=ROOT,
        )
        try:
            sb.apps["greenhouse"].webhooks.register(  # type: ignore[attr-defined]
                f"{receiver.url}/webhooks/greenhouse", SECRETS["greenhouse"]
            )
            yield sb, env, receiver
        finally:
            receiver.stop()


def employees_with_candidate(sb: Sandbox, candidate_id: int) -> list[dict[str, str]]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "firstName", "lastName", "hireDate", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    return [e for e in resp.json()["employees"] if e["customATSCandidateID"] == str(candidate_id)]


def test_a_hire_reaches_the_hris_through_webhooks(live: Env) -> None:
    sb, _, receiver = live
    world = sb.world
    offer = next(
        o
        for k in range(world.employees + 1, world.employees + world.not_hired + 1)
        for o in world.offers_for_candidate(CANDIDATE_BASE + k)
        if o.status == "Created"
    )
    assert employees_with_candidate(sb, offer.candidate_id) == []
    started = time.monotonic()
    requests.post(
        f"{sb.greenhouse_url}/_sandbox/greenhouse/offers/{offer.id}/accept", timeout=10
    ).raise_for_status()
    deadline = started + 180
    found: list[dict[str, str]] = []
    while time.monotonic() < deadline and not found:
        found = employees_with_candidate(sb, offer.candidate_id)
        time.sleep(0.2)
    seconds = time.monotonic() - started
    print(f"\nwebhook -> HRIS latency: {seconds:.1f} s (hire accepted -> employee in BambooHR)")
    assert len(found) == 1, (receiver.health(), (Path(receiver.db).parent / "runs").iterdir())
    cand = world.candidate(offer.candidate_id)
    assert found[0]["hireDate"] == (offer.starts_on.isoformat() if offer.starts_on else "")
    assert found[0]["firstName"].strip() == " ".join(cand.first_name.split())
    health = receiver.health()
    assert health["events"] == 2  # offer_updated + hire_candidate, coalesced into the run(s)
    # the sandbox saw each delivery acknowledged once
    deliveries = sb.apps["greenhouse"].webhooks.summary()  # type: ignore[attr-defined]
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries)
