"""One run's payroll file: lines in, checks, then encrypt + SFTP + ledger + audit at the end."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hrsync.audit import AuditLog
from hrsync.deadletter import TargetDeadLetters
from hrsync.errors import ConfigError, RecordError
from hrsync.transfer import (
    SentItems,
    SFTPTarget,
    TransferError,
    TransferLedger,
    TransferResult,
    deliver,
    retry_policy_from_config,
)
from target_payroll_file.layout import Layout
from target_payroll_file.writer import PayrollFileBuilder

PLUGIN = "target-payroll-file"
DEFAULT_NAME_TEMPLATE = "payroll_{company_code}_{timestamp:%Y%m%d_%H%M%S}_{checksum}{extension}"

__all__ = ["Outcome", "PayrollFeed", "PayrollFileHeld"]


class PayrollFileHeld(TransferError):
    """Invalid records: the file was not sent (the valid lines go with the next run)."""


@dataclass
class Outcome:
    status: str  # sent | already-sent | nothing-to-send | held
    lines: int = 0
    already_sent: int = 0
    invalid: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    transfer: TransferResult | None = None


class PayrollFeed:
    def __init__(self, config: Mapping[str, Any], layout: Layout, logger: logging.Logger) -> None:
        self.config = config
        self.layout = layout
        self.logger = logger
        self.sftp = SFTPTarget.from_config(config)
        self.ledger = TransferLedger(config.get("transfer_ledger_path"))
        self.audit = AuditLog(config.get("audit_log_path"))
        self.letters = TargetDeadLetters(PLUGIN)
        self.builder = PayrollFileBuilder(layout, work_dir=config.get("work_dir"))
        self.invalid = 0
        self.ignored: dict[str, int] = {}
        self._stack = contextlib.ExitStack()
        self.sent_items: SentItems = self._stack.enter_context(
            self.ledger.items(self.sftp.destination)
        )
        self.company_code = str(config.get("company_code") or "hrsync")
        self.template = str(config.get("file_name_template") or DEFAULT_NAME_TEMPLATE)
        self.file_name(dt.datetime.now(dt.UTC))  # a broken template fails before any work

    # --- lines ----------------------------------------------------------------------------

    def accept(self, stream: str, record_key: str, values: list[str]) -> None:
        self._already_sent(self.builder.add(stream, record_key, values, self.sent_items))

    def _already_sent(self, lines: list[tuple[str, str]]) -> None:
        for stream, record_key in lines:
            self.letters.delivered(stream, [record_key])  # already at the provider

    def reject(
        self, stream: str, record_key: str, record: dict[str, Any], error: RecordError
    ) -> None:
        self.invalid += 1
        self.logger.error("target-payroll-file: %s", error)
        self.letters.dead(
            stream=stream,
            record_key=record_key,
            record=record,
            error=str(error),
            error_class="invalid_record",
        )

    # --- the file -------------------------------------------------------------------------

    def file_name(self, now: dt.datetime, checksum: str = "0" * 8) -> str:
        extension = self.layout.file_extension + (
            ".asc" if self.config.get("pgp_armor") else ".pgp"
        )
        try:
            name = self.template.format(
                company_code=self.company_code,
                layout=self.layout.name,
                timestamp=now,
                checksum=checksum[:8],
                extension=extension,
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError.at(
                f"{exc!r}: use {{company_code}}, {{layout}}, {{timestamp:%Y%m%d}}, {{checksum}}, "
                "{{extension}}",
                key="file_name_template",
            ) from None
        if "/" in name or not name.strip("."):
            raise ConfigError.at(f"{name!r} is not a plain file name", key="file_name_template")
        return name

    def finish(self) -> Outcome:
        """Send the file (or say why not). Raises PayrollFileHeld / TransferError on failure."""
        builder = self.builder
        self._already_sent(builder.flush(self.sent_items))  # the last lines queued
        outcome = Outcome(
            status="held",
            lines=builder.rows,
            already_sent=builder.already_sent,
            invalid=self.invalid,
            ignored=dict(self.ignored),
        )
        for stream, count in self.ignored.items():
            self.logger.info(
                "target-payroll-file: %d %s record(s) ignored (not in layout %s)",
                count,
                stream,
                self.layout.name,
            )
        if self.invalid and not self.config.get("allow_partial_file"):
            self.audit.record(
                stream=self.layout.name,
                record_key=None,
                fields=self.layout.field_names,
                destination=self.sftp.destination,
                outcome="held",
                detail=f"{self.invalid} invalid record(s); {builder.rows} valid line(s) not sent",
            )
            self.letters.flush()
            raise PayrollFileHeld(
                f"payroll file not sent: {self.invalid} record(s) failed the layout "
                f"{self.layout.name} (each is a dead letter in {self.letters.store.path} naming "
                f"the record and field); fix them in the HRIS and re-run, or set "
                "allow_partial_file to send the valid lines without them"
            )
        if builder.rows == 0:
            self.letters.flush()
            self.logger.info(
                "target-payroll-file: nothing new to send (%d line(s) already sent)",
                builder.already_sent,
            )
            outcome.status = "nothing-to-send"
            return outcome
        now = dt.datetime.now(dt.UTC)
        name = self.file_name(now, builder.digest.hexdigest())
        plaintext = builder.finish(name, self.company_code, now)
        result = deliver(
            plaintext,
            self.sftp,
            recipient_public_key=str(self.config.get("pgp_recipient_public_key") or ""),
            fingerprint=self.config.get("pgp_recipient_fingerprint"),
            armor=bool(self.config.get("pgp_armor")),
            remote_name=name,
            record_count=builder.rows,
            content_key=builder.digest.hexdigest(),  # the lines, not the dated header
            ledger=self.ledger,
            audit=self.audit,
            stream=self.layout.name,
            fields=self.layout.field_names,
            retry=retry_policy_from_config(self.config),
        )
        self.sent_items.add(((k, s) for k, s, _, _ in builder.items()), result.file_name)
        self._delivered(builder)
        self.letters.flush()
        outcome.status = result.status
        outcome.transfer = result
        self.logger.info(
            "target-payroll-file: %s %s (%d line(s), %d byte(s) encrypted, sha256 %s, "
            "%d attempt(s)); %d line(s) already sent before",
            result.status,
            result.file_name,
            builder.rows,
            result.sent_size,
            result.sent_sha256,
            result.attempts,
            builder.already_sent,
        )
        return outcome

    def _delivered(self, builder: PayrollFileBuilder) -> None:
        """Every line written reached the provider: its dead letters (from earlier runs) are
        resolved, a few hundred keys at a time."""
        batch: dict[str, list[str]] = {}
        count = 0
        for _, _, stream, record_key in builder.items():
            batch.setdefault(stream, []).append(record_key)
            count += 1
            if count >= TargetDeadLetters.BATCH:
                for name, keys in batch.items():
                    self.letters.delivered(name, keys)
                batch, count = {}, 0
        for name, keys in batch.items():
            self.letters.delivered(name, keys)

    def close(self) -> None:
        self.builder.close()
        self._stack.close()
