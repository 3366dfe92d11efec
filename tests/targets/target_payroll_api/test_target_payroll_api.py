"""target-payroll-api against the Gusto sandbox over HTTP; assertions on what Gusto holds."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import requests
from tests.targets.target_payroll_api.conftest import Payroll

TODAY = date.today()
HIRED = (TODAY - timedelta(days=400)).isoformat()
FUTURE = (TODAY + timedelta(days=30)).isoformat()


def employee(eid: str = "1001", **extra: Any) -> tuple[str, dict[str, Any]]:
    rec = {
        "employee_id": eid,
        "employee_number": f"E{eid}",
        "first_name": "Zoë",
        "middle_name": "Ann",
        "last_name": "O'Brien-Łukasiewicz",
        "work_email": f"zoe{eid}@acme.example",
        "date_of_birth": "1988-02-29",
        "ssn": "212-34-5678",
        "hire_date": HIRED,
        "employment_status": "active",
        "federal_filing_status": "Married",
        "federal_extra_withholding": "25.00",
        "w4_multiple_jobs": False,
        "w4_dependents_amount": "2000.00",
        "work_state": "CA",
        **extra,
    }
    return ("payroll_employees", rec)


def job(
    eid: str,
    row: str,
    when: str = HIRED,
    title: str = "Accountant",
    location: str = "San Francisco",
) -> tuple[str, dict[str, Any]]:
    return (
        "payroll_jobs",
        {
            "employee_id": eid,
            "row_id": row,
            "effective_date": when,
            "job_title": title,
            "location": location,
        },
    )


def pay(
    eid: str, row: str, when: str = HIRED, rate: str = "85000.00", **extra: Any
) -> tuple[str, dict[str, Any]]:
    rec = {
        "employee_id": eid,
        "row_id": row,
        "effective_date": when,
        "rate": rate,
        "currency": "USD",
        "pay_type": "Salary",
        "paid_per": "Year",
        "flsa_status": "Exempt",
        "pay_schedule": "Twice a month",
        **extra,
    }
    return ("payroll_compensations", rec)


def status(eid: str, row: str, when: str, value: str = "Full-Time") -> tuple[str, dict[str, Any]]:
    return (
        "payroll_employment_status",
        {"employee_id": eid, "row_id": row, "effective_date": when, "status": value},
    )


def deduction(
    eid: str, row: str, kind: str = "401(k)", amount: str = "6.00", unit: str = "percent"
) -> tuple[str, dict[str, Any]]:
    return (
        "payroll_deductions",
        {
            "employee_id": eid,
            "row_id": row,
            "effective_date": HIRED,
            "deduction_type": kind,
            "amount": amount,
            "amount_type": unit,
        },
    )


def comps(emp: dict[str, Any], title: str | None = None) -> list[tuple[str, str, str]]:
    return sorted(
        (c["effective_date"], c["rate"], c["payment_unit"])
        for j in emp["jobs"]
        if title in (None, j["title"])
        for c in j["compensations"]
    )


def test_new_hire_with_future_dated_raise_tax_and_deductions(payroll: Payroll) -> None:
    payroll.run(
        [
            employee(),
            job("1001", "1"),
            pay("1001", "1"),
            pay("1001", "2", FUTURE, "92000.00"),
            status("1001", "1", HIRED),
            deduction("1001", "1"),
            deduction("1001", "2", "Medical", "125.50", "per_pay_period"),
        ]
    )
    emp = payroll.employee("1001")
    assert (emp["first_name"], emp["last_name"], emp["middle_initial"]) == (
        "Zoë",
        "O'Brien-Łukasiewicz",
        "A",
    )
    assert emp["ssn_on_file"] and emp["date_of_birth"] == "1988-02-29"
    assert comps(emp) == [(HIRED, "85000.00", "Year"), (FUTURE, "92000.00", "Year")]
    assert emp["jobs"][0]["rate"] == "85000.00"  # the raise is not current until its date
    assert emp["jobs"][0]["location_uuid"] is not None
    fed = emp["federal_taxes"]
    assert (fed["filing_status"], fed["extra_withholding"], fed["two_jobs"]) == (
        "Married",
        "25.00",
        False,
    )
    benefits = sorted(
        (b["employee_deduction"], b["deduct_as_percentage"]) for b in emp["employee_benefits"]
    )
    assert benefits == [("125.50", False), ("6.00", True)]
    assert emp["terminations"] == [] and not emp["terminated"]
    # the audit names fields, never values
    created = [e for e in payroll.audit() if e["outcome"] == "created"]
    assert created and all(
        "Zoë" not in str(e) and "212-34" not in str(e) and "21234" not in str(e) for e in created
    )
    assert "ssn" in next(e for e in created if e["stream"] == "payroll_employees")["fields"]


def test_rerun_writes_nothing_and_a_change_is_one_update(payroll: Payroll) -> None:
    records = [employee(), job("1001", "1"), pay("1001", "1"), deduction("1001", "1")]
    payroll.run(records)
    writes = payroll.writes()
    payroll.run(records)
    assert payroll.writes() == writes
    later = [employee(last_name="Smith-Jones", federal_filing_status="Single"), *records[1:]]
    payroll.run(later)
    assert payroll.writes() == writes + 2  # the employee PUT and the federal_taxes PUT
    emp = payroll.employee("1001")
    assert emp["last_name"] == "Smith-Jones"
    assert emp["federal_taxes"]["filing_status"] == "Single"


def test_termination_with_final_pay_and_no_pay_after_it(payroll: Payroll) -> None:
    last_day = (TODAY - timedelta(days=10)).isoformat()
    after = (TODAY - timedelta(days=5)).isoformat()
    payroll.run(
        [
            employee(termination_date=last_day, employment_status="inactive"),
            job("1001", "1"),
            pay("1001", "1"),
            pay("1001", "3", after, "99000.00"),
            status("1001", "1", HIRED),
            status("1001", "2", last_day, "Terminated"),
        ]
    )
    emp = payroll.employee("1001")
    assert emp["terminated"] is True
    assert [(t["effective_date"], t["run_termination_payroll"]) for t in emp["terminations"]] == [
        (last_day, True)
    ]
    assert comps(emp) == [(HIRED, "85000.00", "Year")]  # never paid past the last day
    letters = payroll.dead_letters().list(plugin="target-payroll-api")
    assert [(x.stream, x.record_key) for x in letters] == [("payroll_compensations", "1001:3")]
    assert (
        "field effective_date" in letters[0].error and "after the termination" in letters[0].error
    )
    failed = [e for e in payroll.audit() if e["outcome"] == "failed"]
    assert failed[0]["fields"] == ["effective_date"]
    # a later run (employee not resent) still knows the termination from Gusto
    payroll.run([pay("1001", "3", after, "99000.00")])
    assert comps(payroll.employee("1001")) == [(HIRED, "85000.00", "Year")]


def test_rehire_then_pay_on_the_new_employment(payroll: Payroll) -> None:
    first_hire = (TODAY - timedelta(days=900)).isoformat()
    left = (TODAY - timedelta(days=300)).isoformat()
    back = (TODAY - timedelta(days=100)).isoformat()
    records = [
        employee(hire_date=back),
        job("1001", "1", first_hire),
        job("1001", "2", back),
        pay("1001", "1", first_hire, "70000.00", end_date=left),
        pay("1001", "2", back, "80000.00"),
        status("1001", "1", first_hire),
        status("1001", "2", left, "Terminated"),
        status("1001", "3", back),
    ]
    payroll.run(records)
    emp = payroll.employee("1001")
    assert [t["effective_date"] for t in emp["terminations"]] == [left]
    assert [r["effective_date"] for r in emp["rehires"]] == [back]
    assert emp["terminated"] is False
    assert len(emp["jobs"]) == 1  # back in the same job
    assert comps(emp) == [(first_hire, "70000.00", "Year"), (back, "80000.00", "Year")]
    writes = payroll.writes()
    payroll.run(records)
    assert payroll.writes() == writes
    assert payroll.dead_letters().list() == []


def test_two_positions_are_two_jobs_each_with_its_pay(payroll: Payroll) -> None:
    payroll.run(
        [
            employee(),
            job("1001", "1", title="Accountant"),
            job("1001", "2", title="Support Agent", location="Austin"),
            pay("1001", "1", rate="60000.00"),
            pay(
                "1001",
                "2",
                rate="21.50",
                pay_type="Hourly",
                paid_per="Hour",
                flsa_status="Non-exempt",
            ),
        ]
    )
    emp = payroll.employee("1001")
    assert sorted(j["title"] for j in emp["jobs"]) == ["Accountant", "Support Agent"]
    assert comps(emp, "Accountant") == [(HIRED, "60000.00", "Year")]
    assert comps(emp, "Support Agent") == [(HIRED, "21.50", "Hour")]
    hourly = next(j for j in emp["jobs"] if j["title"] == "Support Agent")
    assert hourly["compensations"][0]["flsa_status"] == "Nonexempt"


def test_malformed_records_are_dead_lettered_with_field_and_reason(payroll: Payroll) -> None:
    payroll.run(
        [
            employee(),
            job("1001", "1"),
            pay("1001", "1", rate="eighty"),
            pay("1001", "2", "2025-02-30"),
            pay("1001", "3", paid_per="Fortnight"),
            deduction("1001", "1", kind="Pet insurance"),
            ("payroll_jobs", {"row_id": "9", "effective_date": HIRED, "job_title": "X"}),
            employee("1002", first_name="  "),
            employee("1003", w4_multiple_jobs="maybe"),
            job("1002", "1"),
            job("4242", "1"),  # not a payroll employee (filtered upstream): skipped, not an error
        ]
    )
    letters = {(x.stream[8:], x.record_key): x for x in payroll.dead_letters().list()}
    assert set(letters) == {
        ("compensations", "1001:1"),
        ("compensations", "1001:2"),
        ("compensations", "1001:3"),
        ("deductions", "1001:1"),
        ("jobs", "<missing>:9"),
        ("employees", "1002"),
        ("jobs", "1002:1"),
        ("employees", "1003"),
    }
    assert "field rate: is not a decimal amount" in letters["compensations", "1001:1"].error
    assert "field effective_date: is not a date" in letters["compensations", "1001:2"].error
    assert "field paid_per" in letters["compensations", "1001:3"].error
    assert "field deduction_type" in letters["deductions", "1001:1"].error
    assert "field employee_id: is required" in letters["jobs", "<missing>:9"].error
    assert "field first_name" in letters["employees", "1002"].error
    assert "could not be delivered" in letters["jobs", "1002:1"].error  # its employee failed
    assert "field w4_multiple_jobs: does not match the stream schema" in (
        letters["employees", "1003"].error
    )
    assert letters["compensations", "1001:2"].error_class == "invalid_record"
    assert "eighty" not in str([x.error for x in letters.values()])  # no values in errors
    assert comps(payroll.employee("1001")) == [(HIRED, "0.00", "Hour")]  # only the job's default
    skipped = [e for e in payroll.audit() if e["outcome"] == "skipped"]
    assert [e["record_key"] for e in skipped] == ["4242:1"]
    # fixed and sent again: delivered, and its letter is resolved
    payroll.run([employee(), job("1001", "1"), pay("1001", "2", HIRED)])
    waiting = {(x.stream, x.record_key) for x in payroll.dead_letters().list()}
    assert ("payroll_compensations", "1001:2") not in waiting
    assert ("payroll_compensations", "1001:3") in waiting


def test_429_and_5xx_are_retried(payroll: Payroll) -> None:
    payroll.sandbox.faults.retry_after = 0
    payroll.sandbox.faults.script[:] = ["429", "503", "ok", "500", "429"]
    payroll.run([employee(), job("1001", "1"), pay("1001", "1")])
    assert payroll.sandbox.faults.injected.get("429") == 2
    assert comps(payroll.employee("1001")) == [(HIRED, "85000.00", "Year")]
    assert payroll.dead_letters().list() == []


def test_the_rate_limit_is_honoured(payroll: Payroll) -> None:
    payroll.app.rate_limit, payroll.app.rate_window = 4, 1.0
    payroll.run([employee(), job("1001", "1"), pay("1001", "1"), deduction("1001", "1")])
    assert comps(payroll.employee("1001")) == [(HIRED, "85000.00", "Year")]
    assert payroll.dead_letters().list() == []


def test_a_persistent_5xx_dead_letters_the_record(payroll: Payroll) -> None:
    payroll.run([employee()])
    payroll.sandbox.faults.paths = r"/jobs$"
    payroll.sandbox.faults.rate_5xx = 1.0
    payroll.run([employee(), job("1001", "1")], max_retries=2)
    payroll.sandbox.faults.reset()
    letters = payroll.dead_letters().list()
    assert [(x.record_key, x.error_class) for x in letters] == [("1001:1", "RetryBudgetExhausted")]
    assert "not delivered after retries" in letters[0].error
    payroll.run([employee(), job("1001", "1")])  # the next run delivers it
    assert payroll.dead_letters().list() == []
    assert len(payroll.employee("1001")["jobs"]) == 1


def test_expired_token_is_refreshed_and_the_rotated_refresh_token_kept(payroll: Payroll) -> None:
    payroll.run([employee()])
    grants = payroll.app.token_grants
    payroll.run([employee("1002")])  # a second process reuses the stored access token
    assert payroll.app.token_grants == grants
    requests.post(f"{payroll.url}/_sandbox/gusto", json={"expire_tokens": True}, timeout=10)
    payroll.run([employee("1003")])  # 401 -> refresh with the stored (rotated) refresh token
    assert payroll.app.token_grants == grants + 1
    assert {"1001", "1002", "1003"} <= set(payroll.state()["employees"])
    assert (payroll.workdir / "token.json").stat().st_mode & 0o077 == 0
    # the configured refresh token was used once and is dead: only the stored one works
    assert payroll.sandbox.info()["gusto"]["refresh_token"] not in payroll.app.refresh_tokens


def test_api_version_header_is_sent(payroll: Payroll) -> None:
    payroll.run([employee()], api_version="2026-02-01")
    assert set(payroll.state()["versions_seen"]) == {"2026-02-01"}


def test_pay_of_an_undelivered_position_never_lands_on_another_job(payroll: Payroll) -> None:
    payroll.run(
        [
            employee(),
            job("1001", "1", title="Accountant"),
            job("1001", "2", title="Research Scientist", location="Zürich"),
            pay("1001", "1", rate="60000.00"),
            pay("1001", "2", rate="70000.00"),
        ]
    )
    emp = payroll.employee("1001")
    assert [j["title"] for j in emp["jobs"]] == ["Accountant"]
    assert comps(emp) == [(HIRED, "60000.00", "Year")]
    letters = {(x.stream, x.record_key): x.error for x in payroll.dead_letters().list()}
    assert "field location: is not a work location" in letters["payroll_jobs", "1001:2"]
    assert "no Gusto job to pay this on" in letters["payroll_compensations", "1001:2"]


def test_a_stale_token_file_falls_back_to_the_configured_refresh_token(payroll: Payroll) -> None:
    (payroll.workdir / "token.json").write_text(
        '{"refresh_token": "from-an-old-sandbox", "access_token": "old", "expires_at": 9e12}'
    )
    payroll.run([employee()])  # 401 on the old access token, 400 on the old refresh token
    assert "1001" in payroll.state()["employees"]
    assert payroll.app.token_grants == 1


def test_a_moved_or_withdrawn_future_termination_is_replaced_or_cancelled(
    payroll: Payroll,
) -> None:
    leaving = (TODAY + timedelta(days=20)).isoformat()
    later = (TODAY + timedelta(days=40)).isoformat()
    base = [job("1001", "1"), pay("1001", "1"), status("1001", "1", HIRED)]
    payroll.run(
        [employee(termination_date=leaving), *base, status("1001", "2", leaving, "Terminated")]
    )
    emp = payroll.employee("1001")
    assert [t["effective_date"] for t in emp["terminations"]] == [leaving]
    assert emp["terminated"] is False  # not before the last day
    payroll.run([employee(termination_date=later), *base, status("1001", "2", later, "Terminated")])
    assert [t["effective_date"] for t in payroll.employee("1001")["terminations"]] == [later]
    payroll.run([employee(), *base])  # the resignation was withdrawn
    assert payroll.employee("1001")["terminations"] == []
    writes = payroll.writes()
    payroll.run([employee(), *base])
    assert payroll.writes() == writes


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"job_title": "Lead \ud800"}, "job_title"), ({"extra": {"aka": ["\udfff"]}}, "extra.aka[0]")],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    payroll: Payroll, bad: dict[str, Any], field: str
) -> None:
    stream, broken = job("1001", "2", "2026-03-01", title="Senior Accountant")
    broken.update(bad)
    payroll.run([employee(), job("1001", "1"), (stream, broken), pay("1001", "1")])
    hired = payroll.employee("1001")  # the records around it reached Gusto
    assert hired["first_name"] == "Zoë"
    assert [c["rate"] for j in hired["jobs"] for c in j["compensations"]] == ["85000.00"]
    (letter,) = payroll.dead_letters().list()
    assert (letter.plugin, letter.stream, letter.record_key) == (
        "target-payroll-api",
        "payroll_jobs",
        "1001:2",  # the target's own key: the fixed record resolves it
    )
    assert f"record 1001:2: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken and letter.error_class == "unpaired_surrogate"
