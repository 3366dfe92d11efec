"""A real sshd and a throwaway GnuPG recipient for the payroll-file tests, plus helpers that
run the target in-process and read back (decrypt) what reached the SFTP drop."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.pgp import Recipient
from sandbox.sftp import Sshd, start_sshd

DATE = {"type": ["string", "null"], "format": "date"}
TEXT = {"type": ["string", "null"]}
EMPLOYEE_TEXT = (
    "employee_number", "first_name", "middle_name", "last_name", "preferred_name", "work_email",
    "ssn", "employment_status", "federal_filing_status", "federal_extra_withholding",
    "w4_dependents_amount", "work_state",
)  # fmt: skip
PAY_TEXT = ("rate", "currency", "pay_type", "paid_per", "flsa_status", "pay_schedule")
KEYS = {"employee_id": {"type": "string"}, "row_id": {"type": "string"}}
SCHEMAS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "payroll_employees": (
        {
            "employee_id": {"type": "string"},
            **dict.fromkeys(EMPLOYEE_TEXT, TEXT),
            **dict.fromkeys(("date_of_birth", "hire_date", "termination_date"), DATE),
            "w4_multiple_jobs": {"type": ["boolean", "null"]},
        },
        ["employee_id"],
    ),
    "payroll_jobs": (
        {**KEYS, "effective_date": DATE, "job_title": TEXT, "location": TEXT},
        ["employee_id", "row_id"],
    ),
    "payroll_compensations": (
        {**KEYS, "effective_date": DATE, "end_date": DATE,
         **dict.fromkeys(PAY_TEXT, TEXT)},
        ["employee_id", "row_id"],
    ),
    "payroll_employment_status": (
        {**KEYS, "effective_date": DATE, "status": TEXT, "termination_type": TEXT},
        ["employee_id", "row_id"],
    ),
    "payroll_deductions": (
        {**KEYS, "effective_date": DATE, "end_date": DATE, "deduction_type": TEXT,
         "amount": TEXT, "amount_type": TEXT},
        ["employee_id", "row_id"],
    ),
}  # fmt: skip


def singer_lines(records: list[tuple[str, dict[str, Any]]], state: int = 1) -> str:
    """SCHEMA for every payroll stream, the (stream, record) pairs, then one STATE."""
    out = [
        {"type": "SCHEMA", "stream": s, "schema": {"type": "object", "properties": props},
         "key_properties": keys}
        for s, (props, keys) in SCHEMAS.items()
    ]  # fmt: skip
    out += [{"type": "RECORD", "stream": s, "record": r} for s, r in records]
    out.append({"type": "STATE", "value": {"bookmarks": {"run": state}}})
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in out)


@pytest.fixture(scope="package")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("payroll-sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="package")
def recipient() -> Iterator[Recipient]:
    with Recipient.create("payroll-inbound@provider.example") as r:
        yield r


@pytest.fixture
def drop(sshd: Sshd, tmp_path: Path) -> Path:
    path = sshd.upload_dir / f"payroll-{tmp_path.name}"
    path.mkdir()
    return path


@pytest.fixture
def config(sshd: Sshd, recipient: Recipient, drop: Path, tmp_path: Path) -> dict[str, Any]:
    return {
        "sftp_host": "127.0.0.1",
        "sftp_port": sshd.port,
        "sftp_username": sshd.username,
        "sftp_private_key_path": str(sshd.client_key_path),
        "sftp_known_hosts_path": str(sshd.write_known_hosts(tmp_path / "known_hosts")),
        "sftp_remote_dir": str(drop),
        "pgp_recipient_public_key": recipient.public_key,
        "pgp_recipient_fingerprint": recipient.fingerprint,
        "company_code": "ACME",
        "transfer_ledger_path": str(tmp_path / "transfers.sqlite"),
        "transfer_backoff_seconds": 0,
        "work_dir": str(tmp_path),
    }


class Run:
    """One in-process run: the target, what it printed (STATE lines) and its error."""

    def __init__(self, target: Any, stdout: str, error: BaseException | None) -> None:
        self.target = target
        self.stdout = stdout
        self.error = error

    @property
    def states(self) -> list[dict[str, Any]]:
        """The state values the target emitted (singer targets print the bare value)."""
        return [json.loads(x) for x in self.stdout.splitlines() if x.startswith("{")]


def run_target(config: dict[str, Any], records: list[tuple[str, dict[str, Any]]]) -> Run:
    from target_payroll_file.target import TargetPayrollFile

    target = TargetPayrollFile(config=config, validate_config=True)
    out = io.StringIO()
    error: BaseException | None = None
    with contextlib.redirect_stdout(out):
        try:
            target.listen(file_input=io.StringIO(singer_lines(records)))
        except Exception as exc:
            error = exc
    return Run(target, out.getvalue(), error)


class Harness:
    """The target against the real sshd + gpg: ``run(records, **config)``, ``files()`` (every
    file in the SFTP drop, decrypted: a temporary or partial file would show up here)."""

    def __init__(self, config: dict[str, Any], drop: Path, recipient: Recipient) -> None:
        self.config, self.drop, self.recipient = config, drop, recipient

    def run(self, records: list[tuple[str, dict[str, Any]]], **overrides: Any) -> Run:
        return run_target({**self.config, **overrides}, records)

    def files(self) -> dict[str, bytes]:
        return {p.name: self.recipient.decrypt_file(p) for p in sorted(self.drop.iterdir())}

    def names(self) -> list[str]:
        return sorted(p.name for p in self.drop.iterdir())

    @staticmethod
    def csv_rows(data: bytes) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.fixture
def payroll(config: dict[str, Any], drop: Path, recipient: Recipient) -> Harness:
    return Harness(config, drop, recipient)
