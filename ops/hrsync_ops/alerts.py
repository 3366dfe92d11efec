"""Alerts to a person when a job needs one: repeated failures, or dead letters in a critical job.

``hrsync run`` calls :func:`evaluate` after each run and :func:`send` for what it returns.
Channels come from the ops file (``hrsync.yml``, ``alerts.channels``):

* ``webhook``: a JSON POST of a Slack-compatible payload (``text`` + ``blocks``, which Slack,
  Mattermost, Rocket.Chat and Teams' Slack-compatible connectors read) plus an ``hrsync``
  object with the same facts for machines. The URL comes from the env var ``url_env``.
* ``email``: SMTP (``smtplib``), ``security: starttls`` (default, port 587), ``ssl`` (465) or
  ``none`` (a relay on a loopback address only); the login from the env vars
  ``username_env``/``password_env``; TLS 1.2+, certificates and host names verified
  (``ca_file`` for a private CA): the core's connection policy (``hrsync.tls``). Webhooks go
  through ``hrsync.http.SecureSession`` (https only, no redirect to http or to another host).

No personal data ever goes into an alert: job name, owner, counts, error *classes* (short
tokens such as ``http_409_uniqueness``), stream names, dead-letter ids and run ids. Never a
record value, a name, a record key or an error text (a vendor's error may quote a value).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from hrsync.deadletter import DeadLetter
from hrsync.tls import smtp_connect
from hrsync_ops.ops import JobOps

LOGGER = logging.getLogger("hrsync_ops.alerts")

__all__ = [
    "Alert",
    "Delivery",
    "configured",
    "evaluate",
    "not_configured",
    "send",
    "webhook_payload",
]

#: host names reserved for examples (RFC 2606 / 6761): a channel naming one is a placeholder
_PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net", "example", "invalid", "test")


@dataclass(frozen=True)
class Alert:
    """One alert: a job, why, and data-free facts."""

    job: str
    kind: str  # "failures" | "dead_letters"
    title: str
    facts: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The title, then one ``fact: value`` line per fact that has a value."""
        out = [self.title]
        for key, value in self.facts.items():
            if value in (None, [], {}, ""):
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k} x{v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            out.append(f"{key.replace('_', ' ')}: {value}")
        return out


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    error: str | None = None
    skipped: bool = False  # the channel is not configured (see not_configured)


def _name(channel: Mapping[str, Any], n: int) -> str:
    return str(channel.get("name") or f"{channel.get('type')}#{n + 1}")


def not_configured(channel: Mapping[str, Any]) -> str | None:
    """Why a channel is still a placeholder (an environment variable it names is not set, or
    its host is an example domain such as ``smtp.example.com``), else None."""
    for key in ("url_env", "username_env", "password_env"):
        if (name := channel.get(key)) and not os.environ.get(str(name)):
            return f"{name} is not set"
    host = str(channel.get("host") or "").lower().rstrip(".")
    if host and any(host == d or host.endswith(f".{d}") for d in _PLACEHOLDER_HOSTS):
        return f"host {host} is a placeholder"
    return None


def configured(
    channels: Iterable[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """(the channels ready to use, ``name (reason)`` for each placeholder): ``hrsync run``
    warns once about the placeholders and sends to the others."""
    ready: list[Mapping[str, Any]] = []
    skipped: list[str] = []
    for n, channel in enumerate(channels):
        if (reason := not_configured(channel)) is None:
            ready.append(channel)
        else:
            skipped.append(f"{_name(channel, n)} ({reason})")
    return ready, skipped


def evaluate(
    ops: JobOps,
    *,
    run_id: int,
    outcome: str,
    exit_code: int | None,
    consecutive_failures: int,
    new_letters: Iterable[DeadLetter] = (),
    waiting_letters: int = 0,
) -> list[Alert]:
    """What this run calls for.

    * ``alert_after_failures`` consecutive failures (and every further multiple of it, so a
      job failing all night alerts at 3, 6, 9 ... rather than on every run);
    * a critical job whose run added or re-failed dead letters.
    """
    alerts: list[Alert] = []
    n = max(1, ops.alert_after_failures)
    if outcome == "failed" and consecutive_failures >= n and consecutive_failures % n == 0:
        alerts.append(
            Alert(
                ops.name,
                "failures",
                f"hrsync: job {ops.name} failed {consecutive_failures} times in a row",
                {
                    "job": ops.name,
                    "owner": ops.owner,
                    "run_id": run_id,
                    "exit_code": exit_code,
                    "consecutive_failures": consecutive_failures,
                    "dead_letters_waiting": waiting_letters,
                },
            )
        )
    letters = list(new_letters)
    if ops.critical and letters:
        alerts.append(
            Alert(
                ops.name,
                "dead_letters",
                f"hrsync: critical job {ops.name} has {len(letters)} new dead letter(s)",
                {
                    "job": ops.name,
                    "owner": ops.owner,
                    "run_id": run_id,
                    "outcome": outcome,
                    "new_dead_letters": len(letters),
                    "dead_letters_waiting": waiting_letters,
                    "streams": dict(Counter(f"{x.plugin}/{x.stream}" for x in letters)),
                    "error_classes": dict(Counter(x.error_class for x in letters)),
                    "dead_letter_ids": [x.id for x in letters][:50],
                },
            )
        )
    return alerts


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """Slack-compatible: ``text`` (fallback / notifications) and ``blocks``; plus ``hrsync``."""
    body = "\n".join(f"• {line}" for line in alert.lines()[1:])
    hint = (
        f"`hrsync dlq list --integration {alert.job}`"
        if alert.kind == "dead_letters"
        else f"`hrsync status` and the logs of job {alert.job}"
    )
    return {
        "text": alert.title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body or alert.title}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Next: {hint}"}]},
        ],
        "hrsync": {"job": alert.job, "kind": alert.kind, **alert.facts},
    }


def _secret(channel: Mapping[str, Any], key: str) -> str | None:
    name = channel.get(key)
    if not name:
        return None
    value = os.environ.get(str(name))
    if not value:
        raise RuntimeError(f"environment variable {name} (alerts channel {key}) is not set")
    return value


def _send_webhook(channel: Mapping[str, Any], alert: Alert) -> None:
    # imported here: hrsync.http pulls in singer-sdk, which every `hrsync run` would pay for
    from hrsync.http import require_secure_url, secure_request

    url = _secret(channel, "url_env")
    assert url is not None  # required by the schema
    require_secure_url(url)
    response = secure_request(
        "POST",
        url,
        data=json.dumps(webhook_payload(alert)),
        headers={"Content-Type": "application/json"},
        timeout=float(channel.get("timeout") or 10),
    )
    if response.status_code >= 300:
        raise RuntimeError(f"webhook answered {response.status_code}")


def _send_email(channel: Mapping[str, Any], alert: Alert) -> None:
    message = EmailMessage()
    message["Subject"] = alert.title
    message["From"] = str(channel["from"])
    message["To"] = ", ".join(channel["to"])
    message.set_content("\n".join([*alert.lines(), "", "-- hrsync (no personal data is sent)"]))
    security = channel.get("security", "starttls")
    port = int(channel.get("port") or (465 if security == "ssl" else 587))
    timeout = float(channel.get("timeout") or 30)
    smtp = smtp_connect(
        str(channel["host"]),
        port,
        security=security,
        timeout=timeout,
        ca_file=channel.get("ca_file"),
    )
    with smtp:
        user, password = _secret(channel, "username_env"), _secret(channel, "password_env")
        if user:
            smtp.login(user, password or "")
        smtp.send_message(message)


def send(alert: Alert, channels: Iterable[Mapping[str, Any]]) -> list[Delivery]:
    """Send to every channel; a failing channel is logged and reported, never raised (the
    other channels still get the alert, and the run's own outcome is not changed). A channel
    that is not configured (:func:`not_configured`) is reported as skipped, not tried."""
    results = []
    for n, channel in enumerate(channels):
        name = _name(channel, n)
        if (reason := not_configured(channel)) is not None:
            results.append(Delivery(name, False, f"not configured: {reason}", skipped=True))
            continue
        try:
            if channel.get("type") == "webhook":
                _send_webhook(channel, alert)
            elif channel.get("type") == "email":
                _send_email(channel, alert)
            else:
                raise RuntimeError(f"unknown channel type {channel.get('type')!r}")
        except Exception as exc:  # any channel failure is reported, never fatal
            LOGGER.error("alert to %s failed: %s: %s", name, type(exc).__name__, exc)
            results.append(Delivery(name, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.append(Delivery(name, True))
    return results
