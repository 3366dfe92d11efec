"""target-payroll-file against a real OpenSSH sshd and real GnuPG: every file that reached the
SFTP drop is decrypted and compared with the records that went in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError, RecordError
from hrsync.transfer import HostKeyMismatchError, TransferLedger
from sandbox.sftp import DroppingProxy, Sshd, keygen
from target_payroll_file.feed import PayrollFileHeld
from target_payroll_file.layout import load_layout
from target_payroll_file.writer import _line_json

Rec = tuple[str, dict[str, Any]]


def employee(eid: str, **kw: Any) -> Rec:
    record = {
        "employee_id": eid,
        "employee_number": f"E{eid}",
        "first_name": "Zoë",
        "last_name": "O'Brien-Müller",
        "ssn": "123-45-6789",
        "date_of_birth": "1990-04-01",
        "hire_date": "2021-03-15",
        "employment_status": "active",
        "federal_filing_status": "Married",
        "federal_extra_withholding": "25.00",
        "w4_multiple_jobs": False,
        "w4_dependents_amount": "2000.00",
        "work_state": "CA",
    }
    return "payroll_employees", {**record, **kw}


def pay(eid: str, row: str, date: str, rate: str, **kw: Any) -> Rec:
    record = {"employee_id": eid, "row_id": row, "effective_date": date, "rate": rate,
              "currency": "USD", "pay_type": "Salary", "paid_per": "Year",
              "flsa_status": "Exempt", "pay_schedule": "Semi-monthly"}  # fmt: skip
    return "payroll_compensations", {**record, **kw}


def status(eid: str, row: str, date: str, value: str, kind: str | None = None) -> Rec:
    return "payroll_employment_status", {"employee_id": eid, "row_id": row,
                                         "effective_date": date, "status": value,
                                         "termination_type": kind}  # fmt: skip


def job(eid: str, row: str, date: str, title: str, location: str) -> Rec:
    return "payroll_jobs", {"employee_id": eid, "row_id": row, "effective_date": date,
                            "job_title": title, "location": location}  # fmt: skip


def deduction(eid: str, row: str, kind: str, amount: str, unit: str) -> Rec:
    return "payroll_deductions", {"employee_id": eid, "row_id": row, "effective_date":
                                  "2021-03-15", "deduction_type": kind, "amount": amount,
                                  "amount_type": unit}  # fmt: skip


CHANGES: list[Rec] = [
    # a salary change effective in the future: sent now, with its date
    employee("101"),
    pay("101", "10101", "2021-03-15", "85000.00"),
    pay("101", "10102", "2027-04-01", "92500.00"),
    deduction("101", "10103", "401(k)", "6", "percent"),
    # a termination with final pay
    employee(
        "102",
        first_name="Łukasz",
        last_name="Nowak, Jr.",
        termination_date="2026-11-30",
        employment_status="inactive",
    ),
    status("102", "10201", "2019-01-07", "Full-Time"),
    status("102", "10202", "2026-11-30", "Terminated", "Voluntary"),
    # a rehire: terminated in 2024, hired again in 2026
    employee("103", first_name="Aroha", last_name="Ngata", hire_date="2026-02-02"),
    status("103", "10301", "2018-05-01", "Full-Time"),
    status("103", "10302", "2024-06-30", "Terminated", "Involuntary"),
    status("103", "10303", "2026-02-02", "Part-Time"),
    pay(
        "103",
        "10304",
        "2026-02-02",
        "31.50",
        pay_type="Hourly",
        paid_per="Hour",
        flsa_status="Non-exempt",
    ),
    # two concurrent positions, each with its own pay
    employee("104", first_name="Prince", last_name="Prince"),
    job("104", "10401", "2022-01-10", "Barista", "Austin"),
    job("104", "10402", "2023-09-01", "Trainer", "Austin"),
    pay("104", "10403", "2022-01-10", "18.25", pay_type="Hourly", paid_per="Hour"),
    pay("104", "10404", "2023-09-01", "24.00", pay_type="Hourly", paid_per="Hour"),
]


def by_key(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], dict[str, str]]:
    return {(r["RECORD_TYPE"], r["EMPLOYEE_ID"], r["ROW_ID"]): r for r in rows}


def test_change_file_arrives_encrypted_and_matches_the_records(payroll: Any) -> None:
    run = payroll.run(CHANGES)
    assert run.error is None, run.error
    files = payroll.files()
    assert len(files) == 1
    ((name, data),) = files.items()
    assert name.startswith("payroll_ACME_") and name.endswith(".csv.pgp")
    assert b"123-45-6789" not in (payroll.drop / name).read_bytes()  # encrypted at rest
    assert data.startswith(b"RECORD_TYPE,EMPLOYEE_ID,ROW_ID,EFFECTIVE_DATE,")
    assert data.endswith(b"\r\n")
    rows = by_key(payroll.csv_rows(data))
    assert len(rows) == len(CHANGES)

    zoe = rows[("EMP", "101", "")]
    assert (zoe["FIRST_NAME"], zoe["LAST_NAME"]) == ("Zoë", "O'Brien-Müller")
    assert (zoe["SSN"], zoe["FEDERAL_FILING_STATUS"], zoe["W4_MULTIPLE_JOBS"]) == (
        "123456789",
        "M",
        "N",
    )
    future = rows[("PAY", "101", "10102")]
    assert (future["EFFECTIVE_DATE"], future["PAY_RATE"], future["PAY_TYPE"]) == (
        "2027-04-01",
        "92500.00",
        "SALARY",
    )
    assert rows[("DED", "101", "10103")]["DEDUCTION_AMOUNT_TYPE"] == "PERCENT"

    leaver = rows[("EMP", "102", "")]
    assert leaver["LAST_NAME"] == "Nowak, Jr." and leaver["TERMINATION_DATE"] == "2026-11-30"
    assert leaver["EMPLOYMENT_STATUS"] == "I"
    term = rows[("STS", "102", "10202")]
    assert (term["EFFECTIVE_DATE"], term["FINAL_PAY"], term["TERMINATION_TYPE"]) == (
        "2026-11-30",
        "Y",
        "Voluntary",
    )
    assert rows[("STS", "102", "10201")]["FINAL_PAY"] == "N"

    rehire = [rows[("STS", "103", r)] for r in ("10302", "10303")]
    assert [(r["EFFECTIVE_DATE"], r["EMPLOYMENT_CHANGE"], r["FINAL_PAY"]) for r in rehire] == [
        ("2024-06-30", "Terminated", "Y"),
        ("2026-02-02", "Part-Time", "N"),
    ]
    assert rows[("EMP", "103", "")]["HIRE_DATE"] == "2026-02-02"
    assert rows[("EMP", "103", "")]["TERMINATION_DATE"] == ""
    assert rows[("PAY", "103", "10304")]["PAY_RATE"] == "31.50"

    two = [rows[("PAY", "104", r)] for r in ("10403", "10404")]
    assert [(r["PAY_RATE"], r["PAY_PER"]) for r in two] == [("18.25", "HOUR"), ("24.00", "HOUR")]
    assert {rows[("JOB", "104", r)]["JOB_TITLE"] for r in ("10401", "10402")} == {
        "Barista",
        "Trainer",
    }

    # the transfer is logged: name, checksum, size, record count; no contents
    sent = [e for e in AuditLog.read() if e["outcome"] == "sent"]
    assert len(sent) == 1 and sent[0]["record_key"] == name
    assert f"records={len(CHANGES)}" in sent[0]["detail"] and "sha256=" in sent[0]["detail"]
    assert "rate" in sent[0]["fields"] and "ssn" in sent[0]["fields"]
    log = Path(AuditLog().path).read_text(encoding="utf-8")
    assert "123-45-6789" not in log and "92500" not in log and "Zoë" not in log
    assert run.states  # state moves only after the file was delivered


def test_rerun_does_not_resend_and_a_new_change_goes_alone(payroll: Any) -> None:
    assert payroll.run(CHANGES).error is None
    first = payroll.names()
    again = payroll.run(CHANGES)
    assert again.error is None and again.target.outcome.status == "nothing-to-send"
    assert again.target.outcome.already_sent == len(CHANGES)
    assert payroll.names() == first
    raise_ = pay("101", "10105", "2027-10-01", "97000.00")
    third = payroll.run([*CHANGES, raise_])
    assert third.error is None and third.target.outcome.lines == 1
    new = [n for n in payroll.names() if n not in first]
    assert len(new) == 1
    rows = payroll.csv_rows(payroll.files()[new[0]])
    assert [(r["ROW_ID"], r["PAY_RATE"]) for r in rows] == [("10105", "97000.00")]


def test_malformed_record_is_a_dead_letter_and_nothing_is_sent(payroll: Any) -> None:
    bad = pay("105", "10501", "2026-13-01", "abc")
    run = payroll.run([*CHANGES, bad])
    assert isinstance(run.error, PayrollFileHeld)
    assert "1 record(s) failed the layout" in str(run.error)
    assert payroll.names() == []  # not sent half-valid
    assert run.states == []  # no state: the next run reads these records again
    (letter,) = DeadLetterStore().list()
    assert (letter.plugin, letter.stream, letter.record_key) == (
        "target-payroll-file",
        "payroll_compensations",
        "105/10501",
    )
    assert "record 105/10501: field effective_date: '2026-13-01' is not a date" in letter.error
    assert letter.record == bad[1] and letter.error_class == "invalid_record"
    held = [e for e in AuditLog.read() if e["outcome"] == "held"]
    assert len(held) == 1

    # allowed: the valid lines go, the bad one stays a dead letter
    partial = payroll.run([*CHANGES, bad], allow_partial_file=True)
    assert partial.error is None
    (data,) = payroll.files().values()
    assert len(payroll.csv_rows(data)) == len(CHANGES)
    assert len(DeadLetterStore().list()) == 1

    # fixed in the HRIS: only the fixed line is sent, and the letter is resolved
    fixed = pay("105", "10501", "2026-12-01", "51000.00")
    done = payroll.run([*CHANGES, fixed])
    assert done.error is None and done.target.outcome.lines == 1
    assert DeadLetterStore().list() == []
    assert len(payroll.names()) == 2


def test_each_bad_field_is_named(payroll: Any) -> None:
    cases = [
        (employee("201", work_state="California"), "field work_state: does not match [A-Z]{2}"),
        (employee("202", ssn="12-345"), "field ssn: does not match [0-9]{9}"),
        (employee("203", first_name=None, last_name=None), "field first_name: is required"),
        (pay("204", "1", "2026-01-01", "12.345"), "field rate: 12.345 has more than 2 decimal"),
        (pay("205", "1", "2026-01-01", "-5.00"), "field rate: -5.00 is below the minimum 0"),
        (
            pay("206", "1", "2026-01-01", "9.00", pay_type="Barter"),
            "field pay_type: 'Barter' is not one of",
        ),
        (status("207", "1", "2026-01-01", None), "field employment_change: is required"),  # type: ignore[arg-type]
    ]
    run = payroll.run([rec for rec, _ in cases])
    assert isinstance(run.error, PayrollFileHeld)
    letters = {letter.record_key.split("/")[0]: letter.error for letter in DeadLetterStore().list()}
    for stream_record, reason in cases:
        eid = stream_record[1]["employee_id"]
        assert reason in letters[eid], (eid, letters[eid])
    assert payroll.names() == []


def test_changed_host_key_sends_nothing_and_keeps_state(
    payroll: Any, tmp_path: Path, sshd: Sshd
) -> None:
    kind, blob = keygen(tmp_path / "mitm").split()[:2]
    known = tmp_path / "known_hosts_changed"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n", encoding="ascii")
    run = payroll.run(CHANGES, sftp_known_hosts_path=str(known))
    assert isinstance(run.error, HostKeyMismatchError)
    assert payroll.names() == [] and run.states == []
    assert TransferLedger(payroll.config["transfer_ledger_path"]).all() == []
    assert payroll.run(CHANGES).error is None  # the right key: sent in full
    (data,) = payroll.files().values()
    assert len(payroll.csv_rows(data)) == len(CHANGES)


def test_drop_mid_upload_is_retried_without_a_partial_file(
    payroll: Any, sshd: Sshd, tmp_path: Path
) -> None:
    many = [pay(str(1000 + i), str(i), "2026-12-01", f"{50000 + i}.00") for i in range(6000)]
    with DroppingProxy(sshd.port, drop_after_bytes=20_000, drops=1) as proxy:
        known = sshd.write_known_hosts(tmp_path / "known_hosts_proxy", proxy.port)
        run = payroll.run(many, sftp_port=proxy.port, sftp_known_hosts_path=str(known))
        assert proxy.dropped == 1
    assert run.error is None, run.error
    assert run.target.outcome.transfer.attempts == 2
    (name,) = payroll.names()  # no temporary or partial file left beside it
    assert (payroll.drop / name).stat().st_size > 30_000  # so the cut was mid-upload
    rows = payroll.csv_rows(payroll.files()[name])
    assert [r["PAY_RATE"] for r in rows] == [f"{50000 + i}.00" for i in range(6000)]


def test_fixed_width_file_with_header_typed_detail_and_trailer(payroll: Any) -> None:
    records = [*CHANGES, employee("301", first_name="美咲", last_name="山田")]
    run = payroll.run(records, layout="payroll_changes_fixed", allow_partial_file=True)
    assert run.error is None
    ((name, data),) = payroll.files().items()
    assert name.endswith(".txt.pgp")
    lines = data.decode("ascii").split("\r\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert {len(line) for line in lines} == {270}
    header, *detail, trailer = lines
    assert header.startswith("HACME      ") and len(detail) == len(CHANGES)
    layout = load_layout("payroll_changes_fixed")
    spans, start = {}, 0
    for column in layout.columns:
        spans[column.name] = slice(start, start + (column.width or 0))
        start += column.width or 0

    def field(line: str, name: str) -> str:
        return line[spans[name]]

    def find(kind: str, eid: str, row: str = "") -> str:
        (line,) = [x for x in detail if field(x, "CHANGE_TYPE") == kind
                   and field(x, "EMPLOYEE_ID").strip() == eid
                   and field(x, "ROW_ID").strip() == row]  # fmt: skip
        return line

    zoe = find("EMP", "101")
    assert (field(zoe, "LAST_NAME").rstrip(), field(zoe, "FIRST_NAME").rstrip()) == (
        "O'Brien-Muller",
        "Zoe",  # folded to ASCII
    )
    assert field(find("EMP", "102"), "FIRST_NAME").rstrip() == "Lukasz"
    future = find("PAY", "101", "10102")
    assert field(future, "EFFECTIVE_DATE") == "20270401"
    assert field(future, "PAY_RATE") == "00000009250000"  # 92500.00, implied decimals
    assert field(find("STS", "102", "10202"), "FINAL_PAY") == "Y"
    total = sum(int(field(x, "PAY_RATE")) for x in detail if field(x, "PAY_RATE").strip())
    assert trailer[:10] == f"T{len(detail):09d}" and int(trailer[10:28]) == total
    (letter,) = DeadLetterStore().list()
    assert "cannot be written in ascii" in letter.error and letter.record_key == "301"


def test_layout_problems_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\nstreams: {s: {}}\ncolumns:\n  - {name: A, source: a, type: money}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"bad.yml: A: type 'money' is not one of"):
        load_layout(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_layout("no_such_layout")


def test_layout_row_names_the_first_bad_column_whatever_the_field_order() -> None:
    layout = load_layout("payroll_changes")
    columns = [c.name for c in layout.columns]
    stream, record = employee("301")
    bad = {"work_state": "", **record, "ssn": "12-34"}
    bad["work_state"] = "ca"  # met first in the record; SSN comes first in the layout
    with pytest.raises(RecordError, match=r"record 301: field ssn: does not match \[0-9\]\{9\}"):
        layout.row(stream, bad, "301")
    line = layout.row(stream, record, "301")
    assert dict(zip(columns, line, strict=True)) == {
        **dict.fromkeys(columns, ""),
        "RECORD_TYPE": "EMP", "EMPLOYEE_ID": "301", "EMPLOYEE_NUMBER": "E301",
        "LAST_NAME": "O'Brien-Müller", "FIRST_NAME": "Zoë", "SSN": "123456789",
        "DATE_OF_BIRTH": "1990-04-01", "HIRE_DATE": "2021-03-15", "EMPLOYMENT_STATUS": "A",
        "WORK_STATE": "CA", "FEDERAL_FILING_STATUS": "M", "FEDERAL_EXTRA_WITHHOLDING": "25.00",
        "W4_MULTIPLE_JOBS": "N", "W4_DEPENDENTS_AMOUNT": "2000.00",
    }  # fmt: skip
    # a renamed field wins over a field of the target name, as the layout says
    stream, record = status("302", "1", "2026-02-01", "Terminated", "Voluntary")
    line = layout.row(stream, {**record, "employment_change": "Hired"}, "302/1")
    cells = dict(zip(columns, line, strict=True))
    assert (cells["EMPLOYMENT_CHANGE"], cells["FINAL_PAY"]) == ("Terminated", "Y")
    with pytest.raises(RecordError, match="field employment_change: is required"):
        layout.row(stream, {**record, "status": " ", "employment_change": "Hired"}, "302/1")


def test_line_checksum_text_is_json_dumps_so_old_ledgers_still_match() -> None:
    odd = ["", "Zoë", "小龙", '"q"', "back\\slash", "\r\n\t", "\x00\x1f", "\u2028", "😀", "</x>"]
    for values in ([], odd, [odd[1]], odd[::-1]):
        assert _line_json(values) == json.dumps(values, ensure_ascii=False)
    assert _line_json(["a", 1, None]) == json.dumps(["a", 1, None], ensure_ascii=False)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"last_name": "O\ud800"}, "last_name"),
        ({"extra": {"aka": ["x", "\udfff"]}}, "extra.aka[1]"),
    ],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter_and_holds_the_file(
    payroll: Any, bad: dict[str, Any], field: str
) -> None:
    broken = employee("109", **bad)
    run = payroll.run([*CHANGES, broken])  # before: UnicodeEncodeError, no letter at all
    assert isinstance(run.error, PayrollFileHeld)  # as for any record failing the layout
    assert payroll.names() == [] and run.states == []
    (letter,) = DeadLetterStore().list()
    assert (letter.plugin, letter.stream, letter.record_key) == (
        "target-payroll-file",
        "payroll_employees",
        "109",
    )
    assert f"record 109: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken[1] and letter.error_class == "unpaired_surrogate"
    # allowed: every other line goes, the refused record stays a dead letter
    partial = payroll.run([*CHANGES, broken], allow_partial_file=True)
    assert partial.error is None
    (data,) = payroll.files().values()
    assert len(payroll.csv_rows(data)) == len(CHANGES)
    assert [x.record_key for x in DeadLetterStore().list()] == ["109"]
