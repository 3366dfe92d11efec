"""hrsync.paging: the paginators taps declare (where the next token or link is)."""

from __future__ import annotations

import json
import typing as t
from urllib.parse import urlparse

import pytest
import requests
from singer_sdk import Tap
from singer_sdk import typing as th

from hrsync.http import HRRESTStream
from hrsync.paging import (
    FollowNextLink,
    JSONLinkPaginator,
    JSONTokenPaginator,
    LinkHeaderPaginator,
    json_at,
)

URL = "http://127.0.0.1:9/v1/things"


def page(body: t.Any, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = URL
    response.request = requests.Request("GET", URL).prepare()
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


class Cursor(JSONTokenPaginator):
    vendor = "Acme"
    what_pages_by = "cursor"
    token_path = ("meta", "next")


class Flagged(Cursor):
    more_path = ("has_more",)


class Links(JSONLinkPaginator):
    vendor = "Acme"
    rows_path = ("data",)


def test_json_at() -> None:
    assert json_at({"a": {"b": 1}}, ("a", "b")) == 1
    assert json_at({"a": [1]}, ("a", "b")) is None
    assert json_at(None, ("a",)) is None


def test_a_token_in_the_body_is_followed_until_there_is_none() -> None:
    paginator = Cursor()
    paginator.advance(page({"meta": {"next": "c2"}}))
    assert paginator.current_value == "c2" and not paginator.finished
    paginator.advance(page({"meta": {"next": None}}))
    assert paginator.finished


def test_a_flag_that_says_no_more_ends_paging_whatever_the_token() -> None:
    paginator = Flagged()
    paginator.advance(page({"meta": {"next": "c2"}, "has_more": False}))
    assert paginator.finished


def test_a_repeated_token_fails_naming_the_vendor() -> None:
    paginator = Cursor()
    paginator.advance(page({"meta": {"next": "A"}}))
    paginator.advance(page({"meta": {"next": "B"}}))
    with pytest.raises(RuntimeError, match="Acme returned the cursor 'A' twice"):
        paginator.advance(page({"meta": {"next": "A"}}))


def test_a_link_in_the_body_stops_on_a_page_without_rows() -> None:
    paginator = Links()
    paginator.advance(page({"data": [{}], "links": {"next": f"{URL}?page=2"}}))
    assert paginator.current_value.geturl() == f"{URL}?page=2"
    paginator.advance(page({"data": [], "links": {"next": f"{URL}?page=3"}}))
    assert paginator.finished


def test_a_link_header_is_followed() -> None:
    class Header(LinkHeaderPaginator):
        vendor = "Acme"

    def linking(cursor: str) -> requests.Response:
        return page([], {"Link": f'<{URL}?cursor={cursor}>; rel="next"'})

    paginator = Header()
    paginator.advance(linking("x"))
    assert paginator.current_value.geturl() == f"{URL}?cursor=x"
    paginator.advance(linking("y"))
    with pytest.raises(RuntimeError, match=r"Acme returned the next link .*cursor=x twice"):
        paginator.advance(linking("x"))


class Things(FollowNextLink, HRRESTStream[t.Any]):
    name = "things"
    path = "/things"
    url_base = "http://127.0.0.1:9/v1"
    schema = th.PropertiesList(th.Property("id", th.IntegerType)).to_dict()

    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict[str, t.Any]:
        return {"per_page": 50, "updated_at": "gt|2024"}


class ThingsTap(Tap):
    name = "tap-things"
    config_jsonschema = th.PropertiesList().to_dict()

    def discover_streams(self) -> list[t.Any]:
        return [Things(tap=self)]


def test_next_links_are_requested_exactly_as_given() -> None:
    stream = ThingsTap(config={}, parse_env_config=False).streams["things"]
    assert isinstance(stream, Things)
    first = stream.prepare_request(None, None)
    assert first.url == f"{URL}?per_page=50&updated_at=gt%7C2024"
    link = f"{URL}?cursor=abc"
    assert stream.prepare_request(None, urlparse(link)).url == link
    with pytest.raises(ValueError, match=r"refusing plain http to example\.com"):
        stream.prepare_request(None, urlparse("http://example.com/v1/things?cursor=abc"))
