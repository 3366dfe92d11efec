"""Paging that hrsync taps declare rather than write: where the next page's token or link is.

Every paginator here refuses a token it already followed (:class:`hrsync.http.NoRepeatedPages`)
and reads the body through :func:`hrsync.shapes.read_json` (parsed once per response: the stream's
``parse_response`` and the paginator share it). A tap subclasses one and sets class attributes:

- :class:`JSONTokenPaginator`: an opaque token in the body (``meta.page.nextCursor``; Lever's
  ``next`` when ``hasNext``), sent back by the stream as a query parameter.
- :class:`JSONLinkPaginator`: the next page's URL in the body (``links.next``).
- :class:`LinkHeaderPaginator`: the next page's URL in an RFC 8288 ``Link: <...>; rel="next"``.

:class:`FollowNextLink` makes a stream request a next link exactly as given (its query carries
every filter; some APIs refuse a cursor combined with any other parameter).
"""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator, BaseHATEOASPaginator, HeaderLinkPaginator
from singer_sdk.streams import RESTStream

from hrsync.http import NoRepeatedPages, require_secure_url
from hrsync.shapes import read_json

if t.TYPE_CHECKING:
    from urllib.parse import ParseResult

    import requests
    from singer_sdk.helpers.types import Context

__all__ = [
    "FollowNextLink",
    "JSONLinkPaginator",
    "JSONTokenPaginator",
    "LinkHeaderPaginator",
    "json_at",
]

#: a path into a JSON body: ("meta", "page", "nextCursor")
JSONPath = tuple[str, ...]


def json_at(body: t.Any, path: JSONPath) -> t.Any:
    """The value at ``path`` in a parsed JSON body; None where any step is missing or not an
    object."""
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


class JSONTokenPaginator(NoRepeatedPages, BaseAPIPaginator[str | None]):
    """The next page's token is at ``token_path`` of the body; none (or empty): last page.

    ``more_path`` names a flag that must also be true (Lever's ``hasNext``). The stream puts the
    token into its request (``get_url_params``), as the vendor documents.
    """

    token_path: t.ClassVar[JSONPath] = ()
    more_path: t.ClassVar[JSONPath | None] = None

    def __init__(self) -> None:
        super().__init__(None)

    def get_next(self, response: requests.Response) -> str | None:
        body = read_json(response, self.vendor)
        if self.more_path is not None and not json_at(body, self.more_path):
            return None
        token = json_at(body, self.token_path)
        return str(token) if token else None


class JSONLinkPaginator(NoRepeatedPages, BaseHATEOASPaginator):
    """The next page's URL is at ``link_path`` of the body; none: last page.

    With ``rows_path``, a page without rows is the last one whatever its link says (a vendor
    linking to an empty page forever would otherwise page on).
    """

    what_pages_by = "next link"
    link_path: t.ClassVar[JSONPath] = ("links", "next")
    rows_path: t.ClassVar[JSONPath | None] = None

    def get_next_url(self, response: requests.Response) -> str | None:
        body = read_json(response, self.vendor)
        url = json_at(body, self.link_path)
        if not url or (self.rows_path is not None and not json_at(body, self.rows_path)):
            return None
        return str(url)


class LinkHeaderPaginator(NoRepeatedPages, HeaderLinkPaginator):
    """Follows ``Link: <...>; rel="next"`` (RFC 8288); a repeated link fails."""

    what_pages_by = "next link"


class FollowNextLink(RESTStream[t.Any]):
    """Mix in before the stream's base class when the paginator yields next links
    (:class:`JSONLinkPaginator`, :class:`LinkHeaderPaginator`): every page after the first is
    requested exactly as linked - no parameters added, https (or loopback) enforced."""

    def prepare_request(
        self, context: Context | None, next_page_token: t.Any
    ) -> requests.PreparedRequest:
        if next_page_token is None:
            return super().prepare_request(context, next_page_token)
        link = t.cast("ParseResult", next_page_token)
        url = require_secure_url(link.geturl())
        return self.build_prepared_request(
            method=self.http_method, url=url, params={}, headers=self.http_headers
        )
