"""One bad record never blocks anyone else's change, a leaver's deprovisioning above all.

The hris-to-iam pipeline as processes (what `meltano run` starts, without the install):
tap-bamboohr (against the BambooHR sandbox) | map-hr bamboohr_to_canonical | map-hr hris_to_iam
| target-scim (a real scim2-server). An employee early in the stream gets a work e-mail with a
typo (a comma for a dot in the domain); a leaver comes after them. Every process exits 0, the
leaver's account is deactivated, and the bad record waits in the dead-letter store naming the
field.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.demo import meltano_env
from sandbox.directories import ScimServer, start_scim_server
from sandbox.server import Sandbox

BIN = Path(sys.executable).parent


@dataclass
class Pipeline:
    sandbox: Sandbox
    scim: ScimServer
    env: dict[str, str]
    workdir: Path

    def run(self) -> list[int]:
        """One run of the pipeline; the exit status of each of its four processes."""
        w = self.workdir
        status = w / "status"
        cmd = (
            f"{BIN}/tap-bamboohr --config {w}/tap.json --catalog {w}/catalog.json"
            f" | {BIN}/map-hr --config {w}/canonical.json"
            f" | {BIN}/map-hr --config {w}/iam.json"
            f" | {BIN}/target-scim --config {w}/scim.json > {w}/state.jsonl"
            f"; echo ${{PIPESTATUS[*]}} > {status}"
        )
        proc = subprocess.run(
            ["bash", "-c", cmd], env=self.env, capture_output=True, text=True, timeout=300
        )
        self.stderr = proc.stderr
        return [int(x) for x in status.read_text().split()]

    def users(self) -> dict[str, dict[str, Any]]:
        body = requests.get(
            f"{self.scim.url('hrsync')}/Users",
            params={"count": 1000},
            headers={"Authorization": f"Bearer {self.scim.token}"},
            timeout=30,
        ).json()
        return {u["externalId"]: u for u in body.get("Resources", [])}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir = tmp_path_factory.mktemp("one-bad-record")
    scim = start_scim_server()
    try:
        with Sandbox(employees=40, vendors=("bamboohr",)) as sb:
            env = meltano_env(sb, workdir)
            env["HRSYNC_INTEGRATION"] = "hris-to-iam"
            tap = {
                "api_url": env["TAP_BAMBOOHR_API_URL"],
                "api_key": env["TAP_BAMBOOHR_API_KEY"],
                "company_domain": env["TAP_BAMBOOHR_COMPANY_DOMAIN"],
            }
            (workdir / "tap.json").write_text(json.dumps(tap))
            discovered = subprocess.run(
                [f"{BIN}/tap-bamboohr", "--config", f"{workdir}/tap.json", "--discover"],
                env=env,
                capture_output=True,
                check=True,
                text=True,
            )
            catalog = json.loads(discovered.stdout)
            for entry in catalog["streams"]:
                for meta in entry["metadata"]:
                    if not meta["breadcrumb"]:
                        meta["metadata"]["selected"] = entry["tap_stream_id"] == "employees"
            (workdir / "catalog.json").write_text(json.dumps(catalog))
            for name, profile in (("canonical", "bamboohr_to_canonical"), ("iam", "hris_to_iam")):
                (workdir / f"{name}.json").write_text(json.dumps({"profile": profile}))
            scim_cfg = {"base_url": scim.url("hrsync"), "bearer_token": scim.token}
            (workdir / "scim.json").write_text(json.dumps(scim_cfg))
            yield Pipeline(sb, scim, env, workdir)
    finally:
        scim.stop()


def test_a_bad_email_early_in_the_stream_never_blocks_a_later_leaver(pipeline: Pipeline) -> None:
    assert pipeline.run() == [0, 0, 0, 0], pipeline.stderr[-3000:]
    world = pipeline.sandbox.world
    active = sorted(
        p.employee_id
        for p in world.people()
        if p.work_email and p.status == "Active" and p.termination_date is None
    )
    users = pipeline.users()
    assert {str(i) for i in active} <= {k for k, u in users.items() if u["active"]}
    bad, leaver = active[0], active[-1]
    good_address = world.person(bad).work_email
    assert good_address is not None
    world.update_person(bad, work_email=good_address.replace(".example", ",example"))
    person = world.person(leaver)
    ended = replace(person.employments[-1], termination_date=world.as_of - timedelta(days=1))
    world.update_person(leaver, employments=(*person.employments[:-1], ended))

    assert pipeline.run() == [0, 0, 0, 0], pipeline.stderr[-3000:]
    users = pipeline.users()
    assert users[str(leaver)]["active"] is False  # deprovisioned in spite of the bad record
    assert users[str(bad)]["active"] is True  # unchanged: its new value never left
    assert users[str(bad)]["userName"] == good_address
    letters = subprocess.run(
        [f"{BIN}/hrsync", "dlq", "list", "--json"],
        env=pipeline.env,
        capture_output=True,
        text=True,
        check=True,
        cwd=pipeline.workdir,
    )
    (letter,) = json.loads(letters.stdout)
    assert letter["plugin"] == "map-hr:bamboohr_to_canonical"
    assert letter["integration"] == "hris-to-iam" and letter["record_key"] == f"id={bad}"
    assert letter["error_class"] == "unmappable_work_email"
    assert "field work_email" in letter["error"] and "not a host name" in letter["error"]
    assert good_address.split("@")[0] not in letter["error"]  # the value itself is left out
