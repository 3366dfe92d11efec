"""uvicorn, hardened for a receiver on the internet: slow clients cannot hold connections.

uvicorn (0.55) has a keep-alive timeout between requests but none for reading a request's
headers: a client that sends one header byte now and then keeps its connection (and its
slot) forever, and every byte it sends even cancels the keep-alive timer. :class:`GuardedH11`
gives each request ``header_timeout`` seconds, from the connection's start or the end of the
previous response, to deliver all its headers (at most ``h11_max_incomplete_event_size``
bytes); then it answers 408 and closes. Bodies have their own deadline in the app
(``ReceiverConfig.body_timeout``) and size limit (``max_body``, checked on Content-Length
and while streaming).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("hrsync_ops.webhooks")

HEADER_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5.0
MAX_HEADER_BYTES = 16 * 1024
_TIMEOUT_BODY = b'{"error": "request headers not received in time"}'
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers."""

    header_timeout: float = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in (or the request failed)
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets its own

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning("webhook connection from %s closed: headers not complete in %.0f s",
                    client, self.header_timeout)  # fmt: skip
        self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedH11]:
    """A :class:`GuardedH11` subclass with ``header_timeout`` seconds for headers."""
    return type("GuardedH11", (GuardedH11,), {"header_timeout": float(header_timeout)})


def server_config(
    app: Any, *, host: str, port: int, header_timeout: float = HEADER_TIMEOUT, **extra: Any
) -> uvicorn.Config:
    """The uvicorn configuration of ``hrsync webhooks serve`` (and of its tests)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(header_timeout),
        timeout_keep_alive=int(KEEP_ALIVE_TIMEOUT),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="warning",
        **extra,
    )
