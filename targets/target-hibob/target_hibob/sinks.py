"""New-hire records -> HiBob employees, idempotent on the ATS candidate id.

Record properties are HiBob field ids (``root.firstName``, ``work.startDate``...); the ATS
candidate id goes to a custom field of the tenant's (``candidate_id_field``). An employee is
created once (``POST /people``: HiBob requires ``root.firstName``, ``root.surname``,
``root.email``, ``work.site`` and ``work.startDate``), then only fields that differ are written:
the work table's historical fields (title, department, division, site) as a new work entry
effective on the start date (or today, once started), the others with ``PUT /people/{id}``.

A record that cannot be delivered (malformed, missing what HiBob requires, refused, or still
failing after the retries) becomes a dead letter naming field and reason, and the run goes on;
a delivered record resolves its waiting letter. Run-level problems (credentials, a field the
tenant lacks, HiBob unreachable for several records in a row) stop the run.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import jsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import RecordSink

from hrsync.errors import RecordError
from hrsync.http import RetryBudgetExhausted
from target_hibob.client import HiBobError, at

if t.TYPE_CHECKING:
    from target_hibob.target import TargetHiBob

DESTINATION = "hibob"
REQUIRED_TO_CREATE = ("root.firstName", "root.surname", "root.email", "work.site", "work.startDate")
#: the work table's historical columns: changed through a new entry, not PUT
WORK_ENTRY_FIELDS = frozenset({"work.title", "work.department", "work.division", "work.site"})
MAX_CONSECUTIVE_EXHAUSTED = 3


class HiBobUnavailable(RuntimeError):
    """HiBob kept failing for several records in a row: a run-level stop."""


class Undelivered(RecordError):
    """A record HiBob did not take; ``error_class`` is a data-free token for alerts."""

    def __init__(
        self, stream: str, record_key: t.Any, field: str | None, reason: str, error_class: str
    ) -> None:
        super().__init__(stream, record_key, field, reason)
        self.error_class = error_class

    def __reduce__(self) -> tuple[t.Any, ...]:
        args = (self.stream, self.record_key, self.field, self.reason, self.error_class)
        return (type(self), args)


def wire_value(value: t.Any) -> t.Any:
    """Dates as YYYY-MM-DD; everything else as it came."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class NewHireSink(RecordSink):
    """One employee per ATS candidate: create once, then write only fields that differ."""

    def __init__(self, target: TargetHiBob, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self.client = target.client
        self.audit = target.audit
        self.dry_run = bool(self.config.get("dry_run"))
        self.key_property = str(self.config.get("candidate_id_property") or "ats_candidate_id")
        self.key_field = str(self.config["candidate_id_field"])
        self.types = target.hibob_fields()
        if self.key_field not in self.types:
            raise RecordError(
                self.stream_name,
                "-",
                self.key_field,
                f"HiBob has no field {self.key_field!r} to hold the ATS candidate id: create "
                "that custom field or set candidate_id_field",
            )
        properties = [p for p in self.schema.get("properties", {}) if p != self.key_property]
        unknown = sorted(p for p in properties if p not in self.types)
        if unknown:
            raise RecordError(
                self.stream_name,
                "-",
                ", ".join(unknown),
                "HiBob has no such field(s) (or the service user may not see them): map or "
                "drop them in the profile",
            )
        self.fields = properties
        self.index = target.candidate_index(self.key_field, properties)
        self.counts: dict[str, int] = {}
        self.letters = target.letters
        self.letters.stream(self.stream_name, self.schema, self.key_properties)
        self._arrived: dict[str, t.Any] = {}
        self._invalid: RecordError | None = None
        self._exhausted_in_a_row = 0

    # --- singer-sdk hooks: a bad record is this record's dead letter, not the run's end ------

    def _validate_and_parse(self, record: dict) -> dict:
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
        missing = [k for k in self.key_properties or () if k not in record]
        if missing and self._invalid is None:
            self._invalid = RecordError(
                self.stream_name,
                "<missing>",
                missing[0],
                "the record has no key property: it cannot be matched to an employee",
            )

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
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
                raise HiBobUnavailable(
                    f"{self._exhausted_in_a_row} records in a row failed after every retry "
                    f"(last: {exc.reason}); stopping: HiBob looks unavailable. Those records "
                    "are dead letters; the rest is read again on the next run"
                ) from exc
        except RecordError as exc:
            self._dead_letter(exc, "invalid_record")
        else:
            self._exhausted_in_a_row = 0

    def _dead_letter(self, error: RecordError, error_class: str) -> None:
        if self.dry_run:
            self.logger.error("%s (dry run: the real run keeps it as a dead letter)", error)
            self.counts["planned-dead-letter"] = self.counts.get("planned-dead-letter", 0) + 1
            return
        self.logger.error("%s (kept as a dead letter)", error)
        self.counts["dead-lettered"] = self.counts.get("dead-lettered", 0) + 1
        self.letters.dead(
            stream=self.stream_name,
            record_key=error.record_key,
            record=self._arrived,
            error=str(error),
            error_class=error_class,
        )

    # --- delivery -----------------------------------------------------------------------

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
        existing = self.index.get(key)
        if existing is None:
            for required in REQUIRED_TO_CREATE:
                if not desired.get(required):
                    raise Undelivered(
                        self.stream_name,
                        key,
                        required,
                        "HiBob requires it to create an employee (held back until it is set)",
                        "missing_required_field",
                    )
            self._write("created", key, {**desired, self.key_field: key}, None)
            return
        changes = {k: v for k, v in desired.items() if not self._same(existing, k, v)}
        if changes:
            self._write("updated", key, changes, existing)
        else:
            self._outcome("unchanged", key, [])

    def _same(self, existing: dict[str, t.Any], field: str, desired: t.Any) -> bool:
        """List fields hold item ids: compare their display names (``humanReadable``)."""
        listed = self.types.get(field) == "list"
        source = (existing.get("humanReadable") or {}) if listed else existing
        return str(at(source, field) or "") == str(desired)

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
                self.index[key] = _as_document(employee_id, fields, self.types)
            else:
                self._update(existing, fields)
        except HiBobError as exc:
            if exc.status in (401, 403):  # the credentials, not the record
                raise
            self._outcome("failed", key, fields, detail=f"{exc.status}")
            field = _field_named_in(exc.reason, fields) or "-"
            raise Undelivered(
                self.stream_name,
                key,
                field,
                f"HiBob refused it ({exc.status}): {exc.reason}",
                f"http_{exc.status}",
            ) from exc
        except RetryBudgetExhausted as exc:
            self._outcome("failed", key, fields, detail="retries exhausted")
            raise Undelivered(
                self.stream_name, key, None, f"not delivered: {exc}", "RetryBudgetExhausted"
            ) from exc
        self._outcome(outcome, key, fields)

    def _update(self, existing: dict[str, t.Any], fields: dict[str, t.Any]) -> None:
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
            if self.types.get(name) == "list":
                _put(existing.setdefault("humanReadable", {}), name, value)

    def _outcome(
        self, outcome: str, key: str, fields: t.Iterable[str], detail: str | None = None
    ) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in ("created", "updated", "unchanged"):
            self.letters.delivered(self.stream_name, [key])
        employee = (self.index.get(key) or {}).get("id")
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
                "target-hibob %s: %d record(s) not delivered, kept as dead letters in %s "
                "(hrsync dlq list; hrsync dlq replay once the cause is fixed)",
                self.stream_name,
                self.counts["dead-lettered"],
                self.letters.store.path,
            )
        summary = ", ".join(f"{n} {o}" for o, n in sorted(self.counts.items())) or "no records"
        self.logger.info("target-hibob %s: %s", self.stream_name, summary)
        super().clean_up()


def _field_named_in(reason: str, fields: t.Iterable[str]) -> str | None:
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


def _schema_problem(schema: dict[str, t.Any], record: dict[str, t.Any]) -> tuple[str | None, str]:
    """(field, reason) of a record's first schema violation, without quoting its value."""
    for error in jsonschema.Draft7Validator(schema).iter_errors(record):
        field = ".".join(str(p) for p in error.absolute_path) or None
        return (
            field,
            f"does not match the stream's schema ({error.validator}: {error.validator_value})",
        )
    return None, "does not match the stream's schema"
