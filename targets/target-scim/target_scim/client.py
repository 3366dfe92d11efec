"""A small, thread-safe SCIM 2.0 client: discovery, lookups, writes, Bulk, retries."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests

from hrsync.http import RateLimiter, SecureSession, require_secure_url, retry_after_seconds
from target_scim import scim

LOGGER = logging.getLogger("target_scim")

RETRYABLE = frozenset({429, 500, 502, 503, 504})


class Auth(Protocol):
    """Something that signs requests and, for OAuth, can fetch a fresh token once."""

    def headers(self) -> dict[str, str]: ...

    def refresh(self) -> bool: ...


class SCIMError(Exception):
    """A SCIM error response, with the server's ``status``, ``scimType`` and ``detail``."""

    def __init__(
        self,
        method: str,
        url: str,
        status: int | None,
        scim_type: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.scim_type = scim_type
        self.detail = detail
        parts = [f"{method} {url} -> {status}"]
        if scim_type:
            parts.append(f"scimType={scim_type}")
        if detail:
            parts.append(f"detail={detail!r}")
        super().__init__(" ".join(parts))

    @classmethod
    def from_body(cls, method: str, url: str, http_status: int, body: Any) -> SCIMError:
        body = body if isinstance(body, Mapping) else {}
        status = scim.parse_status(body.get("status")) or http_status
        scim_type = body.get("scimType") or body.get("scimtype")
        detail = body.get("detail")
        return cls(
            method,
            url,
            status,
            str(scim_type) if scim_type else None,
            str(detail) if detail is not None else None,
        )


class SCIMAuthError(SCIMError):
    """401/403: the credentials were refused. Stops the run (no user can be written)."""

    def __str__(self) -> str:
        hint = (
            "the SCIM server refused the credentials (check bearer_token or the OAuth "
            "client id/secret/token_url and the token's scopes)"
        )
        return f"{hint}: {super().__str__()}"


@dataclass(frozen=True)
class ServerFeatures:
    """What /ServiceProviderConfig says the server supports."""

    patch: bool = False
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload: int = 0
    filter: bool = False
    filter_max_results: int = 100

    @classmethod
    def from_config(cls, doc: Mapping[str, Any]) -> ServerFeatures:
        def section(name: str) -> Mapping[str, Any]:
            for k, v in doc.items():
                if k.lower() == name.lower() and isinstance(v, Mapping):
                    return v
            return {}

        def number(value: Any, default: int) -> int:
            try:
                return int(value)
            except (TypeError, ValueError):
                return default

        bulk = section("bulk")
        filt = section("filter")
        return cls(
            patch=bool(scim.parse_bool(section("patch").get("supported"), False)),
            bulk=bool(scim.parse_bool(bulk.get("supported"), False)),
            bulk_max_operations=number(bulk.get("maxOperations"), 0),
            bulk_max_payload=number(bulk.get("maxPayloadSize"), 0),
            filter=bool(scim.parse_bool(filt.get("supported"), False)),
            filter_max_results=max(1, number(filt.get("maxResults"), 100)),
        )


@dataclass(frozen=True)
class BulkResult:
    """One operation's outcome inside a BulkResponse."""

    status: int | None
    location: str | None
    error: SCIMError | None


class SCIMClient:
    """Talks to one SCIM service provider. Safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        auth: Auth,
        *,
        timeout: float = 30.0,
        max_retries: int = 8,
        retry_max_seconds: float = 300.0,
        backoff_base_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        requests_per_second: float | None = None,
        user_agent: str = "hrsync target-scim",
        pool_size: int = 8,
        sleep: Callable[[float], None] | None = None,
        logger: logging.Logger = LOGGER,
    ) -> None:
        self.base_url = require_secure_url(base_url.rstrip("/"))
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max(1, max_retries)  # attempts per request, the first included
        self.retry_max_seconds = retry_max_seconds
        self.backoff_base = backoff_base_seconds
        self.backoff_max = backoff_max_seconds
        self.limiter = RateLimiter(requests_per_second) if requests_per_second else None
        self.user_agent = user_agent
        self.pool_size = pool_size
        self.logger = logger
        self._sleep = sleep
        self._local = threading.local()
        self._lock = threading.Lock()
        self.requests_sent: Counter[str] = Counter()

    # -- transport -------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = SecureSession(pool_maxsize=self.pool_size)
            self._local.session = session
        return session

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            threading.Event().wait(seconds)

    def _backoff(self, attempt: int, response: requests.Response | None) -> float:
        """The server's Retry-After wins; otherwise exponential backoff with full jitter."""
        asked = retry_after_seconds(response)
        if asked is not None:
            return asked
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """Send one request; retry 429/5xx and dropped connections within the retry budget;
        on a 401 let the authenticator refresh once; raise SCIMError otherwise.

        Returns (status, parsed JSON body or None, headers).
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        started = time.monotonic()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            headers = {
                "Accept": f"{scim.CONTENT_TYPE}, application/json",
                "User-Agent": self.user_agent,
                **self.auth.headers(),
            }
            if data is not None:
                headers["Content-Type"] = f"{scim.CONTENT_TYPE}; charset=utf-8"
            if self.limiter is not None:
                self.limiter.acquire()
            with self._lock:
                self.requests_sent[method] += 1
            response: requests.Response | None = None
            failure: str
            try:
                response = self._session().request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                parsed = _json_or_none(response)
                if status in (401, 403):
                    if status == 401 and not refreshed and self.auth.refresh():
                        refreshed = True
                        attempt -= 1  # a token refresh is not a retry
                        self.logger.info("401 from %s: fetched a new access token, retrying", url)
                        continue
                    err = SCIMError.from_body(method, url, status, parsed)
                    raise SCIMAuthError(method, url, status, err.scim_type, err.detail)
                if status not in RETRYABLE:
                    if status >= 400:
                        raise SCIMError.from_body(method, url, status, parsed)
                    return status, parsed, response.headers
                failure = str(SCIMError.from_body(method, url, status, parsed))
            wait = self._backoff(attempt - 1, response)
            elapsed = time.monotonic() - started
            if attempt >= self.max_retries or elapsed + wait > self.retry_max_seconds:
                status_seen = response.status_code if response is not None else None
                if response is not None:
                    err = SCIMError.from_body(
                        method, url, status_seen or 0, _json_or_none(response)
                    )
                    raise err
                raise SCIMError(
                    method,
                    url,
                    None,
                    None,
                    f"gave up after {attempt} attempts in {elapsed:.1f} s: {failure}",
                )
            self.logger.warning(
                "%s; retrying in %.1f s (attempt %d of %d)",
                failure,
                wait,
                attempt,
                self.max_retries,
            )
            self._wait(wait)

    # -- SCIM operations -------------------------------------------------------------------

    def features(self) -> ServerFeatures:
        _, doc, _ = self.request("GET", "/ServiceProviderConfig")
        return ServerFeatures.from_config(doc if isinstance(doc, Mapping) else {})

    def search(
        self, filter_: str | None, *, start_index: int = 1, count: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of /Users; returns (totalResults, resources)."""
        params: dict[str, Any] = {"startIndex": start_index}
        if filter_:
            params["filter"] = filter_
        if count is not None:
            params["count"] = count
        _, doc, _ = self.request("GET", "/Users", params=params)
        doc = doc if isinstance(doc, Mapping) else {}
        resources = doc.get("Resources") or doc.get("resources") or []
        resources = [r for r in resources if isinstance(r, Mapping)]
        total = scim.parse_status(doc.get("totalResults"))
        return (total if total is not None else len(resources)), resources

    def iter_users(self, page_size: int) -> Iterator[dict[str, Any]]:
        """Every user, page by page (1-based startIndex)."""
        start = 1
        while True:
            total, page = self.search(None, start_index=start, count=page_size)
            yield from page
            start += len(page)
            if not page or start > total:
                return

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        _, doc, headers = self.request("POST", "/Users", body=body)
        doc = dict(doc) if isinstance(doc, Mapping) else {}
        if "id" not in doc and headers.get("Location"):
            doc["id"] = headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        return doc

    def patch(self, user_id: str, body: Mapping[str, Any]) -> None:
        self.request("PATCH", f"/Users/{quote(user_id, safe='')}", body=body)

    def put(self, user_id: str, body: Mapping[str, Any]) -> None:
        self.request("PUT", f"/Users/{quote(user_id, safe='')}", body=body)

    def bulk(self, operations: list[dict[str, Any]]) -> list[BulkResult]:
        """POST /Bulk; results in request order (matched by bulkId when the server reorders)."""
        body = {"schemas": [scim.BULK_REQUEST], "Operations": operations}
        _, doc, _ = self.request("POST", "/Bulk", body=body)
        doc = doc if isinstance(doc, Mapping) else {}
        answered = [o for o in (doc.get("Operations") or []) if isinstance(o, Mapping)]
        by_bulk_id = {o.get("bulkId"): o for o in answered if o.get("bulkId")}
        results: list[BulkResult] = []
        for index, op in enumerate(operations):
            found = by_bulk_id.get(op.get("bulkId")) if op.get("bulkId") else None
            if found is None and index < len(answered):
                found = answered[index]
            if found is None:  # the server stopped early (failOnErrors) or lost it
                results.append(BulkResult(None, None, None))
                continue
            status = scim.parse_status(found.get("status"))
            error = None
            if status is None or status >= 400:
                url = f"{self.base_url}{op.get('path', '')}"
                error = SCIMError.from_body(op["method"], url, status or 0, found.get("response"))
            location = found.get("location")
            results.append(BulkResult(status, str(location) if location else None, error))
        return results


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
