"""The sink of an HRIS writer: new-hire records -> employees, idempotent on the ATS candidate id.

Shared by target-bamboohr and target-hibob (and the next HRIS writer): a vendor's sink says how
values go on the wire, what creating an employee requires, when a held value is the same as the
desired one, and how to create and update; everything else is here, once:

- an employee is created once per candidate (the candidate id is kept in a field of the HRIS),
  then only fields that differ are written; a re-run writes nothing;
- a record that cannot be delivered (malformed, missing what the HRIS requires, refused, or
  still failing after the retries) becomes a dead letter naming the field and the reason
  (``hrsync dlq list``) and the run goes on; a delivered record resolves its waiting letter;
- run-level problems stop the run: credentials refused, a field the HRIS lacks, the HRIS
  unreachable for several records in a row;
- a dry run plans and logs, and writes nothing anywhere (no letters either);
- one audit line per record outcome, with the candidate and employee ids.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import jsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import RecordSink

from hrsync.errors import RecordError, Undelivered
from hrsync.http import RetryBudgetExhausted
from hrsync.validation import CompiledValidation

__all__ = ["HRISUnavailable", "NewHireSink", "Undelivered", "iso_date", "schema_problem"]

if t.TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from hrsync.audit import AuditLog
    from hrsync.deadletter import TargetDeadLetters

#: this many records in a row out of retries: the HRIS is down, stop rather than queue them all
MAX_CONSECUTIVE_EXHAUSTED = 3


class HRISUnavailable(RuntimeError):
    """The HRIS kept failing for several records in a row: a run-level stop."""


class VendorError(t.Protocol):
    """What a writer's client raises for a refused request."""

    status: int
    reason: str


def iso_date(value: t.Any) -> t.Any:
    """Dates as YYYY-MM-DD (a datetime at midnight too); anything else as it came."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class NewHireSink(CompiledValidation, RecordSink):
    """One employee per ATS candidate: create once, then write only the fields that differ.

    The target gives ``client``, ``audit``, ``letters`` (TargetDeadLetters) and
    ``candidate_index(key_field, fields)`` (candidate id -> the employee as the HRIS holds it).
    """

    #: the vendor's name in messages ("BambooHR"), the plugin's, and the audit destination
    vendor: t.ClassVar[str]
    plugin: t.ClassVar[str]
    destination: t.ClassVar[str]
    #: the field holding the candidate id when ``candidate_id_field`` is not set
    default_key_field: t.ClassVar[str] = ""
    #: what the client raises for a refused request (``status``, ``reason``)
    vendor_error: t.ClassVar[type[Exception]]
    unknown_fields_hint: t.ClassVar[str] = "map or drop them in the profile"

    # --- the vendor's part ------------------------------------------------------------------

    def vendor_fields(self, target: t.Any) -> Collection[str]:
        """Every field the HRIS has (name -> its type or description)."""
        raise NotImplementedError

    def wire_value(self, value: t.Any) -> t.Any:
        return iso_date(value)

    def check_create(self, key: str, desired: dict[str, t.Any]) -> None:
        """Raise a RecordError when the HRIS would refuse to create this employee."""

    def same(self, existing: dict[str, t.Any], field: str, desired: t.Any) -> bool:
        """Whether the HRIS already holds ``desired`` in ``field``."""
        return str(existing.get(field) or "") == str(desired)

    def create(self, fields: dict[str, t.Any]) -> dict[str, t.Any]:
        """Create the employee; returns what the index holds for it (with its ``id``)."""
        raise NotImplementedError

    def update(self, existing: dict[str, t.Any], fields: dict[str, t.Any]) -> None:
        """Write ``fields`` to the employee, and make ``existing`` hold what the HRIS holds."""
        raise NotImplementedError

    def field_named_in(self, reason: str, fields: Iterable[str]) -> str | None:
        """The field a refusal names, if any."""
        return next((name for name in fields if name in reason), None)

    # --- set-up -----------------------------------------------------------------------------

    def __init__(self, target: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self.client = target.client
        self.audit: AuditLog = target.audit
        self.dry_run = bool(self.config.get("dry_run"))
        self.key_property = str(self.config.get("candidate_id_property") or "ats_candidate_id")
        self.key_field = str(self.config.get("candidate_id_field") or self.default_key_field)
        self.types = self.vendor_fields(target)
        if self.key_field not in self.types:
            raise RecordError(
                self.stream_name,
                "-",
                self.key_field,
                f"{self.vendor} has no field {self.key_field!r} to hold the ATS candidate id: "
                "create that custom field or set candidate_id_field",
            )
        properties = [p for p in self.schema.get("properties", {}) if p != self.key_property]
        unknown = sorted(p for p in properties if p not in self.types)
        if unknown:
            raise RecordError(
                self.stream_name,
                "-",
                ", ".join(unknown),
                f"{self.vendor} has no such field(s): {self.unknown_fields_hint}",
            )
        self.fields = properties
        self.index: dict[str, dict[str, t.Any]] = target.candidate_index(self.key_field, properties)
        self.counts: dict[str, int] = {}
        self.letters: TargetDeadLetters = target.letters
        self.letters.stream(self.stream_name, self.schema, self.key_properties)
        self._arrived: dict[str, t.Any] = {}
        self._invalid: RecordError | None = None
        self._exhausted_in_a_row = 0

    # --- singer-sdk hooks: a bad record is this record's dead letter, not the run's end --------

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
            field, reason = schema_problem(self.schema, self._arrived)
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

    # --- delivery ---------------------------------------------------------------------------

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
                raise HRISUnavailable(
                    f"{self._exhausted_in_a_row} records in a row failed after every retry "
                    f"(last: {exc.reason}); stopping: {self.vendor} looks unavailable. Those "
                    "records are dead letters; the rest is read again on the next run"
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
        self.counts["dead-lettered"] = self.counts.get("dead-lettered", 0) + 1
        self.letters.dead(
            stream=self.stream_name,
            record_key=error.record_key,  # keyless: TargetDeadLetters gives each its own letter
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
            name: self.wire_value(record[name])
            for name in self.fields
            if record.get(name) not in (None, "")
        }
        existing = self.index.get(key)
        if existing is None:
            self.check_create(key, desired)
            self._write("created", key, {**desired, self.key_field: key}, None)
            return
        changes = {k: v for k, v in desired.items() if not self.same(existing, k, v)}
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
                self.index[key] = self.create(fields)
            else:
                self.update(existing, fields)
        except self.vendor_error as exc:
            refused = t.cast("VendorError", exc)
            if refused.status in (401, 403):  # the credentials, not the record
                raise
            self._outcome("failed", key, fields, detail=f"{refused.status}")
            raise Undelivered(
                self.stream_name,
                key,
                self.field_named_in(refused.reason, fields) or "-",
                f"{self.vendor} refused it ({refused.status}): {refused.reason}",
                f"http_{refused.status}",
            ) from exc
        except RetryBudgetExhausted as exc:
            self._outcome("failed", key, fields, detail="retries exhausted")
            raise Undelivered(
                self.stream_name, key, None, f"not delivered: {exc}", "RetryBudgetExhausted"
            ) from exc
        self._outcome(outcome, key, fields)

    def _outcome(
        self, outcome: str, key: str, fields: Iterable[str], detail: str | None = None
    ) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in ("created", "updated", "unchanged"):
            self.letters.delivered(self.stream_name, [key])
        employee = (self.index.get(key) or {}).get("id")  # known once created or matched
        self.audit.record(
            stream=self.stream_name,
            record_key=key,
            fields=list(fields),
            destination=self.destination,
            outcome=outcome,
            detail=detail,
            candidate_id=None if key == "<missing>" else key,
            employee_id=employee,
        )

    def clean_up(self) -> None:
        self.letters.flush()
        if self.counts.get("dead-lettered"):
            self.logger.warning(
                "%s %s: %d record(s) not delivered, kept as dead letters in %s "
                "(hrsync dlq list; hrsync dlq replay once the cause is fixed)",
                self.plugin,
                self.stream_name,
                self.counts["dead-lettered"],
                self.letters.store.path,
            )
        summary = ", ".join(f"{n} {o}" for o, n in sorted(self.counts.items())) or "no records"
        self.logger.info("%s %s: %s", self.plugin, self.stream_name, summary)
        super().clean_up()


def schema_problem(schema: dict[str, t.Any], record: dict[str, t.Any]) -> tuple[str | None, str]:
    """(field, reason) of a record's first schema violation, without quoting its value."""
    for error in jsonschema.Draft7Validator(schema).iter_errors(record):
        field = ".".join(str(p) for p in error.absolute_path) or None
        return (
            field,
            f"does not match the stream's schema ({error.validator}: {error.validator_value})",
        )
    return None, "does not match the stream's schema"
