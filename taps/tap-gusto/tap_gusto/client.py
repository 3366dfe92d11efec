"""Gusto API plumbing: OAuth with a rotating refresh token, ``X-Gusto-API-Version``, page/per
paging with ``X-Total-Pages``, Gusto's error shape.

Everything generic comes from hrsync-core: the HTTP policy (``hrsync.http``: https only, retries
with Retry-After on 429 and 5xx, a refresh and one retry on 401, rate limit, error messages)
and schema drift (``hrsync.drift``). What stays here is what Gusto documents.

Gusto rotates refresh tokens: each one works once, and the answer carries the next. The newest
one, with the access token and its expiry, is kept in ``token_file`` (0600, written atomically,
under an advisory lock), in the same form target-payroll-api keeps it, so the two can share one
authorisation by sharing the file; an access token still valid there is used as it is.
"""

from __future__ import annotations

import json
import time
import typing as t
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.exceptions import FatalAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import PageNumberPaginator

from hrsync.drift import ReportsDrift
from hrsync.http import (
    ClientCredentialsAuthenticator,
    HRRESTStream,
    NoRepeatedPages,
    require_secure_url,
)
from hrsync.shapes import expect_rows, read_json
from hrsync.tokens import TokenFile

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
VENDOR = "Gusto"
DEFAULT_API_URL = "https://api.gusto.com"
DEFAULT_API_VERSION = "2025-06-15"
DEFAULT_TOKEN_FILE = ".hrsync/gusto-token.json"  # noqa: S105 - a path
MAX_PER = 100
#: an access token this close to its expiry is renewed first
EXPIRY_MARGIN = 60.0


class RefreshTokenAuthenticator(ClientCredentialsAuthenticator):
    """OAuth 2.0 refresh-token grant (``client_id``, ``client_secret``, ``refresh_token`` in
    the form body) with Gusto's rotation: the stored (newest) refresh token first, the
    configured one if that is refused (an operator who authorised the app again puts the new
    one in the config); the rotated token is saved before anything else happens."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None,
        token_file: str | Path,
    ) -> None:
        super().__init__(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            client_auth="body",
        )
        self.configured_refresh_token = refresh_token or ""
        self.store = TokenFile(token_file)
        self._refresh_token = ""
        self._rejected: set[str] = set()

    @property
    def oauth_request_body(self) -> dict:
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self._refresh_token,
        }

    def invalidate(self, token: str | None = None) -> None:
        with self._lock:
            if token:
                self._rejected.add(token)
            super().invalidate(token)

    def _adopt(self, access: str, expires_at: float) -> None:
        self.access_token = access
        self.expires_in = max(1, int(expires_at - time.time()))
        self.last_refreshed = datetime.now(UTC)

    def update_access_token(self) -> None:
        with self._lock:
            if self.is_token_valid():  # another thread refreshed it meanwhile
                return
            with self.store.locked():
                saved = self.store.load()
                access = str(saved.get("access_token") or "")
                expires_at = float(saved.get("expires_at") or 0)
                if (
                    access
                    and access not in self._rejected
                    and time.time() < expires_at - EXPIRY_MARGIN
                ):
                    self._adopt(access, expires_at)  # still valid: no refresh, no rotation
                    return
                self._refresh(saved)

    def _refresh(self, saved: dict[str, t.Any]) -> None:
        candidates = [c for c in (saved.get("refresh_token"), self.configured_refresh_token) if c]
        candidates = list(dict.fromkeys(str(c) for c in candidates))
        if not candidates:
            raise FatalAPIError(
                f"tap-gusto: no refresh_token configured or stored in {self.store.path}"
            )
        for n, refresh in enumerate(candidates, start=1):
            response = self._session.post(
                self.token_url, data={**self.oauth_request_body, "refresh_token": refresh},
                headers=self._oauth_headers, timeout=60,
            )  # fmt: skip
            if response.status_code == 200:
                break
            if response.status_code == 400 and n < len(candidates):
                continue  # the stored token was spent or revoked: try the configured one
            self.handle_error(content=response.text, status_code=response.status_code)
        body = response.json()
        access = str(body["access_token"])
        expires_at = time.time() + float(body.get("expires_in") or 7200)
        # save the rotated refresh token at once: the one just used no longer works
        self.store.save(
            {
                "refresh_token": body.get("refresh_token") or refresh,
                "access_token": access,
                "expires_at": expires_at,
            }
        )
        self._adopt(access, expires_at)
        self.refreshes += 1

    def handle_error(self, *, content: str, status_code: int | None) -> None:
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
        hint = (
            f" (a refresh token works once: the newest is kept in {self.store.path}; share that "
            "file with any other plugin using the same authorisation, or authorise the app again)"
            if status_code == 400
            else ""
        )
        raise FatalAPIError(
            f"Gusto OAuth refresh at {where.hostname}{where.path} failed with status "
            f"{status_code or 'unknown'}" + (f": {words}" if words else "") + hint
        )


def gusto_error_message(response: requests.Response) -> str:
    """The first of Gusto's ``{"errors": [{"error_key", "category", "message"}]}``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:300]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        key, category = first.get("error_key"), first.get("category")
        prefix = f"[{category}] {key}: " if category else ""
        return f"{prefix}{first.get('message') or ''}"[:300]
    return str(body)[:300]


class TotalPagesPaginator(NoRepeatedPages, PageNumberPaginator):
    """``page`` = 1, 2, ... while ``X-Page`` < ``X-Total-Pages`` (no headers: one page)."""

    vendor = VENDOR
    what_pages_by = "page number"

    def __init__(self) -> None:
        super().__init__(1)

    def has_more(self, response: requests.Response) -> bool:
        try:
            page = int(response.headers.get("X-Page") or self.current_value)
            total = int(response.headers.get("X-Total-Pages") or 0)
        except ValueError:
            return False
        return page < total


class GustoStream(ReportsDrift, HRRESTStream[t.Any]):
    """One Gusto list endpoint under ``{api_url}/v1``."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["uuid"]
    is_sorted = False
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    drift_vendor = VENDOR
    #: where the rows are: the body itself (an array), or this key of an object
    rows_key: t.ClassVar[str | None] = None

    @property
    def url_base(self) -> str:
        return require_secure_url(str(self.config.get("api_url") or DEFAULT_API_URL).rstrip("/"))

    @property
    def company_uuid(self) -> str:
        return str(self.config["company_uuid"])

    @property
    def authenticator(self) -> RefreshTokenAuthenticator:
        # one per tap: every stream shares the token (and its rotation)
        auth = getattr(self._tap, "_gusto_authenticator", None)
        if auth is None:
            base = str(self.config.get("api_url") or DEFAULT_API_URL).rstrip("/")
            auth = RefreshTokenAuthenticator(
                token_url=str(self.config.get("token_url") or f"{base}/oauth/token"),
                client_id=str(self.config["client_id"]),
                client_secret=str(self.config["client_secret"]),
                refresh_token=self.config.get("refresh_token"),
                token_file=str(self.config.get("token_file") or DEFAULT_TOKEN_FILE),
            )
            self._tap._gusto_authenticator = auth  # type: ignore[attr-defined]
        return t.cast(RefreshTokenAuthenticator, auth)

    @property
    def http_headers(self) -> dict[str, str]:
        headers = super().http_headers
        headers["X-Gusto-API-Version"] = str(self.config.get("api_version") or DEFAULT_API_VERSION)
        return headers

    def vendor_error_message(self, response: requests.Response) -> str:
        return gusto_error_message(response)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        body = read_json(response, VENDOR)
        if self.rows_key is not None and isinstance(body, dict):
            body = body.get(self.rows_key)
        yield from expect_rows(response, VENDOR, body, "the list")

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        return row
