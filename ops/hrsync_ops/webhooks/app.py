"""The receiver (Starlette): verify, persist, acknowledge, then trigger the matching jobs.

``POST /webhooks/greenhouse`` — Greenhouse web hooks ``{"action", "payload"}`` signed with
``Signature: sha256 <hex>``; ``hire_candidate``, ``offer_created`` and ``offer_updated`` run the
jobs that read Greenhouse (``ats-to-hris``). The idempotency key is the ``Greenhouse-Event-ID``
header when sent, else the SHA-256 of the body.

``POST /webhooks/bamboohr`` — BambooHR event-based webhooks ``{"type": "employee.created|
updated|deleted", "timestamp", "data": {"companyId", "employeeId", "changedFields"}}`` (JSON or
form post) signed with ``X-BambooHR-Signature`` over body + ``X-BambooHR-Timestamp``; a
timestamp further than ``tolerance`` seconds from now is refused. ``employee.*`` runs every job
that reads BambooHR. The idempotency key is the SHA-256 of the body (it carries the event's own
timestamp, so a re-delivery has the same body; two identical events would sync the same state).

A missing or bad signature or a stale timestamp answers 401 and nothing else happens (nothing
stored, nothing run, the body never parsed). An accepted event is committed durably before the
200; a replay answers 200 ``duplicate`` and runs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hrsync_ops.webhooks.scheduler import Scheduler
from hrsync_ops.webhooks.signatures import parse_timestamp, verify_bamboohr, verify_greenhouse
from hrsync_ops.webhooks.store import EventStore

log = logging.getLogger("hrsync_ops.webhooks")

GREENHOUSE_ACTIONS = frozenset({"hire_candidate", "offer_created", "offer_updated"})
ENV_SECRETS = {
    "greenhouse": "HRSYNC_GREENHOUSE_WEBHOOK_SECRET",
    "bamboohr": "HRSYNC_BAMBOOHR_WEBHOOK_SECRET",
}
MAX_BODY = 1_000_000


def jobs_by_source(meltano_yml: Path) -> dict[str, list[str]]:
    """Source system -> the Meltano jobs whose tasks start with its extractor (``tap-<source>``)."""
    project = yaml.safe_load(meltano_yml.read_text(encoding="utf-8")) or {}
    out: dict[str, list[str]] = {}
    for job in project.get("jobs") or []:
        tasks = job.get("tasks") or []
        for task in tasks if isinstance(tasks, list) else [tasks]:
            first = (task if isinstance(task, str) else " ".join(task)).split()[0]
            if first.startswith("tap-"):
                jobs = out.setdefault(first.removeprefix("tap-"), [])
                if job["name"] not in jobs:
                    jobs.append(job["name"])
    return out


@dataclass
class ReceiverConfig:
    secrets: Mapping[str, str]  # source -> secret; a source without a secret is not served
    jobs: Mapping[str, Iterable[str]]  # source -> jobs to run
    tolerance: float = 300.0  # seconds a BambooHR timestamp may be off from now
    max_body: int = MAX_BODY
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _refuse(reason: str) -> JSONResponse:
    log.warning("webhook refused: %s", reason)
    return JSONResponse({"error": reason}, status_code=401)


def create_app(config: ReceiverConfig, store: EventStore, scheduler: Scheduler) -> Starlette:
    async def accept(source: str, key: str, event_type: str, body: bytes, jobs: list[str]) -> Any:
        stored = await run_in_threadpool(store.add, source, key, event_type, body, jobs)
        if stored.duplicate:
            return JSONResponse({"status": "duplicate"})
        for job in stored.jobs:
            scheduler.notify(job)
        status = "accepted" if stored.jobs else "ignored"
        return JSONResponse({"status": status, "event": stored.event_id, "jobs": list(stored.jobs)})

    async def read_body(request: Request) -> bytes | None:
        body = await request.body()
        return None if len(body) > config.max_body else body

    async def greenhouse(request: Request) -> Any:
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        if not verify_greenhouse(
            config.secrets["greenhouse"], body, request.headers.get("Signature")
        ):
            return _refuse("greenhouse: missing or invalid Signature header")
        try:
            event = json.loads(body)
            action = str(event["action"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"error": "greenhouse: body is not a JSON object with an 'action'"}, 400
            )
        key = (
            request.headers.get("Greenhouse-Event-ID")
            or "sha256:" + hashlib.sha256(body).hexdigest()
        )
        jobs = list(config.jobs.get("greenhouse", ())) if action in GREENHOUSE_ACTIONS else []
        return await accept("greenhouse", key, action, body, jobs)

    async def bamboohr(request: Request) -> Any:
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        stamp = request.headers.get("X-BambooHR-Timestamp")
        signature = request.headers.get("X-BambooHR-Signature")
        if not verify_bamboohr(config.secrets["bamboohr"], body, stamp, signature):
            return _refuse("bamboohr: missing or invalid X-BambooHR-Signature")
        sent = parse_timestamp(stamp or "")
        if sent is None or abs((config.clock() - sent).total_seconds()) > config.tolerance:
            return _refuse(f"bamboohr: stale or unreadable X-BambooHR-Timestamp {stamp!r}")
        event_type = _bamboohr_type(body, request.headers.get("Content-Type") or "")
        if event_type is None:
            return JSONResponse({"error": "bamboohr: body has no event 'type'"}, 400)
        jobs = list(config.jobs.get("bamboohr", ())) if event_type.startswith("employee.") else []
        key = "sha256:" + hashlib.sha256(body).hexdigest()
        return await accept("bamboohr", key, event_type, body, jobs)

    async def health(request: Request) -> Any:
        counts = await run_in_threadpool(store.counts)
        return JSONResponse(
            {"status": "ok", "sources": sorted(config.secrets), **counts, "jobs": scheduler.stats()}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            await run_in_threadpool(scheduler.stop)

    handlers = {"greenhouse": greenhouse, "bamboohr": bamboohr}
    routes = [Route("/healthz", health, methods=["GET"])]
    routes += [
        Route(f"/webhooks/{source}", handlers[source], methods=["POST"])
        for source in sorted(config.secrets)
        if config.secrets[source]
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _bamboohr_type(body: bytes, content_type: str) -> str | None:
    try:
        if "application/x-www-form-urlencoded" in content_type.lower():
            values = parse_qs(body.decode("utf-8")).get("type")
            return values[0] if values else None
        event = json.loads(body)
        return str(event["type"]) if isinstance(event, dict) and event.get("type") else None
    except (ValueError, UnicodeDecodeError):
        return None
