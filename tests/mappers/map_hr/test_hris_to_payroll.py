"""The hris_to_payroll profile sends identity, pay, tax and deduction fields, and nothing else."""

from __future__ import annotations

from map_hr.profile import load_profile

ALLOWED = {
    "payroll_employees": {
        "employee_id", "employee_number", "first_name", "middle_name", "last_name",
        "preferred_name", "work_email", "date_of_birth", "ssn", "hire_date", "termination_date",
        "employment_status", "federal_filing_status", "federal_extra_withholding",
        "w4_multiple_jobs", "w4_dependents_amount", "work_state",
    },
    "payroll_jobs": {"employee_id", "row_id", "effective_date", "job_title", "location"},
    "payroll_compensations": {
        "employee_id", "row_id", "effective_date", "end_date", "rate", "currency", "pay_type",
        "paid_per", "flsa_status", "pay_schedule",
    },
    "payroll_employment_status": {
        "employee_id", "row_id", "effective_date", "status", "termination_type",
    },
    "payroll_deductions": {
        "employee_id", "row_id", "effective_date", "end_date", "deduction_type", "amount",
        "amount_type",
    },
}  # fmt: skip
NEVER = ("gender", "address", "phone", "survey", "performance", "rating", "manager", "candidate")


def test_only_payroll_fields_leave() -> None:
    profile = load_profile("hris_to_payroll")
    assert profile.data["unknown_streams"] == "deny"
    outputs = {spec["output_stream"]: set(spec["fields"]) for _, _, spec in profile.stream_specs()}
    assert outputs == ALLOWED
    for fields in outputs.values():
        assert not [f for f in fields if any(word in f for word in NEVER)]
    sources = {
        src
        for _, _, spec in profile.stream_specs()
        for f in spec["fields"].values()
        for src in ([f["from"]] if isinstance(f.get("from"), str) else f.get("from") or [])
    }
    assert not [s for s in sources if any(word in s.lower() for word in NEVER)]
