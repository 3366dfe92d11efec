"""A tiny threaded HTTP app framework for the vendor fakes, with fault injection.

Each vendor module builds an :class:`App` (routes + vendor-shaped error hooks); :func:`serve`
runs it on a loopback port in a daemon thread. :class:`Faults` is shared by every app of a
sandbox and can be changed while it runs: random shares of 429s, 5xx, slow answers, dropped
connections and malformed (truncated) bodies, or an exact ``script`` of faults consumed one per
request, which is what tests use to be deterministic.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Handler = Callable[..., "Response"]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default).encode()
    except UnicodeEncodeError:  # an unpaired surrogate stored through the API: sent as its
        # JSON escape, as a vendor whose JSON encoder escapes non-ASCII would send it
        return json.dumps(value, default=_json_default).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    raw_query: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, dict | list):
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
            return dumps(body), headers
        if isinstance(body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return body.encode(), headers
        return body or b"", headers


class HTTPError(Exception):
    """Raised by a handler to answer with ``response``."""

    def __init__(
        self,
        status: int,
        body: bytes | str | dict | list | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.response = Response(status, body, headers or {})


@dataclass
class Faults:
    """Fault injection switches, shared by every app of a sandbox and mutable at run time."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 2.0
    rate_drop: float = 0.0
    rate_malformed: float = 0.0
    retry_after: int = 1
    seed: int = 1
    script: list[str] = field(default_factory=list)
    paths: str | None = None
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def reset(self) -> None:
        with self._lock:
            self.rate_429 = self.rate_5xx = self.rate_slow = 0.0
            self.rate_drop = self.rate_malformed = 0.0
            self.script.clear()
            self.paths = None

    def pick(self, path: str) -> str:
        """The fault for one request: "ok", "429", "500", "503", "slow", "drop" or "malformed"."""
        if self.paths is not None and not re.search(self.paths, path):
            return "ok"
        with self._lock:
            if self.script:
                fault = self.script.pop(0)
            else:
                r = self._rng.random()
                fault = "ok"
                for name, rate in (
                    ("429", self.rate_429),
                    ("503", self.rate_5xx),
                    ("slow", self.rate_slow),
                    ("drop", self.rate_drop),
                    ("malformed", self.rate_malformed),
                ):
                    if r < rate:
                        fault = name
                        break
                    r -= rate
            if fault != "ok":
                self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault


class App:
    """Routes for one vendor; override the hooks to shape errors like the vendor does."""

    name = "app"
    #: paths never subject to faults (token endpoints, sandbox admin)
    fault_exempt = r"^/(token|_sandbox)"

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests = 0

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        )

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), regex, handler))
            return handler

        return register

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(req.path)
            if match:
                allowed = True
                if method == req.method:
                    try:
                        return handler(req, **match.groupdict())
                    except HTTPError as err:
                        return err.response
        if allowed:
            return self.error(req, 405, "Method not allowed")
        return self.error(req, 404, f"No route for {req.method} {req.path}")

    # --- vendor hooks ---------------------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        return Response(status, {"message": message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return Response(429, {"message": "Too Many Requests"}, {"Retry-After": str(retry_after)})

    def server_error(self, req: Request, status: int) -> Response:
        return self.error(req, status, HTTPStatus(status).phrase)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], app: App, faults: Faults) -> None:
        self.app = app
        self.faults = faults
        super().__init__(addr, _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        app, faults = self.server.app, self.server.faults
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            raw_query=url.query,
        )
        app.requests += 1
        fault = "ok" if re.search(app.fault_exempt, req.path) else faults.pick(req.path)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        if fault == "429":
            resp = app.rate_limited(req, faults.retry_after)
        elif fault in ("500", "502", "503", "504"):
            resp = app.server_error(req, int(fault))
        else:
            resp = app.dispatch(req)
        payload, headers = resp.encode()
        if fault == "malformed" and payload:
            payload = payload[: max(1, len(payload) // 2)]
        self.send_response(resp.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Running:
    """A started app: its base URL and how to stop it."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(app: App, faults: Faults, host: str = "127.0.0.1", port: int = 0) -> Running:
    """Start ``app`` on ``host:port`` (0: a free port) in a daemon thread."""
    server = _Server((host, port), app, faults)
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{app.name}", daemon=True)
    thread.start()
    return Running(server, thread)
