"""BambooHR API v1 plumbing: base URL (current or legacy gateway), auth, errors, bookmarks, drift.

Incremental state, per stream, is BambooHR's ``lastChanged`` (second precision, server clock):

- Streams whose records carry ``lastChanged`` (employees, deletions, changed table rows) bookmark
  the largest value emitted and, on the next run, ask for changes since it and drop records at or
  before it themselves (singer-sdk does not; the API's ``since`` is inclusive).
- A full sync of a table (``/employees/all/tables/...``) has no per-row stamp. Its bookmark is the
  server's clock when the request was sent: the response's ``Date`` header minus the round trip
  (``response.elapsed``) minus one second for ``Date``'s truncation. Anything changed after the
  server read the table is therefore stamped after the bookmark and comes with the next run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import typing as t
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
from singer_sdk.authenticators import BasicAuthenticator
from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.drift import ReportsDrift
from hrsync.errors import RecordError
from hrsync.http import HRRESTStream, require_secure_url
from hrsync.incremental import DateTimeWindows, Window, parse_datetime
from hrsync.paging import JSONTokenPaginator
from hrsync.shapes import expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
CURRENT_BASE = "https://{company}.bamboohr.com/api/v1"
LEGACY_BASE = "https://api.bamboohr.com/api/gateway.php/{company}/v1"
#: BambooHR started recording last-changed stamps on 2011-06-05: "since" this is "ever"
EPOCH = datetime(2011, 6, 5, tzinfo=UTC)
ERROR_HEADER = "X-BambooHR-Error-Message"
VENDOR = "BambooHR"
SEEN_AT_BOOKMARK = "seen_at_bookmark"
#: values BambooHR uses for "no value" (empty text, the zero date of classic endpoints)
_EMPTY = ("", "0000-00-00", "0000-00-00T00:00:00+00:00")


def load_schema(name: str) -> dict[str, t.Any]:
    """The stream's JSON schema (``schemas/<name>.json``), a fresh copy."""
    return t.cast(dict[str, t.Any], json.loads((SCHEMAS / f"{name}.json").read_text()))


def base_url(config: t.Mapping[str, t.Any]) -> str:
    """``api_url`` if set, else the current or the legacy gateway base for ``company_domain``."""
    url = config.get("api_url")
    if not url:
        company = str(config.get("company_domain") or "").strip()
        if not company:
            raise ValueError("tap-bamboohr: set company_domain (or api_url)")
        url = (LEGACY_BASE if config.get("legacy_gateway") else CURRENT_BASE).format(
            company=company
        )
    return require_secure_url(str(url).rstrip("/"))


#: BambooHR timestamps (``2011-06-02T19:26:23+00:00``, ``...Z``) as aware UTC datetimes
parse_stamp = parse_datetime


def format_stamp(value: datetime) -> str:
    """The one form this tap emits and bookmarks: ``YYYY-MM-DDTHH:MM:SS+00:00`` (UTC)."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def format_since(value: datetime) -> str:
    """A ``since`` parameter BambooHR documents (UTC ``Z``: no ``+`` to escape as ``%2B``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def server_time_at_send(response: requests.Response) -> datetime:
    """The server's clock when the request was sent (see the module docstring)."""
    received = datetime.now(UTC)
    date = response.headers.get("Date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            received = parsedate_to_datetime(date)
        if received.tzinfo is None:
            received = received.replace(tzinfo=UTC)
    return received - response.elapsed - timedelta(seconds=1)


def parse_json(response: requests.Response) -> t.Any:
    """The body as JSON, parsed once per response (the paginator reads it again); a body that
    is not JSON fails naming the endpoint."""
    return read_json(response, VENDOR)


def expect_object(response: requests.Response, value: t.Any, what: str) -> dict[str, t.Any]:
    """``value`` if it is a JSON object, else fail naming the endpoint (never a short extract)."""
    return expect(response, VENDOR, value, dict, what)


def expect_map(response: requests.Response, value: t.Any, what: str) -> dict[str, t.Any]:
    """An object keyed by employee id; PHP sends an empty one as ``[]``."""
    if isinstance(value, list) and not value:
        return {}
    return expect_object(response, value, what)


class CursorPaginator(JSONTokenPaginator):
    """``GET /employees``: follows ``meta.page.nextCursor``; a repeated cursor fails."""

    vendor = "BambooHR"
    what_pages_by = "cursor"
    token_path = ("meta", "page", "nextCursor")


class BambooHRStream(ReportsDrift, DateTimeWindows, HRRESTStream[t.Any]):
    """Shared behaviour of every BambooHR stream (single-response endpoints: no paging)."""

    replication_key = "lastChanged"
    is_sorted = False
    #: integer id fields (BambooHR sends ids as strings)
    int_fields: t.ClassVar[tuple[str, ...]] = ()
    #: what a ``lastChanged`` stamp belongs to (remembered for the bookmark's own second)
    bookmark_key: t.ClassVar[str] = "id"
    # the API's ``since`` has no upper bound: see after_bookmark and the module docstring
    window_upper_bound = False
    drift_vendor = VENDOR
    drift_nested = False
    drift_declared_in = "schemas/{stream}.json (or the custom_fields setting)"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen_before: frozenset[t.Any] = frozenset()
        #: set by a full read: the server's clock when it began (becomes the bookmark)
        self._snapshot_at: datetime | None = None
        self._newest: datetime | None = None
        self._at_newest: set[t.Any] = set()

    # --- connection ---------------------------------------------------------------------

    @property
    def url_base(self) -> str:
        return base_url(self.config)

    @functools.cached_property
    def authenticator(self) -> BasicAuthenticator:
        # BambooHR: the API key is the user name; the password is ignored ("x" by convention)
        return BasicAuthenticator(username=str(self.config["api_key"]), password="x")  # noqa: S106

    def get_new_paginator(self) -> BaseAPIPaginator | None:
        return None  # the classic endpoints answer in one response

    def vendor_error_message(self, response: requests.Response) -> str:
        """Classic endpoints: the reason is in ``X-BambooHR-Error-Message``, the body is empty.

        Newer endpoints answer ``{"error": {"code", "message"}}`` (handled by the base class).
        """
        header = response.headers.get(ERROR_HEADER, "").strip()
        if header:
            return header
        return super().vendor_error_message(response) if response.content else ""

    def parse_json(self, response: requests.Response) -> t.Any:
        return parse_json(response)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """The records at ``records_jsonpath``; the array it ends in must be there, so that a
        null body or a missing key fails naming the endpoint instead of reading as no rows."""
        data, path = self.parse_json(response), self.records_jsonpath
        if not path.endswith("[*]"):
            yield from extract_jsonpath(path, data)
            return
        container = path.removesuffix("[*]")
        found = list(extract_jsonpath(container, data)) if isinstance(data, dict | list) else []
        rows = found[0] if len(found) == 1 else None
        yield from expect_rows(response, VENDOR, rows, f"records at {container}")

    # --- bookmarks ----------------------------------------------------------------------

    def bookmark(self, context: Context | None) -> datetime | None:
        """The stamp of the last change already emitted (None: nothing yet)."""
        return self.window(context).bookmark

    def on_new_window(self, context: Context | None, window: Window[datetime]) -> None:
        self._seen_before = frozenset(self.get_context_state(context).get(SEEN_AT_BOOKMARK) or ())

    def since(self, context: Context | None) -> datetime | None:
        """Where this run starts: the bookmark, else ``start_date``, else None (full sync)."""
        return self.window(context).low

    def advance_bookmark(self, context: Context | None, value: datetime) -> None:
        """Move the (not yet final) bookmark to ``value`` unless it is already later."""
        state = self.get_context_state(context)
        markers = state.setdefault(
            "progress_markers", {"Note": "Progress is not resumable if interrupted."}
        )
        new = format_stamp(value)
        old = markers.get("replication_key_value")
        if old is None or parse_stamp(str(old)) < value:
            markers["replication_key"] = self.replication_key
            markers["replication_key_value"] = new

    def set_bookmark(self, context: Context | None, value: datetime) -> None:
        """Make ``value`` this run's bookmark, whatever the records said."""
        self.get_context_state(context).pop("progress_markers", None)
        self.advance_bookmark(context, value)

    # --- records ------------------------------------------------------------------------

    def clean(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """BambooHR's "no value" forms become null; ids become integers; stamps one format."""
        for key, value in row.items():
            if value.__class__ is str and value in _EMPTY:
                row[key] = None
        for key in self.int_fields:
            value = row.get(key)
            if value is None or value.__class__ is int:
                continue
            text = str(value).strip()
            if not text.isdigit():
                raise RecordError(
                    self.name, row.get("id"), key, f"{value!r} is not a numeric BambooHR id"
                )
            row[key] = int(text)
        stamp = row.get("lastChanged")
        if stamp:
            try:
                row["lastChanged"] = format_stamp(parse_stamp(str(stamp)))
            except ValueError:
                raise RecordError(
                    self.name, row.get("id"), "lastChanged", f"{stamp!r} is not an ISO 8601 time"
                ) from None
        return row

    def after_bookmark(self, row: dict[str, t.Any], context: Context | None) -> bool:
        """False for a change the run that set the bookmark emitted.

        Stamps have one-second precision, so "after the bookmark" alone would lose a change
        made in the bookmark's own second after that run read it. The state therefore keeps
        the keys emitted at the bookmark's second (``seen_at_bookmark``): a record stamped
        before the bookmark, or at it and already seen, is dropped; anything else is new.
        """
        stamp = row.get("lastChanged")
        if not stamp:
            return True
        when = parse_stamp(stamp)
        mark = self.bookmark(context)
        if mark is not None:
            if when < mark:
                return False
            return when > mark or row.get(self.bookmark_key) not in self._seen_before
        start = self.since(context)
        return start is None or when >= start

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        row = self.clean(row)
        if not self.after_bookmark(row, context):
            return None
        self.report_drift(row)
        stamp = row.get("lastChanged")
        if stamp:
            when = parse_stamp(stamp)
            if self._newest is None or when > self._newest:
                self._newest, self._at_newest = when, set()
            if when == self._newest:
                self._at_newest.add(row.get(self.bookmark_key))
        return row

    def get_records(self, context: Context | None) -> t.Iterator[dict]:
        self._snapshot_at, self._newest, self._at_newest = None, None, set()
        yield from super().get_records(context)
        state = self.get_context_state(context)
        if self._snapshot_at is not None:
            # a full read: everything changed before it began was read; later changes (even
            # ones this run happened to see) come again with the next run
            self.set_bookmark(context, self._snapshot_at)
            state[SEEN_AT_BOOKMARK] = []
        elif self._newest is not None:
            seen = set(self._at_newest)
            if self._newest == self.bookmark(context):
                seen |= self._seen_before
            state[SEEN_AT_BOOKMARK] = sorted(seen, key=str)
