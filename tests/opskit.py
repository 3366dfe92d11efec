"""Test helpers for operations (alerts, runs, dead letters): a local webhook receiver and a
local SMTP server (aiosmtpd), both on free loopback ports. Imported by tests/core and
tests/e2e (they put tests/ on sys.path)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class WebhookReceiver:
    """Records every POST body (JSON) it gets; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.raw.append(body)
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def start_smtp(
    *,
    cert: Path | None = None,
    key: Path | None = None,
    implicit_tls: bool = False,
    user: str | None = None,
    password: str | None = None,
) -> tuple[Controller, Mailbox]:
    """aiosmtpd on a free loopback port: plain, STARTTLS (cert+key) or implicit TLS; with a
    login check when ``user`` is given."""
    box = Mailbox()
    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
            (user or "").encode(),
            (password or "").encode(),
        )
        if ok:
            box.logins.append(auth.login.decode())
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port()}
    if implicit_tls:
        kwargs["ssl_context"] = context
    elif context is not None:
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    if user:
        kwargs["authenticator"] = authenticate
        kwargs["auth_require_tls"] = context is not None
    controller = Controller(box, **kwargs)
    controller.start()
    return controller, box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
