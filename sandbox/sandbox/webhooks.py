"""Outgoing webhooks of the vendor fakes: registration, signing as each vendor documents, and
delivery with retries (one background thread per vendor app). Sources and what is unverified:
``sandbox/docs/webhooks.md``.

* Greenhouse: body ``{"action": <event>, "payload": {...}}`` (non-ASCII escaped as ``\\uXXXX``),
  headers ``Signature: sha256 <hex HMAC-SHA256(secret key, body)>`` and ``Greenhouse-Event-ID``;
  events ``hire_candidate``, ``offer_created``, ``offer_updated`` (the ones the fake can raise).
* BambooHR (event-based webhooks): body ``{"type": "employee.created|updated|deleted",
  "timestamp": "2026-01-31T18:42:00+0000", "data": {"companyId", "employeeId",
  "changedFields"}}``, headers ``X-BambooHR-Timestamp`` (Unix seconds, set per attempt) and
  ``X-BambooHR-Signature: <hex HMAC-SHA256(private key, body + timestamp)>``.

A delivery that fails (connection error, timeout or a non-2xx answer) is retried up to
``max_retries`` times, ``retry_base * 2**n`` seconds apart (the vendors wait minutes to hours;
the sandbox's base is one second so tests and demos stay fast).

Register with ``app.webhooks.register(url, secret)`` or ``POST /_sandbox/webhooks
{"url", "secret", "events"?}`` on the vendor's port; ``GET /_sandbox/webhooks`` lists deliveries.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import os
import secrets as _secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from sandbox.httpbase import App, HTTPError, Request, Response

#: documented (or assumed, see the docs) retry counts
RETRIES = {"greenhouse": 7, "bamboohr": 5}
USER_AGENTS = {
    "greenhouse": "Greenhouse-Webhooks/1.0 (hrsync sandbox)",
    "bamboohr": "BambooHR-WebHooks/1.0 (+https://www.bamboohr.com)",
}


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class Registration:
    url: str
    secret: str
    events: frozenset[str] | None = None  # None: every event

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events


@dataclass
class Delivery:
    id: int
    url: str
    event: str
    body: bytes
    secret: str
    event_id: str
    attempts: int = 0
    status: str = "pending"  # pending | delivered | failed
    last_error: str | None = None
    sent_at: list[float] = field(default_factory=list)


class WebhookSender:
    """Signs and delivers one vendor's webhooks; knobs are attributes, changeable at run time."""

    def __init__(self, vendor: str, *, retry_base: float = 1.0, timeout: float = 10.0) -> None:
        if vendor not in RETRIES:
            raise ValueError(f"no webhook format for {vendor!r}")
        self.vendor = vendor
        self.max_retries = RETRIES[vendor]
        self.retry_base = retry_base
        self.timeout = timeout
        self.company_id = "12345"
        self.registrations: list[Registration] = []
        self.deliveries: list[Delivery] = []
        self._queue: list[tuple[float, int, Delivery]] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    # --- registration ---------------------------------------------------------------------

    def register(self, url: str, secret: str, events: list[str] | None = None) -> Registration:
        reg = Registration(url, secret, frozenset(events) if events else None)
        with self._cond:
            self.registrations.append(reg)
        return reg

    def clear(self) -> None:
        with self._cond:
            self.registrations.clear()
            self._queue.clear()

    # --- events ---------------------------------------------------------------------------

    def emit(self, event: str, payload: dict[str, Any]) -> list[Delivery]:
        """Queue ``event`` for every registration that wants it (never blocks)."""
        with self._cond:
            regs = [r for r in self.registrations if r.wants(event)]
        if not regs:
            return []
        body = self._body(event, payload)
        out = []
        with self._cond:
            for reg in regs:
                d = Delivery(next(self._ids), reg.url, event, body, reg.secret, str(uuid.uuid4()))
                self.deliveries.append(d)
                heapq.heappush(self._queue, (time.monotonic(), d.id, d))
                out.append(d)
            self._ensure_thread()
            self._cond.notify_all()
        return out

    def employee_changed(self, employee_id: int, fields: list[str], *, created: bool) -> None:
        """BambooHR: an employee was written through the API (created: both events fire)."""
        data: dict[str, Any] = {"companyId": self.company_id, "employeeId": str(employee_id)}
        if created:
            self.emit("employee.created", data)
        self.emit("employee.updated", {**data, "changedFields": sorted(fields)})

    def employee_deleted(self, employee_id: int) -> None:
        self.emit(
            "employee.deleted", {"companyId": self.company_id, "employeeId": str(employee_id)}
        )

    def _body(self, event: str, payload: dict[str, Any]) -> bytes:
        if self.vendor == "greenhouse":
            return json.dumps({"action": event, "payload": payload}, ensure_ascii=True).encode()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        doc = {"type": event, "timestamp": stamp, "data": payload}
        return json.dumps(doc, ensure_ascii=False).encode()

    def headers(self, d: Delivery) -> dict[str, str]:
        """Signed headers for one attempt (BambooHR signs the time of each attempt)."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENTS[self.vendor]}
        if self.vendor == "greenhouse":
            headers["Signature"] = f"sha256 {_hmac_hex(d.secret, d.body)}"
            headers["Greenhouse-Event-ID"] = d.event_id
        else:
            stamp = str(int(time.time()))
            headers["X-BambooHR-Timestamp"] = stamp
            headers["X-BambooHR-Signature"] = _hmac_hex(d.secret, d.body + stamp.encode())
        return headers

    # --- delivery -------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued (for tests); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or any(d.status == "sending" for d in self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"webhooks-{self.vendor}", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    wait = self._queue[0][0] - time.monotonic() if self._queue else 5.0
                    if not self._cond.wait(max(0.0, wait)) and not self._queue:
                        self._thread = None  # idle for a while: the next emit starts one
                        return
                _, _, d = heapq.heappop(self._queue)
                d.status = "sending"
            ok, error = self._send(d)
            with self._cond:
                d.attempts += 1
                d.last_error = error
                if ok:
                    d.status = "delivered"
                elif d.attempts > self.max_retries:
                    d.status = "failed"
                else:
                    d.status = "pending"
                    due = time.monotonic() + self.retry_base * 2 ** (d.attempts - 1)
                    heapq.heappush(self._queue, (due, d.id, d))
                self._cond.notify_all()

    def _send(self, d: Delivery) -> tuple[bool, str | None]:
        d.sent_at.append(time.time())
        try:
            resp = self._session.post(
                d.url, data=d.body, headers=self.headers(d), timeout=self.timeout
            )
        except requests.RequestException as exc:
            return False, type(exc).__name__
        if 200 <= resp.status_code < 300:
            return True, None
        return False, f"HTTP {resp.status_code}"

    def summary(self) -> list[dict[str, Any]]:
        with self._cond:
            return [
                {"id": d.id, "url": d.url, "event": d.event, "status": d.status,
                 "attempts": d.attempts, "last_error": d.last_error}
                for d in self.deliveries
            ]  # fmt: skip


def add_routes(app: App, sender: WebhookSender) -> None:
    """``POST /_sandbox/webhooks`` registers a URL + secret; ``GET`` lists deliveries."""

    @app.route("POST", "/_sandbox/webhooks")
    def register(req: Request) -> Response:
        body = req.json() or {}
        if not isinstance(body, dict) or not body.get("url") or not body.get("secret"):
            raise HTTPError(400, {"message": "url and secret are required"})
        sender.register(str(body["url"]), str(body["secret"]), body.get("events"))
        return Response(201, {"registered": body["url"]})

    @app.route("GET", "/_sandbox/webhooks")
    def deliveries(req: Request) -> Response:
        return Response(200, {"deliveries": sender.summary()})


# --- the hrsync receiver as a process (tests, benchmarks, demo) ------------------------------


@dataclass
class ReceiverProcess:
    """``hrsync webhooks serve`` on a loopback port, started by :func:`start_receiver`."""

    port: int
    process: subprocess.Popen[bytes]
    secrets: dict[str, str]
    db: str
    health_token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        """The receiver's details (``/healthz`` with its bearer token)."""
        auth = {"Authorization": f"Bearer {self.health_token}"} if self.health_token else {}
        return dict(requests.get(f"{self.url}/healthz", headers=auth, timeout=5).json())

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_receiver(
    workdir: Path,
    *,
    secrets: dict[str, str],
    args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
    cwd: Path | None = None,
) -> ReceiverProcess:
    """Start the receiver (its store in ``workdir``); returns once ``/healthz`` answers."""
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db = str(workdir / "webhooks.sqlite")
    full_env = dict(env if env is not None else os.environ)
    full_env["HRSYNC_GREENHOUSE_WEBHOOK_SECRET"] = secrets.get("greenhouse", "")
    full_env["HRSYNC_BAMBOOHR_WEBHOOK_SECRET"] = secrets.get("bamboohr", "")
    health_token = full_env.setdefault("HRSYNC_WEBHOOK_HEALTH_TOKEN", _secrets.token_urlsafe(16))
    hrsync = str(Path(sys.executable).parent / "hrsync")
    log = (workdir / "receiver.log").open("ab")
    process = subprocess.Popen(
        [hrsync, "webhooks", "serve", "--port", str(port), "--db", db,
         "--log-dir", str(workdir / "runs"), *args],
        cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    receiver = ReceiverProcess(port, process, dict(secrets), db, health_token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hrsync webhooks serve exited: see {workdir / 'receiver.log'}")
        try:
            receiver.health()
            return receiver
        except requests.RequestException:
            time.sleep(0.05)
    receiver.stop(kill=True)
    raise RuntimeError("hrsync webhooks serve did not start")
