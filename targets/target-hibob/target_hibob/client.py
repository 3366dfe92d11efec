"""The few HiBob public API v1 calls target-hibob makes, with the core's retry policy."""

from __future__ import annotations

import typing as t

import requests

from hrsync.http import (
    RateLimiter,
    RetryPolicy,
    SecureSession,
    require_secure_url,
    send_with_retries,
)

DEFAULT_API_URL = "https://api.hibob.com/v1"


class HiBobError(Exception):
    """HiBob refused a request; ``reason`` is its ``error`` message."""

    def __init__(self, method: str, path: str, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(f"{method} {path} -> {status}: {reason}")


def error_reason(response: requests.Response) -> str:
    """HiBob's ``{"key": ..., "error": ...}``, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text[:300] or response.reason or "no reason given"


def nest(fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Field ids (``root.firstName``, ``work.custom.field_1``) as HiBob's nested body."""
    body: dict[str, t.Any] = {}
    for path, value in fields.items():
        parts = path.split(".")
        if parts[0] == "root":
            parts = parts[1:]
        node = body
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return body


def at(doc: t.Mapping[str, t.Any], path: str) -> t.Any:
    """The value at a field id of a (nested) HiBob document; None when absent."""
    parts = path.split(".")
    if parts[0] == "root":
        parts = parts[1:]
    node: t.Any = doc
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


class HiBobClient:
    def __init__(self, config: t.Mapping[str, t.Any]) -> None:
        self.base = require_secure_url(str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"))
        self.policy = RetryPolicy.from_config(config)
        rate = config.get("requests_per_second")
        self.limiter = RateLimiter(float(rate)) if rate else None
        self.session = SecureSession()
        self.session.auth = (str(config["service_user_id"]), str(config["token"]))
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
            raise HiBobError(method, path, response.status_code, error_reason(response))
        return response

    def fields(self) -> dict[str, str]:
        """Field id -> type of every employee field the service user may see."""
        rows = self.call("GET", "/company/people/fields").json()
        return {str(f["id"]): str(f.get("type") or "") for f in rows if f.get("id")}

    def search(self, fields: list[str]) -> list[dict[str, t.Any]]:
        """Every employee (leavers too) with ``fields``, machine values plus display names."""
        body = {"fields": fields, "showInactive": True, "humanReadable": "APPEND"}
        return list(self.call("POST", "/people/search", json=body).json().get("employees") or [])

    def create(self, fields: dict[str, t.Any]) -> str:
        response = self.call("POST", "/people", json=nest(fields))
        employee_id = str((response.json() or {}).get("id") or "")
        if not employee_id:
            raise HiBobError("POST", "/people", response.status_code, "no id in the response")
        return employee_id

    def update(self, employee_id: str, fields: dict[str, t.Any]) -> None:
        self.call("PUT", f"/people/{employee_id}", json=nest(fields))

    def add_work_entry(self, employee_id: str, effective: str, fields: dict[str, t.Any]) -> None:
        body = {"effectiveDate": effective, **{k.split(".", 1)[1]: v for k, v in fields.items()}}
        self.call("POST", f"/people/{employee_id}/work", json=body)
