"""Moodle web services over the REST protocol: one POST per function call.

Everything (token included) goes in the form body, never the URL, so the token stays out of
proxy and server access logs. Arguments are encoded as PHP arrays (``users[0][username]=...``).
Moodle answers errors with HTTP 200 and ``{"exception", "errorcode", "message"}``: every answer
is checked for ``exception``. 429, 5xx, dropped connections and truncated bodies are retried
with the core's policy (``Retry-After`` honoured); every function this target calls is safe to
repeat (creates are looked up again before they are repeated, see the sink).
"""

from __future__ import annotations

import time
import typing as t
from collections.abc import Iterator, Mapping

import requests

from hrsync.http import (
    RateLimiter,
    RetryBudgetExhausted,
    RetryPolicy,
    SecureSession,
    require_secure_url,
    send_with_retries,
)

ENDPOINT = "/webservice/rest/server.php"
#: errors about the token or the service, not about a record: every call would fail the same
RUN_LEVEL_ERRORCODES = frozenset(
    {
        "invalidtoken",
        "accessexception",
        "servicerequireslogin",
        "usernotfullysetup",
        "sitemaintenance",
        "invalidrecord",
        "nopermissions",
        "enablewsdescription",
    }
)


class MoodleError(Exception):
    """Moodle answered a call with an exception (HTTP 200, as Moodle does)."""

    def __init__(
        self, function: str, exception: str, errorcode: str, message: str, debuginfo: str | None
    ) -> None:
        self.function, self.exception, self.errorcode = function, exception, errorcode
        self.message, self.debuginfo = message, debuginfo
        detail = f" ({debuginfo})" if debuginfo else ""
        super().__init__(f"{function}: {exception}/{errorcode}: {message}{detail}")

    @property
    def run_level(self) -> bool:
        return self.errorcode in RUN_LEVEL_ERRORCODES

    @property
    def reason(self) -> str:
        """What Moodle said, most specific part first (debuginfo when the site shows it)."""
        return self.debuginfo or self.message


class MoodleHTTPError(RuntimeError):
    """A non-retriable HTTP status (wrong URL, a proxy refusing us): a run-level problem."""


def php_form(args: Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """``{"users": [{"username": "a"}]}`` -> ``[("users[0][username]", "a")]``; None is left out,
    booleans become 1/0."""

    def walk(prefix: str, value: t.Any) -> Iterator[tuple[str, str]]:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from walk(f"{prefix}[{k}]", v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                yield from walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            yield prefix, "1" if value else "0"
        else:
            yield prefix, str(value)

    pairs: list[tuple[str, str]] = []
    for name, value in args.items():
        pairs.extend(walk(name, value))
    return pairs


class MoodleClient:
    def __init__(self, config: Mapping[str, t.Any]) -> None:
        base = str(config.get("base_url") or "").rstrip("/")
        if not base:
            raise ValueError("target-moodle needs base_url (the site, e.g. https://lms.acme.com)")
        self.url = require_secure_url(base + ENDPOINT)
        self.token = str(config["token"])
        self.policy = RetryPolicy.from_config(config)
        rate = config.get("requests_per_second")
        self.limiter = RateLimiter(float(rate)) if rate else None
        self.timeout = float(config.get("request_timeout") or 60)
        self.session = SecureSession()
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": config.get("user_agent") or "hrsync"}
        )
        self.calls = 0

    def call(self, function: str, **args: t.Any) -> t.Any:
        """Call one web-service function; returns its decoded result (None for a ``null``)."""
        data = [
            ("wstoken", self.token),
            ("wsfunction", function),
            ("moodlewsrestformat", "json"),
            *php_form(args),
        ]
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            response = send_with_retries(
                self.session,
                "POST",
                self.url,
                policy=self.policy,
                limiter=self.limiter,
                data=data,
                timeout=self.timeout,
            )
            if response.status_code >= 400:
                raise MoodleHTTPError(
                    f"{function}: HTTP {response.status_code} {response.reason} from "
                    f"{ENDPOINT}: check base_url (the Moodle site root) and that web services "
                    "are enabled (Site administration > Advanced features)"
                )
            try:
                body = response.json()
            except (ValueError, requests.exceptions.JSONDecodeError):
                # a truncated or garbled answer: the call is safe to repeat
                elapsed = time.monotonic() - started
                if attempt >= self.policy.max_retries or elapsed > self.policy.retry_max_seconds:
                    raise RetryBudgetExhausted(
                        f"{function}: no valid JSON after {attempt} attempts in {elapsed:.1f} s "
                        f"(last answer began {response.text[:60]!r})"
                    ) from None
                time.sleep(self.policy.wait(attempt - 1, None))
                continue
            if isinstance(body, dict) and "exception" in body:
                raise MoodleError(
                    function,
                    str(body.get("exception")),
                    str(body.get("errorcode") or ""),
                    str(body.get("message") or ""),
                    body.get("debuginfo"),
                )
            return body

    # --- the calls the target makes ------------------------------------------------------

    def site_info(self) -> dict[str, t.Any]:
        return dict(self.call("core_webservice_get_site_info"))

    def courses(self, ids: list[int]) -> dict[int, dict[str, t.Any]]:
        result = self.call("core_course_get_courses", options={"ids": ids})
        return {int(c["id"]): c for c in result or []}

    def users_by(self, field: str, values: list[str]) -> list[dict[str, t.Any]]:
        if not values:
            return []
        return list(self.call("core_user_get_users_by_field", field=field, values=values) or [])

    def create_users(self, users: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        return list(self.call("core_user_create_users", users=users) or [])

    def update_users(self, users: list[dict[str, t.Any]]) -> None:
        result = self.call("core_user_update_users", users=users)
        # Moodle 4.x answers {"warnings": [...]} where 3.x answered null: a warning is a failure
        if isinstance(result, dict) and result.get("warnings"):
            warning = result["warnings"][0]
            raise MoodleError(
                "core_user_update_users",
                "warning",
                str(warning.get("warningcode") or "warning"),
                str(warning.get("message") or "update refused"),
                None,
            )

    def enrol(self, enrolments: list[dict[str, t.Any]]) -> None:
        self.call("enrol_manual_enrol_users", enrolments=enrolments)

    def unenrol(self, enrolments: list[dict[str, t.Any]]) -> None:
        self.call("enrol_manual_unenrol_users", enrolments=enrolments)

    def users_courses(self, userid: int) -> list[dict[str, t.Any]]:
        """The user's *active* enrolments (Moodle returns no suspended or expired ones)."""
        return list(
            self.call("core_enrol_get_users_courses", userid=userid, returnusercount=False) or []
        )
