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
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import Person, World

CANDIDATE_FIELD = "customATSCandidateID"
MAX_FIELDS = 400

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
    "exempt": (4024, "FLSA Code", "list"),
    "lastChanged": (1359, "Last Changed", "timestamp"),
    CANDIDATE_FIELD: (4500, "ATS Candidate ID", "text"),
}
WRITABLE = set(FIELDS) - {"id", "displayName", "lastChanged", "status"}
TABLES = ("jobInfo", "compensation", "employmentStatus")


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
        "exempt": "Exempt" if primary.exempt else "Non-exempt",
        "lastChanged": _stamp(p.updated_at),
        CANDIDATE_FIELD: str(p.candidate_id) if p.candidate_id else None,
    }


def table_rows(p: Person, table: str) -> list[dict[str, Any]]:
    """History rows of one person: two concurrent positions give two current jobInfo rows."""
    eid = str(p.employee_id)
    rows: list[dict[str, Any]] = []
    for e_index, employment in enumerate(p.employments):
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
    return [{"id": str(p.employee_id * 100 + n), "employeeId": eid, **row}
            for n, row in enumerate(rows, start=1)]  # fmt: skip


class BambooHR(App):
    name = "bamboohr"

    def __init__(self, world: World, credentials: dict[str, str], *, legacy_503: bool = False):
        super().__init__()
        self.world = world
        self.api_key = credentials["api_key"]
        self.company = credentials["company_domain"]
        self.legacy_503 = legacy_503
        self._lock = threading.Lock()
        self.created: dict[int, dict[str, Any]] = {}  # employees added through the API
        self.edits: dict[int, dict[str, Any]] = {}  # field changes to seeded employees
        self.changed_at: dict[int, datetime] = {}
        self.writes: list[tuple[str, int, list[str]]] = []  # (method, id, field names)
        for prefix in ("/api/v1", "/api/gateway.php/{company}/v1"):
            self._register(prefix)

    # --- vendor-shaped errors -----------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        return Response(status, b"", {"X-BambooHR-Error-Message": message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        status = 503 if self.legacy_503 else 429
        return Response(
            status,
            b"",
            {"Retry-After": str(retry_after), "X-BambooHR-Error-Message": "Rate limit exceeded"},
        )

    def fail(self, status: int, message: str) -> HTTPError:
        return HTTPError(status, b"", {"X-BambooHR-Error-Message": message})

    # --- the store ----------------------------------------------------------------------

    def employee(self, eid: int) -> dict[str, Any]:
        if eid in self.created:
            return self.created[eid]
        fields = person_fields(self.world.person(eid))
        edits = self.edits.get(eid)
        if edits:
            fields = {**fields, **edits}
        return fields

    def employee_ids(self) -> Iterator[int]:
        yield from range(1, self.world.employees + 1)
        yield from sorted(self.created)

    def last_changed(self, eid: int) -> datetime:
        if eid in self.changed_at:
            return self.changed_at[eid]
        return self.world.person(eid).updated_at

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

    def _register(self, prefix: str) -> None:
        def route(method: str, path: str) -> Callable[[Callable[..., Response]], Any]:
            def wrap(handler: Callable[..., Response]) -> Any:
                def guarded(req: Request, company: str | None = None, **kw: str) -> Response:
                    self._authorise(req, company)
                    return handler(req, **kw)

                return self.route(method, prefix + path)(guarded)

            return wrap

        @route("GET", "/meta/fields")
        def meta_fields(req: Request) -> Response:
            return Response(
                200,
                [
                    {"id": fid, "name": name, "type": kind, "alias": alias}
                    for alias, (fid, name, kind) in FIELDS.items()
                ],
            )

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
            employees = []
            for eid in self.employee_ids():
                emp = self.employee(eid)
                if emp.get("status") == "Active":
                    employees.append({"id": emp["id"], **{k: emp.get(k) for k in shown}})
            return Response(
                200,
                {
                    "fields": [
                        {"id": k, "type": FIELDS[k][2], "name": FIELDS[k][1]} for k in shown
                    ],
                    "employees": employees,
                },
            )

        @route("GET", "/employees/changed")
        def changed(req: Request) -> Response:
            since = self._since(req)
            kind = (req.arg("type") or "").lower()
            out: dict[str, Any] = {}
            if kind in ("", "inserted", "updated"):
                for eid in self.world.ids("people", updated_gte=since, limit=10**9):
                    if eid not in self.changed_at and kind != "inserted":
                        out[str(eid)] = {
                            "id": str(eid),
                            "action": "Updated",
                            "lastChanged": _stamp(self.last_changed(eid)),
                        }
                for eid, when in sorted(self.changed_at.items()):
                    if when >= since:
                        action = "Inserted" if eid in self.created else "Updated"
                        if kind in ("", action.lower()):
                            out[str(eid)] = {
                                "id": str(eid),
                                "action": action,
                                "lastChanged": _stamp(when),
                            }
            return Response(200, {"latest": _stamp(datetime.now(UTC)), "employees": out})

        @route("GET", "/employees/changed/tables/{table}")
        def changed_tables(req: Request, table: str) -> Response:
            self._table(table)
            since = self._since(req)
            out = {}
            for eid in self.world.ids("people", updated_gte=since, limit=10**9):
                out[str(eid)] = {
                    "lastChanged": _stamp(self.last_changed(eid)),
                    "rows": table_rows(self.world.person(eid), table),
                }
            return Response(200, {"latest": _stamp(datetime.now(UTC)), "employees": out})

        @route("GET", "/employees/{ident}/tables/{table}")
        def tables(req: Request, ident: str, table: str) -> Response:
            self._table(table)
            if ident == "all":
                rows = [
                    r
                    for eid in range(1, self.world.employees + 1)
                    for r in table_rows(self.world.person(eid), table)
                ]
                return Response(200, rows)
            eid = self._eid(ident)
            if eid in self.created:
                return Response(200, [])
            return Response(200, table_rows(self.world.person(eid), table))

        @route("GET", "/employees/{ident}")
        def single(req: Request, ident: str) -> Response:
            eid = self._eid(ident)
            names = [f for f in (req.arg("fields") or "firstName,lastName").split(",") if f]
            if len(names) > MAX_FIELDS:
                raise self.fail(400, f"At most {MAX_FIELDS} fields may be requested")
            emp = self.employee(eid)
            return Response(200, {"id": emp["id"], **{n: emp.get(n) for n in names}})

        @route("POST", "/reports/custom")
        def report(req: Request) -> Response:
            if (req.arg("format") or "").upper() != "JSON":
                raise self.fail(400, "Only format=JSON is offered by this sandbox")
            body = self._body(req)
            names = list(body.get("fields") or [])
            unknown = [n for n in names if n not in FIELDS]
            if unknown:
                raise self.fail(400, f"Unknown field(s): {', '.join(unknown)}")
            since = None
            changed = (body.get("filters") or {}).get("lastChanged")
            if changed and changed.get("value"):
                since = _parse(changed["value"])
            only_current = (req.arg("onlyCurrent") or "true").lower() != "false"
            del only_current  # history-effective values are not modelled: current values only
            rows = []
            for eid in self.employee_ids():
                if since is not None and self.last_changed(eid) < since:
                    continue
                emp = self.employee(eid)
                rows.append({"id": emp["id"], **{n: emp.get(n) for n in names if n != "id"}})
            fields = [{"id": n, "type": FIELDS[n][2], "name": FIELDS[n][1]} for n in names]
            return Response(
                200, {"title": body.get("title", "Report"), "fields": fields, "employees": rows}
            )

        @route("POST", "/employees")
        def add(req: Request) -> Response:
            body = self._writable(self._body(req))
            if (
                not (body.get("firstName") or "").strip()
                or not (body.get("lastName") or "").strip()
            ):
                raise self.fail(400, "firstName and lastName are required")
            with self._lock:
                eid = self.world.employees + len(self.created) + 1
                now = datetime.now(UTC)
                record = dict.fromkeys(FIELDS)
                record.update(body, id=str(eid), status="Active", lastChanged=_stamp(now))
                record["displayName"] = (
                    f"{body.get('preferredName') or body['firstName']} {body['lastName']}"
                )
                self.created[eid] = record
                self.changed_at[eid] = now
                self.writes.append(("POST", eid, sorted(body)))
            location = f"http://{req.headers.get('Host', '127.0.0.1')}{req.path}/{eid}"
            return Response(201, b"", {"Location": location})

        @route("POST", "/employees/{ident}")
        def update(req: Request, ident: str) -> Response:
            eid = self._eid(ident)
            body = self._writable(self._body(req))
            with self._lock:
                now = datetime.now(UTC)
                if eid in self.created:
                    self.created[eid].update(body, lastChanged=_stamp(now))
                else:
                    self.edits.setdefault(eid, {}).update(body, lastChanged=_stamp(now))
                self.changed_at[eid] = now
                self.writes.append(("POST", eid, sorted(body)))
            return Response(200, b"")

    # --- helpers ------------------------------------------------------------------------

    def _eid(self, ident: str) -> int:
        if not ident.isdigit():
            raise self.fail(400, f"Invalid employee id {ident!r}")
        eid = int(ident)
        if eid in self.created or 1 <= eid <= self.world.employees:
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
        try:
            body = req.json()
        except ValueError:
            raise self.fail(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self.fail(400, "Request body must be a JSON object")
        return body

    def _writable(self, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - WRITABLE)
        if unknown:
            raise self.fail(400, f"Field(s) not writable or unknown: {', '.join(unknown)}")
        for name, value in body.items():
            if FIELDS[name][2] == "date" and value and not _is_date(value):
                raise self.fail(400, f"Invalid date for {name}: expected YYYY-MM-DD")
        return {k: (None if v == "" else v) for k, v in body.items()}


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
