"""New-hire records -> HiBob employees, idempotent on the ATS candidate id.

Record properties are HiBob field ids (``root.firstName``, ``work.startDate``...); the ATS
candidate id goes to a custom field of the tenant's (``candidate_id_field``). An employee is
created once (``POST /people``: HiBob requires ``root.firstName``, ``root.surname``,
``root.email``, ``work.site`` and ``work.startDate``), then only fields that differ are written:
the work table's historical fields (title, department, division, site) as a new work entry
effective on the start date (or today, once started), the others with ``PUT /people/{id}``.

The flow (dead letters naming field and reason, run-level stops, dry run, audit) is the core's
``hrsync.newhire.NewHireSink``; this is HiBob's part.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from hrsync.newhire import HRISUnavailable, Undelivered, iso_date
from hrsync.newhire import NewHireSink as HRISNewHireSink
from target_hibob.client import HiBobError, at

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from target_hibob.target import TargetHiBob

__all__ = ["HiBobUnavailable", "NewHireSink", "Undelivered", "wire_value"]

REQUIRED_TO_CREATE = ("root.firstName", "root.surname", "root.email", "work.site", "work.startDate")
#: the work table's historical columns: changed through a new entry, not PUT
WORK_ENTRY_FIELDS = frozenset({"work.title", "work.department", "work.division", "work.site"})

HiBobUnavailable = HRISUnavailable  # HiBob kept failing for several records in a row
wire_value = iso_date  # dates as YYYY-MM-DD; everything else as it came


class NewHireSink(HRISNewHireSink):
    """One employee per ATS candidate: create once, then write only fields that differ."""

    vendor = "HiBob"
    plugin = "target-hibob"
    destination = "hibob"
    vendor_error = HiBobError
    unknown_fields_hint = "(or the service user may not see them): map or drop them in the profile"

    def vendor_fields(self, target: TargetHiBob) -> dict[str, str]:
        self.field_types = target.hibob_fields()  # field id -> HiBob's type ("list"...)
        return self.field_types

    def check_create(self, key: str, desired: dict[str, t.Any]) -> None:
        for required in REQUIRED_TO_CREATE:
            if not desired.get(required):
                raise Undelivered(
                    self.stream_name,
                    key,
                    required,
                    "HiBob requires it to create an employee (held back until it is set)",
                    "missing_required_field",
                )

    def same(self, existing: dict[str, t.Any], field: str, desired: t.Any) -> bool:
        """List fields hold item ids: compare their display names (``humanReadable``)."""
        listed = self.field_types.get(field) == "list"
        source = (existing.get("humanReadable") or {}) if listed else existing
        return str(at(source, field) or "") == str(desired)

    def create(self, fields: dict[str, t.Any]) -> dict[str, t.Any]:
        return _as_document(self.client.create(fields), fields, self.field_types)

    def update(self, existing: dict[str, t.Any], fields: dict[str, t.Any]) -> None:
        employee_id = str(existing["id"])
        plain = {k: v for k, v in fields.items() if k not in WORK_ENTRY_FIELDS}
        work = {k: v for k, v in fields.items() if k in WORK_ENTRY_FIELDS}
        if plain:
            self.client.update(employee_id, plain)
        if work:
            start = str(fields.get("work.startDate") or at(existing, "work.startDate") or "")
            today = dt.date.today().isoformat()
            self.client.add_work_entry(employee_id, max(start, today), work)
        for name, value in fields.items():  # the index now holds what HiBob holds
            _put(existing, name, value)
            if self.field_types.get(name) == "list":
                _put(existing.setdefault("humanReadable", {}), name, value)

    def field_named_in(self, reason: str, fields: Iterable[str]) -> str | None:
        """The field a refusal names: its id, else its last part as a word (``Email ...``)."""
        names = list(fields)
        exact = next((name for name in names if name in reason), None)
        if exact:
            return exact
        words = set(re.findall(r"[a-z0-9_]+", reason.lower()))
        return next((name for name in names if name.rsplit(".", 1)[-1].lower() in words), None)


def _put(doc: dict[str, t.Any], path: str, value: t.Any) -> None:
    parts = path.split(".")
    if parts[0] == "root":
        parts = parts[1:]
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _as_document(employee_id: str, fields: dict[str, t.Any], types: dict[str, str]) -> dict:
    """What the index holds for an employee this run wrote (display names for list fields)."""
    doc: dict[str, t.Any] = {"id": employee_id, "humanReadable": {}}
    for name, value in fields.items():
        _put(doc, name, value)
        if types.get(name) == "list":
            _put(doc["humanReadable"], name, value)
    return doc
