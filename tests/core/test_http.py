"""hrsync.http against a real loopback HTTP server (stdlib http.server, scripted answers).

No timed assertions: waits are read from an injected sleep and clock, never measured.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.authenticators import SimpleAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.http import (
    HTTP_SETTINGS,
    ClientCredentialsAuthenticator,
    HRRESTStream,
    InsecureURLError,
    RateLimiter,
    RetryBudgetExhausted,
    RetryPolicy,
    SecureSession,
    require_secure_url,
    retry_after_seconds,
    send_with_retries,
    shared_rate_limiter,
)

# --- a scripted server ------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer; ``drop`` closes the connection without answering."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], Reply]


class ScriptedServer:
    """Routes answer by default; ``script(path, *replies)`` queues answers that come first."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.queued: dict[str, deque[Reply]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers.items()),
                    self.rfile.read(length) if length else b"",
                )
                reply = server.answer(seen)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = reply.body
                if isinstance(body, dict | list):
                    data = json.dumps(body).encode()
                    ctype = "application/json"
                else:
                    data = (body or "").encode()
                    ctype = "text/plain; charset=utf-8"
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def route(self, method: str, path: str, handler: Route) -> None:
        self.routes[(method, path)] = handler

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self.queued.setdefault(path, deque()).extend(replies)

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queue = self.queued.get(seen.path)
            if queue:
                return queue.popleft()
        handler = self.routes.get((seen.method, seen.path))
        return handler(seen) if handler else Reply(404, {"message": f"no route {seen.path}"})

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


# --- a minimal tap on HRRESTStream ---------------------------------------------------------------

PEOPLE = [
    "Zoë Ångström",
    "Seán O'Brien",
    "Nguyễn Văn An",
    "李小龍",
    "Anne-Marie",
    "Madonna",
    "Ødegård",
]


def people_route(seen: Seen) -> Reply:
    """Pages of 3 people; ``after`` is the cursor (the last id of the previous page)."""
    after = int(seen.query.get("after", ["0"])[0])
    page = [{"id": i + 1, "name": PEOPLE[i]} for i in range(after, min(after + 3, len(PEOPLE)))]
    return Reply(200, {"data": page})


class AfterPaginator(BaseAPIPaginator[int]):
    def get_next(self, response: requests.Response) -> int | None:
        data = response.json()["data"]
        return data[-1]["id"] if len(data) == 3 else None


class PeopleStream(HRRESTStream[int]):
    name = "people"
    path = "/people"
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
        params: dict[str, Any] = {"api_key": "query-secret-123"}
        if next_page_token:
            params["after"] = next_page_token
        return params

    def get_new_paginator(self) -> AfterPaginator:
        return AfterPaginator(0)


class TeamsStream(PeopleStream):
    name = "teams"
    path = "/teams"


class MiniTap(Tap):
    name = "tap-mini"
    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.StringType, required=True),
        th.Property("oauth", th.StringType),  # "basic" | "body"
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Any]:
        mode = self.config.get("oauth")
        self.auth = (
            ClientCredentialsAuthenticator(
                token_url=f"{self.config['api_url']}/token",
                client_id="cid-4301",
                client_secret="s3cret-ünïcode",
                client_auth=mode,
                extra_params={"sub": "4301"},
                scopes="harvest:candidates:list",
            )
            if mode
            else SimpleAuthenticator()
        )
        return [PeopleStream(self), TeamsStream(self)]


class Waits:
    """Injected clock and sleep: sleeping advances the clock; nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def people_stream(url: str, waits: Waits | None = None, **config: Any) -> PeopleStream:
    tap = MiniTap(config={"api_url": url, "backoff_base_seconds": 0.01, **config})
    stream = tap.streams["people"]
    assert isinstance(stream, PeopleStream)
    if waits is not None:
        stream.retry_clock = waits.clock
        stream.retry_sleep = waits.sleep
    return stream


@pytest.fixture
def api(server: ScriptedServer) -> ScriptedServer:
    server.route("GET", "/people", people_route)
    return server


# --- transport policy --------------------------------------------------------------------------


def test_https_required_except_loopback() -> None:
    for ok in (
        "https://harvest.greenhouse.io/v3/candidates",
        "http://127.0.0.1:8080/x",
        "http://127.9.8.7/x",
        "http://localhost:9/x",
        "http://[::1]:9/x",
    ):
        assert require_secure_url(ok) == ok
    with pytest.raises(InsecureURLError) as err:
        require_secure_url("http://api.example.com/v1/employees?api_key=abc")
    assert str(err.value) == (
        "refusing plain http to api.example.com: use https "
        "(plain http is only allowed for loopback hosts)"
    )
    for bad in (
        "http://128.0.0.1/x",
        "http://localhost.evil.com/x",
        "ftp://example.com/x",
        "https:///x",
    ):
        with pytest.raises(InsecureURLError):
            require_secure_url(bad)


def test_stream_refuses_plain_http_to_a_remote_host() -> None:
    stream = people_stream("http://example.com")
    with pytest.raises(InsecureURLError, match=r"refusing plain http to example\.com"):
        list(stream.get_records(None))


def test_redirect_to_plain_http_is_refused(server: ScriptedServer) -> None:
    server.script("/people", Reply(302, "", {"Location": "http://example.com/people"}))
    with pytest.raises(InsecureURLError, match=r"example\.com"):
        list(people_stream(server.url).get_records(None))


def test_tls_verification_stays_on_and_honours_requests_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepared = requests.Request("GET", "https://127.0.0.1:9/").prepare()
    with pytest.raises(InsecureURLError, match="verification"):
        SecureSession().send(prepared, verify=False)
    # singer-sdk sends through Session.send, which ignores REQUESTS_CA_BUNDLE; SecureSession
    # applies it as requests' own Session.request would: a missing bundle fails before any I/O
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/corporate-ca.pem")
    with pytest.raises(OSError, match=r"/nonexistent/corporate-ca\.pem"):
        SecureSession().send(prepared, timeout=5)


# --- records, retries, budgets ----------------------------------------------------------------


def test_pages_and_non_latin_names_arrive_once(api: ScriptedServer) -> None:
    got = list(people_stream(api.url).get_records(None))
    assert [r["name"] for r in got] == PEOPLE
    assert len(api.hits("/people")) == 3


def test_retry_after_seconds_is_the_wait_asked_for(api: ScriptedServer) -> None:
    api.script("/people", Reply(429, {"message": "slow down"}, {"Retry-After": "7"}))
    waits = Waits()
    got = list(people_stream(api.url, waits).get_records(None))
    assert waits.slept == [7.0]
    assert len(got) == len(PEOPLE)


def test_a_retried_429_is_a_warning_not_an_error(
    api: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api.script("/people", Reply(429, {"message": "slow down"}, {"Retry-After": "2"}))
    got = list(people_stream(api.url, Waits()).get_records(None))
    assert len(got) == len(PEOPLE)
    retries = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING]
    assert "GET /people after 429 Too Many Requests (attempt 1), waiting 2.00 s" in (
        retries[0].getMessage()
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_retry_after_http_date_and_rate_limit_reset() -> None:
    resp = requests.Response()
    resp.status_code = 503
    resp.headers["Retry-After"] = "Wed, 21 Oct 2099 07:28:00 GMT"
    when = datetime(2099, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    assert retry_after_seconds(resp, now=when - 80) == 80
    assert retry_after_seconds(resp, now=when + 5) == 0  # a date in the past: now
    resp.headers["Retry-After"] = "soon"
    assert retry_after_seconds(resp) is None
    del resp.headers["Retry-After"]
    resp.headers["X-RateLimit-Reset"] = "1700000100"
    assert retry_after_seconds(resp, now=1_700_000_000.0) is None  # only a 429 means "wait"
    resp.status_code = 429
    assert retry_after_seconds(resp, now=1_700_000_000.0) == 100  # epoch seconds
    resp.headers["X-RateLimit-Reset"] = "1700000100000"
    assert retry_after_seconds(resp, now=1_700_000_000.0) == 100  # epoch milliseconds
    resp.headers["X-RateLimit-Reset"] = "9"
    assert retry_after_seconds(resp, now=1_700_000_000.0) == 9  # seconds from now


def test_rate_limit_reset_is_honoured_by_the_stream(api: ScriptedServer) -> None:
    api.script("/people", Reply(429, {"message": "limit"}, {"X-RateLimit-Reset": "12"}))
    waits = Waits()
    assert len(list(people_stream(api.url, waits).get_records(None))) == len(PEOPLE)
    assert waits.slept == [12.0]


def test_5xx_and_dropped_connections_then_success(api: ScriptedServer) -> None:
    api.script("/people", Reply(503), Reply(502, "<html>bad gateway</html>"), Reply(drop=True))
    waits = Waits()
    got = list(people_stream(api.url, waits, backoff_base_seconds=2).get_records(None))
    assert [r["id"] for r in got] == list(range(1, len(PEOPLE) + 1))
    assert len(api.hits("/people")) == 3 + 3
    # full jitter under an exponential ceiling: attempt n waits in [0, 2 * 2**n]
    assert len(waits.slept) == 3
    assert all(0 <= w <= 2 * 2**n for n, w in enumerate(waits.slept))


def test_backoff_ceiling_is_capped(api: ScriptedServer) -> None:
    stream = people_stream(api.url, backoff_base_seconds=10, backoff_max_seconds=15)
    gen = stream.backoff_wait_generator()
    gen.send(None)
    assert all(0 <= gen.send(ConnectionResetError()) <= 15 for _ in range(8))


def test_budget_of_attempts_exhausted(api: ScriptedServer) -> None:
    api.script("/people", *[Reply(503, {"error": {"code": "down", "message": "maintenance"}})] * 5)
    waits = Waits()
    with pytest.raises(RetryBudgetExhausted) as err:
        list(people_stream(api.url, waits, max_retries=3, backoff_base_seconds=0).get_records(None))
    assert str(err.value) == (
        "GET /people failed after 3 attempts in 0.0 s: 503 Service Unavailable: maintenance"
    )
    assert len(api.hits("/people")) == 3
    assert "query-secret-123" not in str(err.value)


def test_budget_of_time_exhausted(api: ScriptedServer) -> None:
    api.script("/people", *[Reply(429, "busy", {"Retry-After": "4"})] * 9)
    waits = Waits()
    stream = people_stream(api.url, waits, retry_max_seconds=10)
    with pytest.raises(RetryBudgetExhausted) as err:
        list(stream.get_records(None))
    # attempts at t=0, 4, 8; the next wait would end at 12 > 10
    assert waits.slept == [4.0, 4.0]
    assert str(err.value).startswith("GET /people failed after 3 attempts in 8.0 s: ")
    assert "429 Too Many Requests: busy" in str(err.value)
    assert "retry_max_seconds is 10" in str(err.value)


def test_retry_after_beyond_the_budget_gives_up_at_once(api: ScriptedServer) -> None:
    api.script("/people", Reply(429, {"message": "quota"}, {"Retry-After": "3600"}))
    waits = Waits()
    with pytest.raises(RetryBudgetExhausted, match=r"after 1 attempts .*asked to wait 3600 s"):
        list(people_stream(api.url, waits).get_records(None))
    assert waits.slept == []


def test_4xx_is_fatal_at_once_with_the_vendor_message(api: ScriptedServer) -> None:
    body = {"message": "Validation error", "errors": [{"field": "email", "message": "is taken"}]}
    api.script("/people", Reply(422, body))
    with pytest.raises(FatalAPIError) as err:
        list(people_stream(api.url).get_records(None))
    assert not isinstance(err.value, RetryBudgetExhausted)
    assert str(err.value) == (
        "422 Unprocessable Entity for GET /people: Validation error: email: is taken"
    )
    assert len(api.hits("/people")) == 1


def test_vendor_text_body_is_truncated_and_the_hook_overridable(api: ScriptedServer) -> None:
    api.script("/people", Reply(400, "x" * 2000))
    with pytest.raises(FatalAPIError) as err:
        list(people_stream(api.url).get_records(None))
    assert 500 <= len(str(err.value)) < 600

    class Custom(PeopleStream):
        def vendor_error_message(self, response: requests.Response) -> str:
            return response.headers.get("X-Vendor-Error-Message", "")

    api.script("/people", Reply(403, "", {"X-Vendor-Error-Message": "Company 'ACME' not shared"}))
    stream = Custom(people_stream(api.url)._tap)
    with pytest.raises(FatalAPIError, match="403 Forbidden for GET /people: Company 'ACME'"):
        list(stream.get_records(None))


def test_send_with_retries_for_targets(server: ScriptedServer) -> None:
    server.route("POST", "/employees", lambda seen: Reply(201, "", {"Location": "/employees/7"}))
    busy = Reply(503, {"message": "busy"}, {"Retry-After": "2"})
    server.script("/employees", busy, Reply(drop=True))
    slept: list[float] = []
    policy = RetryPolicy(max_retries=3, backoff_base_seconds=0)
    with requests.Session() as session:
        url = f"{server.url}/employees"
        resp = send_with_retries(session, "POST", url, policy=policy, sleep=slept.append, json={})
        assert resp.status_code == 201 and slept == [2.0, 0.0]
        server.script("/employees", *[Reply(500, {"message": "Zoë's record broke us"})] * 3)
        with pytest.raises(RetryBudgetExhausted) as err:
            send_with_retries(session, "POST", url, policy=policy, sleep=slept.append)
        assert str(err.value).startswith("POST /employees failed after 3 attempts in ")
        assert str(err.value).endswith(" s: 500 Internal Server Error: Zoë's record broke us")


def test_send_with_retries_logs_a_retry_as_a_warning(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server.route("POST", "/employees", lambda seen: Reply(201, ""))
    server.script("/employees", Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
    with requests.Session() as session:
        resp = send_with_retries(
            session,
            "POST",
            f"{server.url}/employees?token=query-secret-123",
            policy=RetryPolicy(max_retries=3),
            sleep=lambda _: None,
            json={},
        )
    assert resp.status_code == 201
    (retry,) = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert retry.levelno == logging.WARNING
    assert retry.getMessage() == (
        "Retrying POST /employees after 429 Too Many Requests (attempt 1), waiting 1.00 s"
    )
    assert "query-secret" not in caplog.text


# --- OAuth 2.0 client credentials ----------------------------------------------------------------


class TokenServer:
    """A token endpoint that counts calls and an API that accepts only its live tokens."""

    def __init__(self, server: ScriptedServer, expires_in: int = 3600) -> None:
        self.server = server
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.calls: list[Seen] = []
        self._lock = threading.Lock()
        server.route("POST", "/token", self.token)
        server.route("GET", "/people", self.people)
        server.route("GET", "/teams", self.people)

    def token(self, seen: Seen) -> Reply:
        with self._lock:
            self.calls.append(seen)
            tok = f"tok-{len(self.issued)}-abcdef"
            self.issued.append(tok)
        return Reply(
            200, {"access_token": tok, "token_type": "bearer", "expires_in": self.expires_in}
        )

    def people(self, seen: Seen) -> Reply:
        tok = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        if tok not in self.issued or tok in self.revoked:
            return Reply(401, {"message": f"token {tok} is invalid or expired"})
        return people_route(seen)

    def form(self, n: int) -> dict[str, list[str]]:
        return parse_qs(self.calls[n].body.decode())


def test_client_credentials_basic_auth_and_one_token_for_all_pages(server: ScriptedServer) -> None:
    tokens = TokenServer(server)
    stream = people_stream(server.url, oauth="basic")
    assert [r["name"] for r in stream.get_records(None)] == PEOPLE
    assert len(tokens.calls) == 1
    pair = base64.b64encode("cid-4301:s3cret-ünïcode".encode()).decode()
    assert tokens.calls[0].headers["Authorization"] == f"Basic {pair}"
    assert tokens.form(0) == {
        "grant_type": ["client_credentials"],
        "sub": ["4301"],
        "scope": ["harvest:candidates:list"],
    }


def test_client_credentials_in_the_body(server: ScriptedServer) -> None:
    tokens = TokenServer(server)
    assert len(list(people_stream(server.url, oauth="body").get_records(None))) == len(PEOPLE)
    assert "Authorization" not in tokens.calls[0].headers
    form = tokens.form(0)
    assert form["client_id"] == ["cid-4301"] and form["client_secret"] == ["s3cret-ünïcode"]


def test_token_refreshed_before_expiry(server: ScriptedServer) -> None:
    tokens = TokenServer(server, expires_in=3600)
    stream = people_stream(server.url, oauth="basic")
    list(stream.get_records(None))
    auth = stream.authenticator
    assert auth.is_token_valid()
    auth.last_refreshed -= timedelta(seconds=3600 - 61)  # 61 s left: still good
    assert auth.is_token_valid()
    auth.last_refreshed -= timedelta(seconds=2)  # 59 s left: inside the 60 s skew
    assert not auth.is_token_valid()
    list(stream.get_records(None))
    assert len(tokens.calls) == 2
    # a short-lived token is renewed at 90 % of its lifetime
    auth.expires_in = 100
    auth.last_refreshed = datetime.now(UTC) - timedelta(seconds=89)
    assert auth.is_token_valid()
    auth.last_refreshed -= timedelta(seconds=2)
    assert not auth.is_token_valid()


def test_401_refreshes_the_token_once_then_fails(server: ScriptedServer) -> None:
    tokens = TokenServer(server)
    stream = people_stream(server.url, oauth="basic")
    list(stream.get_records(None))
    tokens.revoked.add(tokens.issued[-1])  # revoked early by the vendor
    assert len(list(stream.get_records(None))) == len(PEOPLE)
    assert len(tokens.calls) == 2
    tokens.revoked.update(f"tok-{i}-abcdef" for i in range(50))  # now every token is refused
    with pytest.raises(FatalAPIError) as err:
        list(stream.get_records(None))
    assert len(tokens.calls) == 3
    assert str(err.value).startswith("401 Unauthorized for GET /people: token *** is invalid")


def test_concurrent_streams_share_one_refresh(server: ScriptedServer) -> None:
    tokens = TokenServer(server)
    tap = MiniTap(config={"api_url": server.url, "oauth": "basic"})
    results: list[int] = []

    def run(name: str) -> None:
        results.append(len(list(tap.streams[name].get_records(None))))

    threads = [threading.Thread(target=run, args=(n,)) for n in ["people", "teams"] * 4]
    for th_ in threads:
        th_.start()
    for th_ in threads:
        th_.join()
    assert results == [len(PEOPLE)] * 8
    assert len(tokens.calls) == 1


def test_invalidate_spares_a_token_another_thread_already_renewed(server: ScriptedServer) -> None:
    tokens = TokenServer(server)
    stream = people_stream(server.url, oauth="basic")
    list(stream.get_records(None))
    auth = stream.authenticator
    auth.invalidate("tok-old-abcdef")  # a late 401 for a token already replaced
    assert auth.is_token_valid() and len(tokens.calls) == 1
    auth.invalidate(tokens.issued[-1])
    assert not auth.is_token_valid()


def test_token_and_secret_never_logged_or_raised(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what a run logs (urllib3 DEBUG would show query strings)
    tokens = TokenServer(server)
    stream = people_stream(server.url, oauth="basic")
    list(stream.get_records(None))
    tokens.revoked.update(f"tok-{i}-abcdef" for i in range(50))
    with pytest.raises(FatalAPIError) as err:
        list(stream.get_records(None))
    text = caplog.text + str(err.value)
    assert "tok-" not in text and "s3cret" not in text and "query-secret-123" not in text


def test_token_endpoint_failure_names_the_oauth_error_not_the_secret(
    server: ScriptedServer,
) -> None:
    server.route(
        "POST",
        "/token",
        lambda seen: Reply(
            401,
            {
                "error": "invalid_client",
                "error_description": "bad s3cret-ünïcode",
                "echo": seen.headers,
            },
        ),
    )
    with pytest.raises(FatalAPIError) as err:
        list(people_stream(server.url, oauth="basic").get_records(None))
    message = str(err.value)
    assert message.startswith("OAuth token request failed with status 401: invalid_client: bad ***")
    assert "s3cret" not in message and "Basic" not in message


def test_token_endpoint_must_be_https() -> None:
    with pytest.raises(InsecureURLError):
        ClientCredentialsAuthenticator(
            token_url="http://auth.example.com/token", client_id="a", client_secret="b"
        )
    with pytest.raises(ValueError, match="client_auth"):
        ClientCredentialsAuthenticator(
            token_url="https://auth.example.com/token",
            client_id="a",
            client_secret="b",
            client_auth="header",  # type: ignore[arg-type]
        )


# --- rate limiting ---------------------------------------------------------------------------


def test_rate_limiter_spacing_with_an_injected_clock() -> None:
    waits = Waits()
    limiter = RateLimiter(rate=5, clock=waits.clock, sleep=waits.sleep)
    for _ in range(6):
        limiter.acquire()
    assert waits.slept == pytest.approx([0.2] * 5)
    waits.now += 10  # idle: the bucket refills, but only up to its burst
    limiter.acquire()
    limiter.acquire()
    assert waits.slept[5:] == pytest.approx([0.2])


def test_rate_limiter_is_thread_safe() -> None:
    # the clock stands still, so each caller must reserve its own later slot
    slept: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            slept.append(seconds)

    limiter = RateLimiter(rate=10, burst=2, clock=lambda: 0.0, sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(12)]
    for th_ in threads:
        th_.start()
    for th_ in threads:
        th_.join()
    assert sorted(slept) == pytest.approx([0.1 * n for n in range(1, 11)])


def test_one_limiter_per_tap_applied_to_every_request(api: ScriptedServer) -> None:
    api.route("GET", "/teams", people_route)
    tap = MiniTap(config={"api_url": api.url, "requests_per_second": 5})
    other = MiniTap(config={"api_url": api.url, "requests_per_second": 5})
    limiter = shared_rate_limiter(tap, 5)
    assert limiter is shared_rate_limiter(tap, 5) is not shared_rate_limiter(other, 5)
    assert shared_rate_limiter(tap, 0) is None
    waits = Waits()
    tap._hrsync_rate_limiter = RateLimiter(5, clock=waits.clock, sleep=waits.sleep)  # type: ignore[attr-defined]
    for name in ("people", "teams"):
        list(tap.streams[name].get_records(None))
    assert len(api.seen) == 6
    assert waits.slept == pytest.approx([0.2] * 5)  # six requests, spaced across both streams


def test_http_settings_schema() -> None:
    schema = HTTP_SETTINGS.to_dict()
    props = schema["properties"]
    assert set(props) == {
        "max_retries",
        "retry_max_seconds",
        "backoff_base_seconds",
        "backoff_max_seconds",
        "requests_per_second",
        "user_agent",
    }
    assert all(p.get("description") for p in props.values())
    assert props["max_retries"]["default"] == 8 and props["retry_max_seconds"]["default"] == 300
    assert json.loads(json.dumps(schema)) == schema
    assert isinstance(RetriableAPIError("x"), Exception)
