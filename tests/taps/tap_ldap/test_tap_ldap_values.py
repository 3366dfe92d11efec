"""tap-ldap's value conversions (the real directories' own forms are checked in the OpenLDAP
and Samba AD tests; these are the forms those servers do not produce)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tap_ldap.client import parse_disabled_attribute
from tap_ldap.values import from_generalized_time, is_under, sid_text, to_generalized_time


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("20261206053815Z", "2026-12-06T05:38:15Z"),  # OpenLDAP
        ("20261206053815.0Z", "2026-12-06T05:38:15Z"),  # Active Directory
        ("20261206053815.25Z", "2026-12-06T05:38:15.250000Z"),
        ("202612060538Z", "2026-12-06T05:38:00Z"),  # minutes only
        ("20261206073815+0200", "2026-12-06T05:38:15Z"),
        ("20261206053815", "2026-12-06T05:38:15Z"),  # no zone: UTC
    ],
)
def test_generalized_time_as_iso_8601(value: str, iso: str) -> None:
    assert from_generalized_time(value) == iso


def test_a_stamp_that_is_not_generalized_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not an LDAP generalized time: '2026-12-06'"):
        from_generalized_time("2026-12-06")


def test_filter_bounds_are_whole_seconds_in_utc() -> None:
    when = datetime(2026, 12, 6, 5, 38, 15, 999_000, tzinfo=UTC)
    assert to_generalized_time(when) == "20261206053815Z"


def test_sids_and_their_malformed_forms() -> None:
    raw = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + (21).to_bytes(4, "little") + (500).to_bytes(4, "little")
    assert sid_text(raw) == "S-1-5-21-500"
    assert sid_text(raw[:-1]) == "AQIAAAAAAAUVAAAA9AEA"  # not a SID: kept, as base64


def test_dns_compare_as_directories_compare_them() -> None:
    assert is_under("uid=a,OU=Disabled,dc=Example,dc=com", "ou=disabled,DC=example,DC=com")
    assert not is_under("uid=a,ou=People,dc=example,dc=com", "ou=Disabled,dc=example,dc=com")
    assert not is_under("dc=com", "dc=example,dc=com")


def test_disabled_attribute_in_target_ldaps_forms() -> None:
    assert parse_disabled_attribute("employeeType: disabled") == ("employeeType", "disabled")
    assert parse_disabled_attribute({"employeeType": "disabled"}) == ("employeeType", "disabled")
    assert parse_disabled_attribute({"attribute": "a", "value": "b"}) == ("a", "b")
    assert parse_disabled_attribute(None) is None
    with pytest.raises(ValueError, match="expected 'attribute: value'"):
        parse_disabled_attribute("employeeType")


def test_a_bad_disabled_attribute_stops_the_tap_before_it_connects() -> None:
    from hrsync.errors import ConfigError
    from tap_ldap.tap import TapLDAP

    config = {"url": "ldaps://ldap.example.com", "base_dn": "dc=example,dc=com",
              "disabled_attribute": "locked"}  # fmt: skip
    with pytest.raises(ConfigError, match="disabled_attribute 'locked'"):
        TapLDAP(config=config, parse_env_config=False)
