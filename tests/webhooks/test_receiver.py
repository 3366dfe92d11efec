"""`hrsync webhooks serve` as a real process: signatures, replay, durability, debounce, restart,
and the sandbox's signed webhooks (with retries) reaching it."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from hrsync_ops.webhooks.signatures import bamboohr_signature, greenhouse_signature
from sandbox.seed import CANDIDATE_BASE, Offer
from sandbox.server import Sandbox
from sandbox.webhooks import ReceiverProcess, start_receiver

SECRETS = {"greenhouse": "gh-secret-for-tests", "bamboohr": "bhr-private-key-for-tests"}
FAKE_JOB = Path(__file__).with_name("fake_job.py")


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def open_offers(sb: Sandbox) -> list[Offer]:
    """Offers still at status Created (candidates not hired yet)."""
    first, last = sb.world.employees + 1, sb.world.employees + sb.world.not_hired
    return [
        o
        for k in range(first, last + 1)
        for o in sb.world.offers_for_candidate(CANDIDATE_BASE + k)
        if o.status == "Created"
    ]


def runs(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def start(tmp: Path, *, window: float = 0.3, job_seconds: float = 0.0) -> ReceiverProcess:
    log = tmp / "jobs.log"
    command = f"{sys.executable} {FAKE_JOB} {{job}} {log} {job_seconds}"
    return start_receiver(
        tmp,
        secrets=SECRETS,
        args=["--command", command, "--window", str(window), "--retry-base", "0.5",
              "--route", "greenhouse=ats-to-hris",
              "--route", "bamboohr=hris-to-iam", "--route", "bamboohr=hris-to-lms"],
    )  # fmt: skip


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverProcess]:
    rec = start(tmp_path)
    yield rec
    rec.stop()


def gh_post(
    rec: ReceiverProcess, body: bytes, signature: str | None, event_id: str | None = None
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Signature"] = signature
    if event_id:
        headers["Greenhouse-Event-ID"] = event_id
    return requests.post(f"{rec.url}/webhooks/greenhouse", data=body, headers=headers, timeout=10)


def bhr_post(rec: ReceiverProcess, body: bytes, stamp: str, signature: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "X-BambooHR-Timestamp": stamp,
        "X-BambooHR-Signature": signature,
    }
    return requests.post(f"{rec.url}/webhooks/bamboohr", data=body, headers=headers, timeout=10)


def stored_events(rec: ReceiverProcess) -> int:
    with sqlite3.connect(rec.db) as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


HIRE = json.dumps(
    {"action": "hire_candidate", "payload": {"application": {"id": 1, "candidate": {
        "first_name": "Zoë", "last_name": "O'Brien-Łukasiewicz"}}}},
    ensure_ascii=True,
).encode()  # fmt: skip


def test_bad_or_missing_signatures_get_401_and_nothing_happens(
    receiver: ReceiverProcess, tmp_path: Path
) -> None:
    wrong = greenhouse_signature("not-the-secret", HIRE)
    tampered = greenhouse_signature(SECRETS["greenhouse"], HIRE + b" ")
    digest = hmac.new(SECRETS["greenhouse"].encode(), HIRE, hashlib.sha256).hexdigest()
    for sig in (None, "", wrong, tampered, f"sha1 {digest}", digest, "sha256 zz"):
        assert gh_post(receiver, HIRE, sig).status_code == 401, sig
    now = str(int(time.time()))
    body = b'{"type":"employee.updated","timestamp":"2026-01-31T18:42:00+0000","data":{}}'
    good = bamboohr_signature(SECRETS["bamboohr"], body, now)
    assert bhr_post(receiver, body, now, "0" * 64).status_code == 401
    assert bhr_post(receiver, body, str(int(now) + 1), good).status_code == 401  # ts not signed
    stale = str(int(time.time()) - 3600)
    resp = bhr_post(receiver, body, stale, bamboohr_signature(SECRETS["bamboohr"], body, stale))
    assert resp.status_code == 401 and "stale" in resp.json()["error"]
    # nothing stored, nothing run, and the receiver is still fine
    assert stored_events(receiver) == 0
    time.sleep(0.6)
    assert runs(tmp_path / "jobs.log") == []
    assert receiver.health()["events"] == 0


def test_events_are_stored_then_acknowledged_and_replays_ignored(
    receiver: ReceiverProcess, tmp_path: Path
) -> None:
    sig = greenhouse_signature(SECRETS["greenhouse"], HIRE)
    first = gh_post(receiver, HIRE, sig, event_id="evt-1")
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert stored_events(receiver) == 1  # committed before the answer
    again = gh_post(receiver, HIRE, sig, event_id="evt-1")
    assert again.json() == {"status": "duplicate"}
    # no event id: the body identifies the event
    other = json.dumps({"action": "offer_updated", "payload": {"id": 7}}).encode()
    osig = greenhouse_signature(SECRETS["greenhouse"], other)
    assert gh_post(receiver, other, osig).json()["status"] == "accepted"
    assert gh_post(receiver, other, osig).json()["status"] == "duplicate"
    # an action that runs nothing is still stored, and acknowledged
    ping = json.dumps({"action": "ping", "payload": {}}).encode()
    assert (
        gh_post(receiver, ping, greenhouse_signature(SECRETS["greenhouse"], ping)).json()["status"]
        == "ignored"
    )
    log = tmp_path / "jobs.log"
    wait_for(lambda: "end ats-to-hris" in runs(log))
    time.sleep(0.8)
    assert runs(log) == ["start ats-to-hris ats-to-hris", "end ats-to-hris"]  # coalesced: one run
    assert receiver.health()["triggers_done"] == 2


def test_bamboohr_employee_events_run_every_hris_job(
    receiver: ReceiverProcess, tmp_path: Path
) -> None:
    for eid in range(5):
        body = json.dumps({"type": "employee.updated", "timestamp": "2026-01-31T18:42:00+0000",
                           "data": {"companyId": "1", "employeeId": str(eid),
                                    "changedFields": ["jobTitle"]}}).encode()  # fmt: skip
        stamp = str(int(time.time()))
        resp = bhr_post(receiver, body, stamp, bamboohr_signature(SECRETS["bamboohr"], body, stamp))
        assert resp.json()["jobs"] == ["hris-to-iam", "hris-to-lms"]
    # ISO timestamps are read too; form posts carry the type as a field
    form = b"type=employee.deleted&data%5BemployeeId%5D=9"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resp = requests.post(
        f"{receiver.url}/webhooks/bamboohr",
        data=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-BambooHR-Timestamp": stamp,
            "X-BambooHR-Signature": bamboohr_signature(SECRETS["bamboohr"], form, stamp),
        },
        timeout=10,
    )
    assert resp.json()["status"] == "accepted"
    log = tmp_path / "jobs.log"
    wait_for(lambda: {"end hris-to-iam", "end hris-to-lms"} <= set(runs(log)))
    time.sleep(0.8)
    assert sorted(runs(log)) == sorted(
        ["start hris-to-iam hris-to-iam", "end hris-to-iam",
         "start hris-to-lms hris-to-lms", "end hris-to-lms"]
    )  # fmt: skip


def test_a_run_in_progress_gets_one_follow_up_and_failures_are_retried(tmp_path: Path) -> None:
    rec = start(tmp_path, window=0.2, job_seconds=1.5)
    log = tmp_path / "jobs.log"
    try:
        Path(f"{log}.fail").touch()  # the first run fails: its events must be run again

        def hire(n: int) -> None:
            body = json.dumps({"action": "hire_candidate", "payload": {"n": n}}).encode()
            sig = greenhouse_signature(SECRETS["greenhouse"], body)
            assert gh_post(rec, body, sig).json()["status"] == "accepted"

        hire(0)
        wait_for(lambda: "start ats-to-hris ats-to-hris" in runs(log))
        for n in range(1, 6):  # five events while the first run is in progress
            hire(n)
        wait_for(lambda: runs(log).count("end ats-to-hris") >= 1, timeout=30)
        time.sleep(2.5)
        lines = runs(log)
        # failed run, then one retry/follow-up run that covers all six events
        assert lines.count("fail ats-to-hris") == 1
        assert lines.count("end ats-to-hris") == 1
        assert lines.count("start ats-to-hris ats-to-hris") == 2
        health = rec.health()
        assert health["triggers_done"] == 6 and "triggers_pending" not in health
    finally:
        rec.stop()


def test_events_survive_a_crash_and_run_after_the_restart(tmp_path: Path) -> None:
    rec = start(tmp_path, window=60)  # the run would start a minute later: kill it before
    body = json.dumps({"action": "hire_candidate", "payload": {"id": 42}}).encode()
    sig = greenhouse_signature(SECRETS["greenhouse"], body)
    assert gh_post(rec, body, sig).json()["status"] == "accepted"
    rec.stop(kill=True)  # SIGKILL right after the 200
    log = tmp_path / "jobs.log"
    assert runs(log) == []
    rec = start(tmp_path, window=0.2)
    try:
        wait_for(lambda: "end ats-to-hris" in runs(log))
        assert gh_post(rec, body, sig).json()["status"] == "duplicate"  # still known
    finally:
        rec.stop()


def test_sandbox_sends_signed_webhooks_and_retries_until_delivered(tmp_path: Path) -> None:
    port_holder = start(tmp_path / "probe")
    port = port_holder.port
    port_holder.stop()  # the receiver is down when the first events are sent
    with Sandbox(employees=30) as sb:
        gh, bhr = sb.apps["greenhouse"], sb.apps["bamboohr"]
        gh.webhooks.retry_base = bhr.webhooks.retry_base = 0.3  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port}/webhooks"
        requests.post(
            f"{sb.greenhouse_url}/_sandbox/webhooks",
            json={"url": f"{url}/greenhouse", "secret": SECRETS["greenhouse"]},
            timeout=5,
        ).raise_for_status()
        bhr.webhooks.register(f"{url}/bamboohr", SECRETS["bamboohr"])  # type: ignore[attr-defined]
        # a hire in Greenhouse and a new employee in BambooHR, through their APIs
        offer = open_offers(sb)[0]
        requests.post(
            f"{sb.greenhouse_url}/_sandbox/greenhouse/offers/{offer.id}/accept", timeout=5
        ).raise_for_status()
        creds = sb.credentials["bamboohr"]
        requests.post(
            f"{sb.bamboohr_url}/api/v1/employees",
            json={"firstName": "Ngozi", "lastName": "Ádébáyọ̀"},
            auth=(creds["api_key"], "x"),
            timeout=5,
        ).raise_for_status()
        time.sleep(0.5)  # a few failed attempts against the closed port
        rec = start_receiver(  # now up, on the registered port
            tmp_path / "live",
            secrets=SECRETS,
            args=["--command", f"{sys.executable} {FAKE_JOB} {{job}} {tmp_path / 'jobs.log'} 0",
                  "--window", "0.2", "--route", "greenhouse=ats-to-hris",
                  "--route", "bamboohr=hris-to-iam"],
            port=port,
        )  # fmt: skip
        try:
            assert gh.webhooks.wait_idle(30) and bhr.webhooks.wait_idle(30)  # type: ignore[attr-defined]
            gh_d = gh.webhooks.summary()  # type: ignore[attr-defined]
            bhr_d = bhr.webhooks.summary()  # type: ignore[attr-defined]
            assert {d["event"] for d in gh_d} == {"offer_updated", "hire_candidate"}
            assert [d["event"] for d in bhr_d] == ["employee.created", "employee.updated"]
            assert all(d["status"] == "delivered" for d in gh_d + bhr_d), gh_d + bhr_d
            assert all(d["attempts"] >= 2 for d in gh_d + bhr_d)  # retried after failures
            with sqlite3.connect(rec.db) as db:
                types = {t for (t,) in db.execute("SELECT event_type FROM events")}
                hire = db.execute(
                    "SELECT body FROM events WHERE event_type='hire_candidate'"
                ).fetchone()[0]
            assert types == {"offer_updated", "hire_candidate", "employee.created",
                             "employee.updated"}  # fmt: skip
            payload = json.loads(hire)["payload"]["application"]
            assert payload["candidate"]["id"] == offer.candidate_id
            assert payload["offer"]["status"] == "Accepted"
        finally:
            rec.stop()
