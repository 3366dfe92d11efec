"""The few BambooHR API v1 calls target-bamboohr makes, with the core's retry policy."""

from __future__ import annotations

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


class BambooHRError(Exception):
    """BambooHR refused a request; ``reason`` is its ``X-BambooHR-Error-Message``."""

    def __init__(self, method: str, path: str, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(f"{method} {path} -> {status}: {reason}")


def base_url(config: t.Mapping[str, t.Any]) -> str:
    """``api_url`` if set (current ``/api/v1`` or legacy ``/api/gateway.php/{company}/v1``),
    else the tenant's current base."""
    url = config.get("api_url") or f"https://{config['company_domain']}.bamboohr.com/api/v1"
    return require_secure_url(str(url).rstrip("/"))


def error_reason(response: requests.Response) -> str:
    return (
        response.headers.get("X-BambooHR-Error-Message")
        or response.text[:300]
        or response.reason
        or "no reason given"
    )


class BambooHRClient:
    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.base = base_url(config)
        self.policy = RetryPolicy.from_config(config)
        rate = config.get("requests_per_second")
        self.limiter = RateLimiter(float(rate)) if rate else None
        self.session = SecureSession()
        self.session.auth = (str(config["api_key"]), "x")
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": config.get("user_agent") or "hrsync"}
        )

    def call(self, method: str, path: str, **kwargs: t.Any) -> requests.Response:
        response = send_with_retries(
            self.session,
            method,
            f"{self.base}{path}",
            policy=self.policy,
            describe=error_reason,
            limiter=self.limiter,
            timeout=60,
            **kwargs,
        )
        if response.status_code >= 400:
            raise BambooHRError(method, path, response.status_code, error_reason(response))
        return response

    def field_names(self) -> set[str]:
        """Aliases of every field the tenant has (custom fields included)."""
        return {f["alias"] for f in self.call("GET", "/meta/fields").json() if f.get("alias")}

    def report(self, fields: list[str]) -> list[dict[str, t.Any]]:
        """A custom report over every employee (inactive included): one request."""
        body = {"title": "hrsync target-bamboohr index", "fields": fields}
        response = self.call(
            "POST", "/reports/custom", params={"format": "JSON", "onlyCurrent": "true"}, json=body
        )
        return list(response.json().get("employees") or [])

    def create(self, fields: dict[str, t.Any]) -> str:
        response = self.call("POST", "/employees", json=fields)
        location = response.headers.get("Location", "")
        employee_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if not employee_id.isdigit():
            raise BambooHRError(
                "POST",
                "/employees",
                response.status_code,
                f"no employee id in the Location header ({location!r})",
            )
        return employee_id

    def update(self, employee_id: str, fields: dict[str, t.Any]) -> None:
        self.call("POST", f"/employees/{employee_id}", json=fields)
