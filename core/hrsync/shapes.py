"""JSON bodies of the wrong shape: errors that name the endpoint, what was expected and got.

No singer-sdk import (map-hr's fast command line uses :func:`json_kind` too).
"""

from __future__ import annotations

import json
import logging
import re
import typing as t
from urllib.parse import urlsplit

import orjson

if t.TYPE_CHECKING:
    import requests

__all__ = ["UnexpectedPage", "endpoint", "expect", "expect_rows", "json_kind", "read_json"]

_JSON_KINDS = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
_CACHE = "_hrsync_json"
_MISSING = object()


def json_kind(value: t.Any) -> str:
    """The JSON name of a parsed value's type: ``null``, ``number``, ``array``, ``object``..."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return _JSON_KINDS.get(type(value), type(value).__name__)


def endpoint(response: requests.Response) -> str:
    """``GET /v3/users`` (no query string: cursors and filters stay out of logs)."""
    request = response.request
    return f"{request.method} {urlsplit(response.url or request.url or '').path}"


class UnexpectedPage(RuntimeError):
    """An API page the tap cannot read: ``<vendor> sent <what> for <endpoint>: <problem>``."""

    def __init__(self, vendor: str, response: requests.Response, problem: str) -> None:
        self.vendor, self.endpoint, self.problem = vendor, endpoint(response), problem
        super().__init__(
            f"{vendor} sent an unreadable page for {self.endpoint} (HTTP {response.status_code}, "
            f"Content-Type {response.headers.get('Content-Type') or 'none'}): {problem} "
            f"(first bytes: {response.content[:80]!r}); the extract stops here rather than "
            "come out short"
        )


def read_json(response: requests.Response, vendor: str) -> t.Any:
    """The body as JSON, parsed once per response (paginators read it again)."""
    cached = getattr(response, _CACHE, _MISSING)
    if cached is not _MISSING:
        return cached
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        data = _with_surrogates(response, vendor)
        if data is _MISSING:
            what = "an empty body" if not response.content.strip() else "a body that is not JSON"
            raise UnexpectedPage(vendor, response, f"{what} ({exc})") from exc
    setattr(response, _CACHE, data)
    return data


def _with_surrogates(response: requests.Response, vendor: str) -> t.Any:
    """A page orjson refused only for an unpaired UTF-16 surrogate escape (valid JSON): read
    with ``json``, the text passed on as it came (its record becomes a dead letter naming the
    field wherever it cannot be encoded: map-hr, the target), with a warning naming where it
    is. ``_MISSING`` for any other page (the caller says what is wrong with it)."""
    body = response.content
    if not _SURROGATE_BYTES.search(body):
        return _MISSING
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _MISSING
    bad = unencodable(data)
    if bad is None:
        return _MISSING
    logging.getLogger("hrsync.shapes").warning(
        "%s sent text that is not valid Unicode for %s: %s at %s; passed on as it came "
        "(that record becomes a dead letter downstream naming the field)",
        vendor,
        endpoint(response),
        bad[1],
        bad[0],
    )
    return data


_T = t.TypeVar("_T")


def expect(response: requests.Response, vendor: str, value: t.Any, kind: type[_T], what: str) -> _T:
    """``value`` if it is a ``kind`` (dict: a JSON object, list: an array), else fail naming
    the endpoint, ``what`` the tap expected there and the JSON type it got."""
    if isinstance(value, kind):
        return value
    raise UnexpectedPage(vendor, response, f"expected {what}, got {json_kind(value)}")


def expect_rows(response: requests.Response, vendor: str, rows: t.Any, what: str) -> list[dict]:
    """``rows`` if it is a JSON array of objects, else fail naming the endpoint."""
    expect(response, vendor, rows, list, f"{what} (an array of objects)")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UnexpectedPage(
                vendor, response, f"{what}: item {i} is {json_kind(row)}, expected an object"
            )
    return t.cast(list[dict], rows)


UNPAIRED = "unpaired UTF-16 surrogate"
#: a JSON escape of a UTF-16 surrogate (paired ones too: the walk then finds nothing)
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def unencodable(value: t.Any, path: str = "") -> tuple[str, str] | None:
    """The first (field path, reason) under ``value`` whose text cannot be encoded as UTF-8
    (keys included), or None. Paths read ``address.lines[1]``."""
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = value[exc.start]
            why = f"{UNPAIRED} {char!r} at character {exc.start}"
            if "\udc80" <= char <= "\udcff":  # also what surrogateescape makes of a byte
                why += f" (or byte 0x{ord(char) - 0xDC00:02x} of input that is not UTF-8)"
            return path or "<value>", why
        return None
    if type(value) is dict:
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            bad = unencodable(key, where) if type(key) is str else None
            if bad is not None:
                return where.encode("utf-8", "backslashreplace").decode(), f"field name: {bad[1]}"
            bad = unencodable(item, where)
            if bad is not None:
                return bad
    elif type(value) is list:
        for i, item in enumerate(value):
            bad = unencodable(item, f"{path}[{i}]")
            if bad is not None:
                return bad
    return None
