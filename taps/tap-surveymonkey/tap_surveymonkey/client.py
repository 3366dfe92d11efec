"""SurveyMonkey API v3 plumbing: bearer token, ``links.next`` and keyset paging, error bodies.

Responses are read per survey, oldest change first (``sort_by=date_modified&sort_order=ASC``),
within a window fixed when the run starts: ``[bookmark, run start)`` (``start_modified_at`` /
``end_modified_at``, second precision). Page numbers alone would skip a response whenever
another one leaves the window while the run pages (every later response shifts up a place),
so the tap pages by key instead: after each page it asks again from the last ``date_modified``
it saw (minus a second, whichever way the API treats the bound) and drops the responses it
already has; only within one second does it fall back to the next page number. Responses at or
before the bookmark were emitted by the run that set it, and are dropped (singer-sdk does not).
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.http import HRRESTStream, require_secure_url
from hrsync.incremental import parse_datetime
from hrsync.paging import JSONLinkPaginator
from hrsync.shapes import expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SCHEMAS = Path(__file__).parent / "schemas"
MAX_PER_PAGE = 100
_SECOND = timedelta(seconds=1)


#: SurveyMonkey date-times (``2024-01-10T20:33:48+00:00``) as aware UTC datetimes
parse_stamp = parse_datetime


def format_bound(value: datetime) -> str:
    """``start_modified_at`` / ``end_modified_at`` as documented: ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_json(response: requests.Response) -> t.Any:
    """The body as JSON, parsed once per response (the paginator reads it again); a body that
    is not JSON fails naming the endpoint."""
    return read_json(response, "SurveyMonkey")


def parse_list(response: requests.Response) -> list[dict[str, t.Any]]:
    """The ``data`` array of a list body; any other shape fails naming the endpoint."""
    body = expect(response, "SurveyMonkey", parse_json(response), dict, 'an object with "data"')
    return expect_rows(response, "SurveyMonkey", body.get("data"), '"data"')


class LinksNextPaginator(JSONLinkPaginator):
    """Follows ``links.next`` of a list body (the last page: none, or no ``data``); a repeated
    link fails instead of looping."""

    vendor = "SurveyMonkey"
    link_path = ("links", "next")
    rows_path = ("data",)


class Keyset(t.NamedTuple):
    """Where the next responses page starts: ``start_modified_at`` and the page number."""

    start: datetime | None
    page: int


class KeysetPaginator(BaseAPIPaginator[Keyset]):
    """Ask again from the last ``date_modified`` seen (see the module docstring)."""

    def __init__(self, start: datetime | None, on_start: Callable[[datetime], None]) -> None:
        super().__init__(Keyset(start, 1))
        self._on_start = on_start

    def get_next(self, response: requests.Response) -> Keyset | None:
        body = parse_json(response)
        data = body.get("data") or []
        if not data or not (body.get("links") or {}).get("next"):
            return None
        current = self.current_value
        newest = max(parse_stamp(str(r["date_modified"])) for r in data)
        start = newest - _SECOND
        if current.start is None or start > current.start:
            self._on_start(start)
            return Keyset(start, 1)
        return Keyset(current.start, current.page + 1)

    def has_more(self, response: requests.Response) -> bool:
        return self.get_next(response) is not None


class SurveyMonkeyStream(HRRESTStream[t.Any]):
    """Shared behaviour: base URL, bearer token, SurveyMonkey's error bodies, JSON once."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    is_sorted = False
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        yield from parse_list(response)

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config["api_url"]).rstrip("/"))

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=str(self.config["access_token"]))

    def vendor_error_message(self, response: requests.Response) -> str:
        """``{"error": {"id", "name", "message", ...}}`` -> ``Rate limit reached (1040): ...``."""
        try:
            error = orjson.loads(response.content).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            return super().vendor_error_message(response)
        if not isinstance(error, dict) or not error.get("message"):
            return super().vendor_error_message(response)
        return f"{error.get('name') or 'Error'} ({error.get('id')}): {error['message']}"

    def page_size(self) -> int:
        return min(MAX_PER_PAGE, max(1, int(self.config.get("page_size") or MAX_PER_PAGE)))
