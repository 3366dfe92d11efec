"""The vendors' webhook signatures (HMAC-SHA256), compared in constant time.

Greenhouse: header ``Signature: sha256 <hex>``, the HMAC-SHA256 of the *whole raw body* keyed
with the web hook's secret key (developers.greenhouse.io, web hooks "Authentication").

BambooHR: header ``X-BambooHR-Signature: <hex>``, the HMAC-SHA256 keyed with the webhook's
private key over the raw body followed by the ``X-BambooHR-Timestamp`` header value
(documentation.bamboohr.com/docs/webhooks: "calculated using the payload, the timestamp, and
your private key"; the order body + timestamp is what third-party integrations implement and is
not spelled out by BambooHR: see sandbox/docs/webhooks.md).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

__all__ = [
    "bamboohr_signature",
    "greenhouse_signature",
    "parse_timestamp",
    "verify_bamboohr",
    "verify_greenhouse",
]


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of hex digests (bytes: a non-ASCII header cannot raise)."""
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def greenhouse_signature(secret: str, body: bytes) -> str:
    """The ``Signature`` header value Greenhouse sends for ``body``."""
    return f"sha256 {_hex(secret, body)}"


def verify_greenhouse(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` (``sha256 <hex>``) signs ``body`` with ``secret``."""
    if not secret or not header:
        return False
    scheme, _, digest = header.strip().partition(" ")
    if scheme.lower() != "sha256":
        return False
    return _same(_hex(secret, body), digest)


def bamboohr_signature(secret: str, body: bytes, timestamp: str) -> str:
    """The ``X-BambooHR-Signature`` value for ``body`` sent at ``timestamp``."""
    return _hex(secret, body + timestamp.encode("utf-8"))


def verify_bamboohr(secret: str, body: bytes, timestamp: str | None, header: str | None) -> bool:
    if not secret or not header or not timestamp:
        return False
    return _same(bamboohr_signature(secret, body, timestamp), header)


def parse_timestamp(raw: str) -> datetime | None:
    """``X-BambooHR-Timestamp`` as an aware datetime: Unix seconds or ISO 8601 (both seen)."""
    text = raw.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
