"""New-hire records -> BambooHR employees, idempotent on the ATS candidate id.

The flow (create once, write only what differs, dead letters, run-level stops, dry run, audit)
is the core's ``hrsync.newhire.NewHireSink``; this is BambooHR's part: its field list, numbers
as plain strings, the names it requires, currency amounts compared by value.
"""

from __future__ import annotations

import typing as t
from decimal import Decimal, InvalidOperation

from hrsync.errors import RecordError
from hrsync.newhire import HRISUnavailable, Undelivered, iso_date
from hrsync.newhire import NewHireSink as HRISNewHireSink
from target_bamboohr.client import BambooHRError

if t.TYPE_CHECKING:
    from target_bamboohr.target import TargetBambooHR

__all__ = ["BambooHRUnavailable", "NewHireSink", "Undelivered", "same_value", "wire_value"]

BambooHRUnavailable = HRISUnavailable  # BambooHR kept failing for several records in a row


def wire_value(value: t.Any) -> t.Any:
    """How BambooHR wants a value: dates as YYYY-MM-DD, numbers as plain strings."""
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return str(value)
    return iso_date(value)


class NewHireSink(HRISNewHireSink):
    """One employee per ATS candidate: create once, then update only fields that differ."""

    vendor = "BambooHR"
    plugin = "target-bamboohr"
    destination = "bamboohr"
    default_key_field = "customATSCandidateID"
    vendor_error = BambooHRError

    def vendor_fields(self, target: TargetBambooHR) -> set[str]:
        return target.bamboohr_fields()

    def wire_value(self, value: t.Any) -> t.Any:
        return wire_value(value)

    def check_create(self, key: str, desired: dict[str, t.Any]) -> None:
        for required in ("firstName", "lastName"):
            if not desired.get(required):
                raise RecordError(
                    self.stream_name, key, required, "BambooHR requires it to create an employee"
                )

    def same(self, existing: dict[str, t.Any], field: str, desired: t.Any) -> bool:
        return same_value(field, existing.get(field), desired)

    def create(self, fields: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"id": self.client.create(fields), **fields}

    def update(self, existing: dict[str, t.Any], fields: dict[str, t.Any]) -> None:
        self.client.update(str(existing["id"]), fields)
        existing.update(fields)


def _money(text: str) -> tuple[Decimal, str] | None:
    amount, _, currency = text.strip().partition(" ")
    try:
        return Decimal(amount.replace(",", "")), currency.strip().upper()
    except InvalidOperation:
        return None


def same_value(field: str, current: t.Any, desired: t.Any) -> bool:
    """Whether BambooHR already holds ``desired``: exact, except currency amounts, which
    BambooHR may write back differently ("85000 USD" is stored as "85000.00 USD")."""
    have, want = str(current or ""), str(desired)
    if have == want:
        return True
    if field in ("payRate", "bonusAmount", "commissionAmount"):
        a, b = _money(have), _money(want)
        return a is not None and a == b
    return False
