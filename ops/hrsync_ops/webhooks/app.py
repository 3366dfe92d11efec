"""The receiver (Starlette): verify, persist, acknowledge, then trigger the matching jobs.

``POST /webhooks/greenhouse`` — Greenhouse web hooks ``{"action", "payload"}`` signed with
``Signature: sha256 <hex>``; ``hire_candidate``, ``offer_created`` and ``offer_updated`` run the
jobs that read Greenhouse (``ats-to-hris``). The idempotency key is the SHA-256 of the signed
body: the ``Greenhouse-Event-ID`` header is not signed, so a captured request re-sent with a new
id must still be a duplicate (a re-delivery of one event has the same body).

``POST /webhooks/bamboohr`` — BambooHR event-based webhooks ``{"type": "employee.created|
updated|deleted", "timestamp", "data": {"companyId", "employeeId", "changedFields"}}`` (JSON or
form post) signed with ``X-BambooHR-Signature`` over body + ``X-BambooHR-Timestamp``; a
timestamp further than ``tolerance`` seconds from now is refused. ``employee.*`` runs every job
that reads BambooHR. The idempotency key is the SHA-256 of the body (it carries the event's own
timestamp, so a re-delivery has the same body; two identical events would sync the same state).

A missing or bad signature or a stale timestamp answers 401 and nothing else happens (nothing
stored, nothing run, the body never parsed). An accepted event is committed durably before the
200; a replay answers 200 ``duplicate`` and runs nothing.

A body larger than ``max_body`` answers 413 as soon as that is known: from ``Content-Length``
before reading anything, else while streaming (a chunked body is never buffered past the
limit); a body that does not arrive within ``body_timeout`` seconds answers 408 (headers have
their own deadline: :mod:`hrsync_ops.webhooks.server`). ``GET /healthz`` answers
``{"status": "ok"}`` to anyone, and the details (sources, jobs, counts) only with
``Authorization: Bearer <$HRSYNC_WEBHOOK_HEALTH_TOKEN>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hrsync_ops.ops import safe_load
from hrsync_ops.webhooks import trace
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
BODY_TIMEOUT = 30.0
ENV_HEALTH_TOKEN = "HRSYNC_WEBHOOK_HEALTH_TOKEN"  # noqa: S105 - a variable name


def jobs_by_source(meltano_yml: Path) -> dict[str, list[str]]:
    """Source system -> the Meltano jobs whose tasks start with its extractor (``tap-<source>``)."""
    project = safe_load(meltano_yml.read_text(encoding="utf-8")) or {}
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
    body_timeout: float = BODY_TIMEOUT  # seconds for the whole body to arrive
    health_token: str | None = None  # /healthz details only for "Bearer <token>"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _refuse(reason: str) -> JSONResponse:
    log.warning("webhook refused: %s", reason)
    return JSONResponse({"error": reason}, status_code=401)


def create_app(config: ReceiverConfig, store: EventStore, scheduler: Scheduler) -> Starlette:
    async def accept(source: str, key: str, event_type: str, body: bytes, jobs: list[str]) -> Any:
        trace.stage("received", source=source, event_type=event_type)
        stored = await run_in_threadpool(store.add, source, key, event_type, body, jobs)
        trace.stage("stored", source=source, event=stored.event_id, jobs=list(stored.jobs))
        if stored.duplicate:
            return JSONResponse({"status": "duplicate"})
        for job in stored.jobs:
            scheduler.notify(job)
        status = "accepted" if stored.jobs else "ignored"
        return JSONResponse({"status": status, "event": stored.event_id, "jobs": list(stored.jobs)})

    def _closing(error: str, status: int) -> JSONResponse:
        # the rest of the body is not read: the connection cannot be reused
        return JSONResponse({"error": error}, status_code=status, headers={"Connection": "close"})

    async def read_body(request: Request) -> bytes | JSONResponse:
        """The body, or the 400/408/413 answer: the size limit is enforced before and while
        reading, never after buffering."""
        too_large = f"body larger than {config.max_body} bytes"
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return _closing("bad Content-Length", 400)
            if int(declared) > config.max_body:
                return _closing(too_large, 413)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.body_timeout
        body = bytearray()
        chunks = request.stream().__aiter__()
        while True:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(chunks.__anext__(), left)
            except StopAsyncIteration:
                return bytes(body)
            except TimeoutError:
                return _closing(f"body not received within {config.body_timeout:g} s", 408)
            body += chunk
            if len(body) > config.max_body:
                return _closing(too_large, 413)

    async def greenhouse(request: Request) -> Any:
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
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
        key = "sha256:" + hashlib.sha256(body).hexdigest()  # signed; the event id header is not
        jobs = list(config.jobs.get("greenhouse", ())) if action in GREENHOUSE_ACTIONS else []
        return await accept("greenhouse", key, action, body, jobs)

    async def bamboohr(request: Request) -> Any:
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
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
        token = config.health_token
        sent = (request.headers.get("authorization") or "").encode("utf-8", "replace")
        if not token or not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            return JSONResponse({"status": "ok"})
        counts = await run_in_threadpool(store.counts)
        details = {"sources": sorted(config.secrets), **counts, "jobs": scheduler.stats()}
        fast_path = getattr(scheduler.runner, "stats", None)  # hrsync_ops.webhooks.fastpath
        if callable(fast_path):
            details["fast_path"] = fast_path()
        return JSONResponse({"status": "ok", **details})

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
