"""Greenhouse Harvest v3 plumbing: OAuth token, cursor paging, incremental window, drift report."""

from __future__ import annotations

import threading
import typing as t
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import ParseResult

import requests
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator, HeaderLinkPaginator

from hrsync.http import (
    ClientCredentialsAuthenticator,
    HRRESTStream,
    NoRepeatedPages,
    require_secure_url,
)
from hrsync.shapes import expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int, Decimal),  # singer-sdk parses JSON numbers as Decimal
    "number": (int, float, Decimal),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def parse_timestamp(value: str) -> datetime:
    """Harvest v3 date-times (``2024-12-15T03:55:00.000Z``) as aware datetimes."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
                expires_at = parse_timestamp(str(body["expires_at"]))
            except ValueError:
                return
            self.expires_in = max(1, int((expires_at - self.last_refreshed).total_seconds()))


class CursorLinkPaginator(NoRepeatedPages, HeaderLinkPaginator):
    """Follows ``Link: <...?cursor=...>; rel="next"``; a repeated link fails instead of looping."""

    vendor = "Greenhouse"
    what_pages_by = "next link"


class GreenhouseStream(HRRESTStream[ParseResult]):
    """One Harvest v3 list endpoint: ``GET /v3/{name}``, a JSON array of records.

    Incremental windows (why ``gt`` on later runs, and the upper bound):
    Harvest lists in id order, not by ``updated_at``, so the bookmark (the largest ``updated_at``
    seen) is only safe if nothing below it can change while the run pages. Each run therefore asks
    for a half-open window fixed when it starts: ``updated_at=gt|<bookmark>|lt|<run start>`` (the
    first run: ``gte|<start_date>|lt|<run start>``). Anything updated during the run is stamped at
    or after the run start, so it falls outside this window and inside the next one - it is never
    lost to a page already read. Everything at or below the bookmark was seen whole by the run
    that set it (that window was frozen), so the next run uses ``gt`` and nothing is doubled; the
    stream also drops such records itself (singer-sdk does not), in case a server treats ``gt``
    loosely. Residual risk: a server clock running behind ours by more than the page latency.
    """

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "updated_at"
    is_sorted = False
    # report_drift() already walks every record against the schema (and drops unknown fields
    # after warning once), so singer-sdk's own recursive pass would only repeat the work.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._window: Window | None = None
        self._schema_node: _Node | None = None
        self._drift_reported: set[str] = set()

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

    # --- paging ---------------------------------------------------------------------------

    def get_new_paginator(self) -> BaseAPIPaginator:
        return CursorLinkPaginator()

    def prepare_request(
        self, context: Context | None, next_page_token: ParseResult | None
    ) -> requests.PreparedRequest:
        if next_page_token is None:
            return super().prepare_request(context, next_page_token)
        # Follow the next link exactly: its cursor carries every filter and per_page, and
        # Harvest v3 rejects a cursor combined with any other query parameter.
        url = require_secure_url(next_page_token.geturl())
        return self.build_prepared_request(
            method=self.http_method, url=url, params={}, headers=self.http_headers
        )

    def get_url_params(
        self, context: Context | None, next_page_token: ParseResult | None
    ) -> dict[str, t.Any]:
        if next_page_token is not None:
            return {}
        window = self.window(context)
        bounds = f"lt|{format_timestamp(window.high)}"
        if window.low is not None:
            op = "gte" if window.bookmark is None else "gt"
            bounds = f"{op}|{format_timestamp(window.low)}|{bounds}"
        page_size = min(500, max(1, int(self.config.get("page_size") or 500)))
        return {"per_page": page_size, "updated_at": bounds}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """A JSON array of record objects; anything else (null, an object, HTML, a cut body)
        fails naming the endpoint instead of ending the stream short."""
        yield from expect_rows(response, "Greenhouse", read_json(response, "Greenhouse"), "records")

    # --- incremental window ---------------------------------------------------------------

    def window(self, context: Context | None) -> Window:
        """This run's ``updated_at`` window, fixed at its first request."""
        if self._window is None:
            value = self.get_context_state(context).get("replication_key_value")
            bookmark = parse_timestamp(str(value)) if value else None
            low = bookmark
            if low is None and self.config.get("start_date"):
                low = parse_timestamp(str(self.config["start_date"]))
            now = datetime.now(UTC)
            high = now.replace(microsecond=now.microsecond - now.microsecond % 1000)
            self._window = Window(low, high, bookmark)
        return self._window

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        stamp = row.get(self.replication_key)
        if not stamp:
            return row
        updated = parse_timestamp(str(stamp))
        window = self.window(context)
        if window.bookmark is not None and updated <= window.bookmark:
            return None  # emitted by the run that set the bookmark
        if window.low is not None and updated < window.low:
            return None  # before start_date
        if updated >= window.high:
            return None  # belongs to the next run's window
        return row

    # --- schema drift ---------------------------------------------------------------------

    def report_drift(self, row: dict[str, t.Any]) -> None:
        """Warn once per stream and field about fields the schema lacks or types it doesn't allow.

        Unknown fields are removed here (after the warning) so singer-sdk does not repeat its own
        warning for every record.
        """
        if self._schema_node is None:
            self._schema_node = _Node.compile(self.schema)
        self._drift(row, self._schema_node, "")

    def _drift(self, obj: dict[str, t.Any], node: _Node, prefix: str) -> None:
        unknown: list[str] = []
        for key, value in obj.items():
            spec = node.props.get(key, node.extra)
            if spec is None:
                unknown.append(key)
                continue
            if spec is True:
                continue
            if value is None:
                continue
            if spec.types and (
                not isinstance(value, spec.types) or (value.__class__ is bool and not spec.bools)
            ):
                self._warn_once(
                    f"{prefix}{key}:type",
                    "Schema drift in stream '%s': field '%s' arrived as %s, schema allows %s",
                    self.name,
                    f"{prefix}{key}",
                    type(value).__name__,
                    spec.type_names,
                )
            if spec.obj is not None and value.__class__ is dict:
                self._drift(value, spec.obj, f"{prefix}{key}.")
            elif spec.items is not None and value.__class__ is list:
                for item in value:
                    if item.__class__ is dict:
                        self._drift(item, spec.items, f"{prefix}{key}.")
        for key in unknown:
            self._warn_once(
                f"{prefix}{key}",
                "Schema drift in stream '%s': Greenhouse sent field '%s', which the schema "
                "lacks; it is left out of the output until schemas/%s.json declares it",
                self.name,
                f"{prefix}{key}",
                self.name,
            )
            del obj[key]

    def _warn_once(self, key: str, message: str, *args: t.Any) -> None:
        if key not in self._drift_reported:
            self._drift_reported.add(key)
            self.logger.warning(message, *args)


class Window(t.NamedTuple):
    """One run's ``updated_at`` window: [low, high) or (bookmark, high)."""

    low: datetime | None
    high: datetime
    bookmark: datetime | None


class _Field(t.NamedTuple):
    types: tuple[type, ...]
    bools: bool
    type_names: str
    obj: _Node | None
    items: _Node | None


class _Node(t.NamedTuple):
    """An object schema compiled for the per-record drift check (done once per stream)."""

    props: dict[str, _Field]
    #: None: unknown keys are drift; True: anything goes; a _Field: the schema of extra keys
    extra: _Field | t.Literal[True] | None

    @classmethod
    def compile(cls, schema: dict[str, t.Any]) -> _Node:
        extra = schema.get("additionalProperties")
        return cls(
            props={k: _field(v) for k, v in (schema.get("properties") or {}).items()},
            extra=_field(extra) if isinstance(extra, dict) else (True if extra else None),
        )


def _field(schema: dict[str, t.Any]) -> _Field:
    allowed = schema.get("type") or []
    names = [allowed] if isinstance(allowed, str) else list(allowed)
    types = tuple(pt for name in names for pt in _JSON_TYPES.get(name, ()))
    items = schema.get("items")
    return _Field(
        types=types,
        bools="boolean" in names,
        type_names="/".join(names),
        obj=_Node.compile(schema) if schema.get("properties") is not None else None,
        items=_Node.compile(items)
        if isinstance(items, dict) and items.get("properties") is not None
        else None,
    )


_AUTH_LOCK = threading.Lock()
