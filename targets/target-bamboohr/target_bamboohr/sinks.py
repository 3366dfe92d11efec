"""New-hire records -> BambooHR employees, idempotent on the ATS candidate id.

A record that cannot be delivered (malformed, refused by BambooHR, or still failing after the
retries) becomes a dead letter with its specific error (``hrsync dlq list``) and the run goes
on; a delivered record resolves its waiting letter. Run-level problems (bad credentials, a
field BambooHR lacks, BambooHR unreachable for several records in a row) stop the run.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal, InvalidOperation

import jsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import RecordSink

from hrsync.audit import AuditLog
from hrsync.deadletter import TargetDeadLetters
from hrsync.errors import RecordError
from hrsync.http import RetryBudgetExhausted
from hrsync.validation import CompiledValidation
from target_bamboohr.client import BambooHRClient, BambooHRError

if t.TYPE_CHECKING:
    from target_bamboohr.target import TargetBambooHR

DESTINATION = "bamboohr"
#: this many records in a row out of retries: BambooHR is down, stop rather than queue them all
MAX_CONSECUTIVE_EXHAUSTED = 3


class BambooHRUnavailable(RuntimeError):
    """BambooHR kept failing for several records in a row: a run-level stop."""


class Undelivered(RecordError):
    """A record BambooHR did not take; ``error_class`` is a data-free token for alerts."""

    def __init__(
        self, stream: str, record_key: t.Any, field: str | None, reason: str, error_class: str
    ) -> None:
        super().__init__(stream, record_key, field, reason)
        self.error_class = error_class

    def __reduce__(self) -> tuple[t.Any, ...]:
        args = (self.stream, self.record_key, self.field, self.reason, self.error_class)
        return (type(self), args)


def wire_value(value: t.Any) -> t.Any:
    """How BambooHR wants a value: dates as YYYY-MM-DD, numbers as plain strings."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        return str(value)
    return value


class NewHireSink(CompiledValidation, RecordSink):
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
        self.letters: TargetDeadLetters = target.letters
        self.letters.stream(self.stream_name, self.schema, self.key_properties)
        self._arrived: dict[str, t.Any] = {}
        self._invalid: RecordError | None = None
        self._exhausted_in_a_row = 0

    def _validate_and_parse(self, record: dict) -> dict:
        """Keep the record as it arrived (what a dead letter stores) and turn a schema or date
        problem into this record's error instead of the run's."""
        self._arrived = dict(record)
        self._invalid = None
        key = record.get(self.key_property, "<missing>")
        try:
            return super()._validate_and_parse(record)
        except RecordError as exc:
            self._invalid = exc
        except InvalidRecord:
            field, reason = _schema_problem(self.schema, self._arrived)
            self._invalid = RecordError(self.stream_name, key, field, reason)
        return record

    def _singer_validate_message(self, record: dict) -> None:
        """A record without its key properties is this record's dead letter, not the run's
        end (singer-sdk raises MissingKeyPropertiesError and stops every later record)."""
        missing = [k for k in self.key_properties or () if k not in record]
        if missing and self._invalid is None:
            self._invalid = RecordError(
                self.stream_name,
                "<missing>",
                missing[0],
                "the record has no key property: it cannot be matched to an employee",
            )

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """singer-sdk's date parsing, but a bad date names the candidate (never nulls a date)."""
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError as exc:
            field = next((f for f in record if f"'{f}'" in str(exc)), None)
            key = record.get(self.key_property, "<missing>")
            raise RecordError(self.stream_name, key, field, f"not a valid date: {exc}") from exc

    def process_record(self, record: dict, context: dict) -> None:
        if self._invalid is not None:
            self._dead_letter(self._invalid, "invalid_record")
            return
        try:
            self._deliver(record)
        except Undelivered as exc:
            self._dead_letter(exc, exc.error_class)
            if exc.error_class != "RetryBudgetExhausted":
                return
            self._exhausted_in_a_row += 1
            if self._exhausted_in_a_row >= MAX_CONSECUTIVE_EXHAUSTED:
                raise BambooHRUnavailable(
                    f"{self._exhausted_in_a_row} records in a row failed after every retry "
                    f"(last: {exc.reason}); stopping: BambooHR looks unavailable. Those records "
                    "are dead letters; the rest is read again on the next run"
                ) from exc
        except RecordError as exc:
            self._dead_letter(exc, "invalid_record")
        else:
            self._exhausted_in_a_row = 0

    def _dead_letter(self, error: RecordError, error_class: str) -> None:
        if self.dry_run:  # the real run will keep it; a dry run writes nothing anywhere
            self.logger.error("%s (dry run: the real run keeps it as a dead letter)", error)
            self.counts["planned-dead-letter"] = self.counts.get("planned-dead-letter", 0) + 1
            return
        self.logger.error("%s (kept as a dead letter)", error)
        key = error.record_key  # keyless: TargetDeadLetters gives each its own letter
        self.counts["dead-lettered"] = self.counts.get("dead-lettered", 0) + 1
        self.letters.dead(
            stream=self.stream_name,
            record_key=key,
            record=self._arrived,
            error=str(error),
            error_class=error_class,
        )

    def _deliver(self, record: dict) -> None:
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
            if exc.status in (401, 403):  # the key, not the record: every record would fail
                raise
            self._outcome("failed", key, fields, detail=f"{exc.status}")
            field = _field_named_in(exc.reason, fields) or "-"
            raise Undelivered(
                self.stream_name,
                key,
                field,
                f"BambooHR refused it ({exc.status}): {exc.reason}",
                f"http_{exc.status}",
            ) from exc
        except RetryBudgetExhausted as exc:
            self._outcome("failed", key, fields, detail="retries exhausted")
            raise Undelivered(
                self.stream_name, key, None, f"not delivered: {exc}", "RetryBudgetExhausted"
            ) from exc
        self._outcome(outcome, key, fields)

    def _outcome(
        self, outcome: str, key: str, fields: t.Iterable[str], detail: str | None = None
    ) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in ("created", "updated", "unchanged"):
            self.letters.delivered(self.stream_name, [key])
        employee = (self.index.get(key) or {}).get("id")  # known once created or matched
        self.audit.record(
            stream=self.stream_name,
            record_key=key,
            fields=list(fields),
            destination=DESTINATION,
            outcome=outcome,
            detail=detail,
            candidate_id=None if key == "<missing>" else key,
            employee_id=employee,
        )

    def clean_up(self) -> None:
        self.letters.flush()
        if self.counts.get("dead-lettered"):
            self.logger.warning(
                "target-bamboohr %s: %d record(s) not delivered, kept as dead letters in %s "
                "(hrsync dlq list; hrsync dlq replay once the cause is fixed)",
                self.stream_name,
                self.counts["dead-lettered"],
                self.letters.store.path,
            )
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


def _schema_problem(schema: dict[str, t.Any], record: dict[str, t.Any]) -> tuple[str | None, str]:
    """(field, reason) of a record's first schema violation, without quoting its value."""
    for error in jsonschema.Draft7Validator(schema).iter_errors(record):
        field = ".".join(str(p) for p in error.absolute_path) or None
        return (
            field,
            f"does not match the stream's schema ({error.validator}: {error.validator_value})",
        )
    return None, "does not match the stream's schema"


def _field_named_in(reason: str, fields: t.Iterable[str]) -> str | None:
    return next((name for name in fields if name in reason), None)
