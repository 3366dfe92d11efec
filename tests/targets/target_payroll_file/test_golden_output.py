"""The payroll file is byte-identical to the one the code made before its speed-ups (issue 14).

``golden/`` holds what the target delivered for a messy corpus (accents, apostrophes, formula
injection strings, zero-width characters, over-long fields, CSV quoting, a rehire, two
positions, numbers as JSON floats and integers, malformed records in the middle) in both shipped
layouts, made by the code of commit f282c48 (before the issue 14 speed-ups of this target). Each
run goes through the real sshd and gpg; the file that arrived is decrypted and compared byte for
byte (the fixed-width header's file date and time masked), along with the file name's checksum
(the sha256 of every line's ledger text), the dead letters (record, error) and the re-run, which
must send nothing. ``HRSYNC_WRITE_GOLDEN=1`` rewrites the golden files (only when the output is
meant to change).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.transfer import TransferLedger

from .conftest import SCHEMAS
from .test_target_payroll_file import CHANGES, Rec, deduction, employee, job, pay, status

GOLDEN = Path(__file__).parent / "golden"

FIRST = ["Zoë", "Seán", "François", "Łukasz", "Jürgen", "Ngai", "Priya", "Ærøskøbing", "Øystein",
         "Zo\u200be", "\ufeffAna", "José\u200d", "=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=HYPER",
         "\uff1dfull", "  padded  ", "Ann-Marie"]  # fmt: skip
LAST = ["O'Brien", "D\u2019Arcy", "Groß", "Nowak, Jr.", 'The "Boss"', "Lefèvre", "Te Rangi",
        "Smith\u200b", "Đorđević", "İnce", "Œuvre", "Ħal", "Þórsson", "Müller\u2013Lüdenscheidt",
        "Ō", "van der Berg"]  # fmt: skip
TITLES = ["Barista", "+Director", "-London lead", "@Ops", "Chef de cuisine", "=A1*2", "x" * 101,
          "Trainer\u200b", "Ingénieure"]  # fmt: skip
RATES: list[Any] = ["85000.00", "31.50", 31.5, 50000, "1,234.50", " 18.25 ", "0", "100000"]


def corpus() -> list[Rec]:
    """Hand-picked cases, then generated employees mixing every odd value above."""
    records: list[Rec] = list(CHANGES)
    records += [
        employee("201", first_name='=HYPERLINK("http://evil.example","x")', last_name="@SUM"),
        employee("202", first_name="小龙", last_name="李"),  # fixed width: cannot be ASCII
        employee("203", first_name="Zo\u200be", last_name="Smith\u200d", ssn="123 45 6789"),
        employee("204", first_name="multi\nline", last_name="a,b", work_state=" CA "),
        employee("205", first_name="A" * 61),  # over-long for both layouts
        employee("206", w4_multiple_jobs="yes", federal_extra_withholding=12),
        employee("207", hire_date="2026-02-02T08:30:00Z", date_of_birth="0999-01-01"),
        job("201", "20101", "2026-01-01", "\r=1+1", "-Paris"),
        job("201", "20102", "2026-01-01", "T" * 100, "L" * 100),
        # malformed records in the middle: each is a dead letter, the rest is sent
        pay("208", "20801", "2026-13-45", "50000.00"),
        pay("208", "20802", "2026-01-01", "12.345"),
        employee("209", ssn="666-12-3456"),
        employee("210", work_state=""),
        deduction("211", "21101", "401(k)", "-5", "percent"),
        status("212", "21201", "2026-01-01", "Terminated", "x" * 41),
        pay("214", "21401", "2026-01-01", "1e3"),
        pay("215", "21501", "2026-01-01", 1000.0),
        employee("216", employment_status="retired"),
        # a rehire and two concurrent positions
        status("217", "21701", "2020-01-01", "Full-Time"),
        status("217", "21702", "2023-06-30", "Terminated", "Voluntary"),
        status("217", "21703", "2025-01-06", "Rehired"),
        job("217", "21704", "2025-01-06", "Nurse", "Ward 1"),
        job("217", "21705", "2025-03-01", "Night nurse", "Ward 2"),
        pay("217", "21706", "2025-01-06", 42.5, pay_type="Hourly", paid_per="Hour"),
        pay("217", "21707", "2025-03-01", 45, pay_type="Hourly", paid_per="Hour"),
    ]
    for i in range(120):
        eid = str(30000 + i)
        records.append(
            employee(
                eid,
                first_name=FIRST[i % len(FIRST)],
                last_name=LAST[(i // 3) % len(LAST)],
                ssn=f"{100 + i % 500:03d}-{10 + i % 89:02d}-{1 + i % 9999:04d}",
                w4_multiple_jobs=i % 4 == 0,
                employment_status=("active", "inactive")[i % 2],
                federal_filing_status=("Single", "Married", "Head of Household")[i % 3],
                termination_date=None if i % 5 else "2026-12-31",
            )
        )
        records.append(pay(eid, f"{eid}1", f"2027-0{1 + i % 9}-01", RATES[i % len(RATES)]))
        if i % 4 == 0:
            records.append(job(eid, f"{eid}2", "2026-01-01", TITLES[i % len(TITLES)], "HQ"))
        if i % 7 == 0:
            records.append(deduction(eid, f"{eid}3", "401(k)", f"{i % 10}.5", "percent"))
    return records


def delivered(payroll: Any, layout: str) -> dict[str, Any]:
    """One run: the file that arrived (dated header masked), its checksum, the dead letters."""
    run = payroll.run(corpus(), layout=layout, allow_partial_file=True)
    assert run.error is None, run.error
    assert set(run.target.__dict__["_lean"]) == set(SCHEMAS)  # every stream took the lean path
    ((name, data),) = payroll.files().items()
    checksum = re.fullmatch(r"payroll_ACME_\d{8}_\d{6}_([0-9a-f]{8})\.(csv|txt)\.pgp", name)
    assert checksum is not None, name
    if layout == "payroll_changes_fixed":  # H + company (10) + date (8) + time (6)
        assert re.match(rb"HACME      \d{14}", data)
        data = data[:11] + b"YYYYMMDDHHMMSS" + data[25:]
    letters = sorted(
        [letter.stream, letter.record_key, letter.error] for letter in DeadLetterStore().list()
    )
    again = payroll.run(corpus(), layout=layout, allow_partial_file=True)
    assert again.error is None and again.target.outcome.status == "nothing-to-send"
    assert payroll.names() == [name]
    return {"data": data, "checksum": checksum.group(1), "letters": letters}


@pytest.mark.parametrize("layout", ["payroll_changes", "payroll_changes_fixed"])
def test_delivered_file_is_byte_identical_to_the_golden_one(payroll: Any, layout: str) -> None:
    got = delivered(payroll, layout)
    file_path = GOLDEN / f"{layout}.out"
    meta_path = GOLDEN / f"{layout}.json"
    if os.environ.get("HRSYNC_WRITE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        file_path.write_bytes(got["data"])
        meta = {"checksum": got["checksum"], "letters": got["letters"]}
        meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")
    meta = json.loads(meta_path.read_text("utf-8"))
    assert got["data"] == file_path.read_bytes()
    assert got["checksum"] == meta["checksum"]
    assert got["letters"] == meta["letters"]
    assert len(got["letters"]) >= 10 and got["data"].count(b"\r\n") > 150


@pytest.mark.parametrize("key", ["a ledger key", "k" * 64, "ключ" * 40, "x"])
def test_ledger_hashes_are_the_hmac_they_always_were(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keyed() works on two pre-keyed sha256 states now: a ledger written before (hmac.new)
    still matches, for keys shorter, as long as and longer than sha256's block."""
    monkeypatch.setenv("HRSYNC_LEDGER_KEY", key)
    ledger = TransferLedger(tmp_path / "ledger.sqlite")
    for text in ("", "0" * 64, hashlib.sha256(b"line").hexdigest(), "x" * 200):
        want = hmac.new(key.encode("utf-8"), text.encode("ascii"), hashlib.sha256).hexdigest()
        assert ledger.keyed(text) == want
