"""Greenhouse Harvest v3 plumbing: OAuth token, cursor paging, incremental window, drift report."""

from __future__ import annotations

import threading
import typing as t
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import ParseResult

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.drift import ReportsDrift
from hrsync.http import ClientCredentialsAuthenticator, HRRESTStream, require_secure_url
from hrsync.incremental import DateTimeWindows, parse_datetime
from hrsync.paging import FollowNextLink, LinkHeaderPaginator
from hrsync.shapes import expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"


def format_timestamp(value: datetime) -> str:
    """The filter form Harvest v3 documents: ISO 8601 UTC with milliseconds."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class GreenhouseAuthenticator(ClientCredentialsAuthenticator):
    """Client credentials against ``auth.greenhouse.io/token`` with ``sub`` = the acting user.

    Greenhouse answers ``expires_at`` (an ISO timestamp) rather than RFC 6749's ``expires_in``;
    the base class only reads ``expires_in``, so the lifetime is derived here from ``expires_at``
    (the response is read through a ``requests`` response hook on the token session).
    """

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, user_id: str) -> None:
        super().__init__(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            client_auth="basic",
            extra_params={"sub": str(user_id)},
        )
        self._last_token_body: dict[str, t.Any] = {}
        self._session.hooks["response"].append(self._remember_token_body)

    def _remember_token_body(self, response: requests.Response, *_: t.Any, **__: t.Any) -> None:
        try:
            body = response.json() if response.ok else {}
        except ValueError:
            body = {}
        self._last_token_body = body if isinstance(body, dict) else {}

    def update_access_token(self) -> None:
        super().update_access_token()
        body = self._last_token_body
        if "expires_in" not in body and body.get("expires_at") and self.last_refreshed:
            try:
                expires_at = parse_datetime(str(body["expires_at"]))
            except ValueError:
                return
            self.expires_in = max(1, int((expires_at - self.last_refreshed).total_seconds()))


class CursorLinkPaginator(LinkHeaderPaginator):
    """Follows ``Link: <...?cursor=...>; rel="next"``; a repeated link fails instead of looping."""

    vendor = "Greenhouse"


class GreenhouseStream(FollowNextLink, ReportsDrift, DateTimeWindows, HRRESTStream[ParseResult]):
    """One Harvest v3 list endpoint: ``GET /v3/{name}``, a JSON array of records.

    Paging: the ``Link`` header's next link, followed exactly (its cursor carries every filter
    and per_page, and Harvest v3 rejects a cursor combined with any other query parameter).

    Incremental (:mod:`hrsync.incremental`): Harvest lists in id order, not by ``updated_at``, so
    each run asks for the window fixed when it starts: ``updated_at=gt|<bookmark>|lt|<run
    start>`` (the first run: ``gte|<start_date>|lt|<run start>``), in milliseconds as Harvest
    documents; the stream also drops records outside it, in case a server treats ``gt`` loosely.

    Drift (:mod:`hrsync.drift`): unknown fields, nested ones included, are reported once and left
    out; singer-sdk's own recursive conformance pass would only repeat that work.
    """

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "updated_at"
    is_sorted = False
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    drift_vendor = "Greenhouse"
    window_precision = timedelta(milliseconds=1)

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/{self.name}"

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config["api_url"]).rstrip("/"))

    @property
    def authenticator(self) -> GreenhouseAuthenticator:
        tap = self._tap
        with _AUTH_LOCK:
            auth = getattr(tap, "_greenhouse_auth", None)
            if auth is None:
                auth = GreenhouseAuthenticator(
                    token_url=str(self.config["token_url"]),
                    client_id=str(self.config["client_id"]),
                    client_secret=str(self.config["client_secret"]),
                    user_id=str(self.config["user_id"]),
                )
                tap._greenhouse_auth = auth  # type: ignore[attr-defined]
        return t.cast(GreenhouseAuthenticator, auth)

    def get_new_paginator(self) -> BaseAPIPaginator:
        return CursorLinkPaginator()

    def get_url_params(
        self, context: Context | None, next_page_token: ParseResult | None
    ) -> dict[str, t.Any]:
        if next_page_token is not None:
            return {}
        window = self.window(context)
        bounds = f"lt|{format_timestamp(t.cast(datetime, window.high))}"
        if window.low is not None:
            op = "gte" if window.low_inclusive else "gt"
            bounds = f"{op}|{format_timestamp(window.low)}|{bounds}"
        page_size = min(500, max(1, int(self.config.get("page_size") or 500)))
        return {"per_page": page_size, "updated_at": bounds}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """A JSON array of record objects; anything else (null, an object, HTML, a cut body)
        fails naming the endpoint instead of ending the stream short."""
        yield from expect_rows(response, "Greenhouse", read_json(response, "Greenhouse"), "records")

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        return row if self.in_window(row, context) else None


_AUTH_LOCK = threading.Lock()
