"""HiBob ("Bob") public API v1, as documented, served from the seeded world plus writes.

The same people as the BambooHR fake (``sandbox.seed.World``): both HRIS tell one story, so a
job can swap one for the other and its destinations must end up the same. What it follows
(sources and what it leaves out: ``sandbox/docs/hibob.md``):

- Service-user Basic auth (service user id as user name, its token as password); 401 otherwise.
- ``POST /v1/people/search``: ``fields`` (``root.id`` or ``/root/id`` forms; unknown ids are
  silently omitted, as documented), ``filters`` (``root.id`` / ``root.email`` with ``equals``),
  ``showInactive`` (default false: active employees only), ``humanReadable`` (``""`` machine
  values; ``APPEND`` adds a ``humanReadable`` object; ``REPLACE`` replaces them). No paging:
  one response holds every match. List fields (department, site, title, division) hold named
  list item ids in machine format, names in human-readable form.
- ``POST /v1/people/{id}`` (one employee, same body), ``GET /v1/company/people/fields``.
- Employee tables: ``GET /v1/people/{id}/{work|employment|lifecycle|salaries}`` ->
  ``{"values": [...]}``; bulk ``GET /v1/bulk/people/{table}?limit=&cursor=&employeeIds=`` ->
  ``{"results": [{"employeeId", "values"}], "response_metadata": {"next_cursor"}}``
  (limit 1-200, default 50; above 200 is a 400).
- ``POST /v1/people`` (``firstName``, ``surname``, ``email``, ``work.site``, ``work.startDate``
  required) -> 200 with the new employee; ``PUT /v1/people/{id}`` updates fields; ``POST
  /v1/people/{id}/work`` adds a work entry (title, department, site, reportsTo) effective at
  its ``effectiveDate``.
- Errors as ``{"key": ..., "error": ...}``; rate limits: 429 with ``X-RateLimit-Limit``,
  ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix seconds), no ``Retry-After``.
- No change feed: the people search has no "updated since" filter (HiBob documents none).
- A tenant custom field (``CANDIDATE_FIELD``) holds seeded employees' ATS candidate ids; a US
  tenant's payroll custom fields (``US_TAX_FIELDS``) hold the work state and W-4 data.
- The payroll salary table (``salaries``): each employment's base pay (primary position).
"""

from __future__ import annotations

import base64
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from sandbox.bamboohr import payroll_tax_fields
from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import Person, World

TABLES = ("work", "employment", "lifecycle", "salaries")
BULK_LIMIT_DEFAULT = 50
BULK_LIMIT_MAX = 200
SEARCH_LIMIT_PER_MINUTE = 50
#: a tenant's custom field (HiBob: ``<category>.custom.field_<n>``) holding the ATS candidate id
CANDIDATE_FIELD = "work.custom.field_1700000000001"
COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "CH": "Switzerland",
    "BR": "Brazil",
    "IN": "India",
    "JP": "Japan",
}
#: a US tenant's own payroll custom fields (HiBob has no W-4 or work-state field of its own):
#: canonical name -> field id, valued like the BambooHR fake's custom fields
US_TAX_FIELDS = {
    "work_state": "payroll.custom.field_1700000000101",
    "federal_filing_status": "payroll.custom.field_1700000000102",
    "federal_extra_withholding": "payroll.custom.field_1700000000103",
    "w4_multiple_jobs": "payroll.custom.field_1700000000104",
    "w4_dependents_amount": "payroll.custom.field_1700000000105",
}
#: the salary table's pay period and pay frequency lists (HiBob's values)
PAY_PERIOD = {"Year": "Annual", "Hour": "Hourly"}
PAY_FREQUENCY = {"Twice a month": "Twice a month", "Monthly": "Monthly"}
CONTRACT = {"Full-Time": "Full time", "Part-Time": "Part time"}
EMPLOYMENT_TYPE = {
    "Full-Time": "Permanent",
    "Part-Time": "Permanent",
    "Contractor": "Contractor",
    "Intern": "Intern",
}
#: list fields: machine values are named-list item ids, human-readable values their names
LIST_FIELDS = ("work.title", "work.department", "work.division", "work.site")
#: every field id the fake knows, as /v1/company/people/fields lists them: id -> (name, type)
FIELDS: dict[str, tuple[str, str]] = {
    "root.id": ("Employee ID", "text"),
    "root.firstName": ("First name", "text"),
    "root.surname": ("Last name", "text"),
    "root.secondName": ("Middle name", "text"),
    "root.displayName": ("Display name", "text"),
    "root.fullName": ("Full name", "text"),
    "root.email": ("Email", "text"),
    "root.creationDateTime": ("Created", "date-time"),
    "personal.preferredName": ("Preferred name", "text"),
    "personal.birthDate": ("Birth date", "date"),
    "personal.gender": ("Gender", "list"),
    "home.privateEmail": ("Personal email", "text"),
    "home.mobilePhone": ("Personal mobile", "text"),
    "work.workPhone": ("Work phone", "text"),
    "work.employeeIdInCompany": ("Employee ID in company", "number"),
    "work.title": ("Job title", "list"),
    "work.department": ("Department", "list"),
    "work.division": ("Division", "list"),
    "work.site": ("Site", "list"),
    "work.siteId": ("Site ID", "number"),
    "work.startDate": ("Start date", "date"),
    "work.reportsTo": ("Reports to", "employee-reference"),
    "work.manager": ("Manager", "employee-id"),
    "work.isManager": ("Is manager", "boolean"),
    "internal.status": ("Status", "text"),
    "internal.lifecycleStatus": ("Lifecycle status", "text"),
    "internal.terminationDate": ("Termination date", "date"),
    "internal.terminationReason": ("Termination reason", "list"),
    "payroll.employment.contract": ("Contract", "list"),
    "payroll.employment.type": ("Employment type", "list"),
    "address.line1": ("Address line 1", "text"),
    "address.line2": ("Address line 2", "text"),
    "address.city": ("City", "text"),
    "address.usState": ("State", "text"),
    "address.postCode": ("Postal code", "text"),
    "address.country": ("Country", "list"),
    "financial.identificationNumber": ("SSN", "text"),
    CANDIDATE_FIELD: ("ATS candidate ID", "text"),
    US_TAX_FIELDS["work_state"]: ("US work state", "text"),
    US_TAX_FIELDS["federal_filing_status"]: ("Federal filing status (W-4)", "list"),
    US_TAX_FIELDS["federal_extra_withholding"]: ("Federal extra withholding (W-4)", "currency"),
    US_TAX_FIELDS["w4_multiple_jobs"]: ("Multiple jobs (W-4 step 2)", "list"),
    US_TAX_FIELDS["w4_dependents_amount"]: ("Dependents amount (W-4 step 3)", "currency"),
}
#: what a search without ``fields`` returns (HiBob: the "default" categories root/work/...)
DEFAULT_FIELDS = tuple(f for f in FIELDS if f.split(".")[0] in ("root", "work", "internal"))
WRITABLE_ROOT = {"firstName", "surname", "secondName", "email", "displayName"}
WRITABLE = {
    "personal": {"preferredName", "birthDate", "gender"},
    "home": {"privateEmail", "mobilePhone"},
    "address": {"line1", "line2", "city", "usState", "postCode", "country"},
    "financial": {"identificationNumber"},
    "payroll": {"employment"},
    "work": {"title", "department", "division", "site", "startDate", "reportsTo", "workPhone",
             "employeeIdInCompany", "custom"},
}  # fmt: skip
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def list_item_id(field: str, name: str) -> str:
    """The named-list item id the fake gives a list value (stable: a CRC of list + name)."""
    return str(100_000 + zlib.crc32(f"{field}:{name}".encode()) % 900_000)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _human_day(value: str | None) -> str | None:
    if not value:
        return value
    y, m, d = value.split("-")
    return f"{d}/{m}/{y}"


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    if parts[0] == "root":
        parts = parts[1:]
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _get(doc: dict[str, Any], path: str) -> Any:
    parts = path.split(".")
    if parts[0] == "root":
        parts = parts[1:]
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def normalise_field(field: Any) -> str | None:
    """``/root/id``, ``root.id`` -> ``root.id``; anything else None."""
    if not isinstance(field, str) or not field.strip():
        return None
    text = field.strip().strip("/").replace("/", ".")
    return text or None


def lifecycle_rows(p: Person) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for e in p.employments:
        rows.append({"effectiveDate": _day(e.hire_date), "status": "employed", "reason": None})
        if e.termination_date is not None:
            rows.append(
                {
                    "effectiveDate": _day(e.termination_date),
                    "status": "terminated",
                    "reason": e.termination_reason,
                }
            )
    return rows


def employment_rows(p: Person) -> list[dict[str, Any]]:
    return [
        {
            "effectiveDate": _day(e.hire_date),
            "contract": CONTRACT.get(e.employment_type),
            "type": EMPLOYMENT_TYPE.get(e.employment_type, e.employment_type),
            "weeklyHours": 20 if e.employment_type == "Part-Time" else 40,
        }
        for e in p.employments
    ]


def work_rows(p: Person, world: World) -> list[dict[str, Any]]:
    """One row per employment: its primary position (HiBob has one effective work entry)."""
    rows = []
    for e in p.employments:
        pos = e.positions[0]
        rows.append(
            {
                "effectiveDate": _day(e.hire_date),
                "title": pos.job_title,
                "department": pos.department,
                "division": pos.division,
                "site": pos.location,
                "reportsTo": _reference(world, pos.reports_to),
            }
        )
    return rows


def salary_rows(p: Person) -> list[dict[str, Any]]:
    """The payroll "salaries" table: one entry per employment, its primary position's base pay
    (HiBob keeps one effective entry; the BambooHR fake has a row per position)."""
    rows = []
    for index, e in enumerate(p.employments):
        pos = e.positions[0]
        rows.append(
            {
                "effectiveDate": _day(pos.start_date),
                "base": {"value": float(pos.pay_rate), "currency": pos.currency},
                "payPeriod": PAY_PERIOD.get(pos.pay_per, pos.pay_per),
                "payFrequency": PAY_FREQUENCY.get(pos.pay_schedule, pos.pay_schedule),
                "reason": "Rehire" if index else "New Hire",
            }
        )
    return rows


def us_tax_custom(p: Person) -> dict[str, Any]:
    """The US tenant's payroll custom fields (``custom`` of the payroll category)."""
    tax = payroll_tax_fields(p)
    extra, deps = tax["customFederalExtraWithholding"], tax["customW4DependentsAmount"]
    values = {
        "work_state": tax["customWorkState"],
        "federal_filing_status": tax["customFederalFilingStatus"],
        "federal_extra_withholding": str(extra).split()[0] if extra else None,
        "w4_multiple_jobs": tax["customW4MultipleJobs"],
        "w4_dependents_amount": str(deps).split()[0] if deps else None,
    }
    return {US_TAX_FIELDS[k].rsplit(".", 1)[1]: v for k, v in values.items()}


def _reference(world: World, eid: int | None) -> dict[str, Any] | None:
    if eid is None or not 1 <= eid <= world.employees:
        return None
    m = world.person(eid)
    return {
        "id": str(eid),
        "firstName": m.first_name,
        "surname": m.last_name,
        "email": m.work_email,
        "displayName": f"{m.preferred_name or m.first_name} {m.last_name}",
    }


def _status(termination: str | None, as_of: date) -> tuple[str, str]:
    if termination is not None and termination < as_of.isoformat():
        return "Inactive", "terminated"
    return "Active", "employed"


class HiBob(App):
    name = "hibob"

    def __init__(self, world: World, credentials: dict[str, str]) -> None:
        super().__init__()
        self.world = world
        self.service_user = credentials["service_user_id"]
        self.token = credentials["token"]
        self._lock = threading.RLock()
        self.created: dict[int, dict[str, Any]] = {}  # employees added through the API
        self.edits: dict[int, dict[str, Any]] = {}  # field paths -> values, seeded employees
        self.added_rows: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        self.writes: list[tuple[str, int, list[str]]] = []
        self.search_calls: list[dict[str, Any]] = []
        self._managers: set[int] | None = None
        self._register()

    # --- vendor-shaped errors -----------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        return Response(status, {"key": f"http.{status}", "error": message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        reset = int(time.time()) + retry_after
        headers = {
            "X-RateLimit-Limit": str(SEARCH_LIMIT_PER_MINUTE),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        body = {"key": "too.many.requests", "error": "Too Many Requests"}
        return Response(429, body, headers)

    @staticmethod
    def fail(status: int, message: str, key: str = "bad.request") -> HTTPError:
        return HTTPError(status, {"key": key, "error": message})

    # --- the store ----------------------------------------------------------------------

    def exists(self, eid: int) -> bool:
        return eid in self.created or 1 <= eid <= self.world.employees

    def employee_ids(self) -> Iterator[int]:
        yield from range(1, self.world.employees + 1)
        yield from sorted(self.created)

    def managers(self) -> set[int]:
        """Ids someone reports to (HiBob's work.isManager)."""
        with self._lock:
            if self._managers is None:
                self._managers = {
                    p.positions[0].reports_to
                    for p in self.world.people()
                    if p.positions[0].reports_to is not None
                }
            return self._managers

    def employee(self, eid: int) -> dict[str, Any]:
        """One employee as a full machine-format document (every known field)."""
        if eid in self.created:
            doc = _deep_copy(self.created[eid])
        else:
            doc = self._seeded(self.world.person(eid))
        for path, value in self.edits.get(eid, {}).items():
            _set(doc, path, value)
        # the work entry in effect (for a future hire: the one they start with)
        horizon = max(self.world.as_of.isoformat(), str(_get(doc, "work.startDate") or ""))
        entries = [r for t, r in self.added_rows.get(eid, []) if t == "work"]
        for row in sorted(entries, key=lambda r: str(r["effectiveDate"])):
            if row["effectiveDate"] <= horizon:
                for key in ("title", "department", "division", "site"):
                    if row.get(key) is not None:
                        _set(doc, f"work.{key}", row[key])
                if "reportsTo" in row:
                    _set(doc, "work.reportsTo", row["reportsTo"])
                    ref = row["reportsTo"]
                    _set(doc, "work.manager", ref["id"] if ref else None)
        status, lifecycle = _status(_get(doc, "internal.terminationDate"), self.world.as_of)
        _set(doc, "internal.status", status)
        _set(doc, "internal.lifecycleStatus", lifecycle)
        return doc

    def _seeded(self, p: Person) -> dict[str, Any]:
        pos = p.positions[0]
        addr = p.address
        ref = _reference(self.world, pos.reports_to)
        doc: dict[str, Any] = {
            "id": str(p.employee_id),
            "firstName": p.first_name,
            "surname": p.last_name,
            "secondName": p.middle_name,
            "displayName": f"{p.preferred_name or p.first_name} {p.last_name}",
            "fullName": f"{p.first_name} {p.last_name}",
            "email": p.work_email,
            "creationDateTime": p.updated_at.astimezone(UTC).isoformat(timespec="seconds"),
            "personal": {
                "preferredName": p.preferred_name,
                "birthDate": _day(p.date_of_birth),
                "gender": p.gender,
            },
            "home": {"privateEmail": p.personal_email, "mobilePhone": p.mobile},
            "work": {
                "workPhone": p.phone,
                "employeeIdInCompany": p.employee_id,
                "title": pos.job_title,
                "department": pos.department,
                "division": pos.division,
                "site": pos.location,
                "siteId": int(list_item_id("work.site", pos.location)),
                "startDate": _day(p.hire_date),
                "reportsTo": ref,
                "manager": ref["id"] if ref else None,
                "isManager": p.employee_id in self.managers(),
                "custom": {
                    CANDIDATE_FIELD.rsplit(".", 1)[1]: str(p.candidate_id)
                    if p.candidate_id
                    else None
                },
            },
            "internal": {
                "terminationDate": _day(p.termination_date),
                "terminationReason": p.current.termination_reason,
            },
            "payroll": {
                "employment": {
                    "contract": CONTRACT.get(p.employment_type),
                    "type": EMPLOYMENT_TYPE.get(p.employment_type, p.employment_type),
                },
                "custom": us_tax_custom(p),
            },
            "address": {
                "line1": addr.line1 if addr else None,
                "line2": addr.line2 if addr else None,
                "city": addr.city if addr else None,
                "usState": addr.state if addr else None,
                "postCode": addr.postal_code if addr else None,
                "country": COUNTRY_NAMES.get(addr.country, addr.country) if addr else None,
            },
            "financial": {"identificationNumber": p.ssn},
        }
        return doc

    def rows(self, eid: int, table: str) -> list[dict[str, Any]]:
        """Every entry of an employee table, oldest first, numbered, the effective one current."""
        if eid in self.created:
            seeded: list[dict[str, Any]] = []
        else:
            p = self.world.person(eid)
            seeded = {
                "work": lambda: work_rows(p, self.world),
                "employment": lambda: employment_rows(p),
                "lifecycle": lambda: lifecycle_rows(p),
                "salaries": lambda: salary_rows(p),
            }[table]()
        added = [row for name, row in self.added_rows.get(eid, []) if name == table]
        rows = sorted(seeded + added, key=lambda r: str(r["effectiveDate"]))
        today = self.world.as_of.isoformat()
        effective = [i for i, r in enumerate(rows) if str(r["effectiveDate"]) <= today]
        current = effective[-1] if effective else None
        return [
            {"id": eid * 1000 + i + 1, **row, "isCurrent": i == current}
            for i, row in enumerate(rows)
        ]

    # --- search -------------------------------------------------------------------------

    def render(self, doc: dict[str, Any], fields: list[str], human: str) -> dict[str, Any]:
        """The requested fields of one document, nested by path, in the requested form."""
        machine: dict[str, Any] = {}
        readable: dict[str, Any] = {}
        for field in fields:
            if field not in FIELDS:
                continue  # unknown or unpermitted field ids are silently omitted
            value = _get(doc, field)
            shown = value
            if field in LIST_FIELDS and value is not None:
                value = list_item_id(field, str(value))
            elif FIELDS[field][1] == "date":
                shown = _human_day(value)
            elif field == "work.reportsTo" and isinstance(value, dict):
                shown = value.get("displayName")
            elif value is not None and not isinstance(value, str):
                shown = str(value).lower() if isinstance(value, bool) else str(value)
            _set(machine, field, value)
            _set(readable, field, shown)
        if human == "REPLACE":
            return readable
        if human == "APPEND":
            machine["humanReadable"] = readable
        return machine

    def search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        raw_fields = body.get("fields") or []
        if not isinstance(raw_fields, list):
            raise self.fail(400, "fields must be an array of field ids")
        fields = [f for f in (normalise_field(x) for x in raw_fields) if f] or list(DEFAULT_FIELDS)
        human = body.get("humanReadable") or ""
        if human not in ("", "APPEND", "REPLACE"):
            raise self.fail(400, f"humanReadable must be APPEND or REPLACE, not {human!r}")
        show_inactive = body.get("showInactive", False)
        if not isinstance(show_inactive, bool):
            raise self.fail(400, "showInactive must be a boolean")
        wanted = self._filtered_ids(body.get("filters") or [])
        self.search_calls.append({"fields": fields, "showInactive": show_inactive})
        out = []
        for eid in self.employee_ids() if wanted is None else wanted:
            if not self.exists(eid):
                continue
            doc = self.employee(eid)
            if not show_inactive and _get(doc, "internal.status") != "Active":
                continue
            out.append(self.render(doc, fields, human))
        return out

    def _filtered_ids(self, filters: Any) -> list[int] | None:
        if not isinstance(filters, list):
            raise self.fail(400, "filters must be an array")
        ids: list[int] | None = None
        for f in filters:
            if not isinstance(f, dict):
                raise self.fail(400, "each filter is an object with fieldPath, operator, values")
            path = normalise_field(f.get("fieldPath"))
            values = f.get("values")
            if f.get("operator") != "equals" or not isinstance(values, list):
                raise self.fail(400, "filters support the equals operator with a values array")
            if path == "root.id":
                found = [int(v) for v in values if str(v).isdigit() and self.exists(int(v))]
            elif path == "root.email":
                wanted = {str(v).lower() for v in values}
                found = [
                    e
                    for e in self.employee_ids()
                    if str(_get(self.employee(e), "email") or "").lower() in wanted
                ]
            else:
                raise self.fail(400, f"filtering by {f.get('fieldPath')!r} is not supported")
            ids = found if ids is None else [e for e in ids if e in set(found)]
        return ids

    # --- writes -------------------------------------------------------------------------

    def _check_writes(self, body: Any, eid: int | None) -> dict[str, Any]:
        """``body`` as field path -> value, checked; 400 naming the field otherwise."""
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        flat: dict[str, Any] = {}
        for key, value in body.items():
            if key in WRITABLE_ROOT:
                flat[f"root.{key}"] = value
            elif key in WRITABLE and isinstance(value, dict):
                for sub, inner in value.items():
                    if sub not in WRITABLE[key]:
                        raise self.fail(400, f"Field {key}.{sub} is unknown or not writable")
                    flat[f"{key}.{sub}"] = inner
            else:
                raise self.fail(400, f"Field {key} is unknown or not writable")
        for path, value in flat.items():
            if value is None:
                continue
            kind = FIELDS.get(path, ("", "text"))[1]
            if kind == "date" and not (isinstance(value, str) and _DATE.match(value)):
                raise self.fail(400, f"Field {path} must be a date (YYYY-MM-DD)")
            if path == "root.email":
                if not (isinstance(value, str) and _EMAIL.match(value)):
                    raise self.fail(400, "Field root.email is not an e-mail address")
                owner = self._email_owner(value)
                if owner is not None and owner != eid:
                    raise self.fail(
                        400, f"Email {value} is already used by employee {owner}", "duplicate.email"
                    )
        if isinstance(flat.get("work.reportsTo"), str | int):
            ref = _reference(self.world, int(flat["work.reportsTo"]))
            flat["work.reportsTo"] = ref
            flat["work.manager"] = ref["id"] if ref else None
        return flat

    def _email_owner(self, email: str) -> int | None:
        low = email.lower()
        for eid in self.employee_ids():
            if str(_get(self.employee(eid), "email") or "").lower() == low:
                return eid
        return None

    def create(self, body: Any) -> dict[str, Any]:
        with self._lock:
            flat = self._check_writes(body, None)
            for required in ("root.firstName", "root.surname", "root.email", "work.site",
                             "work.startDate"):  # fmt: skip
                if not flat.get(required):
                    raise self.fail(400, f"Field {required} is required")
            eid = max([self.world.employees, *self.created]) + 1
            doc: dict[str, Any] = {"id": str(eid)}
            for path, value in flat.items():
                _set(doc, path, value)
            first, last = doc.get("firstName"), doc.get("surname")
            doc.setdefault("displayName", f"{first} {last}")
            doc["fullName"] = f"{first} {last}"
            doc["creationDateTime"] = datetime.now(UTC).isoformat(timespec="seconds")
            _set(doc, "work.employeeIdInCompany", eid)
            _set(doc, "work.siteId", int(list_item_id("work.site", str(flat["work.site"]))))
            _set(doc, "internal.terminationDate", None)
            self.created[eid] = doc
            start = str(flat["work.startDate"])
            self.added_rows[eid] = [
                ("lifecycle", {"effectiveDate": start, "status": "employed", "reason": None}),
                ("work", {"effectiveDate": start,
                          **{k: _get(doc, f"work.{k}") for k in ("title", "department",
                                                                 "division", "site")},
                          "reportsTo": _get(doc, "work.reportsTo")}),
            ]  # fmt: skip
            self.writes.append(("POST", eid, sorted(flat)))
            return self.employee(eid)

    def update(self, eid: int, body: Any) -> None:
        with self._lock:
            flat = self._check_writes(body, eid)
            if eid in self.created:
                for path, value in flat.items():
                    _set(self.created[eid], path, value)
            else:
                self.edits.setdefault(eid, {}).update(flat)
            self.writes.append(("PUT", eid, sorted(flat)))

    def add_work(self, eid: int, body: Any) -> None:
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        when = body.get("effectiveDate")
        if not (isinstance(when, str) and _DATE.match(when)):
            raise self.fail(400, "Field effectiveDate is required (YYYY-MM-DD)")
        unknown = sorted(set(body) - {"effectiveDate", "title", "department", "division", "site",
                                      "reportsTo"})  # fmt: skip
        if unknown:
            raise self.fail(400, f"Field {unknown[0]} is unknown in the work table")
        row = dict(body)
        if "reportsTo" in row:
            ref = row["reportsTo"]
            row["reportsTo"] = _reference(self.world, int(ref)) if ref is not None else None
        with self._lock:
            self.added_rows.setdefault(eid, []).append(("work", row))
            self.writes.append(("POST work", eid, sorted(body)))

    # --- routes -------------------------------------------------------------------------

    def _authorise(self, req: Request) -> None:
        auth = req.headers.get("Authorization", "")
        user = password = ""
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                user = ""
        if (user, password) != (self.service_user, self.token):
            raise self.fail(401, "Unauthorized: invalid service user credentials", "unauthorized")

    def _eid(self, ident: str) -> int:
        if ident.isdigit() and self.exists(int(ident)):
            return int(ident)
        owner = self._email_owner(ident) if "@" in ident else None
        if owner is None:
            raise self.fail(404, f"Employee {ident} not found", "employee.not.found")
        return owner

    def _register(self) -> None:
        def route(method: str, path: str) -> Callable[[Callable[..., Response]], Any]:
            def wrap(handler: Callable[..., Response]) -> Any:
                def guarded(req: Request, **kw: str) -> Response:
                    self._authorise(req)
                    return handler(req, **kw)

                return self.route(method, "/v1" + path)(guarded)

            return wrap

        @route("POST", "/people/search")
        def search(req: Request) -> Response:
            return Response(200, {"employees": self.search(_json(req, self))})

        @route("GET", "/company/people/fields")
        def fields(req: Request) -> Response:
            return Response(
                200,
                [
                    {"id": fid, "name": name, "type": kind, "category": fid.split(".")[0],
                     "jsonPath": fid.removeprefix("root."), "historical": fid.startswith("work.")}
                    for fid, (name, kind) in FIELDS.items()
                ],
            )  # fmt: skip

        @route("POST", "/people")
        def create(req: Request) -> Response:
            return Response(200, self.create(_json(req, self)))

        @route("POST", "/people/{ident}")
        def read_one(req: Request, ident: str) -> Response:
            body = _json(req, self) or {}
            eid = self._eid(ident)
            fields = [f for f in (normalise_field(x) for x in body.get("fields") or []) if f]
            doc = self.employee(eid)
            return Response(
                200,
                self.render(doc, fields or list(DEFAULT_FIELDS), body.get("humanReadable") or ""),
            )

        @route("PUT", "/people/{ident}")
        def update(req: Request, ident: str) -> Response:
            self.update(self._eid(ident), _json(req, self))
            return Response(200, b"")

        @route("GET", "/people/{ident}/{table}")
        def table(req: Request, ident: str, table: str) -> Response:
            if table not in TABLES:
                raise self.fail(404, f"Unknown table {table}", "not.found")
            return Response(200, {"values": self.rows(self._eid(ident), table)})

        @route("POST", "/people/{ident}/work")
        def add_work(req: Request, ident: str) -> Response:
            self.add_work(self._eid(ident), _json(req, self))
            return Response(200, b"")

        @route("GET", "/bulk/people/{table}")
        def bulk(req: Request, table: str) -> Response:
            if table not in TABLES:
                raise self.fail(404, f"Unknown table {table}", "not.found")
            raw_limit = req.arg("limit") or str(BULK_LIMIT_DEFAULT)
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= BULK_LIMIT_MAX:
                raise self.fail(400, f"limit must be between 1 and {BULK_LIMIT_MAX}")
            limit = int(raw_limit)
            ids = list(self.employee_ids())
            if wanted := req.arg("employeeIds"):
                ids = [int(x) for x in wanted.split(",") if x.strip().isdigit()]
            cursor = req.arg("cursor")
            start = _decode_cursor(cursor) if cursor else 0
            if start is None:
                raise self.fail(400, "Invalid cursor")
            page = ids[start : start + limit]
            results = [
                {"employeeId": str(e), "values": self.rows(e, table)}
                for e in page
                if self.exists(e)
            ]
            nxt = _encode_cursor(start + limit) if start + limit < len(ids) else None
            return Response(200, {"results": results, "response_metadata": {"next_cursor": nxt}})


def _json(req: Request, app: HiBob) -> Any:
    try:
        return req.json()
    except ValueError:
        raise app.fail(400, "Malformed JSON body") from None


def _deep_copy(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in doc.items()}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        return None
    number = text.removeprefix("offset:")
    return int(number) if text.startswith("offset:") and number.isdigit() else None


def make_app(world: World, credentials: dict[str, str]) -> HiBob:
    return HiBob(world, credentials)
