"""Lever Data API v1 plumbing: Basic auth with the API key, ``next``-token paging, ms windows.

Incremental windows (opportunities, postings): Lever stamps ``updatedAt`` in epoch milliseconds
and does not document the order of its lists, so each run reads a half-open window fixed when it
starts: ``[bookmark, run start)`` (``updated_at_start`` / ``updated_at_end`` where the endpoint
documents them). Anything changed while the run pages is stamped at or after the run start and
comes with the next run; everything at or below the bookmark was seen by the run that set it, so
the stream drops such records itself (singer-sdk does not). Residual risk: a Lever clock running
behind ours by more than a page's latency.
"""

from __future__ import annotations

import time
import typing as t
from datetime import UTC, datetime
from pathlib import Path

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.http import HRRESTStream, NoRepeatedPages, require_secure_url
from hrsync.shapes import expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
MAX_LIMIT = 100


def epoch_ms(value: datetime | str) -> int:
    """An ISO 8601 date-time (or aware datetime) as Lever's epoch milliseconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def envelope(response: requests.Response) -> dict[str, t.Any]:
    """Lever's page envelope (``{"data": [...], "hasNext", "next"}``), parsed once per response
    (the paginator reads it again); a page of another shape stops the extract, naming it."""
    return expect(response, "Lever", read_json(response, "Lever"), dict, 'an object with "data"')


def page_rows(response: requests.Response) -> list[dict]:
    return expect_rows(response, "Lever", envelope(response).get("data"), '"data"')


class NextTokenPaginator(NoRepeatedPages, BaseAPIPaginator[str | None]):
    """Lever's envelope: ``hasNext`` and an opaque ``next`` token; a repeated token fails."""

    vendor = "Lever"
    what_pages_by = "offset token"

    def __init__(self) -> None:
        super().__init__(None)

    def get_next(self, response: requests.Response) -> str | None:
        body = envelope(response)
        token = body.get("next")
        return str(token) if body.get("hasNext") and token else None


class Window(t.NamedTuple):
    """One run's ``updatedAt`` window in epoch ms: ``[low, high)``, or ``(bookmark, high)``."""

    low: int | None
    high: int
    bookmark: int | None


class LeverStream(HRRESTStream[str | None]):
    """One Lever list endpoint: ``GET /v1/{path}``, ``{"data": [...], "hasNext", "next"}``."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    is_sorted = False
    # Lever's JSON types are the schema's; unknown fields are dropped (and reported once) by
    # report_drift, so singer-sdk's per-field conformance pass would only cost time
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: the endpoint documents updated_at_start / updated_at_end (else: filtered here only)
    server_side_window: t.ClassVar[bool] = False
    #: endpoint-specific query parameters (e.g. expand)
    extra_params: t.ClassVar[dict[str, str]] = {}

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._window: Window | None = None
        self._known = frozenset(self.schema["properties"])
        self._drift_reported: set[str] = set()

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config["api_url"]).rstrip("/"))

    @property
    def authenticator(self) -> BasicAuthenticator:
        # Lever: the API key is the user name, the password is blank
        return BasicAuthenticator(username=str(self.config["api_key"]), password="")

    def get_new_paginator(self) -> BaseAPIPaginator:
        return NextTokenPaginator()

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict:
        limit = min(MAX_LIMIT, max(1, int(self.config.get("page_size") or MAX_LIMIT)))
        params: dict[str, t.Any] = {"limit": limit, **self.extra_params}
        if self.replication_key and self.server_side_window:
            window = self.window(context)
            if window.low is not None:
                params["updated_at_start"] = window.low
            params["updated_at_end"] = window.high - 1
        if next_page_token:
            # Lever pages by repeating the request with offset=<next token>
            params["offset"] = next_page_token
        return params

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        yield from page_rows(response)

    # --- incremental window ---------------------------------------------------------------

    def window(self, context: Context | None) -> Window:
        """This run's ``updatedAt`` window, fixed at its first request."""
        if self._window is None:
            value = self.get_context_state(context).get("replication_key_value")
            bookmark = int(value) if value not in (None, "") else None
            low = bookmark
            if low is None and self.config.get("start_date"):
                low = epoch_ms(str(self.config["start_date"]))
            self._window = Window(low, int(time.time() * 1000), bookmark)
        return self._window

    def report_drift(self, row: dict[str, t.Any]) -> None:
        """Drop fields the schema lacks, warning once per field (vendor drift is visible)."""
        for key in row.keys() - self._known:
            if key not in self._drift_reported:
                self._drift_reported.add(key)
                self.logger.warning(
                    "Schema drift in stream '%s': Lever sent field '%s', which the schema "
                    "lacks; it is left out of the output until schemas/%s.json declares it",
                    self.name,
                    key,
                    self.name,
                )
            del row[key]

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        if not self.replication_key:
            return row
        stamp = row.get(self.replication_key)
        if stamp is None:
            return row
        window = self.window(context)
        if window.bookmark is not None and stamp <= window.bookmark:
            return None  # emitted by the run that set the bookmark
        if window.low is not None and stamp < window.low:
            return None  # before start_date
        if stamp >= window.high:
            return None  # belongs to the next run's window
        return row
