"""The webhook fast path (``hrsync webhooks serve --fast-path``) against the sandbox, real
scim2-server and slapd: a Greenhouse hire reaches BambooHR and a BambooHR hire and termination
reach the directories without a ``meltano run``; a replayed or repeated event writes nothing
twice; a bad record becomes a dead letter while the rest is delivered; and the scheduled runs
afterwards, from their own untouched bookmarks, see everything again and double nothing.

One module-scoped set-up: the sandbox, the directories, a first ``hrsync run`` of each job (the
fast path starts from it) and one receiver, warm, shared by every test in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import DISABLED, ScimServer, Slapd, start_scim_server, start_slapd
from sandbox.seed import CANDIDATE_BASE, Offer
from sandbox.server import Sandbox
from sandbox.webhooks import ReceiverProcess, start_receiver

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
BIN = Path(sys.executable).parent
SECRETS = {"greenhouse": "fast-greenhouse-webhook-secret", "bamboohr": "fast-bamboohr-key"}
JOBS = ("ats-to-hris", "hris-to-iam")


@dataclass
class Live:
    sb: Sandbox
    env: dict[str, str]
    scim: ScimServer
    slapd: Slapd
    receiver: ReceiverProcess
    offers: list[Offer]
    hired: list[int]  # candidates the fast path hired (for the scheduled-run test)

    @property
    def trace(self) -> list[dict[str, Any]]:
        path = Path(self.receiver.db).parent.parent / "trace.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    @property
    def audit(self) -> Path:
        return Path(self.env["HRSYNC_AUDIT_LOG"])

    def hrsync_run(self, job: str, *extra: str) -> None:
        proc = subprocess.run([str(BIN / "hrsync"), "run", job, *extra], cwd=ROOT, env=self.env,
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]

    def fast_runs(self, job: str) -> int:
        return int(self.receiver.health()["fast_path"]["runs"].get(job, 0))

    def settle(self, timeout: float = 300) -> dict[str, Any]:
        """Wait until no job runs and both fast paths are warm again; the health details."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.receiver.health()
            running = any(j["running"] for j in health["jobs"].values())
            if not running and set(JOBS) <= set(health["fast_path"]["warm"]):
                return health
            time.sleep(0.2)
        raise AssertionError(f"receiver did not settle: {self.receiver.health()}")

    def employees(self, candidate_id: int) -> list[dict[str, str]]:
        creds = self.sb.credentials["bamboohr"]
        resp = requests.post(
            f"{self.sb.bamboohr_url}/api/v1/reports/custom",
            params={"format": "JSON", "onlyCurrent": "false"},
            json={"fields": ["id", "firstName", "hireDate", "customATSCandidateID"]},
            auth=(creds["api_key"], "x"),
            headers={"Accept": "application/json"},
            timeout=30,
        )
        resp.raise_for_status()
        rows = resp.json()["employees"]
        return [e for e in rows if e["customATSCandidateID"] == str(candidate_id)]

    def scim_user(self, external_id: str) -> dict[str, Any] | None:
        resp = requests.get(
            f"{self.scim.url('hrsync')}/Users",
            params={"filter": f'externalId eq "{external_id}"'},
            headers={"Authorization": f"Bearer {self.scim.token}"},
            timeout=10,
        )
        resp.raise_for_status()
        users = resp.json().get("Resources") or []
        assert len(users) <= 1, users
        return dict(users[0]) if users else None

    def bamboohr(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        api = self.sb.info()["bamboohr"]["api_url"]
        creds = (self.sb.credentials["bamboohr"]["api_key"], "x")
        resp = requests.request(method, f"{api}{path}", json=body, auth=creds, timeout=30)
        assert resp.status_code in (200, 201), resp.text
        return resp

    def accept(self, offer: Offer) -> None:
        url = f"{self.sb.greenhouse_url}/_sandbox/greenhouse/offers/{offer.id}/accept"
        requests.post(url, timeout=10).raise_for_status()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("fast-path")
    scim, slapd = start_scim_server(), start_slapd(workdir / "slapd")
    try:
        with Sandbox(employees=60, vendors=("greenhouse", "bamboohr")) as sb:
            env = meltano_env(sb, workdir) | iam_env(scim, slapd, workdir)
            env["HRSYNC_RUNS_PATH"] = str(workdir / "runs.sqlite")
            w = sb.world
            offers = [
                o
                for k in range(w.employees + 1, w.employees + w.not_hired + 1)
                for o in w.offers_for_candidate(CANDIDATE_BASE + k)
                if o.status == "Created"
            ]
            live = Live(sb, env, scim, slapd, None, offers, [])  # type: ignore[arg-type]
            for job in JOBS:  # the scheduled runs the fast path starts from
                live.hrsync_run(job, "--full-refresh")
            live.receiver = start_receiver(
                workdir / "receiver",
                secrets=SECRETS,
                args=["--window", "0.2", "--fast-path", "--route", "greenhouse=ats-to-hris",
                      "--route", "bamboohr=hris-to-iam", "--trace", str(workdir / "trace.jsonl")],
                env=env,
                cwd=ROOT,
            )  # fmt: skip
            try:
                for vendor in SECRETS:
                    sb.apps[vendor].webhooks.register(  # type: ignore[attr-defined]
                        f"{live.receiver.url}/webhooks/{vendor}", SECRETS[vendor]
                    )
                live.settle()
                yield live
            finally:
                live.receiver.stop()
    finally:
        scim.stop()
        slapd.stop()


def test_a_greenhouse_hire_reaches_the_hris_without_a_meltano_run(live: Live) -> None:
    offer = live.offers.pop()
    assert live.employees(offer.candidate_id) == []
    mark = len(AuditLog.read(live.audit))
    live.accept(offer)
    wait_for(lambda: live.employees(offer.candidate_id) != [], "the hire in BambooHR")
    live.hired.append(offer.candidate_id)
    health = live.settle()
    assert health["fast_path"]["runs"].get("ats-to-hris", 0) >= 1
    assert health["fast_path"]["fallbacks"] == {}
    # the job command (a Meltano run) never ran: it would have logged here
    assert not (Path(live.receiver.db).parent / "runs" / "ats-to-hris.log").exists()
    (employee,) = live.employees(offer.candidate_id)
    assert employee["hireDate"] == (offer.starts_on.isoformat() if offer.starts_on else "")
    # audited like the scheduled job: integration, destination, outcome
    created = [
        e
        for e in AuditLog.read(live.audit)[mark:]
        if e.get("integration") == "ats-to-hris" and e.get("outcome") == "created"
    ]
    assert [e["record_key"] for e in created] == [str(offer.candidate_id)]
    assert created[0]["destination"].startswith("bamboohr")
    assert created[0]["job"] == "ats-to-hris"


def test_a_replayed_or_repeated_event_writes_nothing_twice(live: Live) -> None:
    gh = live.sb.apps["greenhouse"].webhooks  # type: ignore[attr-defined]
    (candidate,) = live.hired
    runs = live.fast_runs("ats-to-hris")
    mark = len(AuditLog.read(live.audit))
    # the same delivery again: the receiver recognises it and runs nothing
    delivered = [d for d in gh.deliveries if d.event == "hire_candidate"][-1]
    again = requests.post(
        delivered.url, data=delivered.body, headers=gh.headers(delivered), timeout=10
    )
    assert again.json() == {"status": "duplicate"}
    # a new event about the same hire: the fast path runs again and writes nothing
    offer = next(o for o in live.sb.world.offers_for_candidate(candidate))
    gh.emit("offer_updated", {"offer": {"id": offer.id, "candidate_id": candidate}})
    wait_for(lambda: live.fast_runs("ats-to-hris") > runs, "a second fast run")
    live.settle()
    assert len(live.employees(candidate)) == 1
    writes = [
        e
        for e in AuditLog.read(live.audit)[mark:]
        if e.get("integration") == "ats-to-hris"
        and e.get("outcome") not in ("unchanged", "skipped")
        and not str(e.get("outcome", "")).startswith("planned-")
    ]
    assert writes == []


def test_a_bad_record_becomes_a_dead_letter_and_the_rest_is_delivered(live: Live) -> None:
    bad, good = live.offers.pop(), live.offers.pop()
    url = f"{live.sb.greenhouse_url}/_sandbox/greenhouse/offers/{bad.id}"
    requests.post(url, json={"starts_on": None}, timeout=10).raise_for_status()
    live.accept(bad)
    live.accept(good)
    wait_for(lambda: live.employees(good.candidate_id) != [], "the good hire in BambooHR")
    live.hired.append(good.candidate_id)
    health = live.settle()
    assert health["fast_path"]["fallbacks"] == {}
    assert live.employees(bad.candidate_id) == []
    letters = DeadLetterStore(live.env["HRSYNC_DLQ_PATH"]).list(integration="ats-to-hris")
    (letter,) = [x for x in letters if x.record_key == f"id={bad.id}"]  # map-hr keys it by offer
    assert letter.stream == "bamboohr_new_hires" and "hireDate" in letter.error, letter


def test_a_bamboohr_hire_and_termination_reach_the_directories(live: Live) -> None:
    hired = live.bamboohr(
        "POST",
        "/employees",
        {"firstName": "Fast", "lastName": "Path", "workEmail": "fast.path@example.com",
         "hireDate": datetime.now(UTC).date().isoformat(), "jobTitle": "Engineer",
         "department": "Engineering", "location": "Remote"},
    )  # fmt: skip
    new_id = hired.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    wait_for(lambda: (live.scim_user(new_id) or {}).get("active") is True, "the SCIM account")
    leaver = next(
        str(p.employee_id)
        for p in live.sb.world.people(start=2)
        if p.work_email and p.status == "Active" and p.termination_date is None
    )
    assert (live.scim_user(leaver) or {}).get("active") is True
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    live.bamboohr("POST", f"/employees/{leaver}", {"terminationDate": yesterday})
    wait_for(lambda: (live.scim_user(leaver) or {}).get("active") is False, "the deactivation")
    health = live.settle()
    assert health["fast_path"]["fallbacks"] == {}
    assert not (Path(live.receiver.db).parent / "runs" / "hris-to-iam.log").exists()
    # the job's second task reached LDAP too: the joiner's entry, the leaver's disabled
    assert live.slapd.by_eid(new_id)[0]
    assert live.slapd.by_eid(leaver)[0].lower().endswith(DISABLED.lower())


def test_each_event_runs_fresh_processes_forked_from_the_same_warm_ones(live: Live) -> None:
    """By now every job ran several times: the warm processes (one per plugin) were started
    once, each run's plugins were new processes forked from them, and the stage log shows an
    event's way from the request to the end of its run."""
    health = live.settle()
    runs = health["fast_path"]["runs"]
    assert runs["ats-to-hris"] >= 3 and runs["hris-to-iam"] >= 1
    # hris-to-iam's two tasks differ only in their loader: one warm extractor and one of each
    # mapper feed target-scim and target-ldap (5 warm processes, not 8)
    assert health["fast_path"]["spawned"] == {"ats-to-hris": 3, "hris-to-iam": 5}
    stages = live.trace
    forked = [x for x in stages if x["stage"] == "forked" and x["job"] == "ats-to-hris"]
    assert len(forked) == 3 * runs["ats-to-hris"]
    assert len({x["pid"] for x in forked}) == len(forked)  # never the same process twice
    exited = {x["pid"]: x for x in stages if x["stage"] == "exited"}
    assert all(exited[x["pid"]]["code"] == 0 and exited[x["pid"]]["cpu"] > 0 for x in forked)
    # the first Greenhouse event: received -> stored -> run -> 3 plugins forked -> run ended
    first = next(i for i, x in enumerate(stages) if x.get("source") == "greenhouse")
    order = [x["stage"] for x in stages[first:]]
    start = order.index("run-start")
    assert order.index("received") < order.index("stored") < start
    assert order[start:].index("run-end") > order[start:].index("exited") > 0
    plugins = [x["plugin"] for x in stages[first + start :] if x["stage"] == "forked"][:3]
    assert plugins == ["tap-greenhouse", "map-ats-to-hris", "target-bamboohr"]
    # each hris-to-iam run: its view of BambooHR extracted and mapped once, for both loaders
    iam = [x["plugin"] for x in stages if x["stage"] == "forked" and x["job"] == "hris-to-iam"]
    assert len(iam) == 5 * runs["hris-to-iam"]
    assert iam[:5] == ["tap-bamboohr-iam", "map-bamboohr-to-canonical", "map-hris-to-iam",
                       "target-scim", "target-ldap"]  # fmt: skip


def test_the_scheduled_runs_afterwards_see_everything_and_double_nothing(live: Live) -> None:
    live.settle()
    mark = len(AuditLog.read(live.audit))
    letters = DeadLetterStore(live.env["HRSYNC_DLQ_PATH"]).list(integration="ats-to-hris")
    for job in JOBS:
        live.hrsync_run(job)  # incremental: from the bookmarks of the first runs
    events = AuditLog.read(live.audit)[mark:]
    writes = [
        (e["integration"], e["record_key"], e["outcome"])
        for e in events
        if e.get("outcome") not in ("unchanged", "skipped")
        and not str(e.get("outcome", "")).startswith("planned-")
        and e.get("record_key") is not None
    ]
    assert writes == []
    # the scheduled run read the fast path's hires again (its bookmark had not moved) ...
    seen = {e["record_key"] for e in events if e.get("integration") == "ats-to-hris"}
    assert {str(c) for c in live.hired} <= seen
    # ... and BambooHR still has one employee per hire, the dead letter is still one letter
    for candidate in live.hired:
        assert len(live.employees(candidate)) == 1
    after = DeadLetterStore(live.env["HRSYNC_DLQ_PATH"]).list(integration="ats-to-hris")
    assert sorted(x.record_key for x in after) == sorted(x.record_key for x in letters)
