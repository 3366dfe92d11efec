"""Keyed pseudonyms: HMAC-SHA256 with a secret key, stable across runs.

A plain hash of PII is no protection: there are only ~10^9 SSNs, and their md5 or sha256 is
reversed by brute force in minutes. A keyed HMAC cannot be recomputed without the key, yet the
same value under the same key always gives the same pseudonym, so it works as a join key.

The key comes from the environment (``MAP_HR_HMAC_KEY`` by default; a Meltano setting marked
``sensitive: true``) and is never logged. An optional *context* separates purposes: the same
value pseudonymised for two contexts gives two unlinkable pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from decimal import Decimal
from typing import Any, Final

DEFAULT_ENV: Final = "MAP_HR_HMAC_KEY"
MIN_KEY_BYTES: Final = 16
_BLOCK: Final = 64  # SHA-256 block size


class PseudonymKeyError(ValueError):
    """The HMAC key is missing or too short."""


class Pseudonymizer:
    """Keyed HMAC-SHA256 pseudonyms as lower-case hex (64 characters)."""

    __slots__ = ("_inner", "_key", "_outer")

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < MIN_KEY_BYTES:
            msg = (
                f"the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes "
                f"(got {len(raw)}); generate one with `python -c 'import secrets; "
                f"print(secrets.token_urlsafe(32))'`"
            )
            raise PseudonymKeyError(msg)
        self._key = raw
        # RFC 2104 with the key's inner and outer pads hashed once: per value only two
        # hash-object copies (the same result as hmac.new(key, value, sha256), ~2x faster)
        block = raw if len(raw) <= _BLOCK else hashlib.sha256(raw).digest()
        block = block.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    @classmethod
    def from_env(cls, var: str = DEFAULT_ENV) -> Pseudonymizer:
        """Build from an environment variable; a clear error if it is unset."""
        value = os.environ.get(var)
        if not value:
            msg = f"no pseudonymisation key: set the environment variable {var}"
            raise PseudonymKeyError(msg)
        return cls(value)

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymizer(key=<redacted>)"

    def context(self, context: str) -> Pseudonymizer:
        """A pseudonymizer whose outputs cannot be linked to this one's (derived key)."""
        if not context:
            return self
        derived = hmac.new(self._key, b"hrsync-context\x00" + context.encode("utf-8"), "sha256")
        return Pseudonymizer(derived.digest())

    def pseudonymise(self, value: Any) -> str:
        """HMAC-SHA256 of the value's canonical text (str as is, numbers via str())."""
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            data = value.encode("utf-8")
        elif isinstance(value, bool):
            data = b"true" if value else b"false"
        else:
            data = _number_text(value).encode("utf-8")
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    __call__ = pseudonymise


def _number_text(value: Any) -> str:
    """The same text for 85000, 85000.0 and Decimal("85000.00"): pseudonyms must not depend on
    how a reader parsed a number."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return str(int(value))
        return str(value.normalize())
    return str(value)
