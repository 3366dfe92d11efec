"""target-benefits-834: enrolments, life events and terminations -> ANSI X12 834 (005010X220A1)
files, validated with pyx12, PGP-encrypted and sent over SFTP to the carrier."""

from __future__ import annotations

import sys
from functools import cached_property
from types import FrameType
from typing import Any

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.errors import ConfigError
from hrsync.singer_input import SingerObjectReader
from hrsync.transfer import SFTP_SETTINGS, TransferError
from target_benefits_834.control import ControlNumberError
from target_benefits_834.members import STREAM_KEYS
from target_benefits_834.run import ConcurrentRun, InvalidFile, MassTermination, Run
from target_benefits_834.sinks import SpoolSink


class TargetBenefits834(BatchAsRecords, Target):  # BATCH files take the RECORD path
    """Builds one 834 per run from benefit_subscribers, benefit_dependents, benefit_elections."""

    name = "target-benefits-834"
    package_name = "hrsync-target-benefits-834"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = SpoolSink

    config_jsonschema = th.PropertiesList(
        th.Property("sender_id", th.StringType, required=True,
                    description="ISA06/GS02: your sender id, as agreed with the carrier"),
        th.Property("sender_id_qualifier", th.StringType, default="ZZ",
                    description="ISA05 qualifier of sender_id (ZZ mutually defined, 30 FEIN, ...)"),
        th.Property("receiver_id", th.StringType, required=True,
                    description="ISA08/GS03: the carrier's interchange receiver id"),
        th.Property("receiver_id_qualifier", th.StringType, default="ZZ",
                    description="ISA07 qualifier of receiver_id"),
        th.Property("usage_indicator", th.StringType, default="P", allowed_values=["P", "T"],
                    description="ISA15: P production, T test"),
        th.Property("sponsor_name", th.StringType, required=True,
                    description="N1*P5: the plan sponsor (the employer)"),
        th.Property("sponsor_id", th.StringType, required=True,
                    description="N1*P5 N104: the sponsor's id (e.g. its FEIN)"),
        th.Property("sponsor_id_qualifier", th.StringType, default="FI",
                    description="N103 of the sponsor: FI (FEIN), 24 (EIN) or 94 (code)"),
        th.Property("payer_name", th.StringType, required=True,
                    description="N1*IN: the carrier (insurer)"),
        th.Property("payer_id", th.StringType, required=True,
                    description="N1*IN N104: the carrier's id"),
        th.Property("payer_id_qualifier", th.StringType, default="FI",
                    description="N103 of the payer: FI, 94 or XV (validated by pyx12)"),
        th.Property("master_policy_number", th.StringType,
                    description="REF*38 master policy number of the header (omitted if unset)"),
        th.Property("transaction_action", th.StringType, default="2",
                    allowed_values=["2", "4", "RX"],
                    description="BGN08: 2 change (update), 4 verify, RX replace"),
        th.Property("members_per_transaction", th.IntegerType, default=10000,
                    description="At most this many member loops per ST/SE transaction set "
                    "(families are never split)"),
        th.Property("validation_workers", th.IntegerType,
                    description="Processes validating transaction sets in parallel with pyx12 "
                    "(default: the number of CPUs)"),
        th.Property("file_prefix", th.StringType, default="hrsync_834",
                    description="File names: <prefix>_<UTC timestamp>_<ISA13>.x12(.pgp)"),
        th.Property("work_dir", th.StringType, default=".hrsync/target-benefits-834",
                    description="Where the plaintext file is built (mode 0600; removed once "
                    "delivered unless keep_files); invalid files are kept here"),
        th.Property("state_path", th.StringType,
                    description="SQLite ledger of what each member was last sent "
                    "(default <work_dir>/ledger.sqlite); holds personal data: protect it"),
        th.Property("ledger_key", th.StringType, secret=True,
                    description="Passphrase sealing the ledger's member snapshots at rest "
                    "(default $HRSYNC_DLQ_KEY); a ledger written before is sealed on the next "
                    "run. Without one the ledger keeps them plaintext (a warning says so)"),
        th.Property("control_number_path", th.StringType,
                    description="File holding the last ISA/GS/ST control number (default "
                    "<work_dir>/control-number); shared by every run that uses the same "
                    "sender id, never reset"),
        th.Property("dead_letter_path", th.StringType,
                    description="Dead-letter store (default $HRSYNC_DLQ_PATH, else "
                    ".hrsync/deadletters.sqlite)"),
        th.Property("audit_log_path", th.StringType,
                    description="Audit log (default $HRSYNC_AUDIT_LOG)"),
        th.Property("keep_files", th.BooleanType, default=False,
                    description="Keep the plaintext 834 after delivery (it holds personal data)"),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Build and validate the file, send nothing, record nothing"),
        th.Property("max_termination_share", th.NumberType, default=0.2,
                    description="Refuse a run that terminates more than this share of the "
                    "members sent before (nothing is sent)"),
        th.Property("mass_termination_floor", th.IntegerType, default=10,
                    description="The guard never fires for this many terminations or fewer"),
        th.Property("allow_mass_termination", th.BooleanType, default=False,
                    description="Explicit override of the mass-termination guard"),
        *SFTP_SETTINGS,
    ).to_dict()  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delivered = False

    @cached_property
    def run(self) -> Run:
        return Run(self.config, self.logger)

    def get_sink_class(self, stream_name: str) -> type[SpoolSink]:
        if stream_name not in STREAM_KEYS:
            raise ConfigError(
                f"target-benefits-834 takes the streams {', '.join(STREAM_KEYS)}; got "
                f"{stream_name!r}: map it with the hris_to_benefits profile (map-hr)"
            )
        return SpoolSink

    def _handle_max_record_age(self) -> None:
        """No time-based drains: the file is planned as a whole at the end of the input."""

    def record_refused(
        self, stream: str, record_key: str, record: Any, field: str, error: str
    ) -> None:
        """A record the reader refused (hrsync.singer_input, already a dead letter): its
        employee's family is left as the carrier has it this run (planned without that
        record, a complete feed would end the coverage it carries)."""
        employee = record.get("employee_id") if isinstance(record, dict) else None
        if employee not in (None, ""):
            self.run.held.add(str(employee).encode("utf-8", "backslashreplace").decode())

    def _write_state_message(self, state: dict) -> None:
        """State is held until the file is delivered: a bookmark must not pass a member the
        carrier never received."""
        if self._delivered:
            super()._write_state_message(state)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        self.logger.warning(
            "target-benefits-834 interrupted by signal %d: nothing recorded (a re-run converges)",
            signum,
        )
        sys.exit(128 + signum)

    def process_endofpipe(self) -> None:
        self.drain_all()
        try:
            summary = self.run.execute()
        finally:
            self.run.close()
        self.logger.info(
            "target-benefits-834 done: %s; %d dead letter(s); delivery: %s",
            ", ".join(f"{v} {k}" for k, v in sorted(summary.outcomes.items())) or "no changes",
            summary.dead_letters,
            summary.delivery or "none",
        )
        if not self.config.get("dry_run"):
            self._delivered = True
        super().process_endofpipe()  # drains nothing more; emits the latest state

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run-level stops end with a clear message and exit status 1, not a traceback."""
        try:
            super().invoke(*args, **kwargs)
        except (
            InvalidFile,
            ConcurrentRun,
            MassTermination,
            TransferError,
            ControlNumberError,
            ConfigError,
        ) as error:
            cls.logger.error("target-benefits-834 stopped: %s", error)
            print(f"target-benefits-834: {error}", file=sys.stderr)
            sys.exit(1)


#: the target-benefits-834 console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetBenefits834, "target-benefits-834")


if __name__ == "__main__":
    main()
