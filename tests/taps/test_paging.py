"""Every tap's paginator refuses a page token it already followed (hrsync.http.NoRepeatedPages):
a vendor cycling A -> B -> A would otherwise page forever; singer-sdk only catches A -> A."""

from __future__ import annotations

import json
import typing as t

import pytest
import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_bamboohr.client import CursorPaginator
from tap_greenhouse.client import CursorLinkPaginator
from tap_lever.client import NextTokenPaginator
from tap_surveymonkey.client import LinksNextPaginator

URL = "https://api.example.com/v1/things"


def page(body: dict[str, t.Any] | None = None, link: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.url = URL
    response.request = requests.Request("GET", URL).prepare()
    response._content = json.dumps(body or {}).encode()
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


def link(cursor: str) -> str:
    return f"{URL}?cursor={cursor}"


CASES: list[tuple[str, t.Callable[[], BaseAPIPaginator[t.Any]], t.Callable[[str], requests.Response], str]] = [  # noqa: E501
    ("bamboohr", CursorPaginator,
     lambda c: page({"data": [{}], "meta": {"page": {"nextCursor": c}}}),
     "BambooHR returned the cursor 'A' twice"),
    ("lever", NextTokenPaginator,
     lambda c: page({"data": [{}], "hasNext": True, "next": c}),
     "Lever returned the offset token 'A' twice"),
    ("greenhouse", CursorLinkPaginator, lambda c: page([{}], link=link(c)),  # type: ignore[arg-type]
     f"Greenhouse returned the next link {link('A')} twice"),
    ("surveymonkey", LinksNextPaginator,
     lambda c: page({"data": [{}], "links": {"next": link(c)}}),
     f"SurveyMonkey returned the next link {link('A')} twice"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "respond", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_token_seen_before_fails_naming_it(
    make: t.Callable[[], BaseAPIPaginator[t.Any]],
    respond: t.Callable[[str], requests.Response],
    message: str,
) -> None:
    paginator = make()
    paginator.advance(respond("A"))
    paginator.advance(respond("B"))
    assert not paginator.finished
    with pytest.raises(RuntimeError, match="^" + message.replace("?", r"\?") + "$"):
        paginator.advance(respond("A"))
