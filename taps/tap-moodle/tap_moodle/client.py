"""Moodle web services (REST protocol) plumbing: one POST per function call, PHP-array
arguments, errors as HTTP 200 with ``{"exception", "errorcode", "message"}``.

Everything, the token included, goes in the form body and never in the URL, so the token stays
out of proxy and server access logs. Moodle's default answer format is XML: every call asks for
``moodlewsrestformat=json``. 429, 5xx and dropped connections are retried by the core's policy
(``hrsync.http``); an exception in a 200 answer stops the extract naming the function, the
error code and Moodle's message (an empty answer would otherwise look like an empty site).

Every call this tap makes only reads, so a retried call is harmless.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.drift import ReportsDrift
from hrsync.http import HRRESTStream, require_secure_url
from hrsync.shapes import UnexpectedPage, expect, read_json

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
VENDOR = "Moodle"
ENDPOINT = "/webservice/rest/server.php"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 500


class MoodleError(FatalAPIError):
    """Moodle answered a function call with an exception (HTTP 200, as Moodle does)."""

    def __init__(self, function: str, body: Mapping[str, t.Any]) -> None:
        self.function = function
        self.exception = str(body.get("exception") or "")
        self.errorcode = str(body.get("errorcode") or "")
        self.message = str(body.get("message") or "")
        self.debuginfo = body.get("debuginfo")
        detail = f" ({self.debuginfo})" if self.debuginfo else ""
        super().__init__(
            f"Moodle refused {function}: {self.exception}/{self.errorcode}: {self.message}{detail}"
        )


def php_form(args: Mapping[str, t.Any]) -> dict[str, str]:
    """``{"criteria": [{"key": "email"}]}`` -> ``{"criteria[0][key]": "email"}`` (PHP arrays,
    as Moodle's REST server reads them); None is left out, booleans become 1/0."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: t.Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            out[prefix] = "1" if value else "0"
        else:
            out[prefix] = str(value)

    walk("", args)
    return out


class MoodleStream(ReportsDrift, HRRESTStream[t.Any]):
    """One Moodle web-service function, POSTed to ``{base_url}/webservice/rest/server.php``."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    path = ENDPOINT
    http_method = "POST"
    payload_as_json = False
    is_sorted = False
    # Moodle's JSON types are the schema's; unknown fields are dropped (and reported once)
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    drift_vendor = VENDOR
    #: the web-service function this stream calls
    wsfunction: t.ClassVar[str] = ""

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config["base_url"]).rstrip("/"))

    @property
    def page_size(self) -> int:
        return min(MAX_PAGE_SIZE, max(2, int(self.config.get("page_size") or DEFAULT_PAGE_SIZE)))

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        return {}  # the token, the function and its arguments go in the body

    def arguments(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        """The function's arguments (nested dicts and lists, encoded as PHP arrays)."""
        return {}

    def form(self, function: str, args: Mapping[str, t.Any]) -> dict[str, str]:
        return {
            "wstoken": str(self.config["token"]),
            "wsfunction": function,
            "moodlewsrestformat": "json",
            **php_form(args),
        }

    def prepare_request_payload(self, context: Context | None, next_page_token: t.Any) -> dict:
        return self.form(self.wsfunction, self.arguments(context, next_page_token))

    def validate_response(self, response: requests.Response) -> None:
        """HTTP errors as the core words them; then Moodle's exception, which comes with 200."""
        super().validate_response(response)
        body = read_json(response, VENDOR)
        if isinstance(body, dict) and "exception" in body:
            sent = response.request.body
            if isinstance(sent, bytes):
                sent = sent.decode("utf-8", "replace")
            function = parse_qs(sent or "").get("wsfunction", ["(unknown function)"])[0]
            raise MoodleError(function, body)

    def call(self, function: str, args: Mapping[str, t.Any]) -> t.Any:
        """Call another (read) function with the stream's transport and retry policy."""
        prepared = self.build_prepared_request(
            method="POST",
            url=self.get_url(None),
            data=self.form(function, args),
            headers=self.http_headers,
        )
        response = self.request_decorator(self._request)(prepared, None)
        return read_json(response, VENDOR)

    def rows(self, response: requests.Response, body: t.Any, what: str) -> Iterator[dict]:
        """The objects of an array answer; any other shape fails naming the function."""
        expect(response, VENDOR, body, list, what)
        for i, row in enumerate(body):
            if not isinstance(row, dict):
                raise UnexpectedPage(VENDOR, response, f"{what}: item {i} is not an object")
            yield row

    def get_new_paginator(self) -> BaseAPIPaginator | None:
        return None

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        yield from self.rows(response, read_json(response, VENDOR), f"{self.wsfunction} answer")
