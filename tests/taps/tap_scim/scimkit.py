"""tap-scim's test kit: the real scim2-server (one per module, a fresh tenant per test) behind
a loopback proxy that records requests, can speak HTTPS with a test CA, and can make the
server behave like other SCIM servers do (fewer resources than asked, no meta.lastModified,
no filtering, a password in the payload)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

TOKEN = "tap-scim-test-token"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

#: (method, path with query) -> JSON body to send instead of the server's, or None to keep it
Rewrite = Callable[[str, str, Any], Any]
#: (method, path with query) -> (status, JSON body) to answer without asking the server
Answer = Callable[[str, str], tuple[int, Any] | None]

_tenants = itertools.count(1)


def new_tenant() -> str:
    return f"tap{os.getpid()}x{next(_tenants)}"


class Proxy:
    """Forwards to scim2-server on ``upstream_port``; ``requests`` lists every path asked."""

    def __init__(
        self, upstream_port: int, *, port: int = 0, cert: tuple[Path, Path] | None = None
    ) -> None:
        self.upstream_port = upstream_port
        self.requests: list[str] = []
        self.rewrite: Rewrite | None = None
        self.answer: Answer | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = proxy.handle(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, tenant: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{tenant}/v2"

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if method == "GET":
            self.requests.append(path)
        if self.answer is not None and (canned := self.answer(method, path)) is not None:
            return canned[0], json.dumps(canned[1]).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, path, body=body or None, headers=forward)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        if self.rewrite is not None and payload:
            changed = self.rewrite(method, path, json.loads(payload))
            if changed is not None:
                payload = json.dumps(changed).encode()
        return response.status, payload

    def lists(self, resource: str = "/Users") -> list[dict[str, list[str]]]:
        """The query of every list request made to ``resource``."""
        return [
            parse_qs(urlsplit(p).query)
            for p in self.requests
            if urlsplit(p).path.endswith(f"/v2{resource}")
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Seeder:
    """Writes to a tenant of the server directly (never through the code under test)."""

    def __init__(self, base_url: str, verify: str | bool = True) -> None:
        self.base_url, self.verify = base_url, verify
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def _send(self, method: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        response = self.session.request(
            method, f"{self.base_url}{path}", json=doc, timeout=30, verify=self.verify
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def user(self, n: int, **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": f"user{n:03d}@example.com",
            "externalId": f"E{n:03d}",
            "active": True,
            "displayName": f"Given{n} Family{n}",
            "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
            "title": "Engineer",
            "emails": [{"value": f"user{n:03d}@example.com", "type": "work", "primary": True}],
            ENTERPRISE: {"employeeNumber": f"N{n:03d}", "department": "Engineering"},
            "password": "Initial-Secret-2026",
        }
        doc.update(fields)
        return self._send("POST", "/Users", doc)

    def users(self, count: int) -> list[dict[str, Any]]:
        return [self.user(n) for n in range(1, count + 1)]

    def replace(self, user: dict[str, Any], **fields: Any) -> dict[str, Any]:
        doc = {k: v for k, v in user.items() if k != "meta"} | fields
        return self._send("PUT", f"/Users/{user['id']}", doc)

    def group(self, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        doc = {
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": m["id"]} for m in members],
        }
        return self._send("POST", "/Groups", doc)
