"""The sink: each record is checked against the layout and becomes one line (or a dead letter)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hrsync.errors import ConfigError, RecordError
from hrsync.identity import PlanningSink

if TYPE_CHECKING:
    from target_payroll_file.target import TargetPayrollFile


class PayrollLineSink(PlanningSink):
    """Validates and formats one record per call; the file is sent once, at the end of the
    input (TargetPayrollFile.process_endofpipe)."""

    def __init__(
        self,
        target: TargetPayrollFile,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.feed = target.feed
        layout = self.feed.layout
        self.rule = layout.streams.get(stream_name)
        if self.rule is None and layout.unknown_streams == "fail":
            raise ConfigError(
                f"layout {layout.name}: stream {stream_name!r} is not one of its streams "
                f"({', '.join(layout.streams)}); add it to the layout or set unknown_streams: "
                "ignore"
            )
        self.key_fields = list((self.rule.key if self.rule else ()) or key_properties or ())
        self.feed.letters.stream(stream_name, schema, self.key_fields)

    @property
    def validate_schema(self) -> bool:
        """Off: the layout checks every field (type, pattern, width, required) and names the
        record, field and reason in a dead letter; JSON-schema validation on top would only
        log, and take a third of the run."""
        return False

    def _parse_timestamps_in_record(
        self, record: dict[str, Any], schema: dict[str, Any], treatment: Any
    ) -> None:
        """Values stay as they came: the layout parses dates itself, and a malformed one is
        then named in the dead letter instead of being nulled or crashing the run."""

    def _record_key(self, record: dict[str, Any]) -> str:
        fields = self.key_fields
        if not fields:
            return "?"
        if len(fields) == 1:
            return str(record.get(fields[0], ""))
        return "/".join([str(record.get(k, "")) for k in fields])

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        if self.rule is None:
            self.feed.ignored[self.stream_name] = self.feed.ignored.get(self.stream_name, 0) + 1
            return
        key = self._record_key(record)
        stream = self.stream_name
        try:
            values = self.feed.layout.row(stream, record, key)
        except RecordError as error:
            self.feed.reject(stream, key, record, error)
            return
        self.feed.accept(stream, key, values)
