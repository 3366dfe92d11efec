"""The Gusto API calls target-payroll-api makes: OAuth refresh with a rotating refresh token,
``X-Gusto-API-Version``, page/per paging, the core's retry policy (429 Retry-After, 5xx)."""

from __future__ import annotations

import threading
import time
import typing as t
from urllib.parse import urlsplit

import requests

from hrsync.http import (
    RateLimiter,
    RetryPolicy,
    SecureSession,
    require_secure_url,
    send_with_retries,
)
from hrsync.tokens import TokenFile

DEFAULT_API_URL = "https://api.gusto.com"
DEFAULT_API_VERSION = "2025-06-15"
DEFAULT_TOKEN_STORE = ".hrsync/target-payroll-api-token.json"  # noqa: S105 - a path
PER_PAGE = 100


class GustoError(Exception):
    """Gusto refused a request: ``status``, and the first error's key, category and message."""

    def __init__(self, method: str, path: str, status: int, errors: list[dict[str, t.Any]]):
        self.status = status
        self.errors = errors
        first = errors[0] if errors else {}
        self.error_key = str(first.get("error_key") or "")
        self.category = str(first.get("category") or "")
        self.message = str(first.get("message") or "no message")
        super().__init__(
            f"{method} {path} -> {status}"
            + (f" [{self.category}] {self.error_key}: " if self.category else ": ")
            + self.message
        )


class TokenError(Exception):
    """The token endpoint refused to issue an access token."""


def gusto_errors(response: requests.Response) -> list[dict[str, t.Any]]:
    try:
        body = response.json()
    except ValueError:
        return [{"message": (response.text or response.reason or "")[:300]}]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    if isinstance(body, dict):
        words = body.get("error_description") or body.get("error") or body.get("message")
        return [{"message": str(words or body)[:300]}]
    return [{"message": str(body)[:300]}]


def describe(response: requests.Response) -> str:
    first = (gusto_errors(response) or [{}])[0]
    return str(first.get("message") or response.reason or "")


class GustoClient:
    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.base = require_secure_url(str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"))
        self.token_url = require_secure_url(
            str(config.get("token_url") or f"{self.base}/oauth/token")
        )
        self.company = str(config["company_uuid"])
        self.client_id = str(config["client_id"])
        self.client_secret = str(config["client_secret"])
        self.initial_refresh_token = str(config.get("refresh_token") or "")
        self.version = str(config.get("api_version") or DEFAULT_API_VERSION)
        self.store = TokenFile(config.get("token_file") or DEFAULT_TOKEN_STORE)
        self.policy = RetryPolicy.from_config(config)
        rate = config.get("requests_per_second")
        self.limiter = RateLimiter(float(rate)) if rate else None
        self.session = SecureSession()
        self.session.headers.update(
            {
                "Accept": "application/json",
                "X-Gusto-API-Version": self.version,
                "User-Agent": str(config.get("user_agent") or "hrsync"),
            }
        )
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0
        self.requests = 0

    # --- OAuth ----------------------------------------------------------------------------

    def _valid(self, token: str | None, expires_at: float) -> bool:
        return bool(token) and time.time() < expires_at - 60

    def access_token(self) -> str:
        with self._lock:
            if self._access and self._valid(self._access, self._expires_at):
                return self._access
            # the file's lock: another plugin sharing this authorisation (tap-gusto) may be
            # refreshing now, and a refresh token works once
            with self.store.locked():
                saved = self.store.load()
                if self._valid(saved.get("access_token"), float(saved.get("expires_at") or 0)):
                    self._access = str(saved["access_token"])
                    self._expires_at = float(saved["expires_at"])
                    return self._access
                return self._refresh(saved)

    def _refresh(self, saved: dict[str, t.Any]) -> str:
        # the stored (newest) refresh token first; the configured one if that fails (an
        # operator who authorised the app again puts the new token in the config)
        candidates = [c for c in (saved.get("refresh_token"), self.initial_refresh_token) if c]
        candidates = list(dict.fromkeys(str(c) for c in candidates))
        if not candidates:
            raise TokenError("target-payroll-api: no refresh_token configured or stored")
        for n, refresh in enumerate(candidates, start=1):
            response = send_with_retries(
                self.session,
                "POST",
                self.token_url,
                policy=self.policy,
                describe=describe,
                limiter=self.limiter,
                data={
                    "grant_type": "refresh_token",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "refresh_token": refresh,
                },
                timeout=60,
            )
            if response.status_code == 200:
                break
            if response.status_code == 400 and n < len(candidates):
                continue
            where = urlsplit(self.token_url)
            words = describe(response).replace(self.client_secret, "***")
            hint = (
                " (a refresh token works once: the newest one is kept in "
                f"{self.store.path}; if it was lost, authorise the app again)"
                if response.status_code == 400
                else ""
            )
            raise TokenError(
                f"OAuth refresh at {where.hostname}{where.path} failed with "
                f"{response.status_code}: {words}{hint}"
            )
        body = response.json()
        self._access = str(body["access_token"])
        self._expires_at = time.time() + float(body.get("expires_in") or 7200)
        self.refreshes += 1
        # save the rotated refresh token at once: the one just used no longer works
        self.store.save(
            {
                "refresh_token": body.get("refresh_token") or refresh,
                "access_token": self._access,
                "expires_at": self._expires_at,
            }
        )
        return self._access

    def _invalidate(self, token: str) -> None:
        with self._lock:
            if self._access == token:
                self._access = None
                self._expires_at = 0.0
                with self.store.locked():
                    saved = self.store.load()
                    if saved.get("access_token") == token:
                        saved.pop("access_token", None)
                        self.store.save(saved)

    # --- requests -------------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        """One API call; a 401 (expired or revoked token) refreshes once and retries."""
        for attempt in (1, 2):
            token = self.access_token()
            response = send_with_retries(
                self.session,
                method,
                f"{self.base}{path}",
                policy=self.policy,
                describe=describe,
                limiter=self.limiter,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
                **kwargs,
            )
            self.requests += 1
            if response.status_code == 401 and attempt == 1:
                self._invalidate(token)
                continue
            if response.status_code >= 400:
                raise GustoError(method, path, response.status_code, gusto_errors(response))
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **params: t.Any) -> t.Any:
        response = self.call("GET", path, params=params or None)
        return response.json() if response.content else None

    def send(self, method: str, path: str, body: dict[str, t.Any]) -> t.Any:
        response = self.call(method, path, json=body)
        return response.json() if response.content else None

    def pages(self, path: str, **params: t.Any) -> t.Iterator[dict[str, t.Any]]:
        """Every item of a page/per listing, following ``X-Total-Pages``."""
        page = 1
        while True:
            response = self.call("GET", path, params={**params, "page": page, "per": PER_PAGE})
            yield from response.json() or []
            total = int(response.headers.get("X-Total-Pages") or page)
            if page >= total:
                return
            page += 1

    # --- company ----------------------------------------------------------------------------

    def employees(self) -> t.Iterator[dict[str, t.Any]]:
        return self.pages(f"/v1/companies/{self.company}/employees", include="custom_fields")

    def custom_fields(self) -> list[dict[str, t.Any]]:
        body = self.get(f"/v1/companies/{self.company}/custom_fields") or {}
        return list(body.get("custom_fields") or [])

    def locations(self) -> list[dict[str, t.Any]]:
        return list(self.get(f"/v1/companies/{self.company}/locations") or [])

    def company_benefits(self) -> list[dict[str, t.Any]]:
        return list(self.get(f"/v1/companies/{self.company}/company_benefits") or [])
