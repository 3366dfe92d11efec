"""HiBob public API v1 plumbing: service-user Basic auth, cursor paging, records, drift.

Everything generic comes from hrsync-core: the HTTP policy (``hrsync.http``: https only,
retries honouring ``X-RateLimit-Reset`` on a 429, rate limit, error messages), paging
(``hrsync.paging``) and schema drift (``hrsync.drift``). What stays here is what HiBob documents,
declared:

- Basic auth with the service user's id as user name and its token as password.
- ``POST /people/search`` answers every match in one response (no paging) and has no "updated
  since" filter, and the employee tables have no change stamps: HiBob offers no change feed to
  read incrementally (its webhooks push changes instead), so every stream is a full table read;
  the destinations' targets compare and write only what changed.
- The bulk employee tables page with ``cursor`` / ``limit`` (at most 200) and answer
  ``{"results": [{"employeeId", "values": [...]}], "response_metadata": {"next_cursor"}}``.
- Errors carry ``{"key", "error"}``.
"""

from __future__ import annotations

import functools
import typing as t
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BasicAuthenticator

from hrsync.drift import ReportsDrift
from hrsync.http import HRRESTStream, require_secure_url
from hrsync.paging import JSONTokenPaginator
from hrsync.shapes import expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.pagination import BaseAPIPaginator

SCHEMAS = Path(__file__).parent / "schemas"
VENDOR = "HiBob"
DEFAULT_API_URL = "https://api.hibob.com/v1"
MAX_PAGE_SIZE = 200


class CursorPaginator(JSONTokenPaginator):
    """``response_metadata.next_cursor``: none, last page; a repeated one fails."""

    vendor = VENDOR
    what_pages_by = "cursor"
    token_path = ("response_metadata", "next_cursor")


class HibobStream(ReportsDrift, HRRESTStream[str | None]):
    """Shared behaviour of every HiBob stream (full table reads: see the module docstring)."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = None
    drift_vendor = VENDOR

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config.get("api_url") or DEFAULT_API_URL).rstrip("/"))

    @functools.cached_property
    def authenticator(self) -> BasicAuthenticator:
        return BasicAuthenticator(
            username=str(self.config["service_user_id"]), password=str(self.config["token"])
        )

    def vendor_error_message(self, response: requests.Response) -> str:
        """HiBob's ``{"key": ..., "error": ...}``; anything else as the base class reads it."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            key = body.get("key")
            return f"{body['error']} ({key})" if key else str(body["error"])
        return super().vendor_error_message(response)

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        return row


class TableStream(HibobStream):
    """``GET /bulk/people/{table}``: every employee's entries, one record per entry."""

    primary_keys: t.ClassVar[list[str]] = ["employeeId", "id"]
    table: t.ClassVar[str] = ""

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/bulk/people/{self.table}"

    def get_new_paginator(self) -> BaseAPIPaginator:
        return CursorPaginator()

    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        limit = min(MAX_PAGE_SIZE, max(1, int(self.config.get("page_size") or MAX_PAGE_SIZE)))
        params: dict[str, t.Any] = {"limit": limit}
        if next_page_token:
            params["cursor"] = next_page_token
        return params

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        body = expect(
            response, VENDOR, read_json(response, VENDOR), dict, 'an object with "results"'
        )
        for result in expect_rows(response, VENDOR, body.get("results"), '"results"'):
            employee = expect(response, VENDOR, result, dict, "a result object")
            for entry in expect_rows(response, VENDOR, employee.get("values"), '"values"'):
                yield {**entry, "employeeId": str(employee.get("employeeId"))}
