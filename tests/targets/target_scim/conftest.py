"""A real SCIM server (scim2-server, one tenant per test) behind a recording, fault-injecting
HTTP proxy; scim2-client reads results back."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import itertools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import EnterpriseUser, SearchRequest, User

from hrsync.deadletter import DeadLetter, DeadLetterStore
from sandbox.directories import ScimServer, start_scim_server

ROOT = Path(__file__).resolve().parents[3]

TOKEN = "test-token-3f9a"
HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "iam_users.schema.json").read_text(encoding="utf-8"))
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServer]:
    server = start_scim_server(token=TOKEN)
    yield server
    server.stop()


@dataclass
class Fault:
    """Answer matching requests with ``status`` ``times`` times instead of forwarding."""

    status: int
    method: str | None = None
    path_contains: str | None = None
    body_contains: str | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times <= 0:
            return False
        if self.method and self.method != method:
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return not (self.body_contains and self.body_contains.encode() not in body)


@dataclass
class Seen:
    method: str
    path: str
    status: int
    body: bytes


class FaultProxy:
    """Forwards to the SCIM server; records every request; injects faults; can also act as
    an OAuth 2.0 token endpoint (POST /oauth/token) handing out ``tokens`` in turn."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self.tokens: list[str] = []
        self.token_requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = proxy.handle(
                    self.command, self.path, dict(self.headers.items()), body
                )
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/oauth/token"):
            with self.lock:
                self.token_requests += 1
                token = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
            doc = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()
        with self.lock:
            fault = next((f for f in self.faults if f.matches(method, path, body)), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            doc = fault.body or {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(fault.status),
                "detail": "injected fault",
            }
            with self.lock:
                self.seen.append(Seen(method, path, fault.status, body))
            return (
                fault.status,
                {"Content-Type": "application/scim+json", **fault.headers},
                json.dumps(doc).encode(),
            )
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, path, body=body or None, headers=forward)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        with self.lock:
            self.seen.append(Seen(method, path, response.status, body))
        return response.status, dict(response.getheaders()), payload

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in WRITES]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_tenants = itertools.count(1)


@dataclass
class Scim:
    """One test's SCIM tenant, reached through its own proxy."""

    proxy: FaultProxy
    tenant: str
    tmp: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}/{self.tenant}/v2"

    token = TOKEN

    def fault(self, **kwargs: Any) -> None:
        self.proxy.faults.append(Fault(**kwargs))

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}/oauth/token"

    def config(self, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "base_url": self.base_url,
            "bearer_token": TOKEN,
            "max_concurrency": 4,
            "organization": "Acme Corp",
        }
        cfg.update(overrides)
        return {k: v for k, v in cfg.items() if v is not None}

    def reader(self) -> SyncSCIMClient:
        client = SyncSCIMClient(
            httpx2.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"})
        )
        client.discover()
        return client

    def users(self) -> dict[str, User[EnterpriseUser]]:
        """Every user on the server, by externalId (or userName when it has none)."""
        reader = self.reader()
        out: dict[str, User[EnterpriseUser]] = {}
        start = 1
        while True:
            page = reader.query(
                User[EnterpriseUser],
                query_parameters=SearchRequest(start_index=start, count=500),
            )
            for user in page.resources or []:
                out[user.external_id or user.user_name] = user
            start += len(page.resources or [])
            if not page.resources or start > page.total_results:
                return out

    def lines(self, records: list[dict[str, Any]]) -> str:
        return singer_lines(records)

    def run(self, records: list[dict[str, Any]], **overrides: Any) -> Any:
        """Run TargetSCIM in-process; returns the target (``.summary``, ``.plan_text``)."""
        return run_target(self.config(**overrides), records)

    def dead_letters(self) -> list[DeadLetter]:
        """The waiting dead letters ($HRSYNC_DLQ_PATH: one store per test)."""
        return DeadLetterStore().list()


@pytest.fixture
def scim(scim_server: ScimServer, tmp_path: Path) -> Iterator[Scim]:
    proxy = FaultProxy(scim_server.port)
    yield Scim(proxy, f"t{os.getpid()}x{next(_tenants)}", tmp_path)
    proxy.close()


@pytest.fixture
def scim_twin(scim_server: ScimServer, tmp_path: Path) -> Iterator[Scim]:
    """A second tenant of the same server, for side-by-side runs."""
    proxy = FaultProxy(scim_server.port)
    yield Scim(proxy, f"t{os.getpid()}x{next(_tenants)}", tmp_path)
    proxy.close()


def person(employee_id: str, **fields: Any) -> dict[str, Any]:
    """An identity record (see docs/helpers IAM record) with plausible defaults."""
    given = fields.pop("given_name", f"Given{employee_id}")
    family = fields.pop("family_name", f"Family{employee_id}")
    record: dict[str, Any] = {
        "employee_id": employee_id,
        "employee_number": f"N-{employee_id}",
        "user_name": f"{employee_id.lower()}@example.com",
        "work_email": f"{employee_id.lower()}@example.com",
        "given_name": given,
        "family_name": family,
        "preferred_name": None,
        "display_name": None,
        "title": "Engineer",
        "department": "Engineering",
        "division": "Product",
        "location": "London",
        "cost_center": "CC-100",
        "manager_employee_id": None,
        "employment_status": "Active",
        "hire_date": "2020-01-06",
        "termination_date": None,
        "deleted": None,
        "positions": None,
    }
    record.update(fields)
    return record


def singer_lines(records: list[dict[str, Any]], stream: str = "iam_users") -> str:
    lines = [
        {"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": ["employee_id"]}
    ]
    lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": len(records)}}}})
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def run_target(config: dict[str, Any], records: list[dict[str, Any]]) -> Any:
    """Run TargetSCIM in-process over the records; returns the target (its .summary)."""
    from target_scim.target import TargetSCIM

    target = TargetSCIM(config=config, validate_config=True)
    plan_out = io.StringIO()
    target.provisioner.plan_out = plan_out
    try:
        target.listen(file_input=io.StringIO(singer_lines(records)))
    finally:
        target.plan_text = plan_out.getvalue()
    return target


def audit_lines() -> list[dict[str, Any]]:
    path = Path(os.environ["HRSYNC_AUDIT_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def make_person() -> Any:
    return person


@pytest.fixture
def audit() -> Any:
    return audit_lines


@pytest.fixture(scope="session")
def put_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    """A scim2-server announcing no PATCH and no Bulk: the target must use PUT."""
    spc = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": False},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 200},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [],
    }
    path = tmp_path_factory.mktemp("spc") / "spc.json"
    path.write_text(json.dumps(spc), encoding="utf-8")
    server = start_scim_server("--service-provider-config", str(path), token=TOKEN)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def put_only_scim(put_only_server: ScimServer, tmp_path: Path) -> Iterator[Scim]:
    proxy = FaultProxy(put_only_server.port)
    yield Scim(proxy, f"p{os.getpid()}x{next(_tenants)}", tmp_path)
    proxy.close()
