"""HTTP policy every hrsync REST stream shares, built on singer-sdk's own hooks.

- HTTPS only: plain ``http://`` is refused except for loopback hosts (the sandbox), also on
  redirects and on next-page links; TLS 1.2 or newer; TLS verification stays on and
  ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are honoured (singer-sdk's ``Session.send`` path
  would ignore them).
- Redirects: never from https to http (loopback included), and never to another origin
  (scheme, host, port): a body, or a credential in a custom header, would go to a server
  nobody configured. Every HTTP client in hrsync is a :class:`SecureSession`
  (``tests/core/test_connection_policy.py`` enforces it); SMTP and LDAP use
  :mod:`hrsync.tls`.
- Retries on 429, 5xx and connection errors with exponential backoff and full jitter, honouring
  ``Retry-After`` and ``X-RateLimit-Reset`` (singer-sdk ignores them: its issue #2012), bounded
  by attempts (``max_retries``) and total time (``retry_max_seconds``); when the budget is spent
  the error names the request, the attempts, the time and the vendor's message.
- Client-side rate limiting (``requests_per_second``): one token bucket per tap, thread-safe.
- OAuth 2.0 client credentials with refresh before expiry, and once more on a 401.
- Read-ahead: a paginated stream asks for its next page while the records of the current
  one are processed and written (one page ahead, :class:`OneAhead`), so a tap's own
  per-record work overlaps the server's time instead of following it. The records, their
  order and every error (a retried 429/5xx, a request that failed, a page that could not be
  parsed) arrive exactly as without it: an error is raised after the records before it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import json
import logging
import os
import queue
import random
import threading
import time
import typing as t
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from singer_sdk import typing as th
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers._compat import SingerSDKDeprecationWarning
from singer_sdk.pagination import SinglePagePaginator
from singer_sdk.streams import RESTStream
from singer_sdk.streams.rest import _HTTPStream

from hrsync.output import SelectedRecordMessages
from hrsync.tls import MINIMUM_TLS_VERSION

_LOGGER = logging.getLogger("hrsync.http")

if t.TYPE_CHECKING:
    from backoff.types import Details

__all__ = [
    "HTTP_SETTINGS",
    "RETRIABLE_EXCEPTIONS",
    "ClientCredentialsAuthenticator",
    "HRRESTStream",
    "InsecureRedirectError",
    "InsecureURLError",
    "NoRepeatedPages",
    "OneAhead",
    "RateLimiter",
    "RetryBudgetExhausted",
    "RetryPolicy",
    "SecureSession",
    "default_vendor_error_message",
    "is_retriable",
    "require_secure_url",
    "retry_after_seconds",
    "secure_request",
    "send_with_retries",
    "shared_rate_limiter",
]

_TToken = t.TypeVar("_TToken")
_T = t.TypeVar("_T")

#: What a retry is worth trying again for (besides 429 / 5xx responses).
RETRIABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

#: Settings every REST plugin appends to its ``config_jsonschema`` (``*HTTP_SETTINGS``).
HTTP_SETTINGS = th.PropertiesList(
    th.Property("max_retries", th.IntegerType(minimum=1), default=8,
                description="Attempts per request, the first included, on 429, 5xx and "
                            "network errors."),
    th.Property("retry_max_seconds", th.NumberType(minimum=0), default=300,
                description="Total time one request may spend retrying, in seconds; a "
                            "Retry-After beyond what is left ends the retries at once."),
    th.Property("backoff_base_seconds", th.NumberType(minimum=0), default=1.0,
                description="First backoff ceiling; it doubles per attempt and each wait is "
                            "drawn at random below it (full jitter)."),
    th.Property("backoff_max_seconds", th.NumberType(minimum=0), default=60,
                description="Ceiling of one computed backoff wait (a server's Retry-After "
                            "is honoured as asked)."),
    th.Property("requests_per_second", th.NumberType(minimum=0),
                description="Client-side rate limit shared by all streams of the plugin; "
                            "unset or 0: no limit."),
    th.Property("user_agent", th.StringType,
                description="User-Agent header sent to the API."),
)  # fmt: skip

_EPOCH_THRESHOLD = 1_000_000_000  # X-RateLimit-Reset above this is a Unix time, else a delta


# --- transport security ---------------------------------------------------------------------


class InsecureURLError(ValueError):
    """A URL that would send HR data in clear text."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str) -> str:
    """Return ``url`` if it is https (or http to a loopback host); raise otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    if parts.scheme == "http":
        raise InsecureURLError(
            f"refusing plain http to {host}: use https "
            "(plain http is only allowed for loopback hosts)"
        )
    scheme = f"{parts.scheme} URL" if parts.scheme else "URL without a scheme"
    raise InsecureURLError(f"refusing {scheme} to {host or '(no host)'}: use https://host/...")


def _ca_bundle() -> str | bool:
    """What ``requests`` itself would verify against: the env bundle, else certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class InsecureRedirectError(InsecureURLError):
    """A redirect the policy refuses (to plain http, or a body to another origin)."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _PolicyAdapter(HTTPAdapter):
    """urllib3 pools that refuse anything older than TLS 1.2."""

    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["ssl_minimum_version"] = MINIMUM_TLS_VERSION
        super().init_poolmanager(*args, **kwargs)


class SecureSession(requests.Session):
    """A ``requests.Session`` that enforces :func:`require_secure_url` on every send
    (redirects and absolute next-page links included), refuses unsafe redirects (see the
    module docstring), speaks TLS 1.2+ only, keeps TLS verification on, honours
    ``REQUESTS_CA_BUNDLE`` on the ``Session.send`` path and waits for ``limiter`` if given.
    ``pool_maxsize``: connections kept per host (threaded clients)."""

    def __init__(self, limiter: RateLimiter | None = None, *, pool_maxsize: int = 10) -> None:
        super().__init__()  # mounts plain HTTPAdapters, replaced here
        self.limiter = limiter
        self._policy_mounted = False
        for prefix in ("https://", "http://"):
            self.mount(prefix, _PolicyAdapter(pool_connections=1, pool_maxsize=pool_maxsize))
        self._policy_mounted = True

    def mount(self, prefix: str | bytes, adapter: t.Any) -> None:
        if getattr(self, "_policy_mounted", False) and not isinstance(adapter, _PolicyAdapter):
            raise TypeError("SecureSession: mount a hrsync.http policy adapter only")
        super().mount(prefix, adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        location = super().get_redirect_target(resp)
        if location is None:
            return None
        request = resp.request
        here = request.url or resp.url or ""
        there = urljoin(here, location)
        if urlsplit(here).scheme == "https" and urlsplit(there).scheme != "https":
            raise InsecureRedirectError(
                f"refusing the redirect from {_show(here)} to {_show(there)}: "
                "it leaves https (nothing was sent there)"
            )
        require_secure_url(there)
        if _origin(here) != _origin(there):
            # the body, and any credential in a custom header, would go to a server nobody
            # configured (requests only drops the Authorization header on a host change)
            raise InsecureRedirectError(
                f"refusing the {resp.status_code} redirect of {request.method} {_show(here)} "
                f"to another origin {_show(there)} (nothing was sent there)"
            )
        return location

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        require_secure_url(request.url or "")
        if kwargs.get("verify", self.verify) is False:
            raise InsecureURLError("refusing to send without TLS certificate verification")
        if kwargs.get("verify") in (None, True) and self.verify is True:
            kwargs["verify"] = _ca_bundle()
        if self.limiter is not None:
            self.limiter.acquire()
        return super().send(request, **kwargs)


def _show(url: str) -> str:
    """scheme://host[:port]/path of a URL: no query string, no credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def secure_request(method: str, url: str, **kwargs: t.Any) -> requests.Response:
    """One request through a throw-away :class:`SecureSession` (``requests.request``'s
    signature) for the rare one-off call outside a client class."""
    with SecureSession() as session:
        return session.request(method, url, **kwargs)


# --- server-requested waits, backoff, rate limiting -------------------------------------------


def retry_after_seconds(
    response: requests.Response | None, now: float | None = None
) -> float | None:
    """Seconds the server asked us to wait, if it said so.

    ``Retry-After`` as delta-seconds or an HTTP-date (any status), else on a 429
    ``X-RateLimit-Reset`` as a Unix time or as seconds from now (told apart by magnitude;
    epoch milliseconds are recognised too). ``now`` is the Unix time (for tests).
    """
    if response is None:
        return None
    now = time.time() if now is None else now
    if value := (response.headers.get("Retry-After") or "").strip():
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = (response.headers.get("X-RateLimit-Reset") or "").strip()
    if reset and response.status_code == 429:
        try:
            number = float(reset)
        except ValueError:
            return None
        if number > _EPOCH_THRESHOLD * 1000:
            number /= 1000  # epoch milliseconds
        return max(0.0, number - now) if number > _EPOCH_THRESHOLD else max(0.0, number)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """The retry budget of one request, from the ``HTTP_SETTINGS`` of a plugin's config."""

    max_retries: int = 8
    retry_max_seconds: float = 300.0
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> RetryPolicy:
        def get(key: str, default: float) -> float:
            value = config.get(key)
            return default if value is None else float(value)

        return cls(
            max_retries=max(1, int(get("max_retries", cls.max_retries))),
            retry_max_seconds=get("retry_max_seconds", cls.retry_max_seconds),
            backoff_base_seconds=get("backoff_base_seconds", cls.backoff_base_seconds),
            backoff_max_seconds=get("backoff_max_seconds", cls.backoff_max_seconds),
        )

    def wait(self, attempt: int, response: requests.Response | None) -> float:
        """Wait before retry number ``attempt + 1`` (0-based ``attempt``).

        The server's word (``Retry-After`` / ``X-RateLimit-Reset``) wins; otherwise full jitter:
        uniform in ``[0, min(backoff_max_seconds, backoff_base_seconds * 2**attempt)]``.
        """
        asked = retry_after_seconds(response)
        if asked is not None:
            return asked
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** min(attempt, 30))
        return random.uniform(0, ceiling)


class RateLimiter:
    """Token bucket: at most ``rate`` requests per second, bursts of ``burst``; thread-safe.

    A caller takes its token under the lock (the bucket may go negative: a reservation) and
    sleeps outside it, so concurrent callers are spaced ``1 / rate`` apart.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate, self.burst = float(rate), max(1, burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping if needed; return the seconds slept."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            self._tokens -= 1
        if wait > 0:
            self._sleep(wait)
        return wait


_SHARED_LOCK = threading.Lock()


def shared_rate_limiter(owner: object, rate: float | None) -> RateLimiter | None:
    """The one :class:`RateLimiter` of ``owner`` (a tap or target instance); None if no rate."""
    if not rate:
        return None
    with _SHARED_LOCK:
        limiter = getattr(owner, "_hrsync_rate_limiter", None)
        if limiter is None:
            limiter = RateLimiter(float(rate))
            owner._hrsync_rate_limiter = limiter  # type: ignore[attr-defined]
    return t.cast(RateLimiter, limiter)


class RetryBudgetExhausted(FatalAPIError):
    """Retries of one request ran out; the message says what was tried and what failed."""


def is_retriable(response: requests.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def _budget_message(
    method: str | None, url: str | None, attempts: int, elapsed: float, failure: str
) -> str:
    path = urlsplit(url or "").path or "/"
    return f"{method} {path} failed after {attempts} attempts in {elapsed:.1f} s: {failure}"


def send_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    describe: Callable[[requests.Response], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
    **kwargs: t.Any,
) -> requests.Response:
    """One request for code that has no RESTStream (targets): the same policy as HRRESTStream.

    Retries 429, 5xx and network errors; returns any other response for the caller to judge;
    raises :class:`RetryBudgetExhausted` naming the request, attempts, time and last failure
    (``describe`` turns a failed response into the vendor's words; default: the JSON body's
    message fields or the body text).
    """
    require_secure_url(url)
    describe = describe or default_vendor_error_message
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            limiter.acquire()
        response: requests.Response | None = None
        try:
            response = session.request(method, url, **kwargs)
        except RETRIABLE_EXCEPTIONS as exc:
            failure = f"{type(exc).__name__}: {exc}"
            reason = type(exc).__name__  # its text may quote the URL's query string
        else:
            if not is_retriable(response):
                return response
            failure = f"{response.status_code} {response.reason}: {describe(response)}"
            reason = f"{response.status_code} {response.reason}"
        wait = policy.wait(attempt - 1, response)
        elapsed = time.monotonic() - started
        if attempt >= policy.max_retries or elapsed + wait > policy.retry_max_seconds:
            raise RetryBudgetExhausted(_budget_message(method, url, attempt, elapsed, failure))
        _LOGGER.warning(  # a retry is a warning; running out of retries is the error
            "Retrying %s %s after %s (attempt %d), waiting %.2f s",
            method,
            urlsplit(url).path,
            reason,
            attempt,
            wait,
        )
        sleep(wait)


# --- vendor error messages ----------------------------------------------------------------

_MESSAGE_KEYS = ("message", "error", "error_description", "detail", "title", "description")


def _json_message(body: t.Any) -> str:
    """``message``/``error``/... of a JSON error body, nested objects and ``errors[]`` included."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(filter(None, (_json_message(item) for item in body[:5])))
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        text = _json_message(value) if isinstance(value, dict | list) else value
        if isinstance(text, str) and text and text not in parts:
            parts.append(text)
    if body.get("field") and parts:
        parts[0] = f"{body['field']}: {parts[0]}"
    if errors := body.get("errors"):
        parts.append(_json_message(errors))
    return ": ".join(p for p in parts if p)


def default_vendor_error_message(response: requests.Response, limit: int = 500) -> str:
    """A JSON body's message/error fields, else the body text; at most ``limit`` characters."""
    try:
        message = _json_message(response.json())
    except ValueError:
        message = ""
    message = message or response.text or ""
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _redact(message: str, request: requests.PreparedRequest | None) -> str:
    """Blank out the credential the request carried, should a vendor echo it back."""
    auth = (request.headers.get("Authorization") if request is not None else None) or ""
    secret = auth.split(" ", 1)[-1].strip()
    return message.replace(secret, "***") if len(secret) >= 6 else message


# --- paging -------------------------------------------------------------------------------


class NoRepeatedPages:
    """Mix in before a singer-sdk paginator: a page token (cursor, offset token, next link)
    already followed in this sync fails instead of looping. singer-sdk itself only catches a
    token equal to the one just before; a vendor cycling over two pages would never end.

    ``vendor`` and ``what_pages_by`` (cursor, next link, ...) word the error: ``Lever returned
    the offset token 'x' twice``."""

    vendor: t.ClassVar[str] = "the API"
    what_pages_by: t.ClassVar[str] = "page token"

    def advance(self, response: requests.Response) -> None:
        super().advance(response)  # type: ignore[misc]
        if self.finished:  # type: ignore[attr-defined]
            return
        token = self.current_value  # type: ignore[attr-defined]
        seen: set[t.Any] = self.__dict__.setdefault("_hrsync_seen", set())
        if token in seen:
            shown = token.geturl() if hasattr(token, "geturl") else repr(token)
            raise RuntimeError(f"{self.vendor} returned the {self.what_pages_by} {shown} twice")
        seen.add(token)


# --- read-ahead ---------------------------------------------------------------------------


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class OneAhead(t.Generic[_T]):
    """``items``, in the same order, taken from it by a thread that stays at most one item
    ahead of the caller: item ``n + 1`` is asked for when the caller takes item ``n``, never
    earlier (for pages: one page in memory besides the one being written).

    An error of ``items`` is raised by :meth:`__next__` where the item it stopped at would
    have been, after every item before it. :meth:`close` (also on the caller stopping early)
    stops the thread, waiting for an item being produced, and closes ``items``: nothing read
    ahead is handed out after it.
    """

    def __init__(self, items: Iterator[_T], *, name: str = "hrsync-read-ahead") -> None:
        self._items = items
        self._slot: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._taken = threading.Semaphore(0)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                self._slot.put(item)
                self._taken.acquire()  # the caller has it: the next one may be read
                if self._stop.is_set():
                    return
        except BaseException as error:  # handed to the caller, raised there
            self._slot.put(_Failed(error))
            return
        self._slot.put(_DONE)

    def __iter__(self) -> OneAhead[_T]:
        return self

    def __next__(self) -> _T:
        if self._closed:
            raise StopIteration
        item = self._slot.get()
        self._taken.release()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failed):
            self.close()
            raise item.error
        return t.cast(_T, item)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._taken.release()  # wakes the thread if it waits for the caller
        self._thread.join()
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


class _Page(t.NamedTuple):
    rows: list[dict]
    #: raised after ``rows`` (parsing failed part-way, or the paginator refused the page)
    error: Exception | None


# --- the stream base class ----------------------------------------------------------------


class HRRESTStream(SelectedRecordMessages, RESTStream[_TToken]):
    """Base class of every hrsync REST stream: HTTPS policy, retries, rate limit, errors, and
    records written without singer-sdk's per-record walks when they change nothing
    (:mod:`hrsync.output`).

    Subclasses declare ``url_base``, ``path``, ``records_jsonpath``, a paginator and an
    authenticator, as with any singer-sdk ``RESTStream``; vendors whose errors are shaped
    differently override :meth:`vendor_error_message`.
    """

    #: read the next page while this one's records are written (:meth:`request_records`)
    read_ahead: t.ClassVar[bool] = True

    # --- transport ----------------------------------------------------------------------

    @property
    def requests_session(self) -> requests.Session:
        session = self._requests_session
        if not isinstance(session, SecureSession):
            limiter = shared_rate_limiter(self._tap, self.config.get("requests_per_second"))
            session = SecureSession(limiter)
            self._requests_session = session
        return session

    def get_url(self, context: t.Any) -> str:
        return require_secure_url(super().get_url(context))

    @property
    def http_headers(self) -> dict[str, str]:
        """JSON, and the ``user_agent`` setting (HTTP_SETTINGS) when one is configured."""
        headers = {"Accept": "application/json"}
        if self.config.get("user_agent"):
            headers["User-Agent"] = str(self.config["user_agent"])
        return headers

    # --- pages --------------------------------------------------------------------------

    def request_records(self, context: t.Any) -> t.Iterable[dict]:
        """singer-sdk's page loop (the same requests, records, metrics and errors, in the same
        order), with every page after the first read one page ahead (:class:`OneAhead`) while
        the records of the page before are processed. The first page is read here, in the
        caller's thread (session, token and incremental window are set up by it); a stream
        with one page starts no thread. ``read_ahead = False`` keeps singer-sdk's own loop."""
        if not self.read_ahead:
            yield from super().request_records(context)
            return
        paginator = self.get_new_paginator() or SinglePagePaginator()
        request = self.request_decorator(self._request)
        with self.get_http_request_counter() as counter:
            counter.with_context(context)
            pages = self._pages(context, paginator, request, counter)
            first = next(pages, None)
            if first is None:
                return
            if first.error is not None or paginator.finished:
                yield from first.rows
                if first.error is not None:
                    raise first.error
                return
            ahead = OneAhead(pages, name=f"{self.name}-read-ahead")
            try:
                page = first
                while True:
                    yield from page.rows
                    if page.error is not None:
                        raise page.error
                    following = next(ahead, None)
                    if following is None:
                        return
                    page = following
            finally:
                ahead.close()

    def _pages(
        self,
        context: t.Any,
        paginator: t.Any,
        request: Callable[..., requests.Response],
        counter: t.Any,
    ) -> Iterator[_Page]:
        """The pages of singer-sdk 0.54's ``request_records`` loop, each parsed whole."""
        pages = 0
        deprecated = type(self).prepare_request is not _HTTPStream.prepare_request
        if deprecated:  # what singer-sdk's loop says, and does, for it
            warnings.warn(
                "prepare_request is deprecated, use get_http_request instead",
                SingerSDKDeprecationWarning,
                stacklevel=2,
            )
        while not paginator.finished:
            prepared = (
                self.prepare_request(context, paginator.current_value)
                if deprecated
                else self._prepare_request(context=context, page=paginator)
            )
            response = request(prepared, context)
            counter.increment()
            self.update_sync_costs(prepared, response, context)
            rows: list[dict] = []
            try:
                rows.extend(self.parse_response(response))
            except Exception as error:  # after the rows before it, as singer-sdk's loop
                yield _Page(rows, error)
                return
            if not rows:
                if paginator.continue_if_empty(response):
                    paginator.advance(response)
                    continue
                self.log(
                    "Pagination stopped after %d pages because no records were "
                    "found in the last response",
                    pages,
                )
                return
            pages += 1
            try:
                paginator.advance(response)
            except Exception as error:  # singer-sdk raises it after the page's records
                yield _Page(rows, error)
                return
            yield _Page(rows, None)

    # --- errors -------------------------------------------------------------------------

    def vendor_error_message(self, response: requests.Response) -> str:
        """The vendor's own words for an error; override for vendors with other shapes."""
        return default_vendor_error_message(response)

    def _status_and_message(self, response: requests.Response) -> tuple[str, str]:
        """(``503 Service Unavailable``, the vendor's message with credentials redacted)."""
        message = _redact(self.vendor_error_message(response), response.request)
        return f"{response.status_code} {response.reason or ''}".strip(), message

    def response_error_message(self, response: requests.Response) -> str:
        """``401 Unauthorized for GET /v3/users: <vendor message>`` (no query string)."""
        request = response.request
        path = urlsplit(response.url or request.url or "").path or self.path
        status, message = self._status_and_message(response)
        return f"{status} for {request.method} {path}" + (f": {message}" if message else "")

    def validate_response(self, response: requests.Response) -> None:
        if response.status_code == 401 and _can_refresh(self.authenticator):
            request = response.request
            if not getattr(request, "_hrsync_refreshed", False):
                # tokens expire early (revoked, rotated, clock skew): refresh once and retry
                request._hrsync_refreshed = True  # type: ignore[attr-defined]
                sent = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
                _force_refresh(self.authenticator, sent)
                raise RetriableAPIError(self.response_error_message(response), response)
        super().validate_response(response)

    # --- retries ------------------------------------------------------------------------

    #: time source and sleep of the retry loop (tests inject fakes; never timed)
    retry_clock: Callable[[], float] = staticmethod(time.monotonic)
    retry_sleep: Callable[[float], None] = staticmethod(time.sleep)

    @functools.cached_property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_config(self.config)

    def backoff_max_tries(self) -> int:
        return self.retry_policy.max_retries

    def backoff_jitter(self, value: float) -> float:
        return value  # full jitter is applied in backoff_wait_generator; Retry-After is exact

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        """The waits of one request's retries, in singer-sdk's protocol: primed with
        ``send(None)``, then sent each failure (the exception). It stops - ending the
        retries - when the next wait would overrun ``retry_max_seconds``."""
        policy = self.retry_policy
        started = self.retry_clock()
        attempt = 0
        exc = yield 0.0
        while True:
            response = getattr(exc, "response", None)
            if response is not None and response.status_code == 401:
                wait = 0.0  # the token was just invalidated: retry at once
            else:
                wait = policy.wait(attempt, response)
            if self.retry_clock() - started + wait > policy.retry_max_seconds:
                return
            exc = yield wait
            attempt += 1

    def backoff_handler(self, details: Details) -> None:
        """A retry is logged as a warning (singer-sdk logs it as an error, though the retry
        usually succeeds; running out of retries raises :class:`RetryBudgetExhausted`, which
        is the error). The URL's path only: a query string may carry a filter value."""
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        if isinstance(response, requests.Response):
            reason = f"{response.status_code} {response.reason}"
        else:
            reason = type(exc).__name__
        args = details.get("args") or ()
        prepared = args[0] if args else None
        method = getattr(prepared, "method", None) or "request"
        path = urlsplit(getattr(prepared, "url", None) or "").path or self.path
        self.logger.warning(
            "Retrying %s %s after %s (attempt %d), waiting %.2f s",
            method,
            path,
            reason,
            details.get("tries", 0),
            details.get("wait") or 0.0,
        )

    def request_decorator(self, func: Callable[..., requests.Response]) -> Callable[..., t.Any]:
        """Retry ``func`` (singer-sdk's ``_request``) on :data:`RETRIABLE_EXCEPTIONS`.

        The same hooks as singer-sdk's backoff decorator - ``backoff_wait_generator``,
        ``backoff_max_tries``, ``backoff_jitter``, ``backoff_handler`` - driven by a small
        loop that knows the attempts and the elapsed time, so that running out raises
        :class:`RetryBudgetExhausted` with a useful message.
        """

        @functools.wraps(func)
        def call(
            prepared_request: requests.PreparedRequest, *args: t.Any, **kwargs: t.Any
        ) -> requests.Response:
            waits = self.backoff_wait_generator()
            next(waits)
            max_tries = self.backoff_max_tries()
            started = self.retry_clock()
            tries = 0
            while True:
                tries += 1
                try:
                    return func(prepared_request, *args, **kwargs)
                except RETRIABLE_EXCEPTIONS as exc:
                    elapsed = self.retry_clock() - started
                    wait: float | None = None
                    if tries < max_tries:
                        with contextlib.suppress(StopIteration):
                            wait = self.backoff_jitter(waits.send(exc))
                    if wait is None:
                        failure = self._describe(exc, out_of_time=tries < max_tries)
                        raise RetryBudgetExhausted(
                            _budget_message(
                                prepared_request.method,
                                prepared_request.url,
                                tries,
                                elapsed,
                                failure,
                            )
                        ) from exc
                    details = {
                        "target": func,
                        "args": (prepared_request, *args),
                        "kwargs": kwargs,
                        "tries": tries,
                        "elapsed": elapsed,
                        "wait": wait,
                        "exception": exc,
                    }
                    self.backoff_handler(t.cast("Details", details))
                    self.retry_sleep(wait)

        return call

    def _describe(self, exc: BaseException, *, out_of_time: bool) -> str:
        response = getattr(exc, "response", None)
        if isinstance(response, requests.Response):
            status, message = self._status_and_message(response)
            failure = f"{status}: {message}" if message else status
        else:
            failure = f"{type(exc).__name__}: {exc}"
        if out_of_time:
            budget = self.retry_policy.retry_max_seconds
            asked = retry_after_seconds(response) if response is not None else None
            failure += (
                f" (the server asked to wait {asked:.0f} s more; retry_max_seconds is {budget:g})"
                if asked is not None
                else f" (retry_max_seconds {budget:g} reached)"
            )
        return failure


def _can_refresh(auth: object) -> bool:
    return isinstance(auth, OAuthAuthenticator)


def _force_refresh(auth: object, sent_token: str) -> None:
    if isinstance(auth, ClientCredentialsAuthenticator):
        auth.invalidate(sent_token)
    elif isinstance(auth, OAuthAuthenticator) and auth.access_token == sent_token:
        auth.last_refreshed = None  # singer-sdk's is_token_valid() then asks for a new one


# --- OAuth 2.0 client credentials -----------------------------------------------------------


class ClientCredentialsAuthenticator(OAuthAuthenticator):
    """OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with refresh ahead of expiry.

    ``client_auth="basic"`` sends the client id and secret as HTTP Basic (Greenhouse Harvest v3,
    and RFC 6749's preferred form); ``"body"`` sends them as form fields. ``extra_params`` go
    into the token request (e.g. Greenhouse's ``sub``: the user the API acts as). The token is
    renewed ``min(60 s, 10 % of its lifetime)`` before it expires, and on :meth:`invalidate`.
    The token and the secret never reach logs or error messages.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        client_auth: t.Literal["basic", "body"] = "basic",
        extra_params: Mapping[str, str] | None = None,
        scopes: str | None = None,
        default_expiration: int | None = None,
    ) -> None:
        if client_auth not in ("basic", "body"):
            raise ValueError(f"client_auth must be 'basic' or 'body', got {client_auth!r}")
        require_secure_url(token_url)
        headers = {"Accept": "application/json"}
        if client_auth == "basic":
            pair = f"{client_id}:{client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        super().__init__(
            auth_endpoint=token_url,
            oauth_scopes=scopes,
            default_expiration=default_expiration,
            oauth_headers=headers,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.token_url = token_url
        self.client_auth = client_auth
        self.extra_params = dict(extra_params or {})
        self.refreshes = 0
        self._lock = threading.RLock()
        # the token endpoint gets the same transport policy, and a few retries on 429/5xx
        self._session = SecureSession()
        retry = urllib3.Retry(
            total=3,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=["POST"],
            raise_on_status=False,
        )
        self._session.mount("https://", _PolicyAdapter(max_retries=retry))
        self._session.mount("http://", _PolicyAdapter(max_retries=retry))

    @property
    def oauth_request_body(self) -> dict:
        body: dict[str, t.Any] = {"grant_type": "client_credentials", **self.extra_params}
        if self.oauth_scopes:
            body["scope"] = self.oauth_scopes
        if self.client_auth == "body":
            body["client_id"] = self.client_id
            body["client_secret"] = self.client_secret
        return body

    def is_token_valid(self) -> bool:
        if self.access_token is None or self.last_refreshed is None:
            return False
        if not self.expires_in:
            return True
        skew = min(60.0, self.expires_in * 0.1)
        age = (datetime.now(UTC) - self.last_refreshed).total_seconds()
        return age < self.expires_in - skew

    def update_access_token(self) -> None:
        with self._lock:
            if self.is_token_valid():  # another thread refreshed it meanwhile
                return
            super().update_access_token()
            self.refreshes += 1

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token: the next request fetches a new one. With ``token``, only if that
        is still the current one (another thread may have refreshed it already)."""
        with self._lock:
            if token is None or token == self.access_token:
                self.access_token = None
                self.last_refreshed = None

    def handle_error(self, *, content: str, status_code: int | None) -> None:
        # RFC 6749 §5.2 error codes are safe to show; the rest of the body might echo secrets
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        words = ""
        if isinstance(body, dict):
            words = ": ".join(
                str(body[k]) for k in ("error", "error_description") if body.get(k)
            ).replace(str(self.client_secret), "***")[:300]
        where = urlsplit(self.token_url)
        host = f"{where.hostname}:{where.port}" if where.port else where.hostname
        raise FatalAPIError(
            f"OAuth token request failed with status {status_code or 'unknown'}"
            + (f": {words}" if words else "")
            + f" (token endpoint {host}{where.path})"
        )
