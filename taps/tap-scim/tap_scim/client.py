"""SCIM 2.0 (RFC 7644) plumbing: bearer token, startIndex/count paging, ``meta.lastModified``.

Everything generic comes from hrsync-core: the HTTP policy (``hrsync.http``: https only,
retries with Retry-After, rate limit, error messages), incremental windows
(``hrsync.incremental``) and schema drift (``hrsync.drift``). What stays here is what the SCIM
RFCs define:

- **Paging** (RFC 7644 §3.4.2.4): 1-based ``startIndex`` and ``count``; a server may return
  fewer resources than asked (its ``maxResults``), so the next page starts after what this one
  actually held, until ``totalResults`` is reached. A page that holds nothing while
  ``totalResults`` says more remain stops the extract with an error (a short read-back would
  report accounts as missing).
- **Incremental** (RFC 7644 §3.4.2.2, RFC 7643 §3.1): ``filter=meta.lastModified gt "..."``
  when ``/ServiceProviderConfig`` announces filtering and an earlier run left a bookmark (so the
  server is known to stamp ``meta.lastModified``). A server that refuses the filter
  (``400 invalidFilter``) is read in full; a server without ``meta.lastModified`` always is.
  Deletions are invisible to an incremental read: a read-back meant for comparison runs in
  full (``meltano run --full-refresh``, or no state).
- **Records** keep SCIM's own shape, with ``lastModified`` (``meta.lastModified``) on top as
  the replication key. ``password`` is never emitted, whatever a server returns.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime
from pathlib import Path

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.drift import ReportsDrift
from hrsync.http import HRRESTStream, NoRepeatedPages, require_secure_url
from hrsync.incremental import DateTimeWindows
from hrsync.shapes import UnexpectedPage, expect, expect_rows, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
VENDOR = "The SCIM server"
MAX_PAGE_SIZE = 1000
SCIM_JSON = "application/scim+json"
#: attributes a record never carries (RFC 7643 §4.1.1: password is "returned: never", yet a
#: misconfigured server may return it, or its hash)
SECRET_ATTRIBUTES = frozenset({"password"})
#: a 400 with one of these scimType values: the server cannot filter on meta.lastModified
FILTER_REFUSALS = frozenset({"invalidFilter", "invalidPath", "invalidValue", "tooMany"})


def format_bound(value: datetime) -> str:
    """A filter value: ISO 8601 UTC cut down to milliseconds (what every server parses; a
    bound rounded down re-reads at most the bookmark's own record, which the window drops)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FilterRefused(FatalAPIError):
    """The server answered the ``meta.lastModified`` filter with 400: read in full instead."""


class StartIndexPaginator(NoRepeatedPages, BaseAPIPaginator[int]):
    """RFC 7644 §3.4.2.4 index paging: the next ``startIndex`` is this one plus the resources
    received; done at ``totalResults`` or on an empty page."""

    vendor = VENDOR
    what_pages_by = "startIndex"

    def __init__(self) -> None:
        super().__init__(1)

    def continue_if_empty(self, response: requests.Response) -> bool:
        return True  # an empty page is judged by get_next (singer-sdk would just stop)

    def get_next(self, response: requests.Response) -> int | None:
        body = read_json(response, VENDOR)
        received = len(body.get("Resources") or []) if isinstance(body, dict) else 0
        total = body.get("totalResults") if isinstance(body, dict) else None
        start = int(self.current_value or 1)
        if not isinstance(total, int):
            return start + received if received else None  # no total: page to an empty page
        if start + received > total:
            return None
        if not received:
            raise UnexpectedPage(
                VENDOR,
                response,
                f"totalResults is {total} but the page at startIndex {start} holds no resources",
            )
        return start + received


class SCIMStream(ReportsDrift, DateTimeWindows, HRRESTStream[int]):
    """One SCIM resource endpoint (``/Users``, ``/Groups``) read as a ListResponse."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "lastModified"
    is_sorted = False
    drift_vendor = VENDOR
    emit_after_window_end = True  # a read-back: a resource changed during the run is not left out

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config["base_url"]).rstrip("/"))

    @property
    def authenticator(self) -> BearerTokenAuthenticator:
        return BearerTokenAuthenticator(token=str(self.config["bearer_token"]))

    @property
    def http_headers(self) -> dict[str, str]:
        return {**super().http_headers, "Accept": f"{SCIM_JSON}, application/json"}

    def get_new_paginator(self) -> BaseAPIPaginator:
        return StartIndexPaginator()

    # --- what the server supports (RFC 7644 §5) -------------------------------------------

    def service_provider_config(self) -> dict[str, t.Any]:
        """``/ServiceProviderConfig``, read once per tap; {} if the server has none."""
        cache: dict[str, t.Any] = self._tap.__dict__.setdefault("_scim_spc", {})
        if "spc" not in cache:
            request = self.build_prepared_request(
                method="GET",
                url=f"{self.url_base}/ServiceProviderConfig",
                headers=self.http_headers,
            )
            try:
                response = self.request_decorator(self._request)(request, None)
            except FatalAPIError as error:
                self.logger.warning(
                    "No /ServiceProviderConfig (%s): reading every stream in full", error
                )
                cache["spc"] = {}
            else:
                body = read_json(response, VENDOR)
                cache["spc"] = expect(response, VENDOR, body, dict, "a ServiceProviderConfig")
        return t.cast(dict[str, t.Any], cache["spc"])

    def page_size(self) -> int:
        asked = int(self.config.get("page_size") or 100)
        limit = (self.service_provider_config().get("filter") or {}).get("maxResults")
        if isinstance(limit, int) and limit > 0:
            asked = min(asked, limit)
        return max(1, min(asked, MAX_PAGE_SIZE))

    def uses_filter(self, context: Context | None) -> bool:
        """Filter on meta.lastModified: the server can, and an earlier run saw the stamps."""
        if self.__dict__.get("_scim_full") or self.window(context).bookmark is None:
            return False
        return bool((self.service_provider_config().get("filter") or {}).get("supported"))

    # --- requests and records ----------------------------------------------------------

    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict:
        params: dict[str, t.Any] = {"startIndex": next_page_token or 1, "count": self.page_size()}
        bookmark = self.window(context).bookmark
        if bookmark is not None and self.uses_filter(context):
            params["filter"] = f'meta.lastModified gt "{format_bound(bookmark)}"'
        return params

    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 400 and "filter=" in (response.request.url or ""):
            try:
                scim_type = (response.json() or {}).get("scimType")
            except ValueError:
                scim_type = None
            if scim_type in FILTER_REFUSALS or scim_type is None:
                raise FilterRefused(self.response_error_message(response))
        super().validate_response(response)

    def request_records(self, context: Context | None) -> Iterable[dict]:
        try:
            yield from super().request_records(context)
        except FilterRefused as refusal:
            # only the first page carries a refusable filter: nothing was emitted yet
            self.logger.warning(
                "%s refused the meta.lastModified filter (%s): reading %s in full",
                VENDOR,
                refusal,
                self.path,
            )
            self.__dict__["_scim_full"] = True
            yield from super().request_records(context)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        """The ``Resources`` of a ListResponse (absent when there are none)."""
        body = expect(response, VENDOR, read_json(response, VENDOR), dict, "a ListResponse")
        if not ({"Resources", "totalResults"} & body.keys() or LIST_RESPONSE in _schemas(body)):
            # an object that is no ListResponse at all is not "no users": a short extract
            raise UnexpectedPage(
                VENDOR, response, f"expected a ListResponse, got an object with {sorted(body)}"
            )
        yield from expect_rows(response, VENDOR, body.get("Resources") or [], '"Resources"')

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        for secret in SECRET_ATTRIBUTES & row.keys():
            del row[secret]
        meta = row.get("meta")
        row["lastModified"] = meta.get("lastModified") if isinstance(meta, dict) else None
        self.report_drift(row)
        return row if self.in_window(row, context) else None


LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def _schemas(body: dict[str, t.Any]) -> list[t.Any]:
    schemas = body.get("schemas")
    return schemas if isinstance(schemas, list) else []
