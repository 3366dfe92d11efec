"""What target-payroll-api does with each payroll record, against Gusto, idempotently.

Employees are keyed on the HRIS employee id, kept in the Gusto company custom field named by
``external_id_field``. Every write compares with what Gusto already holds first, so a re-run
with nothing changed in the HRIS writes nothing.

- ``payroll_employees``: create or update (PUT with Gusto's ``version``) the employee; federal
  W-4 (``PUT .../federal_taxes``) when it differs.
- ``payroll_jobs``: one Gusto job per (title, location) of the employee; a new position (two
  concurrent positions, or a transfer) is a new job whose hire date is the row's date.
- ``payroll_compensations``: a compensation on the matching job with its effective date (future
  dates included); refused (RecordError) when effective after the employee's termination.
- ``payroll_employment_status``: ``Terminated`` rows become terminations (``effective_date`` = the
  last day worked, ``run_termination_payroll`` for the final pay); a hire row after a
  termination is a rehire (``POST /v1/employees/{uuid}/rehire``). A future last day that moves
  replaces the pending termination; one the HRIS withdrew is cancelled (``DELETE``).
- ``payroll_deductions``: employee benefits on the company benefit named by the deduction type
  (``employee_deduction``, ``deduct_as_percentage``, effective and expiration dates).
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from hrsync.errors import ConfigError, RecordError
from hrsync.identifiers import ssn_problem
from target_payroll_api.client import GustoClient, GustoError

#: outcome, field names sent (never values), optional short detail
Outcome = tuple[str, list[str], str | None]

PAYMENT_UNITS = {
    "hour": "Hour",
    "week": "Week",
    "month": "Month",
    "year": "Year",
    "pay period": "Paycheck",
    "paycheck": "Paycheck",
}
FILING_STATUSES = {
    "single": "Single",
    "married": "Married",
    "married filing jointly": "Married",
    "head of household": "Head of Household",
    "exempt": "Exempt from withholding",
    "exempt from withholding": "Exempt from withholding",
}
TERMINATED = "terminated"
STREAMS = (
    "payroll_employees",
    "payroll_jobs",
    "payroll_compensations",
    "payroll_employment_status",
    "payroll_deductions",
)


class NotInPayroll(Exception):
    """The record's employee is not a payroll employee (filtered upstream): nothing to do."""


def as_date(
    stream: str, key: str, name: str, value: t.Any, *, required: bool = False
) -> str | None:
    """``YYYY-MM-DD`` from a date, date-time or string; a RecordError naming the field if not."""
    if value is None or value == "":
        if required:
            raise RecordError(stream, key, name, "is required (YYYY-MM-DD)")
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise RecordError(stream, key, name, "is not a date (expected YYYY-MM-DD)") from None


def as_amount(stream: str, key: str, name: str, value: t.Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(stream, key, name, "is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise RecordError(stream, key, name, "must be a non-negative amount")
    return amount


def same_amount(a: t.Any, b: t.Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except InvalidOperation:
        return str(a) == str(b)


@dataclass
class Person:
    """What the target knows about one payroll employee (from Gusto, and from this run)."""

    uuid: str
    data: dict[str, t.Any]
    jobs: list[dict[str, t.Any]] = field(default_factory=list)
    terminations: list[dict[str, t.Any]] = field(default_factory=list)
    hire_date: str | None = None
    termination_date: str | None = None
    seen: bool = False  # its payroll_employees record came in this run
    #: Gusto job uuids of the HRIS job rows seen this run, by effective date, in order
    jobs_by_date: dict[str, list[str]] = field(default_factory=dict)
    comps_by_date: dict[str, int] = field(default_factory=dict)
    rehires: list[dict[str, t.Any]] | None = None
    federal: dict[str, t.Any] | None = None
    benefits: list[dict[str, t.Any]] | None = None


class Payroll:
    """The Gusto company as the target sees it, and one handler per payroll stream."""

    def __init__(self, client: GustoClient, config: t.Mapping[str, t.Any]) -> None:
        self.client = client
        self.logger = logging.getLogger("target-payroll-api")
        self.external_field_name = str(config.get("external_id_field") or "HRIS Employee ID")
        self.run_termination_payroll = bool(config.get("run_termination_payroll", True))
        self.file_new_hire_report = bool(config.get("file_new_hire_report", True))
        self.benefit_names = {
            str(k).lower(): str(v) for k, v in (config.get("benefit_map") or {}).items()
        }
        self._loaded = False
        self.people: dict[str, Person] = {}
        self.failed: dict[str, str] = {}  # employee id -> why it could not be delivered
        self.external_field_id = ""
        self.locations: dict[str, str] = {}
        self.benefits: dict[str, str] = {}

    # --- the company, read once -------------------------------------------------------------

    def load(self) -> None:
        if self._loaded:
            return
        fields = self.client.custom_fields()
        match = [f for f in fields if f.get("name") == self.external_field_name]
        if not match:
            names = ", ".join(repr(f.get("name")) for f in fields) or "none"
            raise ConfigError.at(
                f"the Gusto company has no custom field {self.external_field_name!r} to hold "
                f"the HRIS employee id (it has: {names}); create it or set external_id_field",
                key="external_id_field",
            )
        self.external_field_id = str(match[0].get("uuid") or match[0].get("id"))
        self.locations = {
            str(loc["name"]).lower(): str(loc["uuid"])
            for loc in self.client.locations()
            if loc.get("name")
        }
        self.benefits = {
            str(b["description"]).lower(): str(b["uuid"])
            for b in self.client.company_benefits()
            if b.get("description")
        }
        for emp in self.client.employees():
            external = next(
                (
                    str(cf.get("value"))
                    for cf in emp.get("custom_fields") or []
                    if cf.get("name") == self.external_field_name and cf.get("value")
                ),
                None,
            )
            if external is None:
                continue
            if external in self.people:
                self.logger.warning(
                    "Gusto employees %s and %s both carry HRIS employee id %s: using the first",
                    self.people[external].uuid,
                    emp["uuid"],
                    external,
                )
                continue
            self.people[external] = Person(
                uuid=str(emp["uuid"]),
                data=emp,
                jobs=list(emp.get("jobs") or []),
                terminations=list(emp.get("terminations") or []),
            )
        self._loaded = True

    def person(self, stream: str, employee_id: str) -> Person:
        if employee_id in self.failed:
            raise RecordError(
                stream,
                employee_id,
                "employee_id",
                f"the employee could not be delivered: {self.failed[employee_id]}",
            )
        found = self.people.get(employee_id)
        if found is None:
            raise NotInPayroll(employee_id)
        return found

    # --- employees ------------------------------------------------------------------------------

    def employee(self, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        stream = "payroll_employees"
        desired: dict[str, t.Any] = {}
        for src, dst in (
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("preferred_name", "preferred_first_name"),
            ("work_email", "work_email"),
        ):
            value = rec.get(src)
            desired[dst] = str(value).strip() if value not in (None, "") else None
        for name in ("first_name", "last_name"):
            if not desired[name]:
                raise RecordError(stream, key, name, "is required by Gusto")
        middle = (rec.get("middle_name") or "").strip()
        desired["middle_initial"] = middle[:1] or None
        desired["date_of_birth"] = as_date(stream, key, "date_of_birth", rec.get("date_of_birth"))
        hire = as_date(stream, key, "hire_date", rec.get("hire_date"))
        ended = as_date(stream, key, "termination_date", rec.get("termination_date"))
        if hire and ended and ended < hire:
            raise RecordError(stream, key, "termination_date", "is before the hire date")
        ssn = "".join(ch for ch in str(rec.get("ssn") or "") if ch.isdigit())
        if rec.get("ssn"):
            problem = ssn_problem(ssn) if len(ssn) == 9 else "is not a 9-digit SSN"
            if problem is not None:  # never sent: the SSA never issued it
                raise RecordError(stream, key, "ssn", problem)
        taxes = self._federal_desired(rec, key)
        outcomes: list[Outcome] = []
        existing = self.people.get(key)
        if existing is None:
            body = {k: v for k, v in desired.items() if v is not None}
            if ssn:
                body["ssn"] = ssn
            body["custom_fields"] = [{"id": self.external_field_id, "value": key}]
            created = self.client.send(
                "POST", f"/v1/companies/{self.client.company}/employees", body
            )
            existing = Person(uuid=str(created["uuid"]), data=created)
            self.people[key] = existing
            outcomes.append(("created", sorted(body), None))
        else:
            have = existing.data
            changes = {k: v for k, v in desired.items() if (have.get(k) or None) != v}
            if ssn and not have.get("has_ssn"):
                changes["ssn"] = ssn
            if changes:
                fresh = self._put_versioned(f"/v1/employees/{existing.uuid}", have, changes)
                existing.data = fresh
                outcomes.append(("updated", sorted(changes), None))
            else:
                outcomes.append(("unchanged", [], None))
        existing.hire_date, existing.termination_date, existing.seen = hire, ended, True
        if ended is None and self._pending_termination(existing):
            # the HRIS no longer ends this employment (a withdrawn resignation): cancel it
            self._cancel_pending(existing)
            outcomes.append(("cancelled", [], "termination"))
        if taxes:
            outcomes.append(self._federal(existing, taxes))
        return outcomes

    def _federal_desired(self, rec: dict[str, t.Any], key: str) -> dict[str, t.Any]:
        stream = "payroll_employees"
        desired: dict[str, t.Any] = {}
        status = rec.get("federal_filing_status")
        if status not in (None, ""):
            mapped = FILING_STATUSES.get(str(status).strip().lower())
            if mapped is None:
                raise RecordError(
                    stream,
                    key,
                    "federal_filing_status",
                    "is not a W-4 filing status "
                    f"({', '.join(sorted(set(FILING_STATUSES.values())))})",
                )
            desired["filing_status"] = mapped
        for src, dst in (
            ("federal_extra_withholding", "extra_withholding"),
            ("w4_dependents_amount", "dependents_amount"),
        ):
            if rec.get(src) not in (None, ""):
                desired[dst] = str(as_amount(stream, key, src, rec[src]))
        if rec.get("w4_multiple_jobs") is not None:
            value = rec["w4_multiple_jobs"]
            if not isinstance(value, bool):
                raise RecordError(stream, key, "w4_multiple_jobs", "must be true or false")
            desired["two_jobs"] = value
        if desired:
            desired.setdefault("w4_data_type", "rev_2020_w4")
        return desired

    def _federal(self, person: Person, desired: dict[str, t.Any]) -> Outcome:
        path = f"/v1/employees/{person.uuid}/federal_taxes"
        if person.federal is None:
            person.federal = self.client.get(path) or {}
        have = person.federal
        changes = {
            k: v
            for k, v in desired.items()
            if not (
                same_amount(have.get(k), v)
                if k.endswith(("withholding", "amount"))
                else have.get(k) == v
            )
        }
        if not changes:
            return ("unchanged", [], "federal_taxes")
        person.federal = self._put_versioned(path, have, changes)
        return ("updated", sorted(changes), "federal_taxes")

    def _put_versioned(
        self, path: str, have: dict[str, t.Any], changes: dict[str, t.Any]
    ) -> dict[str, t.Any]:
        """PUT with Gusto's optimistic lock; on 409 (changed meanwhile) read again, retry once."""
        try:
            return dict(self.client.send("PUT", path, {**changes, "version": have.get("version")}))
        except GustoError as exc:
            if exc.status != 409:
                raise
        current = self.client.get(path) or {}
        return dict(self.client.send("PUT", path, {**changes, "version": current.get("version")}))

    # --- jobs and compensations -----------------------------------------------------------------

    def job(self, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        stream = "payroll_jobs"
        person = self.person(stream, str(rec.get("employee_id")))
        effective = as_date(stream, key, "effective_date", rec.get("effective_date"), required=True)
        assert effective is not None
        title = (rec.get("job_title") or "").strip()
        if not title:
            raise RecordError(stream, key, "job_title", "is required for a Gusto job")
        location = (rec.get("location") or "").strip()
        location_uuid = self.locations.get(location.lower())
        if location and location_uuid is None:
            raise RecordError(
                stream,
                key,
                "location",
                "is not a work location of the Gusto company (a position outside the US "
                "payroll, or a location to add in Gusto)",
            )
        match = next(
            (
                j
                for j in person.jobs
                if j.get("title") == title and (j.get("location_uuid") or None) == location_uuid
            ),
            None,
        )
        outcome: Outcome
        if match is None:
            body: dict[str, t.Any] = {"title": title, "hire_date": effective}
            if location_uuid:
                body["location_uuid"] = location_uuid
            match = dict(self.client.send("POST", f"/v1/employees/{person.uuid}/jobs", body))
            person.jobs.append(match)
            outcome = ("created", sorted(body), "job")
        else:
            outcome = ("unchanged", [], "job")
        person.jobs_by_date.setdefault(effective, []).append(str(match["uuid"]))
        return [outcome]

    def _job_for(self, person: Person, effective: str) -> dict[str, t.Any] | None:
        """The job a compensation row belongs to: the n-th job row of the same date (two
        positions start together), else the primary job held on that date."""
        same_day = person.jobs_by_date.get(effective)
        if same_day:
            n = person.comps_by_date.get(effective, 0)
            person.comps_by_date[effective] = n + 1
            if n >= len(same_day):  # more pay rows than delivered job rows on that date
                return None
            return next((j for j in person.jobs if str(j["uuid"]) == same_day[n]), None)
        held = [j for j in person.jobs if str(j.get("hire_date") or "") <= effective]
        pool = held or person.jobs
        if not pool:
            return None
        return sorted(pool, key=lambda j: (not j.get("primary"), str(j.get("hire_date"))))[0]

    def compensation(self, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        stream = "payroll_compensations"
        person = self.person(stream, str(rec.get("employee_id")))
        effective = as_date(stream, key, "effective_date", rec.get("effective_date"), required=True)
        assert effective is not None
        if rec.get("rate") in (None, ""):
            raise RecordError(stream, key, "rate", "is required")
        rate = as_amount(stream, key, "rate", rec["rate"])
        currency = str(rec.get("currency") or "USD").upper()
        if currency != "USD":
            raise RecordError(
                stream,
                key,
                "currency",
                f"{currency} pay cannot be paid by a US payroll (Gusto pays in USD)",
            )
        per = str(rec.get("paid_per") or "").strip().lower()
        unit = PAYMENT_UNITS.get(per)
        if unit is None:
            raise RecordError(
                stream,
                key,
                "paid_per",
                f"{rec.get('paid_per')!r} is not a pay "
                f"period Gusto knows ({', '.join(sorted(set(PAYMENT_UNITS.values())))})",
            )
        exempt = str(rec.get("flsa_status") or "").strip().lower().replace("-", "")
        salaried = str(rec.get("pay_type") or "").strip().lower() == "salary"
        if exempt == "exempt":
            flsa = "Exempt"
        elif exempt in ("nonexempt", "non exempt", ""):
            flsa = "Salaried Nonexempt" if salaried else "Nonexempt"
        else:
            raise RecordError(
                stream,
                key,
                "flsa_status",
                f"{rec.get('flsa_status')!r} is not Exempt or Non-exempt",
            )
        ended = person.termination_date if person.seen else self._gusto_termination(person)
        if ended and effective > ended:
            raise RecordError(
                stream,
                key,
                "effective_date",
                f"pay change effective {effective} is after the termination on {ended}: a "
                "terminated employee is never paid past the last day (rehire first)",
            )
        job = self._job_for(person, effective)
        if job is None:
            raise RecordError(
                stream,
                key,
                "employee_id",
                "no Gusto job to pay this on: the job row of the same date was not "
                "delivered (see payroll_jobs), or the employee has no job yet",
            )
        desired = {"rate": f"{rate:.2f}", "payment_unit": unit, "flsa_status": flsa}
        comps = job.setdefault("compensations", [])
        have = next((c for c in comps if c.get("effective_date") == effective), None)
        if have is None:
            body = {**desired, "effective_date": effective}
            made = self.client.send("POST", f"/v1/jobs/{job['uuid']}/compensations", body)
            comps[:] = [c for c in comps if c.get("effective_date") != effective]
            comps.append(dict(made))
            return [("created", sorted(body), "compensation")]
        changes = {
            k: v
            for k, v in desired.items()
            if not (same_amount(have.get(k), v) if k == "rate" else have.get(k) == v)
        }
        if not changes:
            return [("unchanged", [], "compensation")]
        fresh = self._put_versioned(f"/v1/compensations/{have['uuid']}", have, changes)
        have.clear()
        have.update(fresh)
        return [("updated", sorted(changes), "compensation")]

    def _gusto_termination(self, person: Person) -> str | None:
        """The latest termination Gusto holds that no rehire has followed."""
        if not person.terminations:
            return None
        last = max(str(tm["effective_date"]) for tm in person.terminations)
        rehires = self._rehires(person)
        if any(str(r.get("effective_date")) > last for r in rehires):
            return None
        return last

    # --- terminations and rehires ---------------------------------------------------------------

    def _rehires(self, person: Person) -> list[dict[str, t.Any]]:
        if person.rehires is None:
            if not person.terminations:
                person.rehires = []
            else:
                found = self.client.get(f"/v1/employees/{person.uuid}/rehire")
                person.rehires = [found] if found else []
        return person.rehires

    def status(self, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        stream = "payroll_employment_status"
        person = self.person(stream, str(rec.get("employee_id")))
        effective = as_date(stream, key, "effective_date", rec.get("effective_date"), required=True)
        assert effective is not None
        status = str(rec.get("status") or "").strip()
        if not status:
            raise RecordError(stream, key, "status", "is required")
        if status.lower() == TERMINATED:
            if any(str(tm.get("effective_date")) == effective for tm in person.terminations):
                return [("unchanged", [], "termination")]
            outcomes: list[Outcome] = []
            if self._pending_termination(person):  # the last day moved: replace the pending one
                self._cancel_pending(person)
                outcomes.append(("cancelled", [], "termination"))
            body = {
                "effective_date": effective,
                "run_termination_payroll": self.run_termination_payroll,
            }
            made = self.client.send("POST", f"/v1/employees/{person.uuid}/terminations", body)
            person.terminations.append(dict(made))
            return [*outcomes, ("terminated", sorted(body), None)]
        # a hire (or status change) row: a rehire when it follows a termination
        before = [
            str(tm["effective_date"])
            for tm in person.terminations
            if str(tm.get("effective_date")) < effective
        ]
        if not before:
            return [("unchanged", [], "status")]
        last = max(before)
        if any(last < str(r.get("effective_date")) <= effective for r in self._rehires(person)):
            return [("unchanged", [], "rehire")]
        location = self._rehire_location(person)
        if location is None:
            raise RecordError(
                stream,
                key,
                "location",
                "a Gusto rehire needs a work location and the company has none",
            )
        body = {
            "effective_date": effective,
            "file_new_hire_report": self.file_new_hire_report,
            "work_location_uuid": location,
        }
        made = self.client.send("POST", f"/v1/employees/{person.uuid}/rehire", body)
        self._rehires(person).append(dict(made))
        return [("rehired", sorted(body), None)]

    @staticmethod
    def _pending_termination(person: Person) -> dict[str, t.Any] | None:
        """A termination that has not taken effect yet (Gusto lets only those be deleted)."""
        today = dt.date.today().isoformat()
        pending = [tm for tm in person.terminations if str(tm.get("effective_date")) > today]
        return max(pending, key=lambda tm: str(tm["effective_date"])) if pending else None

    def _cancel_pending(self, person: Person) -> None:
        pending = self._pending_termination(person)
        self.client.call("DELETE", f"/v1/employees/{person.uuid}/terminations")
        person.terminations = [tm for tm in person.terminations if tm is not pending]

    def _rehire_location(self, person: Person) -> str | None:
        for job in sorted(person.jobs, key=lambda j: not j.get("primary")):
            if job.get("location_uuid"):
                return str(job["location_uuid"])
        return next(iter(self.locations.values()), None)

    # --- deductions -----------------------------------------------------------------------------

    def deduction(self, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        stream = "payroll_deductions"
        person = self.person(stream, str(rec.get("employee_id")))
        effective = as_date(stream, key, "effective_date", rec.get("effective_date"), required=True)
        ends = as_date(stream, key, "end_date", rec.get("end_date"))
        kind = str(rec.get("deduction_type") or "").strip()
        if not kind:
            raise RecordError(stream, key, "deduction_type", "is required")
        name = self.benefit_names.get(kind.lower(), kind).lower()
        benefit = self.benefits.get(name)
        if benefit is None:
            raise RecordError(
                stream,
                key,
                "deduction_type",
                f"{kind!r} matches no company benefit in Gusto (have: "
                f"{', '.join(sorted(self.benefits)) or 'none'}); add it or map "
                "it in benefit_map",
            )
        if rec.get("amount") in (None, ""):
            raise RecordError(stream, key, "amount", "is required")
        amount = as_amount(stream, key, "amount", rec["amount"])
        unit = str(rec.get("amount_type") or "").strip().lower()
        if unit not in ("percent", "per_pay_period"):
            raise RecordError(
                stream,
                key,
                "amount_type",
                f"{rec.get('amount_type')!r} is not percent or per_pay_period",
            )
        percent = unit == "percent"
        if percent and amount > 100:
            raise RecordError(stream, key, "amount", "a percentage cannot exceed 100")
        desired = {
            "employee_deduction": f"{amount:.2f}",
            "deduct_as_percentage": percent,
            "expiration_date": ends,
        }
        if person.benefits is None:
            person.benefits = list(
                self.client.get(f"/v1/employees/{person.uuid}/employee_benefits") or []
            )
        have = next(
            (
                b
                for b in person.benefits
                if b.get("company_benefit_uuid") == benefit and b.get("effective_date") == effective
            ),
            None,
        )
        if have is None:
            body = {**desired, "company_benefit_uuid": benefit, "effective_date": effective}
            made = self.client.send("POST", f"/v1/employees/{person.uuid}/employee_benefits", body)
            person.benefits.append(dict(made))
            return [("created", sorted(body), "employee_benefit")]
        changes = {
            k: v
            for k, v in desired.items()
            if not (same_amount(have.get(k), v) if k == "employee_deduction" else have.get(k) == v)
        }
        if not changes:
            return [("unchanged", [], "employee_benefit")]
        fresh = self._put_versioned(f"/v1/employee_benefits/{have['uuid']}", have, changes)
        have.clear()
        have.update(fresh)
        return [("updated", sorted(changes), "employee_benefit")]

    def handle(self, stream: str, rec: dict[str, t.Any], key: str) -> list[Outcome]:
        self.load()
        handler = {
            "payroll_employees": self.employee,
            "payroll_jobs": self.job,
            "payroll_compensations": self.compensation,
            "payroll_employment_status": self.status,
            "payroll_deductions": self.deduction,
        }[stream]
        return handler(rec, key)
