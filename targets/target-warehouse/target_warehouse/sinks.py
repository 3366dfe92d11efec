"""One sink per stream: records -> a batch file -> one upsert transaction in DuckDB."""

from __future__ import annotations

import io
import json
import logging
import re
import typing as t
from decimal import Decimal

import orjson
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import (
    get_datelike_property_type,
    handle_invalid_timestamp_in_record,
)
from singer_sdk.sinks import BatchSink

from hrsync import subject
from hrsync.deadletter import replaying
from hrsync.errors import RecordError
from hrsync.validation import CompiledValidation, CompiledValidator
from target_warehouse.warehouse import LINE, Rejected, column_type

if t.TYPE_CHECKING:
    import jsonschema

    from target_warehouse.target import TargetWarehouse

DESTINATION = "duckdb"
_DATE_FIELD = re.compile(r"for field '([^']*)'")
#: the metadata fields singer-sdk's ``_remove_sdc_metadata_from_record`` pops
_SDC_FIELDS = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    }
)


_LINE_BYTES = LINE.encode("utf-8")


def _json_default(value: t.Any) -> t.Any:
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    return str(value)


def _dumps(value: t.Any) -> bytes:
    try:
        return orjson.dumps(value, default=_json_default)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it
        return json.dumps(value, default=_json_default, ensure_ascii=False).encode("utf-8")


def _json_type(value: t.Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def validation_reason(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(field, reason) of a JSON-schema violation, naming no value (the value may be PII)."""
    field = ".".join(str(p) for p in error.absolute_path) or "-"
    kind = error.validator
    if kind == "required":
        missing = [f for f in error.validator_value if f not in (error.instance or {})]
        return (missing[0] if missing else field), "required property is missing"
    if kind == "type":
        return field, f"expected {error.validator_value}, got {_json_type(error.instance)}"
    if kind == "additionalProperties":
        return field, "property not declared in the schema"
    if kind in ("enum", "const"):
        return field, f"not one of the allowed values {error.validator_value!r}"[:300]
    return field, f"fails the schema's {kind!r} rule ({error.validator_value!r})"[:300]


class WarehouseSink(CompiledValidation, BatchSink):
    """Upserts a stream into one table of the warehouse, keyed on its key properties."""

    def __init__(self, target: TargetWarehouse, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._target = target
        self.warehouse = target.warehouse
        self.table = f"{self.config.get('table_prefix') or ''}{self.stream_name}"
        props: dict[str, t.Any] = self.schema.get("properties") or {}
        seen: dict[str, str] = {}
        for name in props:
            other = seen.setdefault(name.casefold(), name)
            if other != name:
                raise RecordError(
                    self.stream_name,
                    "-",
                    f"{other}, {name}",
                    "DuckDB column names ignore case: rename one of these in the mapping",
                )
        self.wanted = {name: column_type(prop) for name, prop in props.items()}
        self._json_columns = [name for name, kind in self.wanted.items() if kind == "JSON"]
        missing = [k for k in self.key_properties if k not in props]
        if missing:
            raise RecordError(
                self.stream_name,
                "-",
                ", ".join(missing),
                "key property not declared in the stream's schema",
            )
        # a replay sends single rows: replacing their parent's rows would drop the others
        parents = (self.config.get("replace_by_parent") or {}).get(self.stream_name) or []
        self.parent: list[str] = [] if replaying() else [str(c) for c in parents]
        unknown = [c for c in self.parent if c not in props]
        if unknown:
            raise RecordError(
                self.stream_name,
                "-",
                ", ".join(unknown),
                "replace_by_parent names a column the stream's schema does not declare",
            )
        self._names = tuple(self.wanted)
        self._keys = tuple(self.key_properties)
        self._row_keys = (LINE, *self._names)
        self._props = props
        self._datelike = {
            name: kind for name, prop in props.items() if (kind := get_datelike_property_type(prop))
        }
        self._parsers = {"time": time_fromisoformat, "date": date_fromisoformat}
        self._date_parsers = tuple(
            (name, self._parsers.get(kind, datetime_fromisoformat))
            for name, kind in self._datelike.items()
        )
        # a record of declared fields only is written as it is (no row to build), unless a
        # JSON column needs its value turned into JSON text first
        self._plain_rows = not self._json_columns and LINE not in props
        self.columns = self.warehouse.ensure_table(self.table, self.wanted)
        self._rejection: tuple[str, str, str] | None = None  # field, reason, error class
        validator = self._validator
        self._compiled = validator if isinstance(validator, CompiledValidator) else None
        self._treatment = self.datetime_error_treatment  # from the config: fixed for the run
        # singer-sdk's preprocess_record returns the record as it is: only an override runs
        self._preprocess = type(self).preprocess_record is not BatchSink.preprocess_record
        target.dead_letters.stream(self.stream_name, self.original_schema, self.key_properties)

    # --- validation: a bad record is dead-lettered, never fails the run or vanishes ------

    def _validate_and_parse(self, record: dict) -> dict:
        self._rejection = None
        if self._validator is not None and not self._compiled_accepts(record):
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                cause = exc.__cause__
                if cause is not None and hasattr(cause, "validator"):
                    self._rejection = (*validation_reason(cause), "invalid_record")
                else:
                    self._rejection = ("-", "does not match the stream's schema", "invalid_record")
                return record
        try:
            self._parse_timestamps_in_record(
                record=record, schema=self.schema, treatment=self._treatment
            )
        except ValueError as exc:
            found = _DATE_FIELD.search(str(exc))
            field = found.group(1) if found else "-"
            self._rejection = (field, "not a valid date or date-time", "invalid_date")
        return record

    def _compiled_accepts(self, record: dict) -> bool:
        """Whether the compiled validation accepts the record (a refusal is judged again by
        the validator's reference, whose decision and message are the ones used)."""
        compiled = self._compiled
        return compiled is not None and compiled.accepts(record)

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """singer-sdk's, with each property's date kind looked up once per stream.

        The usual record (only declared fields, every date readable) takes one pass over the
        date properties; any other goes through singer-sdk's loop in the record's order, so
        warnings, treatments and errors are singer-sdk's own."""
        if schema is not self.schema:
            super()._parse_timestamps_in_record(record, schema, treatment)
            return
        if record.keys() <= self._props.keys():
            parsed = []
            try:
                for key, parse in self._date_parsers:
                    value = record.get(key)
                    if value is not None:
                        parsed.append((key, parse(value)))
            except Exception:  # noqa: S110 - singer-sdk's loop below says what is wrong
                pass
            else:
                for key, value in parsed:
                    record[key] = value
                return
        self._parse_timestamps_in_order(record, schema, treatment)

    def _parse_timestamps_in_order(self, record: dict, schema: dict, treatment: t.Any) -> None:
        props, datelike = self._props, self._datelike
        for key, value in record.items():
            if key not in props:
                if (
                    value is not None
                    and not schema.get("additionalProperties", False)
                    and key not in self._warned_missing_fields
                ):
                    self.logger.warning("No schema for record field '%s'", key)
                    self._warned_missing_fields.add(key)
                continue
            kind = datelike.get(key)
            if kind is None or value is None:
                continue
            try:
                record[key] = self._parsers.get(kind, datetime_fromisoformat)(value)
            except ValueError as ex:
                record[key] = handle_invalid_timestamp_in_record(
                    record, [key], value, kind, ex, treatment, self.logger
                )

    def _remove_sdc_metadata_from_record(self, record: dict) -> None:
        if not _SDC_FIELDS.isdisjoint(record):  # the usual record has none: nothing to pop
            super()._remove_sdc_metadata_from_record(record)

    # --- the chunked record path (hrsync.direct) --------------------------------------------

    def take_many(self, records: list[dict]) -> None:
        """hrsync.direct.take for each record, in one loop: singer-sdk's steps in its order
        (metadata fields removed, validation and date parsing, preprocess, key check, read
        tally, process_record, record counter, the debug line)."""
        context = self._get_context(records[0])  # the pending batch: no drain in a chunk
        debug = self.logger.isEnabledFor(logging.DEBUG)
        validate, process, keys = self._validate_and_parse, self.process_record, self._keys
        for record in records:
            if not _SDC_FIELDS.isdisjoint(record):
                super()._remove_sdc_metadata_from_record(record)
            validate(record)
            if self._preprocess:
                record = self.preprocess_record(record, context)
            if self._rejection is None:  # _singer_validate_message, inlined
                for key in keys:
                    if record.get(key) is None:
                        self._rejection = (key, "key property is missing or null", "missing_key")
                        break
            self.tally_record_read()
            process(record, context)
            if debug:
                self._after_process_record(context)
        self.record_counter_metric.increment(len(records))

    def _singer_validate_message(self, record: dict) -> None:
        missing = [k for k in self.key_properties if record.get(k) is None]
        if missing and self._rejection is None:
            self._rejection = (missing[0], "key property is missing or null", "missing_key")

    def record_key(self, record: t.Mapping[str, t.Any]) -> str | None:
        """The key properties' values (``a|b``); None for a keyless stream or a missing key
        (the dead-letter store then files the record under a digest of itself)."""
        values = tuple(map(record.get, self._keys))
        if values and None not in values:
            return "|".join(map(str, values))
        return None

    # --- batching -----------------------------------------------------------------------

    def start_batch(self, context: dict) -> None:
        # the batch's rows as NDJSON in memory (a batch of 10,000 rows is a few MB): no
        # personal data on disk before it reaches the warehouse
        context["file"] = io.BytesIO()
        context["lines"] = 0
        context["last"] = {}  # record key -> its last line in this batch (-1: dead-lettered)
        context["dead"] = 0
        context["subjects"] = {}  # line -> the analytics pseudonym of its person (audit only)

    def process_record(self, record: dict, context: dict) -> None:
        if self._rejection is not None:
            context["last"][self.dead_letter(record, *self._rejection)] = -1
            context["dead"] += 1
            return
        line = context["lines"]
        if self._plain_rows and record and record.keys() <= self._props.keys():
            # the same JSON object as the row below, less its nulls (a missing field reads as
            # null): the record's own text after the line number
            context["file"].write(b'{"%s":%d,%s\n' % (_LINE_BYTES, line, _dumps(record)[1:]))
        else:
            row = dict(zip(self._row_keys, (line, *map(record.get, self._names)), strict=True))
            for name in self._json_columns:  # JSON columns travel as JSON text (strings too)
                if row[name] is not None:
                    row[name] = _dumps(row[name]).decode("utf-8")
            context["file"].write(_dumps(row) + b"\n")
        key = self.record_key(record)
        if key is not None:
            context["last"][key] = line
        pseudonym = record.get(subject.PSEUDONYM_FIELD)
        if isinstance(pseudonym, str) and pseudonym:
            context["subjects"][line] = pseudonym
        context["lines"] = line + 1

    def process_batch(self, context: dict) -> None:
        buffer: io.BytesIO = context["file"]
        try:
            written, rejected = 0, list[Rejected]()
            if context["lines"]:
                written, rejected = self.warehouse.load(
                    self.table, buffer, self.wanted, self.key_properties, self.parent
                )
            if rejected:
                self._dead_letter_rows(buffer, rejected)
            bad = {r.line for r in rejected}
            # a key is resolved only if its last record in the batch was loaded
            delivered = [k for k, i in context["last"].items() if i >= 0 and i not in bad]
            self.tally_record_written(written)
            self._target.dead_letters.delivered(self.stream_name, delivered)
            failed = len(rejected) + int(context["dead"])
            self._target.audit.record(
                stream=self.stream_name,
                record_key=f"batch:{context['batch_id']}",
                fields=list(self.wanted),
                destination=f"{DESTINATION}:{self.warehouse.table(self.table)}",
                outcome="loaded" if not failed else "partial",
                detail=f"{context['lines'] - len(rejected)} records loaded ({written} rows "
                f"after de-duplication on {', '.join(self.key_properties) or 'no key'}), "
                f"{failed} dead-lettered",
                # the people of the loaded rows, as keyed subject references
                analytics_pseudonyms=[p for i, p in context["subjects"].items() if i not in bad],
            )
        finally:
            buffer.close()  # the rows leave memory with the batch

    def _dead_letter_rows(self, buffer: io.BytesIO, rejected: list[Rejected]) -> None:
        why = {r.line: r for r in rejected}
        for raw in buffer.getvalue().splitlines():
            staged = json.loads(raw)
            line = staged[LINE]
            if line in why:
                # the row as the batch holds it: every column, null where the record had none
                row = {name: staged.get(name) for name in self._names}
                for name in self._json_columns:
                    if isinstance(row.get(name), str):
                        row[name] = json.loads(row[name])
                self.dead_letter(row, why[line].column, why[line].reason, "type_conversion")

    def dead_letter(self, record: dict, field: str, reason: str, error_class: str) -> str:
        """Store one record the warehouse cannot take; returns its key in this batch."""
        key = self.record_key(record)
        error = str(RecordError(self.stream_name, key or "<missing>", field, reason))
        self.logger.error("dead-lettered: %s", error)
        letter = self._target.dead_letters.dead(
            stream=self.stream_name,
            record_key=key,
            record=json.loads(_dumps(record)),
            error=error,
            error_class=error_class,
        )
        self._target.audit.record(
            stream=self.stream_name,
            record_key=key or "<missing>",
            fields=[field],
            destination=f"{DESTINATION}:{self.warehouse.table(self.table)}",
            outcome="failed",
            detail=f"{field}: {reason}",
            analytics_pseudonym=_text(record.get(subject.PSEUDONYM_FIELD)),
        )
        return key if key is not None else f"<missing letter {letter}>"  # never resolved


def _text(value: t.Any) -> str | None:
    return value if isinstance(value, str) and value else None
