"""One sink per stream: records -> a batch file -> one upsert transaction in DuckDB."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import typing as t
from decimal import Decimal
from pathlib import Path

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
from hrsync.validation import CompiledValidation
from target_warehouse.warehouse import LINE, Rejected, column_type

if t.TYPE_CHECKING:
    import jsonschema

    from target_warehouse.target import TargetWarehouse

DESTINATION = "duckdb"
_DATE_FIELD = re.compile(r"for field '([^']*)'")


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
        self.columns = self.warehouse.ensure_table(self.table, self.wanted)
        self._rejection: tuple[str, str, str] | None = None  # field, reason, error class
        target.dead_letters.stream(self.stream_name, self.original_schema, self.key_properties)

    # --- validation: a bad record is dead-lettered, never fails the run or vanishes ------

    def _validate_and_parse(self, record: dict) -> dict:
        self._rejection = None
        if self._validator is not None:
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
                record=record, schema=self.schema, treatment=self.datetime_error_treatment
            )
        except ValueError as exc:
            found = _DATE_FIELD.search(str(exc))
            field = found.group(1) if found else "-"
            self._rejection = (field, "not a valid date or date-time", "invalid_date")
        return record

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        """singer-sdk's, with each property's date kind looked up once per stream."""
        if schema is not self.schema:
            super()._parse_timestamps_in_record(record, schema, treatment)
            return
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
        fd, name = tempfile.mkstemp(prefix="hrsync-warehouse-", suffix=".jsonl")
        context["path"] = Path(name)
        context["file"] = os.fdopen(fd, "wb", buffering=1 << 20)
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
        row = dict(zip(self._row_keys, (line, *map(record.get, self._names)), strict=True))
        for name in self._json_columns:  # JSON columns travel as JSON text (strings included)
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
        path: Path = context["path"]
        try:
            context["file"].close()
            written, rejected = 0, list[Rejected]()
            if context["lines"]:
                written, rejected = self.warehouse.load(
                    self.table, path, self.wanted, self.key_properties, self.parent
                )
            if rejected:
                self._dead_letter_rows(path, rejected)
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
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _dead_letter_rows(self, path: Path, rejected: list[Rejected]) -> None:
        why = {r.line: r for r in rejected}
        with path.open("rb") as fh:
            for raw in fh:
                row = json.loads(raw)
                line = row.pop(LINE)
                if line in why:
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
