"""Request signing: a static bearer token, or OAuth 2.0 client credentials with refresh."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hrsync.http import ClientCredentialsAuthenticator


class BearerAuth:
    """A static token: nothing to refresh, so a 401 is final."""

    def __init__(self, token: str) -> None:
        self._token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def refresh(self) -> bool:
        return False


class OAuthClientCredentials:
    """OAuth 2.0 client credentials (RFC 6749 §4.4) through the core's authenticator: the
    token is refreshed ahead of expiry, and after a 401 the client asks for exactly one
    fresh token before giving up."""

    def __init__(self, authenticator: ClientCredentialsAuthenticator) -> None:
        self._auth = authenticator

    def headers(self) -> dict[str, str]:
        if not self._auth.is_token_valid():
            self._auth.update_access_token()
        return {"Authorization": f"Bearer {self._auth.access_token}"}

    def refresh(self) -> bool:
        self._auth.invalidate()
        self._auth.update_access_token()
        return True


class NoAuth:
    def headers(self) -> dict[str, str]:
        return {}

    def refresh(self) -> bool:
        return False


def build_auth(config: Mapping[str, Any]) -> BearerAuth | OAuthClientCredentials | NoAuth:
    """Pick the scheme from the settings: OAuth when a client id is set, else bearer."""
    if config.get("oauth_client_id"):
        missing = [k for k in ("oauth_client_secret", "oauth_token_url") if not config.get(k)]
        if missing:
            raise ValueError(f"OAuth client credentials also need: {', '.join(missing)}")
        return OAuthClientCredentials(
            ClientCredentialsAuthenticator(
                token_url=config["oauth_token_url"],
                client_id=config["oauth_client_id"],
                client_secret=config["oauth_client_secret"],
                scopes=config.get("oauth_scope"),
                client_auth="body" if config.get("oauth_client_auth") == "body" else "basic",
            )
        )
    if config.get("bearer_token"):
        return BearerAuth(str(config["bearer_token"]))
    raise ValueError("set bearer_token, or oauth_client_id/oauth_client_secret/oauth_token_url")
