"""A Gusto sandbox per test and a helper that runs target-payroll-api on Singer messages."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.gusto import Gusto
from sandbox.server import Sandbox
from target_payroll_api.target import TargetPayrollAPI

STRING = {"type": ["string", "null"]}
SCHEMAS: dict[str, list[str]] = {
    "payroll_employees": [
        "employee_id",
        "employee_number",
        "first_name",
        "middle_name",
        "last_name",
        "preferred_name",
        "work_email",
        "date_of_birth",
        "ssn",
        "hire_date",
        "termination_date",
        "employment_status",
        "federal_filing_status",
        "federal_extra_withholding",
        "w4_multiple_jobs",
        "w4_dependents_amount",
        "work_state",
    ],
    "payroll_jobs": ["employee_id", "row_id", "effective_date", "job_title", "location"],
    "payroll_compensations": [
        "employee_id",
        "row_id",
        "effective_date",
        "end_date",
        "rate",
        "currency",
        "pay_type",
        "paid_per",
        "flsa_status",
        "pay_schedule",
    ],
    "payroll_employment_status": [
        "employee_id",
        "row_id",
        "effective_date",
        "status",
        "termination_type",
    ],
    "payroll_deductions": [
        "employee_id",
        "row_id",
        "effective_date",
        "end_date",
        "deduction_type",
        "amount",
        "amount_type",
    ],
}


def schema_message(stream: str) -> dict[str, Any]:
    props: dict[str, Any] = dict.fromkeys(SCHEMAS[stream], STRING)
    if stream == "payroll_employees":
        props["w4_multiple_jobs"] = {"type": ["boolean", "null"]}
    keys = ["employee_id"] if stream == "payroll_employees" else ["employee_id", "row_id"]
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": props},
        "key_properties": keys,
    }


@dataclass
class Payroll:
    sandbox: Sandbox
    workdir: Path

    @property
    def app(self) -> Gusto:
        app = self.sandbox.apps["gusto"]
        assert isinstance(app, Gusto)
        return app

    @property
    def url(self) -> str:
        return self.sandbox.url("gusto")

    def config(self, **extra: Any) -> dict[str, Any]:
        g = self.sandbox.info()["gusto"]
        return {
            "api_url": g["api_url"],
            "client_id": g["client_id"],
            "client_secret": g["client_secret"],
            "refresh_token": g["refresh_token"],
            "company_uuid": g["company_uuid"],
            "token_file": str(self.workdir / "token.json"),
            "audit_log_path": str(self.workdir / "audit.jsonl"),
            "dead_letter_path": str(self.workdir / "dlq.sqlite"),
            "backoff_base_seconds": 0,
            "max_retries": 4,
            **extra,
        }

    def run(self, records: list[tuple[str, dict[str, Any]]], **config: Any) -> TargetPayrollAPI:
        """Run the target on SCHEMA + RECORD messages (streams in the order first seen)."""
        lines: list[str] = []
        seen: set[str] = set()
        for stream, record in records:
            if stream not in seen:
                seen.add(stream)
                lines.append(json.dumps(schema_message(stream)))
            lines.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
        target = TargetPayrollAPI(config=self.config(**config), validate_config=True)
        target.listen(file_input=io.StringIO("\n".join(lines) + "\n"))
        return target

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/gusto/state", timeout=10).json()

    def employee(self, hris_id: str) -> dict[str, Any]:
        return self.state()["employees"][hris_id]

    def writes(self) -> int:
        return len(self.app.writes)

    def audit(self) -> list[dict[str, Any]]:
        return AuditLog.read(self.workdir / "audit.jsonl")

    def dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self.workdir / "dlq.sqlite")


@pytest.fixture
def payroll(tmp_path: Path) -> Iterator[Payroll]:
    with Sandbox(employees=5, vendors=("gusto",)) as sb:
        env = Payroll(sb, tmp_path)
        env.app.rate_limit = 100_000  # the rate-limit test lowers it again
        yield env
