"""HTTP policy every hrsync REST stream shares, built on singer-sdk's own hooks.

- HTTPS only (plain ``http://`` is refused except for loopback hosts); TLS verification stays on.
- Retries on 429, 5xx and connection errors with exponential backoff and full jitter, honouring
  ``Retry-After`` and ``X-RateLimit-Reset`` (singer-sdk ignores them: its issue #2012), bounded
  by attempts (``max_retries``) and total time (``retry_max_seconds``); when the budget is spent
  the error names the request, the attempts, the time and the vendor's message.
- Client-side rate limiting (``requests_per_second``), shared by every stream of one tap.
- OAuth 2.0 client credentials with refresh before expiry and once more on a 401.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import random
import threading
import time
import typing as t
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk import typing as th
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import RESTStream

_TToken = t.TypeVar("_TToken")

RETRIABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

HTTP_SETTINGS = th.PropertiesList(
    th.Property("max_retries", th.IntegerType, default=8,
                description="Attempts per request (first included) on 429, 5xx, network errors."),
    th.Property("retry_max_seconds", th.NumberType, default=300,
                description="Total time budget for one request's retries, in seconds."),
    th.Property("backoff_base_seconds", th.NumberType, default=1.0,
                description="First backoff wait; doubles per attempt (full jitter)."),
    th.Property("backoff_max_seconds", th.NumberType, default=60,
                description="Longest single backoff wait unless the server asks for longer."),
    th.Property("requests_per_second", th.NumberType,
                description="Client-side rate limit shared by all streams; unset: no limit."),
    th.Property("user_agent", th.StringType, description="User-Agent header sent to the API."),
)  # fmt: skip


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
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return url
    raise InsecureURLError(
        f"refusing {parts.scheme or 'scheme-less'} URL to {host or url!r}: use https "
        "(plain http is only allowed for loopback hosts such as the sandbox)"
    )


def retry_after_seconds(
    response: requests.Response | None, now: float | None = None
) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` or ``X-RateLimit-Reset``), if any."""
    if response is None:
        return None
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and response.status_code == 429:
        try:
            number = float(reset)
        except ValueError:
            return None
        # large values are epoch seconds, small ones seconds from now
        return max(0.0, number - now) if number > 1_000_000_000 else number
    return None


class RateLimiter:
    """Token bucket: at most ``rate`` requests per second, bursts of ``burst``; thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
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
        if wait:
            self._sleep(wait)
        return wait


class RetryBudgetExhausted(FatalAPIError):
    """Retries of one request ran out; the message says what was tried and what failed."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry budget of one request, from the HTTP_SETTINGS of a plugin's config."""

    max_retries: int = 8
    retry_max_seconds: float = 300.0
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> RetryPolicy:
        return cls(
            max_retries=int(config.get("max_retries") or cls.max_retries),
            retry_max_seconds=float(config.get("retry_max_seconds") or cls.retry_max_seconds),
            backoff_base_seconds=float(
                config.get("backoff_base_seconds") or cls.backoff_base_seconds
            ),
            backoff_max_seconds=float(config.get("backoff_max_seconds") or cls.backoff_max_seconds),
        )

    def wait(self, attempt: int, response: requests.Response | None) -> float:
        """The server's word (Retry-After) wins; else exponential backoff with full jitter."""
        asked = retry_after_seconds(response)
        if asked is not None:
            return asked
        return random.uniform(
            0, min(self.backoff_max_seconds, self.backoff_base_seconds * 2**attempt)
        )


def is_retriable(response: requests.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


def send_with_retries(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    describe: t.Callable[[requests.Response], str] = lambda r: r.text[:500],
    sleep: t.Callable[[float], None] = time.sleep,
    limiter: RateLimiter | None = None,
    **kwargs: t.Any,
) -> requests.Response:
    """One request for code that has no RESTStream (targets): same policy as HRRESTStream.

    Retries 429, 5xx and network errors; returns any other response for the caller to judge;
    raises :class:`RetryBudgetExhausted` naming the request, attempts, time and last failure.
    """
    require_secure_url(url)
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            limiter.acquire()
        response: requests.Response | None = None
        try:
            response = session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout, ConnectionResetError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            if not is_retriable(response):
                return response
            failure = f"{response.status_code} {response.reason}: {describe(response)}"
        wait = policy.wait(attempt - 1, response)
        elapsed = time.monotonic() - started
        if attempt >= policy.max_retries or elapsed + wait > policy.retry_max_seconds:
            raise RetryBudgetExhausted(
                f"{method} {urlsplit(url).path} failed after {attempt} attempts in "
                f"{elapsed:.1f} s: {failure}"
            )
        sleep(wait)


def describe_failure(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(exc, RetriableAPIError) and response is not None:
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class HRRESTStream(RESTStream[_TToken]):
    """Base class of every hrsync REST stream."""

    def get_url(self, context: t.Any) -> str:
        return require_secure_url(super().get_url(context))

    # --- errors -------------------------------------------------------------------------

    def vendor_error_message(self, response: requests.Response) -> str:
        """The vendor's own words for an error; override for vendors with other shapes."""
        try:
            body = response.json()
        except ValueError:
            return response.text[:500]
        if isinstance(body, dict):
            for key in ("message", "error", "detail", "error_description"):
                value = body.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or value
                if value:
                    extra = body.get("errors")
                    return f"{value} {extra}" if extra else str(value)
        return response.text[:500]

    def response_error_message(self, response: requests.Response) -> str:
        path = urlsplit(response.url).path or self.path
        reason = response.reason or ""
        message = self.vendor_error_message(response)
        return f"{response.status_code} {reason} for {path}" + (f": {message}" if message else "")

    def validate_response(self, response: requests.Response) -> None:
        if (
            response.status_code == 401
            and isinstance(self.authenticator, ClientCredentialsAuthenticator)
            and not getattr(response.request, "_hrsync_after_refresh", False)
        ):
            # the token may have expired early: refresh once and retry
            self.authenticator.invalidate()
            raise RetriableAPIError(self.response_error_message(response), response)
        super().validate_response(response)

    # --- retries ------------------------------------------------------------------------

    def backoff_max_tries(self) -> int:
        return int(self.config.get("max_retries") or 8)

    def backoff_jitter(self, value: float) -> float:
        return value  # jitter is applied in backoff_wait_generator (full jitter)

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        policy = RetryPolicy.from_config(self.config)
        attempt = 0
        exc = yield 0.0  # primed by backoff with send(None)
        while True:
            exc = yield policy.wait(attempt, getattr(exc, "response", None))
            attempt += 1

    def request_decorator(self, func: t.Callable) -> t.Callable:
        state: dict[str, t.Any] = {}

        def on_giveup(details: t.Any) -> None:
            state["tries"] = details.get("tries")

        decorated = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_EXCEPTIONS,
            max_tries=self.backoff_max_tries,
            max_time=float(self.config.get("retry_max_seconds") or 300),
            on_backoff=self.backoff_handler,
            on_giveup=on_giveup,
            jitter=None,
            logger=None,
        )(func)

        @functools.wraps(func)
        def wrapper(
            prepared_request: requests.PreparedRequest, *args: t.Any, **kwargs: t.Any
        ) -> t.Any:
            started = time.monotonic()
            try:
                return decorated(prepared_request, *args, **kwargs)
            except RETRIABLE_EXCEPTIONS as exc:
                path = urlsplit(prepared_request.url or "").path
                raise RetryBudgetExhausted(
                    f"{prepared_request.method} {path} failed after {state.get('tries', '?')} "
                    f"attempts in {time.monotonic() - started:.1f} s: {describe_failure(exc)}"
                ) from exc

        return wrapper

    def _request(
        self, prepared_request: requests.PreparedRequest, context: t.Any
    ) -> requests.Response:
        limiter = self._rate_limiter()
        if limiter is not None:
            limiter.acquire()
        auth = self.authenticator
        if isinstance(auth, ClientCredentialsAuthenticator) and not auth.is_token_valid():
            prepared_request._hrsync_after_refresh = True  # type: ignore[attr-defined]
        return super()._request(prepared_request, context)

    def _rate_limiter(self) -> RateLimiter | None:
        rate = self.config.get("requests_per_second")
        if not rate:
            return None
        tap = self._tap
        with _LIMITER_LOCK:
            limiter = getattr(tap, "_hrsync_rate_limiter", None)
            if limiter is None:
                limiter = RateLimiter(float(rate))
                tap._hrsync_rate_limiter = limiter  # type: ignore[attr-defined]
        return t.cast(RateLimiter, limiter)


_LIMITER_LOCK = threading.Lock()


class ClientCredentialsAuthenticator(OAuthAuthenticator):
    """OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with refresh ahead of expiry.

    ``client_auth="basic"`` sends the client id and secret as HTTP Basic (Greenhouse v3 and
    RFC 6749's preferred form); ``"body"`` sends them as form fields. ``extra_params`` go into
    the token request (e.g. Greenhouse's ``sub``: the user the API acts as).
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        client_auth: t.Literal["basic", "body"] = "basic",
        extra_params: dict[str, str] | None = None,
        scopes: str | None = None,
        default_expiration: int | None = None,
    ) -> None:
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
        self.client_auth = client_auth
        self.extra_params = dict(extra_params or {})
        self._lock = threading.Lock()
        self.refreshes = 0

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

    def invalidate(self) -> None:
        with self._lock:
            self.access_token = None
            self.last_refreshed = None

    def handle_error(self, *, content: str, status_code: int | None) -> None:
        # never echo the token endpoint's body: it may carry credentials back
        self.logger.error("OAuth token request failed with status %s", status_code or "unknown")
