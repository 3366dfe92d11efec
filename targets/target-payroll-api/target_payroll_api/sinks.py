"""One record sink per payroll stream; every record is delivered, skipped or dead-lettered."""

from __future__ import annotations

import typing as t

import requests
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import RecordSink

from hrsync.errors import RecordError
from hrsync.http import RetryBudgetExhausted
from hrsync.validation import CompiledValidation
from target_payroll_api.client import GustoError
from target_payroll_api.payroll import STREAMS, NotInPayroll

if t.TYPE_CHECKING:
    from target_payroll_api.target import TargetPayrollAPI

PLUGIN = "target-payroll-api"
DESTINATION = "gusto"
RESOLVE_EVERY = 500
INVALID = "__hrsync_invalid__"


class PayrollSink(CompiledValidation, RecordSink):
    """Routes each record to the handler of its stream (``payroll.Payroll``)."""

    def __init__(self, target: TargetPayrollAPI, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        if self.stream_name not in STREAMS:
            raise RecordError(
                self.stream_name,
                "-",
                None,
                f"target-payroll-api takes only the streams {', '.join(STREAMS)} (map them "
                "with the hris_to_payroll profile)",
            )
        self.owner = target
        self.delivered: list[str] = []
        self.counts: dict[str, int] = {}

    def _validate_and_parse(self, record: dict) -> dict:
        """Schema validation that dead-letters (naming the field) instead of failing the run
        or skipping silently; dates stay as sent (a bad one is named by the handler)."""
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                cause = exc.__cause__
                path = ".".join(str(p) for p in getattr(cause, "absolute_path", ()) or ())
                rule = getattr(cause, "validator", None) or "schema"
                record[INVALID] = (path or None, f"does not match the stream schema ({rule})")
        return record

    def _singer_validate_message(self, record: dict) -> None:
        """A record without its keys is dead-lettered by process_record, not a crash."""

    def record_key(self, record: dict[str, t.Any]) -> str:
        employee = record.get("employee_id")
        employee = "<missing>" if employee in (None, "") else str(employee)
        if self.stream_name == "payroll_employees":
            return employee
        return f"{employee}:{record.get('row_id', '<missing>')}"

    def process_record(self, record: dict, context: dict) -> None:
        invalid = record.pop(INVALID, None)
        key = self.record_key(record)
        payroll = self.owner.payroll
        try:
            if invalid is not None:
                raise RecordError(self.stream_name, key, invalid[0], invalid[1])
            if key.startswith("<missing>"):
                raise RecordError(self.stream_name, key, "employee_id", "is required")
            outcomes = payroll.handle(self.stream_name, record, key)
        except NotInPayroll:
            self._audit(key, "skipped", [], "not a payroll employee")
            return
        except RecordError as exc:
            self._dead_letter(record, key, str(exc), exc.field, "invalid_record")
            return
        except GustoError as exc:
            field = exc.error_key if exc.error_key not in ("", "base") else None
            error = RecordError(self.stream_name, key, field, f"Gusto refused it: {exc}")
            self._dead_letter(record, key, str(error), field, f"http_{exc.status}")
            return
        except (RetryBudgetExhausted, requests.RequestException) as exc:
            error = RecordError(self.stream_name, key, None, f"not delivered after retries: {exc}")
            self._dead_letter(record, key, str(error), None, type(exc).__name__)
            return
        for outcome, fields, detail in outcomes:
            self._audit(key, outcome, fields, detail)
        self.delivered.append(key)
        if len(self.delivered) >= RESOLVE_EVERY:
            self._resolve()

    def _dead_letter(
        self, record: dict, key: str, error: str, field: str | None, error_class: str
    ) -> None:
        self.logger.error("%s (dead-lettered)", error)
        if self.stream_name == "payroll_employees":
            self.owner.payroll.failed[key] = error
        self._audit(key, "failed", [field] if field else [], error)
        self.owner.deadletters.add(
            plugin=PLUGIN,
            stream=self.stream_name,
            record_key=key,
            record=record,
            error=error,
            error_class=error_class,
            schema=self.schema,
            key_properties=self.key_properties,
        )

    def _audit(self, key: str, outcome: str, fields: list[str], detail: str | None) -> None:
        label = (
            outcome
            if detail is None or outcome in ("failed", "skipped")
            else (f"{outcome} {detail}")
        )
        self.counts[label] = self.counts.get(label, 0) + 1
        self.owner.audit.record(
            stream=self.stream_name,
            record_key=key,
            fields=fields,
            destination=DESTINATION,
            outcome=outcome,
            detail=detail,
            employee_id=None if key.startswith("<missing>") else key.split(":", 1)[0],
        )

    def _resolve(self) -> None:
        if self.delivered:
            self.owner.deadletters.resolve(
                plugin=PLUGIN, stream=self.stream_name, record_keys=self.delivered
            )
            self.delivered = []

    def clean_up(self) -> None:
        self._resolve()
        summary = ", ".join(f"{n} {o}" for o, n in sorted(self.counts.items())) or "no records"
        self.logger.info("target-payroll-api %s: %s", self.stream_name, summary)
        super().clean_up()
