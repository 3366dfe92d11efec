"""target-payroll-file: a payroll change file (CSV or fixed width), checked line by line
against a layout, PGP-encrypted and sent over SFTP once (see README.md next to this file)."""

from __future__ import annotations

import logging
import sys
from functools import cached_property
from types import FrameType
from typing import Any

from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink, Sink
from singer_sdk.target_base import Target

from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.direct import DirectRecords
from hrsync.identity import PlanningSink
from hrsync.singer_input import SingerObjectReader
from hrsync.transfer import SFTP_SETTINGS
from target_payroll_file.feed import DEFAULT_NAME_TEMPLATE, Outcome, PayrollFeed
from target_payroll_file.layout import load_layout
from target_payroll_file.sinks import PayrollLineSink


# records of unmapped streams go straight to their sink (hrsync.direct: the bulk path);
# BATCH files take the RECORD path
class TargetPayrollFile(DirectRecords, BatchAsRecords, Target):
    """Writes the payroll change file and delivers it to the provider's SFTP drop."""

    name = "target-payroll-file"
    package_name = "hrsync-target-payroll-file"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = PayrollLineSink

    config_jsonschema = th.PropertiesList(
        th.Property(
            "layout",
            th.StringType,
            default="payroll_changes",
            description="Column layout: a shipped one (payroll_changes, payroll_changes_fixed) "
            "or the path of a layout YAML",
        ),
        th.Property(
            "layout_definition",
            th.ObjectType(),
            description="A whole layout given inline (wins over layout)",
        ),
        th.Property(
            "company_code",
            th.StringType,
            default="hrsync",
            description="Your code at the payroll provider (file name, fixed-width header)",
        ),
        th.Property(
            "file_name_template",
            th.StringType,
            default=DEFAULT_NAME_TEMPLATE,
            description="Remote file name: {company_code}, {layout}, {timestamp:%Y%m%d_%H%M%S} "
            "(UTC), {checksum} (8 hex of the lines' sha256), {extension} (.csv/.txt plus "
            ".pgp or .asc)",
        ),
        th.Property(
            "allow_partial_file",
            th.BooleanType,
            default=False,
            description="Send the valid lines when some records fail the layout (they stay "
            "dead letters); by default nothing is sent until every record is valid",
        ),
        th.Property(
            "work_dir",
            th.StringType,
            description="Where the file is built before encryption (private temporary "
            "directory, removed after; default the system temp dir)",
        ),
        th.Property(
            "audit_log_path",
            th.StringType,
            description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG",
        ),
        *SFTP_SETTINGS,  # sftp_*, pgp_*, transfer_* (hrsync.transfer)
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcome: Outcome | None = None

    @cached_property
    def feed(self) -> PayrollFeed:
        layout = load_layout(self.config.get("layout_definition") or self.config["layout"])
        return PayrollFeed(self.config, layout, self.logger)

    def _process_schema_message(self, message_dict: dict) -> None:
        super()._process_schema_message(message_dict)
        lean = self.__dict__.setdefault("_lean", {})
        stream = message_dict["stream"]
        lean.pop(stream, None)
        # hrsync.direct keeps (sink, chunked) for a stream whose records may skip the look-ups
        sink, chunked = self.__dict__.get("_direct", {}).get(stream, (None, False))
        if sink is not None and not chunked and _only_payroll_steps(sink):
            lean[stream] = sink

    def _process_record_message(self, message_dict: dict) -> None:
        """A record of a layout stream: the steps of hrsync.direct.take that do something for
        a PayrollLineSink (metadata columns removed, tallies, the line); the others are no-ops
        for it (no context, no schema validation, no preprocessing, no key check, no timestamp
        parsing), which :func:`_only_payroll_steps` checks once per SCHEMA message."""
        lean = self.__dict__.get("_lean")
        sink = lean.get(message_dict.get("stream")) if lean else None
        record = message_dict.get("record")
        if sink is None or type(record) is not dict:
            super()._process_record_message(message_dict)
            return
        self.flush_chunk()  # records another stream's chunk holds go first
        record = record.copy()
        sink._remove_sdc_metadata_from_record(record)
        sink.tally_record_read()
        sink.process_record(record, {})
        sink.record_counter_metric.increment()
        if sink.is_full:
            self.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            self.drain_one(sink)

    def _handle_max_record_age(self) -> None:
        """No time-based drains: state may only move once the file was delivered."""

    def record_refused(
        self, stream: str, record_key: str, record: Any, field: str, error: str
    ) -> None:
        """A record the reader refused (hrsync.singer_input, already a dead letter): it counts
        as a record that failed the layout, so the file is held (or sent without it when
        allow_partial_file is set)."""
        self.feed.invalid += 1

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: nothing was sent, so no state; the temporary files go."""
        self.logger.warning("target-payroll-file interrupted by signal %d: nothing sent", signum)
        if "feed" in self.__dict__:
            self.feed.close()
        sys.exit(128 + signum)

    def process_endofpipe(self) -> None:
        """Send the file, then emit state (a failure raises: no state, the next run retries)."""
        try:
            self.outcome = self.feed.finish()
        finally:
            self.feed.close()
        super().process_endofpipe()


def _only_payroll_steps(sink: Sink) -> bool:
    """Whether singer-sdk's per-record steps other than those TargetPayrollFile runs are
    no-ops for ``sink`` (they are for PayrollLineSink; a subclass that overrides one, schema
    validation switched on or debug logging takes the full path)."""
    kind = type(sink)
    return (
        kind._get_context is RecordSink._get_context
        and kind.preprocess_record is RecordSink.preprocess_record
        and kind._validate_and_parse is RecordSink._validate_and_parse
        and sink._validator is None
        and kind._parse_timestamps_in_record is PayrollLineSink._parse_timestamps_in_record
        and kind._singer_validate_message is PlanningSink._singer_validate_message
        and kind._after_process_record is RecordSink._after_process_record
        and not sink.logger.isEnabledFor(logging.DEBUG)
    )


#: the target-payroll-file console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetPayrollFile, "target-payroll-file")


if __name__ == "__main__":
    main()
