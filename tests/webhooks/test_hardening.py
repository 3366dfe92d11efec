"""The receiver against hostile clients (`hrsync webhooks serve` as a real process): replays
with a new event id, oversized and endless bodies, slow headers, and /healthz for strangers."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hrsync_ops.webhooks.signatures import greenhouse_signature
from sandbox.webhooks import ReceiverProcess, start_receiver

SECRETS = {"greenhouse": "gh-secret-for-tests", "bamboohr": "bhr-private-key-for-tests"}
FAKE_JOB = Path(__file__).with_name("fake_job.py")
HIRE = json.dumps({"action": "hire_candidate", "payload": {"application": {"id": 1}}}).encode()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ReceiverProcess]:
    command = f"{sys.executable} {FAKE_JOB} {{job}} {tmp_path / 'jobs.log'} 0"
    rec = start_receiver(
        tmp_path,
        secrets=SECRETS,
        args=["--command", command, "--route", "greenhouse=ats-to-hris",
              "--header-timeout", "1", "--body-timeout", "2"],
    )  # fmt: skip
    yield rec
    rec.stop()


def post(rec: ReceiverProcess, body: bytes, event_id: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "Signature": greenhouse_signature(SECRETS["greenhouse"], body),
        "Greenhouse-Event-ID": event_id,
    }
    return requests.post(f"{rec.url}/webhooks/greenhouse", data=body, headers=headers, timeout=10)


def rss_kib(pid: int) -> int:
    """Peak resident memory of a process (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_captured_request_replayed_with_a_new_event_id_is_a_duplicate(
    receiver: ReceiverProcess,
) -> None:
    assert post(receiver, HIRE, "evt-1").json()["status"] == "accepted"
    replay = post(receiver, HIRE, "evt-forged-2")  # the id header is not signed
    assert replay.json() == {"status": "duplicate"}
    assert receiver.health()["events"] == 1


def test_a_declared_oversized_body_is_refused_before_reading(receiver: ReceiverProcess) -> None:
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/greenhouse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_a_200_mb_chunked_body_is_refused_while_streaming(receiver: ReceiverProcess) -> None:
    before = rss_kib(receiver.process.pid)
    chunk = b"x" * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(200):  # 200 MiB, no Content-Length: chunked
            yield chunk

    try:
        response = requests.post(
            f"{receiver.url}/webhooks/greenhouse",
            data=body(),
            headers={"Content-Type": "application/json", "Signature": "sha256 00"},
            timeout=30,
        )
        status = response.status_code
    except requests.ConnectionError:
        status = None  # the receiver answered and closed while we were still sending
    grown_mib = (rss_kib(receiver.process.pid) - before) / 1024
    print(f"receiver peak RSS grew by {grown_mib:.1f} MiB for a 200 MiB chunked body")
    assert status in (413, None)
    assert grown_mib < 50  # it never buffered the body (it used to peak at 477 MB)
    assert receiver.health()["events"] == 0


def test_slow_headers_are_cut_off(receiver: ReceiverProcess) -> None:
    closed = False
    answer = b""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/greenhouse HTTP/1.1\r\n")
        for _ in range(40):  # one header byte every 0.1 s, never finishing: 4 s > 1 s allowed
            try:
                sock.sendall(b"X")
            except OSError:  # the receiver closed the connection
                closed = True
                break
            time.sleep(0.1)
        if not closed:
            sock.settimeout(5)
            try:
                answer = sock.recv(4096)  # b"" (EOF) or the 408 when closed; times out if held
            except TimeoutError:
                pytest.fail("the receiver still holds a connection whose headers never end")
            closed = True
    assert closed
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    assert receiver.health()["status"] == "ok"  # and it still serves others


def test_a_body_that_never_ends_times_out(receiver: ReceiverProcess) -> None:
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST /webhooks/greenhouse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")


def test_healthz_shows_details_only_with_the_token(receiver: ReceiverProcess) -> None:
    anonymous = requests.get(f"{receiver.url}/healthz", timeout=5).json()
    assert anonymous == {"status": "ok"}
    wrong = requests.get(
        f"{receiver.url}/healthz", headers={"Authorization": "Bearer nope"}, timeout=5
    ).json()
    assert wrong == {"status": "ok"}
    details = receiver.health()  # with the token start_receiver configured
    assert details["sources"] == ["bamboohr", "greenhouse"] and "jobs" in details
