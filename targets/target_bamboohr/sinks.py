"""New-hire records -> BambooHR employees, idempotent on the ATS candidate id."""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal, InvalidOperation

from singer_sdk.sinks import RecordSink

from hrsync.audit import AuditLog
from hrsync.errors import RecordError
from target_bamboohr.client import BambooHRClient, BambooHRError

if t.TYPE_CHECKING:
    from target_bamboohr.target import TargetBambooHR

DESTINATION = "bamboohr"


def wire_value(value: t.Any) -> t.Any:
    """How BambooHR wants a value: dates as YYYY-MM-DD, numbers as plain strings."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return str(value)
    return value


class NewHireSink(RecordSink):
    """One employee per ATS candidate: create once, then update only fields that differ."""

    def __init__(self, target: TargetBambooHR, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self.client: BambooHRClient = target.client
        self.audit: AuditLog = target.audit
        self.dry_run = bool(self.config.get("dry_run"))
        self.key_property = str(self.config.get("candidate_id_property") or "ats_candidate_id")
        self.key_field = str(self.config.get("candidate_id_field") or "customATSCandidateID")
        known = target.bamboohr_fields()
        if self.key_field not in known:
            raise RecordError(
                self.stream_name,
                "-",
                self.key_field,
                f"BambooHR has no field {self.key_field!r} to hold the ATS "
                "candidate id: create that custom field or set candidate_id_field",
            )
        properties = [p for p in self.schema.get("properties", {}) if p != self.key_property]
        unknown = sorted(p for p in properties if p not in known)
        if unknown:
            raise RecordError(
                self.stream_name,
                "-",
                ", ".join(unknown),
                "BambooHR has no such field(s): map or drop them in the profile",
            )
        self.fields = properties
        self.index = target.candidate_index(self.key_field, properties)
        self.counts: dict[str, int] = {}

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """singer-sdk's date parsing, but a bad date names the candidate (never nulls a date)."""
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError as exc:
            field = next((f for f in record if f"'{f}'" in str(exc)), None)
            key = record.get(self.key_property, "<missing>")
            raise RecordError(self.stream_name, key, field, f"not a valid date: {exc}") from exc

    def process_record(self, record: dict, context: dict) -> None:
        key = record.get(self.key_property)
        if key in (None, ""):
            raise RecordError(
                self.stream_name,
                "<missing>",
                self.key_property,
                "the ATS candidate id is required to keep the HRIS free of duplicates",
            )
        key = str(key)
        desired = {
            name: wire_value(record[name])
            for name in self.fields
            if record.get(name) not in (None, "")
        }
        for required in ("firstName", "lastName"):
            if key not in self.index and not desired.get(required):
                raise RecordError(
                    self.stream_name, key, required, "BambooHR requires it to create an employee"
                )
        existing = self.index.get(key)
        if existing is None:
            self._write("created", key, {**desired, self.key_field: key}, None)
            return
        changes = {k: v for k, v in desired.items() if not same_value(k, existing.get(k), v)}
        if changes:
            self._write("updated", key, changes, existing)
        else:
            self._outcome("unchanged", key, [])

    def _write(
        self, outcome: str, key: str, fields: dict[str, t.Any], existing: dict[str, t.Any] | None
    ) -> None:
        if self.dry_run:
            verb = "create" if existing is None else f"update employee {existing['id']}:"
            self.logger.info(
                "dry run: would %s candidate %s (%s)", verb, key, ", ".join(sorted(fields))
            )
            self._outcome(f"planned-{outcome}", key, fields)
            return
        try:
            if existing is None:
                employee_id = self.client.create(fields)
                self.index[key] = {"id": employee_id, **fields}
            else:
                self.client.update(str(existing["id"]), fields)
                existing.update(fields)
        except BambooHRError as exc:
            self._outcome("failed", key, fields, detail=f"{exc.status}")
            field = _field_named_in(exc.reason, fields) or "-"
            raise RecordError(
                self.stream_name, key, field, f"BambooHR refused it ({exc.status}): {exc.reason}"
            ) from exc
        self._outcome(outcome, key, fields)

    def _outcome(
        self, outcome: str, key: str, fields: t.Iterable[str], detail: str | None = None
    ) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.audit.record(
            stream=self.stream_name,
            record_key=key,
            fields=list(fields),
            destination=DESTINATION,
            outcome=outcome,
            detail=detail,
        )

    def clean_up(self) -> None:
        summary = ", ".join(f"{n} {o}" for o, n in sorted(self.counts.items())) or "no records"
        self.logger.info("target-bamboohr %s: %s", self.stream_name, summary)
        super().clean_up()


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


def _field_named_in(reason: str, fields: t.Iterable[str]) -> str | None:
    return next((name for name in fields if name in reason), None)
