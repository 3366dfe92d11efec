"""LDAP values as JSON: generalized time as ISO 8601, AD's binary identifiers as their usual
strings, DNs compared the way directories compare them."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

__all__ = [
    "dn_key",
    "from_generalized_time",
    "guid_text",
    "is_under",
    "sid_text",
    "text_value",
    "to_generalized_time",
]

_GENERALIZED = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d+))?(Z|[+-]\d{2}(?:\d{2})?)?$"
)


def from_generalized_time(value: str) -> str:
    """RFC 4517 GeneralizedTime (``20261206053815Z``, AD's ``20261206053815.0Z``) as ISO 8601
    UTC (``2026-12-06T05:38:15Z``); ValueError for anything else."""
    match = _GENERALIZED.match(value.strip())
    if not match:
        raise ValueError(f"not an LDAP generalized time: {value!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    when = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0))
    if fraction:
        when += timedelta(seconds=float(f"0.{fraction}"))  # of the last unit given
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5] or 0))
        when = when.replace(tzinfo=timezone(sign * offset))
    else:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    spec = "microseconds" if when.microsecond else "seconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def to_generalized_time(when: datetime) -> str:
    """A filter value for ``modifyTimestamp>=...``: whole seconds, UTC (what both OpenLDAP and
    Active Directory stamp)."""
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def guid_text(raw: bytes) -> str:
    """AD's objectGUID (16 bytes, the first three fields little-endian) as a GUID string."""
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else base64.b64encode(raw).decode()


def sid_text(raw: bytes) -> str:
    """A binary security identifier (MS-DTYP 2.4.2.2) as ``S-1-5-21-...``."""
    if len(raw) < 8 or len(raw) != 8 + 4 * raw[1]:
        return base64.b64encode(raw).decode()
    authority = int.from_bytes(raw[2:8], "big")
    subs = [int.from_bytes(raw[8 + 4 * i : 12 + 4 * i], "little") for i in range(raw[1])]
    return "-".join(["S", str(raw[0]), str(authority), *map(str, subs)])


def text_value(raw: bytes) -> str | None:
    """A text attribute's value; None when it is not UTF-8 (the caller reports it)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN normalised for comparison: attribute names lower-cased, values case-folded."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return (("", dn.strip().casefold()),)
    return tuple((name.lower(), value.casefold()) for name, value, _ in parts)


def is_under(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it."""
    entry, parent = dn_key(dn), dn_key(base)
    return len(entry) >= len(parent) and entry[len(entry) - len(parent) :] == parent
