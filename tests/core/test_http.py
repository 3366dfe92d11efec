"""hrsync.http against a real loopback HTTP server (the sandbox's app framework)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError

from hrsync.http import (
    HTTP_SETTINGS,
    ClientCredentialsAuthenticator,
    HRRESTStream,
    InsecureURLError,
    RateLimiter,
    RetryBudgetExhausted,
    require_secure_url,
    retry_after_seconds,
)
from sandbox.httpbase import App, Faults, Request, Response, serve


class Api(App):
    """Ten items in pages of 4, and a token endpoint that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []
        self.revoked: set[str] = set()
        self.token_calls: list[dict[str, Any]] = []

        @self.route("POST", "/token")
        def token(req: Request) -> Response:
            self.token_calls.append({"auth": req.headers.get("Authorization"), **req.form()})
            tok = f"tok{len(self.tokens)}"
            self.tokens.append(tok)
            return Response(200, {"access_token": tok, "expires_in": 3600})

        @self.route("GET", "/items")
        def items(req: Request) -> Response:
            auth = req.headers.get("Authorization", "")
            if self.tokens and (not auth.startswith("Bearer ") or auth[7:] in self.revoked):
                return Response(401, {"message": "Bearer token is invalid or expired"})
            start = int(req.arg("after") or 0)
            page = [{"id": i, "name": f"Zoë {i}"} for i in range(start + 1, min(start + 4, 10) + 1)]
            return Response(200, {"data": page})

    def error(self, req: Request, status: int, message: str) -> Response:
        return Response(status, {"message": message})


class ItemsStream(HRRESTStream[int]):
    name = "items"
    path = "/items"
    primary_keys = ("id",)
    records_jsonpath = "$.data[*]"
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType), th.Property("name", th.StringType)
    ).to_dict()

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"])

    @property
    def authenticator(self) -> Any:
        return self._tap.auth  # type: ignore[attr-defined]

    def get_url_params(self, context: Any, next_page_token: int | None) -> dict[str, Any]:
        return {"after": next_page_token} if next_page_token else {}

    def get_new_paginator(self) -> Any:
        from singer_sdk.pagination import BaseAPIPaginator

        class After(BaseAPIPaginator[int]):
            def get_next(self, response: requests.Response) -> int | None:
                data = response.json()["data"]
                return data[-1]["id"] if len(data) == 4 else None

        return After(0)


class MiniTap(Tap):
    name = "tap-mini"
    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True),
        th.Property("oauth", th.BooleanType, default=False),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Any]:
        from singer_sdk.authenticators import SimpleAuthenticator

        self.auth = (
            ClientCredentialsAuthenticator(
                token_url=f"{self.config['api_url']}/token",
                client_id="cid",
                client_secret="s3cret",
                extra_params={"sub": "4301"},
            )
            if self.config.get("oauth")
            else SimpleAuthenticator()
        )
        return [ItemsStream(self)]


@pytest.fixture
def api() -> Iterator[tuple[Api, Faults, str]]:
    app, faults = Api(), Faults()
    running = serve(app, faults)
    yield app, faults, running.url
    running.stop()


def records(url: str, **config: Any) -> list[dict[str, Any]]:
    tap = MiniTap(config={"api_url": url, "backoff_base_seconds": 0.01, **config})
    return list(tap.streams["items"].get_records(None))


def test_secure_url_policy() -> None:
    assert (
        require_secure_url("https://harvest.greenhouse.io/v3") == "https://harvest.greenhouse.io/v3"
    )
    assert require_secure_url("http://127.0.0.1:8080/x").startswith("http://")
    assert require_secure_url("http://localhost/x") and require_secure_url("http://[::1]:9/x")
    with pytest.raises(InsecureURLError, match="only allowed for loopback"):
        require_secure_url("http://api.bamboohr.com/api/v1")
    with pytest.raises(InsecureURLError):
        require_secure_url("ftp://example.com/x")


def test_pages_and_unicode(api: tuple[Api, Faults, str]) -> None:
    _, _, url = api
    got = records(url)
    assert [r["id"] for r in got] == list(range(1, 11))
    assert got[0]["name"] == "Zoë 1"


def test_429_and_5xx_are_retried_and_every_record_arrives_once(
    api: tuple[Api, Faults, str],
) -> None:
    _, faults, url = api
    faults.retry_after = 0
    faults.script[:] = ["429", "503", "ok", "drop", "500"]
    got = records(url)
    assert [r["id"] for r in got] == list(range(1, 11))
    assert faults.injected == {"429": 1, "503": 1, "drop": 1, "500": 1}


def test_retry_after_is_honoured() -> None:
    resp = requests.Response()
    resp.status_code = 429
    resp.headers["Retry-After"] = "7"
    assert retry_after_seconds(resp) == 7
    resp.headers["Retry-After"] = "Wed, 21 Oct 2099 07:28:00 GMT"
    when = datetime(2099, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    assert retry_after_seconds(resp, now=when - 80) == pytest.approx(80)
    del resp.headers["Retry-After"]
    resp.headers["X-RateLimit-Reset"] = "1700000100"
    assert retry_after_seconds(resp, now=1_700_000_000.0) == 100
    resp.headers["X-RateLimit-Reset"] = "3"
    assert retry_after_seconds(resp) == 3


def test_wait_generator_uses_the_server_value(api: tuple[Api, Faults, str]) -> None:
    _, _, url = api
    stream = MiniTap(config={"api_url": url, "backoff_base_seconds": 0.5}).streams["items"]
    gen = stream.backoff_wait_generator()
    gen.send(None)
    resp = requests.Response()
    resp.status_code = 429
    resp.headers["Retry-After"] = "12"
    from singer_sdk.exceptions import RetriableAPIError

    assert gen.send(RetriableAPIError("429", resp)) == 12
    waits = [gen.send(ConnectionResetError()) for _ in range(5)]
    assert all(0 <= w <= 0.5 * 2 ** (i + 1) for i, w in enumerate(waits))


def test_budget_exhausted_names_request_attempts_and_vendor_message(
    api: tuple[Api, Faults, str],
) -> None:
    _, faults, url = api
    faults.rate_5xx = 1.0
    with pytest.raises(RetryBudgetExhausted) as err:
        records(url, max_retries=3)
    message = str(err.value)
    assert "GET /items failed after 3 attempts" in message
    assert "503" in message and "Service Unavailable" in message


def test_4xx_is_fatal_with_the_vendor_message(api: tuple[Api, Faults, str]) -> None:
    app, _, url = api
    app.tokens.append("bogus")  # the API now wants a bearer token; we send none
    with pytest.raises(FatalAPIError, match=r"401 .*Bearer token is invalid or expired"):
        records(url)


def test_oauth_client_credentials_basic_auth_and_refresh_on_401(
    api: tuple[Api, Faults, str],
) -> None:
    app, _, url = api
    tap = MiniTap(config={"api_url": url, "oauth": True, "backoff_base_seconds": 0.01})
    stream = tap.streams["items"]
    assert len(list(stream.get_records(None))) == 10
    (call,) = app.token_calls
    assert call["grant_type"] == "client_credentials" and call["sub"] == "4301"
    assert call["auth"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    # the server revokes the token early: one refresh, then the records still arrive
    app.revoked.add(app.tokens[-1])
    assert len(list(stream.get_records(None))) == 10
    assert len(app.token_calls) == 2
    # a token rejected right after a refresh is an auth problem, not something to retry forever
    app.revoked.update(f"tok{i}" for i in range(50))
    with pytest.raises(FatalAPIError, match="401"):
        list(stream.get_records(None))
    assert len(app.token_calls) == 3


def test_token_never_logged(api: tuple[Api, Faults, str], caplog: pytest.LogCaptureFixture) -> None:
    _, _, url = api
    tap = MiniTap(config={"api_url": url, "oauth": True})
    list(tap.streams["items"].get_records(None))
    assert "tok0" not in caplog.text and "s3cret" not in caplog.text


def test_rate_limiter_spacing_with_an_injected_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(rate=5, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        limiter.acquire()
    assert slept == pytest.approx([0.2] * 5)
    assert json.dumps(HTTP_SETTINGS.to_dict())  # the settings are valid JSON schema
