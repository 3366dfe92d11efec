"""BambooHR API v1, as documented, served from the seeded world plus an overlay of writes.

Both bases answer: the current ``/api/v1/...`` and the legacy ``/api/gateway.php/{company}/v1/...``.
What it follows (sources and assumptions: ``sandbox/docs/bamboohr.md``):

- Basic auth with the API key as user name and any password; 401 otherwise.
- ``GET /employees/directory`` (active only), ``GET /employees/{id}?fields=a,b`` (<= 400 fields),
  ``POST /reports/custom?format=JSON`` (includes inactive; ``filters.lastChanged``),
  ``GET /employees/changed?since=...&type=inserted|updated|deleted``,
  ``GET /employees/{id|all}/tables/{jobInfo|compensation|employmentStatus}``,
  ``GET /employees/changed/tables/{table}?since=...``, ``GET /meta/fields``.
- ``POST /employees`` (firstName and lastName required) -> 201, empty body, id in ``Location``;
  ``POST /employees/{id}`` -> 200; ``DELETE``-style removal is not offered by BambooHR's API.
- Errors carry the reason in the ``X-BambooHR-Error-Message`` header with an empty body.
- Rate limiting: 429 + ``Retry-After`` (``legacy_503=True``: the pre-2026-09-16 503 + Retry-After).
- XML unless ``Accept: application/json`` (custom reports: ``format=json|xml``); ``/meta/tables``;
  the newer cursor-paged ``GET /api/v1/employees`` (``page[limit]`` <= 2500, ``page[after]``,
  ``meta.page.nextCursor``) with ``{"error": {"code", "message"}}`` errors.
- Writes are checked as documented: unknown fields 406, invalid values and duplicate work e-mails
  409; deleted employees (sandbox admin only: the public API cannot delete) leave every endpoint
  but ``/employees/changed``, where they show as ``Deleted``.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from sandbox import benefits as benefits_api
from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import Employment, Person, World
from sandbox.webhooks import WebhookSender, add_routes

CANDIDATE_FIELD = "customATSCandidateID"
MAX_FIELDS = 400
LIST_LIMIT_DEFAULT = 250
LIST_LIMIT_MAX = 2500
ERROR_HEADER = "X-BambooHR-Error-Message"

#: field alias -> (id, display name, type), as /meta/fields lists them
FIELDS: dict[str, tuple[int, str, str]] = {
    "id": (0, "Employee #", "int"),
    "employeeNumber": (17, "Employee #", "text"),
    "firstName": (1, "First Name", "text"),
    "middleName": (2, "Middle Name", "text"),
    "lastName": (3, "Last Name", "text"),
    "preferredName": (1358, "Preferred Name", "text"),
    "displayName": (4, "Display Name", "text"),
    "workEmail": (15, "Work Email", "email"),
    "homeEmail": (16, "Home Email", "email"),
    "workPhone": (18, "Work Phone", "phone"),
    "mobilePhone": (13, "Mobile Phone", "phone"),
    "dateOfBirth": (7, "Birth Date", "date"),
    "ssn": (9, "SSN", "ssn"),
    "gender": (10, "Gender", "gender"),
    "address1": (19, "Address Line 1", "text"),
    "address2": (20, "Address Line 2", "text"),
    "city": (21, "City", "text"),
    "state": (22, "State", "state"),
    "zipcode": (23, "Zip Code", "text"),
    "country": (24, "Country", "country"),
    "hireDate": (25, "Hire Date", "date"),
    "originalHireDate": (1355, "Original Hire Date", "date"),
    "terminationDate": (1357, "Termination Date", "date"),
    "status": (1356, "Status", "status"),
    "employmentHistoryStatus": (1360, "Employment Status", "list"),
    "department": (4020, "Department", "list"),
    "division": (4021, "Division", "list"),
    "jobTitle": (4022, "Job Title", "list"),
    "location": (4023, "Location", "list"),
    "supervisorEId": (4025, "Supervisor EID", "int"),
    "payRate": (19_001, "Pay Rate", "currency"),
    "payType": (156, "Pay Type", "pay_type"),
    "payPer": (157, "Pay Per", "list"),
    "paidPer": (158, "Paid Per", "list"),
    "paySchedule": (159, "Pay Schedule", "list"),
    "exempt": (4024, "FLSA Code", "list"),
    "lastChanged": (1359, "Last Changed", "timestamp"),
    CANDIDATE_FIELD: (4500, "ATS Candidate ID", "text"),
    # payroll tax: custom fields (BambooHR's API exposes no withholding fields of its own)
    "customFederalFilingStatus": (4510, "Federal Filing Status", "list"),
    "customFederalExtraWithholding": (4511, "Federal Extra Withholding", "currency"),
    "customW4MultipleJobs": (4512, "W-4 Multiple Jobs", "checkbox"),
    "customW4DependentsAmount": (4513, "W-4 Dependents Amount", "currency"),
    "customWorkState": (4514, "Work State (Withholding)", "state"),
}
WRITABLE = set(FIELDS) - {"id", "displayName", "lastChanged", "status"}
#: BambooHR's field list names "paidPer"; "payPer" is the same field under its older name
SAME_FIELD = {"payPer": "paidPer", "paidPer": "payPer"}
_BY_ID = {str(fid): alias for alias, (fid, _, _) in FIELDS.items()}

#: table alias -> (column alias, id, type, name), as /meta/tables lists them
TABLE_COLUMNS: dict[str, tuple[tuple[str, int, str, str], ...]] = {
    "jobInfo": (
        ("date", 1001, "date", "Effective Date"),
        ("location", 1002, "list", "Location"),
        ("department", 1003, "list", "Department"),
        ("division", 1004, "list", "Division"),
        ("jobTitle", 1005, "list", "Job Title"),
        ("reportsTo", 1006, "employee", "Reports To"),
    ),
    "compensation": (
        ("startDate", 1201, "date", "Effective Date"),
        ("endDate", 1202, "date", "End Date"),
        ("rate", 1203, "currency", "Pay rate"),
        ("type", 1204, "list", "Pay type"),
        ("exempt", 1205, "list", "Overtime Status"),
        ("reason", 1206, "list", "Change Reason"),
        ("paidPer", 1208, "list", "Pay per"),
        ("paySchedule", 1209, "list", "Pay schedule"),
    ),
    "employmentStatus": (
        ("date", 1101, "date", "Effective Date"),
        ("employmentStatus", 1102, "list", "Employment Status"),
        ("terminationReasonId", 1104, "list", "Termination Reason"),
        ("terminationTypeId", 1105, "list", "Termination Type"),
        ("terminationRehireId", 1106, "list", "Eligible For Re-hire"),
    ),
}
DEDUCTIONS_TABLE = "customPayrollDeductions"  # payroll deductions: a custom table
TABLE_COLUMNS[DEDUCTIONS_TABLE] = (
    ("date", 4601, "date", "Effective Date"),
    ("deductionType", 4602, "list", "Deduction"),
    ("amount", 4603, "text", "Amount"),
    ("amountType", 4604, "list", "Amount Type"),
    ("endDate", 4605, "date", "End Date"),
)
TABLES = tuple(TABLE_COLUMNS)
JOB_FIELDS = ("location", "department", "division", "jobTitle")
PAY_FIELDS = ("payRate", "payType", "payPer", "paidPer", "paySchedule", "exempt")
PAY_TYPES = frozenset(
    {"Salary", "Hourly", "Commission", "Exception Hourly", "Monthly", "Weekly", "Daily",
     "Contract", "Pro rata", "Piece rate"}
)  # fmt: skip
PAID_PER = frozenset({"Hour", "Day", "Week", "Month", "Quarter", "Year", "Pay Period", "Piece"})
_RATE = re.compile(r"^(?P<value>\d+(?:\.\d{1,4})?)(?: (?P<currency>[A-Z]{3}))?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SEEDED_WORK_EMAIL = re.compile(r"(\d+)@acme\.example$")


def _day(value: Any) -> str | None:
    return value.isoformat() if value else None


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def person_fields(p: Person) -> dict[str, Any]:
    """One seeded person in BambooHR's field names and string formats."""
    primary = p.positions[0]
    addr = p.address
    return {
        "id": str(p.employee_id),
        "employeeNumber": p.employee_number,
        "firstName": p.first_name,
        "middleName": p.middle_name,
        "lastName": p.last_name,
        "preferredName": p.preferred_name,
        "displayName": f"{p.preferred_name or p.first_name} {p.last_name}",
        "workEmail": p.work_email,
        "homeEmail": p.personal_email,
        "workPhone": p.phone,
        "mobilePhone": p.mobile,
        "dateOfBirth": _day(p.date_of_birth),
        "ssn": p.ssn,
        "gender": p.gender,
        "address1": addr.line1 if addr else None,
        "address2": addr.line2 if addr else None,
        "city": addr.city if addr else None,
        "state": addr.state if addr else None,
        "zipcode": addr.postal_code if addr else None,
        "country": addr.country if addr else None,
        "hireDate": _day(p.hire_date),
        "originalHireDate": _day(p.original_hire_date),
        "terminationDate": _day(p.termination_date),
        "status": p.status,
        "employmentHistoryStatus": p.employment_type,
        "department": primary.department,
        "division": primary.division,
        "jobTitle": primary.job_title,
        "location": primary.location,
        "supervisorEId": str(primary.reports_to) if primary.reports_to else None,
        "payRate": f"{primary.pay_rate:.2f} {primary.currency}",
        "payType": primary.pay_type,
        "payPer": primary.pay_per,
        "paidPer": primary.pay_per,
        "paySchedule": primary.pay_schedule,
        "exempt": "Exempt" if primary.exempt else "Non-exempt",
        "lastChanged": _stamp(p.updated_at),
        CANDIDATE_FIELD: str(p.candidate_id) if p.candidate_id else None,
        **payroll_tax_fields(p),
    }


def _payroll_rng(p: Person, what: str) -> random.Random:
    return random.Random(zlib.crc32(f"{what}:{p.employee_id}:{p.employee_number}".encode()))


def _us_payroll(p: Person, employment: Employment) -> bool:
    """W-2 payroll applies to US-located employees (not contractors)."""
    return employment.employment_type != "Contractor" and employment.positions[0].currency == "USD"


def payroll_tax_fields(p: Person) -> dict[str, Any]:
    """Federal W-4 and work-state custom fields (US payroll only; null for everyone else)."""
    if not _us_payroll(p, p.current):
        return dict.fromkeys(("customFederalFilingStatus", "customFederalExtraWithholding",
                              "customW4MultipleJobs", "customW4DependentsAmount",
                              "customWorkState"))  # fmt: skip
    rng = _payroll_rng(p, "tax")
    state = {"San Francisco": "CA", "New York": "NY", "Austin": "TX"}.get(
        p.positions[0].location, "CO"
    )
    return {
        "customFederalFilingStatus": rng.choice(("Single", "Married", "Head of Household")),
        "customFederalExtraWithholding": f"{rng.choice((0, 0, 0, 25, 50)):.2f} USD",
        "customW4MultipleJobs": "Yes" if p.employee_id % 6 == 0 else "No",
        "customW4DependentsAmount": f"{rng.choice((0, 0, 2000, 4000)):.2f} USD",
        "customWorkState": state,
    }


def _deduction_rows(p: Person, e_index: int, employment: Employment) -> list[dict[str, Any]]:
    """401(k) percent and benefit premiums per pay period, for each US payroll employment."""
    if not _us_payroll(p, employment):
        return []
    rng = _payroll_rng(p, f"deductions-{e_index}")
    start, end = _day(employment.hire_date), _day(employment.termination_date)
    rows = []
    if rng.random() < 0.7:
        rows.append(("401(k)", str(rng.randint(3, 10)), "Percent"))
    if rng.random() < 0.6:
        rows.append(("Medical", f"{rng.randint(8000, 35000) / 100:.2f}", "Amount"))
    if rng.random() < 0.3:
        rows.append(("Dental", f"{rng.randint(1000, 4000) / 100:.2f}", "Amount"))
    return [{"date": start, "deductionType": kind, "amount": amount, "amountType": unit,
             "endDate": end} for kind, amount, unit in rows]  # fmt: skip


def table_rows(p: Person, table: str) -> list[dict[str, Any]]:
    """History rows of one person: two concurrent positions give two current jobInfo rows."""
    return _numbered(p.employee_id, _seeded_rows(p, table))


def _seeded_rows(p: Person, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for e_index, employment in enumerate(p.employments):
        if table == DEDUCTIONS_TABLE:
            rows.extend(_deduction_rows(p, e_index, employment))
            continue
        if table == "employmentStatus":
            rows.append(
                {
                    "date": _day(employment.hire_date),
                    "employmentStatus": employment.employment_type,
                    "terminationReasonId": None,
                    "terminationTypeId": None,
                    "terminationRehireId": None,
                }
            )
            if employment.termination_date:
                rows.append(
                    {
                        "date": _day(employment.termination_date),
                        "employmentStatus": "Terminated",
                        "terminationReasonId": employment.termination_reason,
                        "terminationTypeId": "Voluntary"
                        if employment.termination_reason == "Resignation"
                        else "Involuntary",
                        "terminationRehireId": "Yes",
                    }
                )
            continue
        for pos in employment.positions:
            if table == "jobInfo":
                rows.append(
                    {
                        "date": _day(pos.start_date),
                        "location": pos.location,
                        "department": pos.department,
                        "division": pos.division,
                        "jobTitle": pos.job_title,
                        "reportsTo": str(pos.reports_to) if pos.reports_to else None,
                    }
                )
            else:
                rows.append(
                    {
                        "startDate": _day(pos.start_date),
                        "endDate": _day(employment.termination_date),
                        "rate": {"value": f"{pos.pay_rate:.2f}", "currency": pos.currency},
                        "type": pos.pay_type,
                        "exempt": "Exempt" if pos.exempt else "Non-exempt",
                        "reason": "Rehire" if e_index else "New Hire",
                        "paidPer": pos.pay_per,
                        "paySchedule": pos.pay_schedule,
                    }
                )
    return rows


def _numbered(employee_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": str(employee_id * 100 + n), "employeeId": str(employee_id), **row}
            for n, row in enumerate(rows, start=1)]  # fmt: skip


def rows_from_fields(fields: dict[str, Any], table: str, when: str | None) -> list[dict[str, Any]]:
    """The history row that writing these employee fields adds to ``table`` (none if untouched)."""
    if table == "jobInfo" and any(fields.get(k) for k in JOB_FIELDS):
        return [{"date": when, **{k: fields.get(k) for k in JOB_FIELDS}, "reportsTo": None}]
    if table == "employmentStatus" and fields.get("employmentHistoryStatus"):
        return [
            {
                "date": when,
                "employmentStatus": fields["employmentHistoryStatus"],
                "terminationReasonId": None,
                "terminationTypeId": None,
                "terminationRehireId": None,
            }
        ]
    if table == "compensation" and fields.get("payRate"):
        match = _RATE.match(str(fields["payRate"]))
        value = match.group("value") if match else str(fields["payRate"])
        currency = match.group("currency") if match else None
        return [
            {
                "startDate": when,
                "endDate": None,
                "rate": {"value": value, "currency": currency or "USD"},
                "type": fields.get("payType"),
                "exempt": fields.get("exempt"),
                "reason": None,
                "paidPer": fields.get("paidPer") or fields.get("payPer"),
                "paySchedule": fields.get("paySchedule"),
            }
        ]
    return []


# --- rendering ------------------------------------------------------------------------------


def wants_json(req: Request) -> bool:
    """BambooHR answers XML unless the Accept header asks for JSON."""
    return "application/json" in (req.headers.get("Accept") or "").lower()


def xml_response(root: ET.Element) -> Response:
    body = b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8")
    return Response(200, body, {"Content-Type": "text/xml; charset=utf-8"})


def _xml_field(parent: ET.Element, name: str, value: Any) -> None:
    el = ET.SubElement(parent, "field", id=name)
    if isinstance(value, dict):  # currency: <field id="rate" currency="USD">75000.00</field>
        el.set("currency", str(value.get("currency") or ""))
        el.text = None if value.get("value") is None else str(value["value"])
    elif value is not None:
        el.text = str(value)


def _xml_rows(parent: ET.Element, rows: Iterable[dict[str, Any]], *, ids: bool) -> None:
    for row in rows:
        attrs = {"id": row["id"], "employeeId": row["employeeId"]} if ids else {}
        row_el = ET.SubElement(parent, "row", attrs)
        for name, value in row.items():
            if name not in ("id", "employeeId"):
                _xml_field(row_el, name, value)


def _encode_cursor(after: int) -> str:
    return base64.b64encode(json.dumps({"cursor": f"after-{after}"}).encode()).decode()


def _decode_cursor(cursor: str) -> int | None:
    if cursor.isdigit():  # the schema also types page[after] as an integer
        return int(cursor)
    try:
        text = str(json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4)))["cursor"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    number = text.removeprefix("after-")
    return int(number) if text.startswith("after-") and number.isdigit() else None


class BambooHR(App):
    name = "bamboohr"

    def __init__(self, world: World, credentials: dict[str, str], *, legacy_503: bool = False):
        super().__init__()
        self.world = world
        self.api_key = credentials["api_key"]
        self.company = credentials["company_domain"]
        self.legacy_503 = legacy_503
        self._lock = threading.RLock()
        self.created: dict[int, dict[str, Any]] = {}  # employees added through the API
        self.edits: dict[int, dict[str, Any]] = {}  # field changes to seeded employees
        self.changed_at: dict[int, datetime] = {}
        self.inserted_at: dict[int, datetime] = {}
        self.deleted: dict[int, datetime] = {}  # sandbox admin only: the API cannot delete
        self.history: dict[int, list[tuple[str, dict[str, Any]]]] = {}  # rows added by writes
        self.emails: dict[str, int] = {}  # work e-mails written through the API -> employee
        self.writes: list[tuple[str, int, list[str]]] = []  # (method, id, field names)
        self.benefits = benefits_api.Benefits(world)  # dependants, elections, life events
        for prefix in ("/api/v1", "/api/gateway.php/{company}/v1"):
            self._register(prefix)
        self._register_admin()
        benefits_api.register_admin(self)
        #: event-based webhooks (sandbox.webhooks): employee.created/updated/deleted
        self.webhooks = WebhookSender("bamboohr")
        add_routes(self, self.webhooks)

    # --- vendor-shaped errors -----------------------------------------------------------

    @staticmethod
    def _is_list(req: Request) -> bool:
        """The newer ``GET /api/v1/employees`` answers errors as JSON, not in the header."""
        return req.method == "GET" and bool(re.search(r"/v1/employees/?$", req.path))

    def error(self, req: Request, status: int, message: str) -> Response:
        if self._is_list(req):
            code = HTTPStatus(status).phrase.replace(" ", "")
            return Response(status, {"error": {"code": code, "message": message}})
        return Response(status, b"", {ERROR_HEADER: message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        status = 503 if self.legacy_503 else 429
        message = "Rate limit exceeded"
        headers = {"Retry-After": str(retry_after)}
        if self._is_list(req):
            body = {"error": {"code": "TooManyRequests", "message": message}}
            return Response(status, body, headers)
        return Response(status, b"", {**headers, ERROR_HEADER: message})

    def fail(self, status: int, message: str) -> HTTPError:
        return HTTPError(status, b"", {ERROR_HEADER: message})

    # --- the store ----------------------------------------------------------------------

    def exists(self, eid: int) -> bool:
        if eid in self.deleted:
            return False
        return eid in self.created or 1 <= eid <= self.world.employees

    def employee(self, eid: int) -> dict[str, Any]:
        if eid in self.created:
            return self.created[eid]
        fields = person_fields(self.world.person(eid))
        edits = self.edits.get(eid)
        if edits:
            fields = {**fields, **edits}
        return fields

    def employee_ids(self, after: int = 0) -> Iterator[int]:
        for eid in range(after + 1, self.world.employees + 1):
            if eid not in self.deleted:
                yield eid
        yield from (e for e in sorted(self.created) if e > after and e not in self.deleted)

    def count(self) -> int:
        return self.world.employees + len(self.created) - len(self.deleted)

    def last_changed(self, eid: int) -> datetime:
        if eid in self.changed_at:
            return self.changed_at[eid]
        return self.world.person_updated_at(eid)

    def rows(self, eid: int, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` for one employee: seeded history, then rows added by writes."""
        seeded = [] if eid in self.created else _seeded_rows(self.world.person(eid), table)
        added = [row for name, row in self.history.get(eid, []) if name == table]
        return _numbered(eid, seeded + added)

    def delete(self, eid: int) -> None:
        """Delete an employee, as BambooHR's UI can (its public API cannot)."""
        with self._lock:
            if not self.exists(eid):
                raise KeyError(eid)
            self.deleted[eid] = datetime.now(UTC)
            self.webhooks.employee_deleted(eid)

    def find(self, field: str, value: str) -> list[int]:
        """Ids whose ``field`` equals ``value`` (a scan: for tests and small worlds)."""
        return [e for e in self.employee_ids() if self.employee(e).get(field) == value]

    def changes(self, since: datetime) -> dict[int, tuple[str, datetime]]:
        """id -> (Inserted|Updated|Deleted, lastChanged) for everything changed at/after since."""
        out: dict[int, tuple[str, datetime]] = {}
        for eid in self.world.ids("people", updated_gte=since, limit=10**9):
            if eid not in self.changed_at and eid not in self.deleted:
                out[eid] = ("Updated", self.last_changed(eid))
        for eid, when in self.changed_at.items():
            if when >= since and eid not in self.deleted:
                inserted = self.inserted_at.get(eid) == when
                out[eid] = ("Inserted" if inserted else "Updated", when)
        for eid, when in self.deleted.items():
            if when >= since:
                out[eid] = ("Deleted", when)
        return out

    # --- write checks -------------------------------------------------------------------

    def _email_owner(self, email: str) -> int | None:
        owner = self.emails.get(email.lower())
        if owner is not None:
            return owner if self.exists(owner) else None
        match = _SEEDED_WORK_EMAIL.search(email)  # seeded addresses end in the employee id
        if match and 1 <= int(match.group(1)) <= self.world.employees:
            eid = int(match.group(1))
            current = self.employee(eid).get("workEmail") if self.exists(eid) else None
            if current and current.lower() == email.lower():
                return eid
        return None

    def _writable(self, body: dict[str, Any], eid: int | None = None) -> dict[str, Any]:
        body = {_BY_ID.get(str(k), str(k)): v for k, v in body.items()}
        unknown = sorted(set(body) - WRITABLE)
        if unknown:
            raise self.fail(406, f"Field(s) not writable or unknown: {', '.join(unknown)}")
        for name, value in body.items():
            if not isinstance(value, str | int | float | type(None)) or isinstance(value, bool):
                raise self.fail(400, f"Field {name} must be a string")
            if value in (None, ""):
                continue
            text = str(value)
            if FIELDS[name][2] == "date" and not _is_date(text):
                raise self.fail(409, f"Invalid date for {name}: expected YYYY-MM-DD")
            if name == "payRate" and not _RATE.match(text):
                raise self.fail(409, "Invalid value for payRate: expected e.g. '85000.00 USD'")
            if name == "payType" and text not in PAY_TYPES:
                raise self.fail(409, f"Invalid value for payType: {text!r} is not a pay type")
            if name in SAME_FIELD and text not in PAID_PER:
                raise self.fail(409, f"Invalid value for {name}: {text!r} is not a pay period")
            if name in ("workEmail", "homeEmail") and not _EMAIL.match(text):
                raise self.fail(409, f"Invalid value for {name}: not an e-mail address")
            if name == "workEmail":
                owner = self._email_owner(text)
                if owner is not None and owner != eid:
                    raise self.fail(
                        409, f"Duplicate value for workEmail: already used by employee {owner}"
                    )
        return {k: (None if v == "" else (v if v is None else str(v))) for k, v in body.items()}

    def _record_write(self, eid: int, body: dict[str, Any], now: datetime) -> None:
        """Bookkeeping shared by create and update: e-mail index, history rows, stamps."""
        if body.get("workEmail"):
            self.emails[str(body["workEmail"]).lower()] = eid
        full = self.employee(eid)
        when = full.get("hireDate") if eid in self.inserted_at and eid not in self.changed_at \
            else date.today().isoformat()  # fmt: skip
        for table in TABLES:
            touched = {"jobInfo": JOB_FIELDS, "compensation": PAY_FIELDS,
                       "employmentStatus": ("employmentHistoryStatus",)}.get(table, ())  # fmt: skip
            if any(k in body for k in touched):
                for row in rows_from_fields(full, table, when):
                    self.history.setdefault(eid, []).append((table, row))
        self.changed_at[eid] = now
        self.writes.append(("POST", eid, sorted(body)))
        self.webhooks.employee_changed(eid, list(body), created=self.inserted_at.get(eid) == now)

    # --- routes -------------------------------------------------------------------------

    def _authorise(self, req: Request, company: str | None) -> None:
        if company is not None and company != self.company:
            raise self.fail(404, f"Unknown company {company!r}")
        auth = req.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            try:
                user = base64.b64decode(auth[6:]).decode().partition(":")[0]
            except ValueError:
                user = ""
        if user != self.api_key:
            raise self.fail(401, "Invalid API key")

    def _register_admin(self) -> None:
        @self.route("POST", "/_sandbox/bamboohr")
        def settings(req: Request) -> Response:
            changes = req.json() or {}
            if "legacy_503" in changes:
                self.legacy_503 = bool(changes["legacy_503"])
            return Response(200, {"legacy_503": self.legacy_503})

        @self.route("DELETE", "/_sandbox/bamboohr/employees/{ident}")
        def delete(req: Request, ident: str) -> Response:
            try:
                self.delete(int(ident))
            except (KeyError, ValueError):
                raise HTTPError(404, {"message": f"no employee {ident}"}) from None
            return Response(204)

    def _register(self, prefix: str) -> None:
        def route(method: str, path: str) -> Callable[[Callable[..., Response]], Any]:
            def wrap(handler: Callable[..., Response]) -> Any:
                def guarded(req: Request, company: str | None = None, **kw: str) -> Response:
                    self._authorise(req, company)
                    return handler(req, **kw)

                return self.route(method, prefix + path)(guarded)

            return wrap

        benefits_api.register(self, route)  # employeedependents, benefitcoverages, benefit/*

        @route("GET", "/meta/fields")
        def meta_fields(req: Request) -> Response:
            entries: list[dict[str, Any]] = [
                {"id": fid, "name": name, "type": kind, "alias": alias}
                for alias, (fid, name, kind) in FIELDS.items()
            ]
            if wants_json(req):
                return Response(200, entries)
            root = ET.Element("fields")
            for e in entries:
                el = ET.SubElement(root, "field", id=str(e["id"]), type=e["type"], alias=e["alias"])
                el.text = e["name"]
            return xml_response(root)

        @route("GET", "/meta/tables")
        def meta_tables(req: Request) -> Response:
            entries: list[dict[str, Any]] = [
                {
                    "alias": table,
                    "fields": [{"id": i, "name": n, "alias": a, "type": t} for a, i, t, n in cols],
                }
                for table, cols in TABLE_COLUMNS.items()
            ]
            if wants_json(req):
                return Response(200, entries)
            root = ET.Element("tables")
            for e in entries:
                table_el = ET.SubElement(root, "table", alias=e["alias"])
                for f in e["fields"]:
                    el = ET.SubElement(table_el, "field", id=str(f["id"]), alias=f["alias"])
                    el.set("type", f["type"])
                    el.text = f["name"]
            return xml_response(root)

        @route("GET", "/employees/directory")
        def directory(req: Request) -> Response:
            shown = [
                "displayName",
                "firstName",
                "lastName",
                "preferredName",
                "jobTitle",
                "workPhone",
                "mobilePhone",
                "workEmail",
                "department",
                "location",
                "division",
            ]
            only_current = (req.arg("onlyCurrent") or "true").lower() != "false"
            today = date.today().isoformat()
            employees = []
            for eid in self.employee_ids():
                emp = self.employee(eid)
                if emp.get("status") != "Active":
                    continue
                if only_current and (emp.get("hireDate") or "") > today:
                    continue  # a future hire is not "current" yet
                employees.append({"id": emp["id"], **{k: emp.get(k) for k in shown}})
            if not employees:
                raise self.fail(404, "The directory is empty")
            if wants_json(req):
                return Response(
                    200,
                    {
                        "fields": [
                            {"id": k, "type": FIELDS[k][2], "name": FIELDS[k][1]} for k in shown
                        ],
                        "employees": employees,
                    },
                )
            root = ET.Element("directory")
            fieldset = ET.SubElement(root, "fieldset")
            for k in shown:
                ET.SubElement(fieldset, "field", id=k).text = FIELDS[k][1]
            emps = ET.SubElement(root, "employees")
            for row in employees:
                el = ET.SubElement(emps, "employee", id=row["id"])
                for k in shown:
                    _xml_field(el, k, row.get(k))
            return xml_response(root)

        @route("GET", "/employees/changed")
        def changed(req: Request) -> Response:
            since = self._since(req)
            kind = (req.arg("type") or "all").lower()
            if kind not in ("inserted", "updated", "deleted", "all"):
                raise self.fail(400, f"Invalid type {kind!r}: inserted, updated, deleted or all")
            with self._lock:
                entries = sorted(
                    (when, eid, action)
                    for eid, (action, when) in self.changes(since).items()
                    if kind in ("all", action.lower())
                )
            latest = _stamp(entries[-1][0] if entries else since)
            if wants_json(req):
                out = {
                    str(eid): {"id": str(eid), "action": action, "lastChanged": _stamp(when)}
                    for when, eid, action in entries
                }
                return Response(200, {"latest": latest, "employees": out})
            root = ET.Element("employees", latest=latest)
            for when, eid, action in entries:
                ET.SubElement(root, "employee", id=str(eid), action=action,
                              lastChanged=_stamp(when))  # fmt: skip
            return xml_response(root)

        @route("GET", "/employees/changed/tables/{table}")
        def changed_tables(req: Request, table: str) -> Response:
            self._table(table)
            since = self._since(req)
            with self._lock:
                groups = [
                    (eid, when, self.rows(eid, table))
                    for eid, (action, when) in sorted(self.changes(since).items())
                    if action != "Deleted"
                ]
            latest = _stamp(max((when for _, when, _ in groups), default=since))
            if wants_json(req):
                out = {
                    str(eid): {"lastChanged": _stamp(when), "rows": rows}
                    for eid, when, rows in groups
                }
                return Response(200, {"table": table, "latest": latest, "employees": out})
            root = ET.Element("table", id=table)
            for eid, when, rows in groups:
                emp_el = ET.SubElement(root, "employee", id=str(eid), lastChanged=_stamp(when))
                _xml_rows(emp_el, rows, ids=False)
            return xml_response(root)

        @route("GET", "/employees/{ident}/tables/{table}")
        def tables(req: Request, ident: str, table: str) -> Response:
            self._table(table)
            ids: Iterable[int] = self.employee_ids() if ident == "all" else [self._eid(ident)]
            with self._lock:
                rows = [row for eid in ids for row in self.rows(eid, table)]
            if wants_json(req):
                return Response(200, rows)
            root = ET.Element("table")
            _xml_rows(root, rows, ids=True)
            return xml_response(root)

        @route("GET", "/employees/{ident}")
        def single(req: Request, ident: str) -> Response:
            eid = self._eid(ident)
            names = [f for f in (req.arg("fields") or "firstName,lastName").split(",") if f]
            if len(names) > MAX_FIELDS:
                raise self.fail(400, f"At most {MAX_FIELDS} fields may be requested")
            emp = self.employee(eid)
            out = {"id": emp["id"], **{n: emp.get(_BY_ID.get(n, n)) for n in names if n != "id"}}
            if wants_json(req):
                return Response(200, out)
            root = ET.Element("employee", id=emp["id"])
            for name, value in out.items():
                if name != "id":
                    _xml_field(root, name, value)
            return xml_response(root)

        @route("POST", "/reports/custom")
        def report(req: Request) -> Response:
            fmt = (req.arg("format") or "").lower()
            if not fmt:  # inferred from Accept, exact values only
                accept = (req.headers.get("Accept") or "").strip().lower()
                fmt = {"application/json": "json", "text/xml": "xml"}.get(accept, "")
            if fmt not in ("json", "xml"):
                raise self.fail(404, f"Report format {fmt or '(none)'!r} not found")
            body = self._report_body(req)
            asked = [str(n) for n in body.get("fields") or []]
            if len(asked) > MAX_FIELDS:
                raise self.fail(400, f"At most {MAX_FIELDS} fields may be requested")
            # unknown fields are silently left out, as documented
            names = [n for n in asked if _BY_ID.get(n, n) in FIELDS]
            filters = body.get("filters") or {}
            since = None
            changed = filters.get("lastChanged")
            if changed and changed.get("value"):
                since = _parse(str(changed["value"]), self)
            wanted = filters.get("employeeIds")
            ids: Iterable[int] = self.employee_ids()
            if wanted:
                ids = sorted({int(i) for i in wanted if str(i).isdigit()})
            only_current = (req.arg("onlyCurrent") or "true").lower() != "false"
            del only_current  # history-effective values are not modelled: current values only
            rows = []
            with self._lock:
                for eid in ids:
                    if not self.exists(eid):
                        continue
                    if since is not None and self.last_changed(eid) < since:
                        continue
                    emp = self.employee(eid)
                    rows.append(
                        {"id": emp["id"],
                         **{n: emp.get(_BY_ID.get(n, n)) for n in names if n != "id"}}
                    )  # fmt: skip
            fields = [
                {"id": n, "type": FIELDS[_BY_ID.get(n, n)][2], "name": FIELDS[_BY_ID.get(n, n)][1]}
                for n in names
            ]
            title = body.get("title", "Report")
            if fmt == "json":
                return Response(200, {"title": title, "fields": fields, "employees": rows})
            root = ET.Element("report")
            ET.SubElement(root, "title").text = str(title)
            fields_el = ET.SubElement(root, "fields")
            for f in fields:
                ET.SubElement(fields_el, "field", id=f["id"], type=f["type"]).text = f["name"]
            emps = ET.SubElement(root, "employees")
            for row in rows:
                el = ET.SubElement(emps, "employee", id=row["id"])
                for n in names:
                    if n != "id":
                        _xml_field(el, n, row.get(n))
            return xml_response(root)

        @route("GET", "/employees")
        def listing(req: Request) -> Response:
            return self._list(req, prefix)

        @route("POST", "/employees")
        def add(req: Request) -> Response:
            body = self._writable(self._body(req))
            if (
                not (body.get("firstName") or "").strip()
                or not (body.get("lastName") or "").strip()
            ):
                raise self.fail(400, "firstName and lastName are required")
            with self._lock:
                body = self._writable(body)  # again under the lock: duplicate e-mails race
                eid = self.world.employees + len(self.created) + 1
                now = datetime.now(UTC)
                record = dict.fromkeys(FIELDS)
                record.update(body, id=str(eid), status="Active", lastChanged=_stamp(now))
                for name, other in SAME_FIELD.items():
                    if body.get(name) and not body.get(other):
                        record[other] = body[name]
                if record.get("hireDate") and not record.get("originalHireDate"):
                    record["originalHireDate"] = record["hireDate"]
                record["displayName"] = (
                    f"{body.get('preferredName') or body['firstName']} {body['lastName']}"
                )
                self.created[eid] = record
                self.inserted_at[eid] = now
                self._record_write(eid, body, now)
            location = f"http://{req.headers.get('Host', '127.0.0.1')}{req.path}/{eid}"
            return Response(201, b"", {"Location": location})

        @route("POST", "/employees/{ident}")
        def update(req: Request, ident: str) -> Response:
            eid = self._eid(ident)
            with self._lock:
                body = self._writable(self._body(req), eid)
                for name in ("firstName", "lastName"):
                    if name in body and not (body[name] or "").strip():
                        raise self.fail(400, f"{name} cannot be empty")
                now = datetime.now(UTC)
                mirrored = {
                    other: body[name]
                    for name, other in SAME_FIELD.items()
                    if name in body and other not in body
                }
                target = (
                    self.created[eid] if eid in self.created else self.edits.setdefault(eid, {})
                )
                target.update(body, **mirrored, lastChanged=_stamp(now))
                self._record_write(eid, body, now)
            return Response(200, b"")

    # --- the newer cursor-paged list ----------------------------------------------------

    def _list(self, req: Request, prefix: str) -> Response:
        def bad(code: str, message: str) -> HTTPError:
            return HTTPError(400, {"error": {"code": code, "message": message}})

        try:
            limit = int(req.arg("page[limit]") or LIST_LIMIT_DEFAULT)
        except ValueError:
            raise bad("BadRequest", "page[limit] must be an integer") from None
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise bad("BadRequest", f"page[limit] must be between 1 and {LIST_LIMIT_MAX}")
        after = 0
        if req.arg("page[after]"):
            cursor = _decode_cursor(req.arg("page[after]") or "")
            if cursor is None:
                raise bad("BadPage", "page[after] is not a cursor this API returned")
            after = cursor
        status = (req.arg("filter[status]") or "").lower() or None
        if status not in (None, "active", "inactive"):
            raise bad("BadRequest", "filter[status] must be active or inactive")
        raw_ids = req.query.get("filter[ids][]") or req.query.get("filter[ids]") or []
        parts = [p.strip() for raw in raw_ids for p in raw.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise bad("BadRequest", "filter[ids] must be employee ids")
        only = {int(p) for p in parts} if parts else None
        subs = {
            "firstName": (req.arg("filter[firstName]") or "").lower(),
            "lastName": (req.arg("filter[lastName]") or "").lower(),
            "jobTitle": (req.arg("filter[jobTitleName]") or "").lower(),
        }
        extra = [f.strip() for f in (req.arg("fields") or "").split(",") if f.strip()]
        renamed = {
            "divisionName": "division",
            "departmentName": "department",
            "locationName": "location",
            "employmentStatusName": "employmentHistoryStatus",
            "reportsToId": "supervisorEId",
            "birthDate": "dateOfBirth",
        }

        def matches(emp: dict[str, Any]) -> bool:
            if status and str(emp.get("status") or "").lower() != status:
                return False
            return all(not s or s in str(emp.get(f) or "").lower() for f, s in subs.items())

        def source(start: int) -> Iterator[int]:
            if only is None:
                return self.employee_ids(start)
            return iter(sorted(e for e in only if e > start and self.exists(e)))

        data: list[dict[str, Any]] = []
        more = False
        with self._lock:
            for eid in source(after):
                emp = self.employee(eid)
                if not matches(emp):
                    continue
                if len(data) == limit:
                    more = True
                    break
                row: dict[str, Any] = {
                    "employeeId": emp["id"],
                    "firstName": emp.get("firstName"),
                    "lastName": emp.get("lastName"),
                    "preferredName": emp.get("preferredName"),
                    "photoUrl": None,
                    "jobTitleName": emp.get("jobTitle"),
                    "status": emp.get("status"),
                }
                for name in extra:
                    alias = renamed.get(name, name)
                    if alias in FIELDS:  # unknown names are silently ignored, as documented
                        row[name] = emp.get(alias)
                row["_restrictedFields"] = []
                data.append(row)
            filtered = only is not None or status is not None or any(subs.values())
            total = (
                sum(1 for e in source(0) if matches(self.employee(e))) if filtered else self.count()
            )
        next_cursor = _encode_cursor(int(data[-1]["employeeId"])) if more and data else None
        base = f"http://{req.headers.get('Host', '127.0.0.1')}{req.path}"
        links: dict[str, Any] = {
            "self": {"href": base + (f"?{req.raw_query}" if req.raw_query else "")}
        }
        if next_cursor:
            params = [(k, v) for k, vs in req.query.items() if k != "page[after]" for v in vs]
            links["next"] = {
                "href": f"{base}?"
                + urlencode([*params, ("page[after]", next_cursor)], quote_via=quote)
            }
        meta = {
            "total": total,
            "page": {
                "limit": limit,
                "nextCursor": next_cursor,
                "prevCursor": _encode_cursor(after) if after else None,
            },
        }
        return Response(200, {"data": data, "meta": meta, "_links": links})

    # --- helpers ------------------------------------------------------------------------

    def _eid(self, ident: str) -> int:
        if not ident.isdigit():
            raise self.fail(400, f"Invalid employee id {ident!r}")
        eid = int(ident)
        if self.exists(eid):
            return eid
        raise self.fail(404, f"Employee {eid} not found")

    def _table(self, table: str) -> None:
        if table not in TABLES:
            raise self.fail(404, f"Unknown table {table!r}")

    def _since(self, req: Request) -> datetime:
        raw = req.arg("since")
        if not raw:
            raise self.fail(400, "since is required (ISO 8601)")
        return _parse(raw, self)

    def _body(self, req: Request) -> dict[str, Any]:
        ctype = (req.headers.get("Content-Type") or "").lower()
        if "xml" in ctype:  # <employee><field id="firstName">Ana</field>...</employee>
            try:
                root = ET.fromstring(req.body or b"")  # noqa: S314 — a local fake
            except ET.ParseError:
                raise self.fail(400, "Request body is not valid XML") from None
            return {str(f.get("id")): f.text for f in root.iter("field") if f.get("id")}
        try:
            body = req.json()
        except ValueError:
            raise self.fail(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        return body

    def _report_body(self, req: Request) -> dict[str, Any]:
        """JSON only with exactly ``Content-Type: application/json`` (as documented); any other
        content type is read as an XML ``<report>``."""
        ctype = (req.headers.get("Content-Type") or "").strip().lower()
        if ctype == "application/json":
            return self._body(req)
        try:
            root = ET.fromstring(req.body or b"")  # noqa: S314 — a local fake
        except ET.ParseError:
            raise self.fail(400, "Malformed XML") from None
        body: dict[str, Any] = {"fields": [f.get("id") for f in root.iter("field")]}
        if (title := root.findtext("title")) is not None:
            body["title"] = title
        filters: dict[str, Any] = {}
        last = root.find("filters/lastChanged")
        if last is not None:
            filters["lastChanged"] = {"value": last.text, "includeNull": last.get("includeNull")}
        if ids := [e.text for e in root.iter("employeeId") if e.text]:
            filters["employeeIds"] = ids
        body["filters"] = filters
        return body


def _is_date(value: Any) -> bool:
    try:
        datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _parse(raw: str, app: BambooHR | None = None) -> datetime:
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        message = f"Invalid ISO 8601 timestamp {raw!r} (a '+' in the offset must be sent as %2B)"
        raise (app.fail(400, message) if app else ValueError(message)) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def make_app(world: World, credentials: dict[str, str]) -> BambooHR:
    return BambooHR(world, credentials)
