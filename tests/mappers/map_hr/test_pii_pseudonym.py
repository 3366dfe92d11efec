"""PII catalogue and keyed pseudonyms."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hrsync import pii
from hrsync.pseudonym import Pseudonymizer, PseudonymKeyError


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ssn", pii.NATIONAL_ID),
        ("employee_sin", pii.NATIONAL_ID),
        ("nationalId", pii.NATIONAL_ID),
        ("tax_id", pii.NATIONAL_ID),
        ("dateOfBirth", pii.DATE_OF_BIRTH),
        ("dob", pii.DATE_OF_BIRTH),
        ("iban", pii.BANK_ACCOUNT),
        ("routing_number", pii.BANK_ACCOUNT),
        ("payRate", pii.SALARY),
        ("compensation.amount", pii.SALARY),
        ("homeAddress.line1", pii.HOME_ADDRESS),
        ("zipcode", pii.HOME_ADDRESS),
        ("medical_leave", pii.HEALTH),
        ("benefits_plan", pii.HEALTH),
        ("workEmail", pii.CONTACT),
        ("home_phone", pii.CONTACT),
        ("employee_id", pii.IDENTIFIER),
        ("business_unit", None),  # "sin" only as a whole token
        ("office_address", None),
        ("hireDate", None),
        ("jobTitle", None),
    ],
)
def test_classify_by_name(name: str, cls: str | None) -> None:
    assert pii.classify_name(name) == cls


def test_annotation_wins_over_name() -> None:
    assert pii.classify("notes", {"x-pii": "sensitive.health"}) == pii.HEALTH
    assert pii.classify("ssn_last_checked", {"x-pii": None}) is None
    with pytest.raises(ValueError, match="unknown PII class"):
        pii.classify("x", {"x-pii": "secret-ish"})


def test_classify_schema_walks_nested_properties() -> None:
    schema = {
        "properties": {
            "id": {"type": "string"},
            "address": {"type": "object", "properties": {"street": {}, "city": {}}},
            "emails": {"type": "array", "items": {"properties": {"value": {"x-pii": "contact"}}}},
        }
    }
    found = pii.classify_schema(schema)
    assert found["address"] == pii.HOME_ADDRESS
    assert found["address.street"] == pii.HOME_ADDRESS
    assert found["emails[].value"] == pii.CONTACT


def test_pseudonym_is_keyed_hmac_sha256_and_stable() -> None:
    key = "a-secret-key-of-some-length"
    p = Pseudonymizer(key)
    want = hmac.new(key.encode(), b"123-45-6789", hashlib.sha256).hexdigest()
    assert p("123-45-6789") == want == Pseudonymizer(key)("123-45-6789")
    # never a plain hash of the value
    assert want not in {
        hashlib.sha256(b"123-45-6789").hexdigest(),
        hashlib.md5(b"123-45-6789").hexdigest(),  # noqa: S324 - what we must not be
    }
    assert Pseudonymizer("another-secret-key-xyz")("123-45-6789") != want


def test_pseudonym_long_key_and_numbers() -> None:
    key = "k" * 100  # longer than a SHA-256 block: hashed first, as RFC 2104 says
    assert Pseudonymizer(key)("x") == hmac.new(key.encode(), b"x", hashlib.sha256).hexdigest()
    from decimal import Decimal

    p = Pseudonymizer(key)
    assert p(85000) == p(85000.0) == p(Decimal("85000.00"))


def test_pseudonym_contexts_are_unlinkable() -> None:
    p = Pseudonymizer("a-secret-key-of-some-length")
    assert p.context("lms")("E1") != p.context("payroll")("E1")
    assert p.context("lms")("E1") == p.context("lms")("E1")


def test_short_or_missing_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PseudonymKeyError, match="at least 16 bytes"):
        Pseudonymizer("short")
    monkeypatch.delenv("MAP_HR_HMAC_KEY", raising=False)
    with pytest.raises(PseudonymKeyError, match="MAP_HR_HMAC_KEY"):
        Pseudonymizer.from_env()
    assert "secret" not in repr(Pseudonymizer("a-secret-key-of-some-length"))
