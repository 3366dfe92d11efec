"""The vendors' signatures: what verifies, what does not, and that nothing raises."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from hrsync_ops.webhooks.signatures import (
    bamboohr_signature,
    greenhouse_signature,
    parse_timestamp,
    verify_bamboohr,
    verify_greenhouse,
)

SECRET = "a-webhook-secret"


def test_greenhouse_matches_the_documented_recipe() -> None:
    body = b'{"action":"hire_candidate","payload":{"application":{"id":1}}}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert greenhouse_signature(SECRET, body) == f"sha256 {digest}"
    assert verify_greenhouse(SECRET, body, f"sha256 {digest.upper()}")


def test_bamboohr_signs_body_then_timestamp() -> None:
    body, stamp = b'{"type":"employee.created"}', "1764380000"
    digest = hmac.new(SECRET.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    assert bamboohr_signature(SECRET, body, stamp) == digest
    assert not verify_bamboohr(SECRET, body, "1764380001", digest)


@given(st.binary(max_size=200), st.integers(0, 199), st.text(max_size=80))
def test_any_change_fails_and_nothing_raises(body: bytes, flip: int, header: str) -> None:
    sig = greenhouse_signature(SECRET, body)
    assert verify_greenhouse(SECRET, body, sig)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify_greenhouse(SECRET, changed, sig)
    assert not verify_greenhouse("", body, sig)  # no secret configured: nothing verifies
    verify_greenhouse(SECRET, body, header)  # arbitrary (non-ASCII) headers never raise
    verify_bamboohr(SECRET, body, header, header)
    parse_timestamp(header)


def test_timestamps_in_both_seen_forms() -> None:
    assert parse_timestamp("1764380000") is not None
    assert parse_timestamp("2026-01-31T18:42:00+0000") is not None
    assert parse_timestamp("2026-01-31T18:42:00Z") is not None
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp("9" * 40) is None
