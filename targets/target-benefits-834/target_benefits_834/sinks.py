"""The three input streams go to this run's spool; the 834 is built at the end of the input."""

from __future__ import annotations

import typing as t

from singer_sdk.sinks import RecordSink

from hrsync.validation import CompiledValidation
from target_benefits_834.members import STREAM_KEYS, key_of

if t.TYPE_CHECKING:
    from target_benefits_834.target import TargetBenefits834


class SpoolSink(CompiledValidation, RecordSink):
    """Records are spooled (SQLite), never sent one by one: the file is planned as a whole.

    A record that fails schema validation still arrives here, and a malformed date is kept as
    it came: the member builder names the record, the field and the reason, and the member is
    dead-lettered (singer-sdk would fail the run, or null the date).
    """

    fail_on_record_validation_exception = False

    def __init__(self, target: TargetBenefits834, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self.run = target.run
        self.run.spool.mark_seen(self.stream_name)

    def _parse_timestamps_in_record(
        self, record: dict[str, t.Any], schema: dict[str, t.Any], treatment: t.Any
    ) -> None:
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError:
            return

    def _singer_validate_message(self, record: dict[str, t.Any]) -> None:
        """A record without its key is dead-lettered by ``process_record`` naming the field
        (singer-sdk's MissingKeyPropertiesError would stop the run and every later record)."""

    def process_record(self, record: dict, context: dict) -> None:
        key = key_of(self.stream_name, record)
        if key == "<missing>":
            self.run.dead_letter(
                self.stream_name,
                key,
                record,
                f"stream {self.stream_name}: field {STREAM_KEYS[self.stream_name]}: the record "
                "key is required",
            )
            return
        self.run.spool.add(self.stream_name, [record])
