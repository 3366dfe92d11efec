"""Lever Data API v1 plumbing: Basic auth with the API key, ``next``-token paging, ms windows.

Incremental windows (opportunities, postings; :mod:`hrsync.incremental`): Lever stamps
``updatedAt`` in epoch milliseconds and does not document the order of its lists, so each run
reads the half-open window fixed when it starts, ``[bookmark, run start)``, sent as
``updated_at_start`` / ``updated_at_end`` where the endpoint documents them and applied to the
records in any case.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.drift import ReportsDrift
from hrsync.http import HRRESTStream, require_secure_url
from hrsync.incremental import EpochMillisWindows
from hrsync.paging import JSONTokenPaginator
from hrsync.shapes import expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
MAX_LIMIT = 100


def envelope(response: requests.Response) -> dict[str, t.Any]:
    """Lever's page envelope (``{"data": [...], "hasNext", "next"}``), parsed once per response
    (the paginator reads it again); a page of another shape stops the extract, naming it."""
    return expect(response, "Lever", read_json(response, "Lever"), dict, 'an object with "data"')


def page_rows(response: requests.Response) -> list[dict]:
    return expect_rows(response, "Lever", envelope(response).get("data"), '"data"')


class NextTokenPaginator(JSONTokenPaginator):
    """Lever's envelope: ``hasNext`` and an opaque ``next`` token; a repeated token fails."""

    vendor = "Lever"
    what_pages_by = "offset token"
    token_path = ("next",)
    more_path = ("hasNext",)


class LeverStream(ReportsDrift, EpochMillisWindows, HRRESTStream[str | None]):
    """One Lever list endpoint: ``GET /v1/{path}``, ``{"data": [...], "hasNext", "next"}``."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    is_sorted = False
    # Lever's JSON types are the schema's; unknown fields are dropped (and reported once) by
    # report_drift, so singer-sdk's per-field conformance pass would only cost time
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    drift_vendor = "Lever"
    drift_nested = False
    #: the endpoint documents updated_at_start / updated_at_end (else: filtered here only)
    server_side_window: t.ClassVar[bool] = False
    #: endpoint-specific query parameters (e.g. expand)
    extra_params: t.ClassVar[dict[str, str]] = {}

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
            params["updated_at_end"] = t.cast(int, window.high) - 1
        if next_page_token:
            # Lever pages by repeating the request with offset=<next token>
            params["offset"] = next_page_token
        return params

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        yield from page_rows(response)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        return row if self.in_window(row, context) else None
