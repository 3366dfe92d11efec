"""Gusto's REST API (App Integrations / Embedded, ``/v1``), as documented, for one company.

What it follows (sources and what is unverified: ``sandbox/docs/gusto.md``):

- OAuth 2.0: ``POST /oauth/token`` with ``grant_type=refresh_token`` (client id + secret + the
  refresh token) answers ``{access_token, token_type, expires_in, refresh_token, created_at}``;
  the refresh token rotates (the used one stops working). Bearer tokens expire (``expires_in``,
  7200 s by default); an expired or unknown token gets 401.
- ``X-Gusto-API-Version: YYYY-MM-DD`` (optional; an unknown version is a 406), echoed back.
- ``GET|POST /v1/companies/{uuid}/employees`` (``page``, ``per`` <= 100; ``X-Page``,
  ``X-Per-Page``, ``X-Total-Count``, ``X-Total-Pages``; ``include=custom_fields``),
  ``GET|PUT /v1/employees/{uuid}`` (PUT needs the current ``version``: 409 when stale),
  ``GET|POST /v1/employees/{uuid}/jobs``, ``GET|POST /v1/jobs/{uuid}/compensations``,
  ``PUT /v1/compensations/{uuid}``,
  ``GET|POST|DELETE /v1/employees/{uuid}/terminations``, ``GET|POST /v1/employees/{uuid}/rehire``,
  ``GET|PUT /v1/employees/{uuid}/federal_taxes``, ``GET /v1/companies/{uuid}/company_benefits``,
  ``GET|POST /v1/employees/{uuid}/employee_benefits``, ``PUT /v1/employee_benefits/{uuid}``,
  ``GET /v1/companies/{uuid}/custom_fields``, ``GET /v1/companies/{uuid}/locations``.
- Errors ``{"errors": [{"error_key", "category", "message", "metadata"}]}``; 422 for invalid
  attributes, 404 not found, 409 stale version.
- 200 requests per 60 s per token (rolling window), then 429 + ``Retry-After``.

The company starts empty except for its locations (the world's US offices), benefits and one
custom field, ``HRIS Employee ID``, which integrations use as the employee's external id.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import World

API_VERSIONS = ("2024-04-01", "2024-10-01", "2025-06-15", "2025-11-15", "2026-02-01", "2026-06-15")
TOKEN_TTL = 7200
RATE_LIMIT = 200
RATE_WINDOW = 60.0
PER_DEFAULT = 25
PER_MAX = 100
EXTERNAL_ID_FIELD = "HRIS Employee ID"
PAYMENT_UNITS = ("Hour", "Week", "Month", "Year", "Paycheck")
FLSA_STATUSES = (
    "Exempt",
    "Salaried Nonexempt",
    "Nonexempt",
    "Owner",
    "Commission Only Exempt",
    "Commission Only Nonexempt",
)
FILING_STATUSES = ("Single", "Married", "Head of Household", "Exempt from withholding")
#: (benefit_type, description) of the company's benefits
BENEFITS = (
    (105, "401(k)"),
    (106, "Roth 401(k)"),
    (1, "Medical"),
    (2, "Dental"),
    (3, "Vision"),
    (6, "HSA"),
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _uuid(namespace: str, key: str) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"gusto:{namespace}:{key}"))


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _error(
    status: int, key: str, message: str, category: str = "invalid_attribute_value", **meta: Any
) -> HTTPError:
    body = {
        "errors": [{"error_key": key, "category": category, "message": message, "metadata": meta}]
    }
    return HTTPError(status, body)


class Gusto(App):
    name = "gusto"
    fault_exempt = r"^/(oauth/token|_sandbox)"

    def __init__(self, world: World, credentials: dict[str, str]) -> None:
        super().__init__()
        self.world = world
        self.client_id = credentials["client_id"]
        self.client_secret = credentials["client_secret"]
        self.company_uuid = credentials["company_uuid"]
        self.token_ttl = TOKEN_TTL
        self.rate_limit = RATE_LIMIT
        self.rate_window = RATE_WINDOW
        self._lock = threading.RLock()
        self.refresh_tokens: set[str] = {credentials["refresh_token"]}
        self.access_tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.token_grants = 0
        self._hits: dict[str, deque[float]] = {}
        self.versions_seen: dict[str, int] = {}
        self.employees: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.compensations: dict[str, dict[str, Any]] = {}
        self.terminations: dict[str, list[dict[str, Any]]] = {}
        self.rehires: dict[str, list[dict[str, Any]]] = {}
        self.federal_taxes: dict[str, dict[str, Any]] = {}
        self.employee_benefits: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []  # (method, path) of every accepted write
        self.custom_field = {
            "uuid": _uuid("custom-field", EXTERNAL_ID_FIELD),
            "name": EXTERNAL_ID_FIELD,
            "type": "text",
            "description": "The employee id in the HRIS (system of record)",
            "selection_options": None,
        }
        self.locations = [
            {
                "uuid": _uuid("location", office.name),
                "company_uuid": self.company_uuid,
                "name": office.name,
                "city": office.city,
                "state": office.state,
                "country": "USA",
                "active": True,
            }
            for office in world.offices
            if office.country == "US"
        ]
        self.company_benefits = [
            {
                "uuid": _uuid("benefit", description),
                "benefit_type": benefit_type,
                "description": description,
                "active": True,
            }
            for benefit_type, description in BENEFITS
        ]
        self._register()

    # --- vendor-shaped errors -----------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        category = {404: "not_found", 401: "invalid_token", 405: "invalid_operation"}.get(
            status, "invalid_operation"
        )
        key = "base" if status != 404 else "resource"
        return _error(status, key, message, category).response

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        err = _error(429, "base", "Too many requests", "rate_limit_exceeded")
        err.response.headers["Retry-After"] = str(retry_after)
        return err.response

    # --- auth, version, rate limit ------------------------------------------------------

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = time.monotonic() + self.token_ttl
        self.refresh_tokens.add(refresh)
        self.token_grants += 1
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.token_ttl,
            "refresh_token": refresh,
            "created_at": int(time.time()),
        }

    def issue_refresh_token(self) -> str:
        """A fresh refresh token, as completing Gusto's authorisation flow would give."""
        with self._lock:
            token = secrets.token_urlsafe(24)
            self.refresh_tokens.add(token)
            return token

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self.access_tokens:
                self.access_tokens[token] = 0.0

    def _authorise(self, req: Request) -> str:
        auth = req.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            expiry = self.access_tokens.get(token)
            if expiry is None or expiry <= time.monotonic():
                what = "expired" if expiry is not None else "invalid"
                raise _error(401, "base", f"The access token is {what}", "invalid_token")
        version = req.headers.get("X-Gusto-API-Version")
        if version is not None and version not in API_VERSIONS:
            raise _error(
                406,
                "X-Gusto-API-Version",
                f"Unsupported API version {version!r}",
                "invalid_header",
                supported=list(API_VERSIONS),
            )
        with self._lock:
            label = version or "(none)"
            self.versions_seen[label] = self.versions_seen.get(label, 0) + 1
            hits = self._hits.setdefault(token, deque())
            now = time.monotonic()
            while hits and hits[0] <= now - self.rate_window:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                wait = max(1, int(hits[0] + self.rate_window - now + 0.999))
                err = _error(429, "base", "Rate limit exceeded", "rate_limit_exceeded")
                err.response.headers["Retry-After"] = str(wait)
                raise err
            hits.append(now)
        return version or API_VERSIONS[0]

    # --- store helpers ------------------------------------------------------------------

    def _employee(self, ident: str) -> dict[str, Any]:
        emp = self.employees.get(ident)
        if emp is None:
            raise _error(404, "employee_uuid", f"Employee {ident} not found", "not_found")
        return emp

    def _job(self, ident: str) -> dict[str, Any]:
        job = self.jobs.get(ident)
        if job is None:
            raise _error(404, "job_uuid", f"Job {ident} not found", "not_found")
        return job

    @staticmethod
    def _bump(obj: dict[str, Any]) -> None:
        obj["version"] = secrets.token_hex(16)

    @staticmethod
    def _check_version(obj: dict[str, Any], body: dict[str, Any]) -> None:
        sent = body.get("version")
        if not sent:
            raise _error(422, "version", "version is required")
        if sent != obj["version"]:
            raise _error(
                409,
                "version",
                "The resource has changed since you read it: GET it "
                "again and resend with the current version",
                "invalid_operation",
                current_version=obj["version"],
            )

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError:
            raise _error(400, "base", "Request body is not valid JSON", "invalid_request") from None
        if not isinstance(body, dict):
            raise _error(400, "base", "Request body must be a JSON object", "invalid_request")
        return body

    def is_terminated(self, emp_uuid: str, on: date | None = None) -> bool:
        """Terminated on ``on`` (default today): the latest termination has taken effect and no
        rehire has since."""
        on = on or date.today()
        ended = [
            t
            for t in self.terminations.get(emp_uuid, [])
            if date.fromisoformat(t["effective_date"]) <= on
        ]
        if not ended:
            return False
        last = max(date.fromisoformat(t["effective_date"]) for t in ended)
        back = [
            r
            for r in self.rehires.get(emp_uuid, [])
            if last < date.fromisoformat(r["effective_date"]) <= on
        ]
        return not back

    def render_employee(self, emp: dict[str, Any], include: set[str]) -> dict[str, Any]:
        out = {k: v for k, v in emp.items() if not k.startswith("_")}
        out["ssn"] = ""  # never returned; has_ssn says whether one is on file
        out["has_ssn"] = bool(emp.get("_ssn"))
        out["terminated"] = self.is_terminated(emp["uuid"])
        out["current_employment_status"] = emp.get("current_employment_status")
        out["jobs"] = [
            self.render_job(j) for j in self.jobs.values() if j["employee_uuid"] == emp["uuid"]
        ]
        out["terminations"] = list(self.terminations.get(emp["uuid"], []))
        if "custom_fields" in include:
            out["custom_fields"] = [
                {
                    "id": self.custom_field["uuid"],
                    "company_custom_field_id": self.custom_field["uuid"],
                    "name": self.custom_field["name"],
                    "type": "text",
                    "description": self.custom_field["description"],
                    "value": value,
                    "selection_options": None,
                }
                for value in [emp.get("_external_id")]
                if value is not None
            ]
        return out

    def render_job(self, job: dict[str, Any]) -> dict[str, Any]:
        comps = sorted(
            (c for c in self.compensations.values() if c["job_uuid"] == job["uuid"]),
            key=lambda c: c["effective_date"],
        )
        today = date.today().isoformat()
        current = [c for c in comps if c["effective_date"] <= today] or comps[:1]
        out = dict(job)
        out["compensations"] = comps
        out["current_compensation_uuid"] = current[-1]["uuid"] if current else None
        out["rate"] = current[-1]["rate"] if current else None
        out["payment_unit"] = current[-1]["payment_unit"] if current else None
        return out

    def _custom_fields(self, emp: dict[str, Any], body: dict[str, Any]) -> None:
        for cf in body.get("custom_fields") or []:
            if not isinstance(cf, dict) or cf.get("id") != self.custom_field["uuid"]:
                raise _error(422, "custom_fields", "Unknown custom field id")
            emp["_external_id"] = None if cf.get("value") in (None, "") else str(cf["value"])

    EMPLOYEE_FIELDS = (
        "first_name",
        "middle_initial",
        "last_name",
        "preferred_first_name",
        "email",
        "work_email",
        "date_of_birth",
    )

    def _employee_fields(self, emp: dict[str, Any], body: dict[str, Any]) -> None:
        for name in self.EMPLOYEE_FIELDS:
            if name in body:
                value = body[name]
                if value is not None and not isinstance(value, str):
                    raise _error(422, name, f"{name} must be a string")
                if name == "date_of_birth" and value and not _is_date(value):
                    raise _error(422, name, "date_of_birth must be a date (YYYY-MM-DD)")
                if name == "middle_initial" and value and len(value) > 1:
                    raise _error(422, name, "middle_initial must be one character")
                emp[name] = value
        if "ssn" in body:
            ssn = re.sub(r"\D", "", str(body["ssn"] or ""))
            if ssn and len(ssn) != 9:
                raise _error(422, "ssn", "ssn must have 9 digits")
            emp["_ssn"] = ssn or None
        for name in ("first_name", "last_name"):
            if not (emp.get(name) or "").strip():
                raise _error(422, name, f"{name} can't be blank")

    # --- routes -------------------------------------------------------------------------

    def _register(self) -> None:
        def route(method: str, path: str) -> Callable[[Callable[..., Response]], Any]:
            def wrap(handler: Callable[..., Response]) -> Any:
                def guarded(req: Request, **kw: str) -> Response:
                    version = self._authorise(req)
                    with self._lock:
                        resp = handler(req, **kw)
                        if method != "GET" and resp.status < 300:
                            self.writes.append((method, req.path))
                    resp.headers.setdefault("X-Gusto-API-Version", version)
                    return resp

                return self.route(method, path)(guarded)

            return wrap

        def company(ident: str) -> None:
            if ident != self.company_uuid:
                raise _error(404, "company_uuid", f"Company {ident} not found", "not_found")

        @self.route("POST", "/oauth/token")
        def token(req: Request) -> Response:
            ctype = (req.headers.get("Content-Type") or "").lower()
            body = self._body(req) if "json" in ctype else req.form()
            if (
                body.get("client_id") != self.client_id
                or body.get("client_secret") != self.client_secret
            ):
                raise HTTPError(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "Client authentication failed",
                    },
                )
            if body.get("grant_type") != "refresh_token":
                raise HTTPError(400, {"error": "unsupported_grant_type"})
            with self._lock:
                refresh = str(body.get("refresh_token") or "")
                if refresh not in self.refresh_tokens:
                    raise HTTPError(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "The refresh token is invalid or was already used",
                        },
                    )
                self.refresh_tokens.discard(refresh)  # rotation: single use
                return Response(200, self._issue())

        @route("GET", "/v1/companies/{ident}/custom_fields")
        def custom_fields(req: Request, ident: str) -> Response:
            company(ident)
            return Response(200, {"custom_fields": [self.custom_field]})

        @route("GET", "/v1/companies/{ident}/locations")
        def locations(req: Request, ident: str) -> Response:
            company(ident)
            return Response(200, self.locations)

        @route("GET", "/v1/companies/{ident}/company_benefits")
        def company_benefits(req: Request, ident: str) -> Response:
            company(ident)
            return Response(200, self.company_benefits)

        @route("GET", "/v1/companies/{ident}/employees")
        def list_employees(req: Request, ident: str) -> Response:
            company(ident)
            try:
                page = int(req.arg("page") or 1)
                per = int(req.arg("per") or PER_DEFAULT)
            except ValueError:
                raise _error(422, "page", "page and per must be integers") from None
            if page < 1 or not 1 <= per <= PER_MAX:
                raise _error(422, "per", f"page must be >= 1 and per between 1 and {PER_MAX}")
            include = set((req.arg("include") or "").split(","))
            terminated = req.arg("terminated")
            rows = list(self.employees.values())
            if terminated in ("true", "false"):
                want = terminated == "true"
                rows = [e for e in rows if self.is_terminated(e["uuid"]) == want]
            total = len(rows)
            pages = max(1, -(-total // per))
            chunk = rows[(page - 1) * per : page * per]
            headers = {
                "X-Page": str(page),
                "X-Per-Page": str(per),
                "X-Total-Count": str(total),
                "X-Total-Pages": str(pages),
            }
            return Response(200, [self.render_employee(e, include) for e in chunk], headers)

        @route("POST", "/v1/companies/{ident}/employees")
        def create_employee(req: Request, ident: str) -> Response:
            company(ident)
            body = self._body(req)
            emp: dict[str, Any] = {
                "uuid": str(uuidlib.uuid4()),
                "company_uuid": self.company_uuid,
                "version": "",
                "onboarded": False,
                "onboarding_status": "admin_onboarding_incomplete",
                "payment_method": "Check",
                "department": None,  # set through the departments API, which is not followed
                "current_employment_status": None,
                "_ssn": None,
                "_external_id": None,
            }
            self._employee_fields(emp, body)
            self._custom_fields(emp, body)
            self._bump(emp)
            self.employees[emp["uuid"]] = emp
            self.federal_taxes[emp["uuid"]] = {
                "employee_uuid": emp["uuid"],
                "version": secrets.token_hex(16),
                "filing_status": None,
                "extra_withholding": "0.0",
                "two_jobs": False,
                "dependents_amount": "0.0",
                "other_income": "0.0",
                "deductions": "0.0",
                "w4_data_type": "rev_2020_w4",
            }
            return Response(201, self.render_employee(emp, {"custom_fields"}))

        @route("GET", "/v1/employees/{ident}")
        def get_employee(req: Request, ident: str) -> Response:
            include = set((req.arg("include") or "").split(","))
            return Response(200, self.render_employee(self._employee(ident), include))

        @route("PUT", "/v1/employees/{ident}")
        def update_employee(req: Request, ident: str) -> Response:
            emp = self._employee(ident)
            body = self._body(req)
            self._check_version(emp, body)
            draft = dict(emp)
            self._employee_fields(draft, body)
            self._custom_fields(draft, body)
            emp.update(draft)
            self._bump(emp)
            return Response(200, self.render_employee(emp, {"custom_fields"}))

        @route("GET", "/v1/employees/{ident}/jobs")
        def list_jobs(req: Request, ident: str) -> Response:
            self._employee(ident)
            return Response(
                200, [self.render_job(j) for j in self.jobs.values() if j["employee_uuid"] == ident]
            )

        @route("POST", "/v1/employees/{ident}/jobs")
        def create_job(req: Request, ident: str) -> Response:
            self._employee(ident)
            body = self._body(req)
            title = body.get("title")
            if not isinstance(title, str) or not title.strip():
                raise _error(422, "title", "title can't be blank")
            if not _is_date(body.get("hire_date")):
                raise _error(422, "hire_date", "hire_date must be a date (YYYY-MM-DD)")
            location = body.get("location_uuid")
            if location is not None and location not in {loc["uuid"] for loc in self.locations}:
                raise _error(422, "location_uuid", "location_uuid is not a company location")
            first = not any(j["employee_uuid"] == ident for j in self.jobs.values())
            job = {
                "uuid": str(uuidlib.uuid4()),
                "version": secrets.token_hex(16),
                "employee_uuid": ident,
                "title": title,
                "hire_date": body["hire_date"],
                "location_uuid": location,
                "primary": first,
            }
            self.jobs[job["uuid"]] = job
            # like Gusto, a new job starts with a compensation effective on its hire date
            comp = {
                "uuid": str(uuidlib.uuid4()),
                "version": secrets.token_hex(16),
                "job_uuid": job["uuid"],
                "rate": "0.00",
                "payment_unit": "Hour",
                "flsa_status": "Nonexempt",
                "effective_date": job["hire_date"],
            }
            self.compensations[comp["uuid"]] = comp
            self._bump(self.employees[ident])
            return Response(201, self.render_job(job))

        @route("GET", "/v1/jobs/{ident}/compensations")
        def list_comps(req: Request, ident: str) -> Response:
            return Response(200, self.render_job(self._job(ident))["compensations"])

        @route("POST", "/v1/jobs/{ident}/compensations")
        def create_comp(req: Request, ident: str) -> Response:
            job = self._job(ident)
            body = self._body(req)
            try:
                rate = Decimal(str(body.get("rate")))
            except InvalidOperation:
                raise _error(422, "rate", "rate must be a decimal amount") from None
            if not rate.is_finite() or rate < 0:
                raise _error(422, "rate", "rate must be a non-negative amount")
            if body.get("payment_unit") not in PAYMENT_UNITS:
                raise _error(422, "payment_unit", f"payment_unit must be one of {PAYMENT_UNITS}")
            if body.get("flsa_status") not in FLSA_STATUSES:
                raise _error(422, "flsa_status", f"flsa_status must be one of {FLSA_STATUSES}")
            effective = body.get("effective_date")
            if not _is_date(effective):
                raise _error(422, "effective_date", "effective_date must be a date (YYYY-MM-DD)")
            existing = [
                c
                for c in self.compensations.values()
                if c["job_uuid"] == ident and c["effective_date"] == effective
            ]
            placeholder = [
                c
                for c in existing
                if c["rate"] == "0.00" and c["effective_date"] == job["hire_date"]
            ]
            if existing and not placeholder:
                raise _error(
                    422,
                    "effective_date",
                    "A compensation with this effective_date already exists for the job",
                )
            for c in placeholder:  # the job's initial compensation is replaced
                del self.compensations[c["uuid"]]
            comp = {
                "uuid": str(uuidlib.uuid4()),
                "version": secrets.token_hex(16),
                "job_uuid": ident,
                "rate": f"{rate:.2f}",
                "payment_unit": body["payment_unit"],
                "flsa_status": body["flsa_status"],
                "effective_date": effective,
            }
            self.compensations[comp["uuid"]] = comp
            return Response(201, comp)

        @route("PUT", "/v1/compensations/{ident}")
        def update_comp(req: Request, ident: str) -> Response:
            comp = self.compensations.get(ident)
            if comp is None:
                raise _error(
                    404, "compensation_uuid", f"Compensation {ident} not found", "not_found"
                )
            body = self._body(req)
            self._check_version(comp, body)
            draft = dict(comp)
            if "rate" in body:
                try:
                    rate = Decimal(str(body["rate"]))
                except InvalidOperation:
                    raise _error(422, "rate", "rate must be a decimal amount") from None
                if not rate.is_finite() or rate < 0:
                    raise _error(422, "rate", "rate must be a non-negative amount")
                draft["rate"] = f"{rate:.2f}"
            if "payment_unit" in body:
                if body["payment_unit"] not in PAYMENT_UNITS:
                    raise _error(
                        422, "payment_unit", f"payment_unit must be one of {PAYMENT_UNITS}"
                    )
                draft["payment_unit"] = body["payment_unit"]
            if "flsa_status" in body:
                if body["flsa_status"] not in FLSA_STATUSES:
                    raise _error(422, "flsa_status", f"flsa_status must be one of {FLSA_STATUSES}")
                draft["flsa_status"] = body["flsa_status"]
            comp.update(draft)
            self._bump(comp)
            return Response(200, comp)

        @route("GET", "/v1/employees/{ident}/terminations")
        def list_terminations(req: Request, ident: str) -> Response:
            self._employee(ident)
            return Response(200, list(self.terminations.get(ident, [])))

        @route("POST", "/v1/employees/{ident}/terminations")
        def terminate(req: Request, ident: str) -> Response:
            emp = self._employee(ident)
            body = self._body(req)
            effective = body.get("effective_date")
            if not _is_date(effective):
                raise _error(422, "effective_date", "effective_date must be a date (YYYY-MM-DD)")
            if any(t["effective_date"] == effective for t in self.terminations.get(ident, [])):
                raise _error(
                    422,
                    "effective_date",
                    "The employee already has a termination with this effective_date",
                )
            term = {
                "uuid": str(uuidlib.uuid4()),
                "version": secrets.token_hex(16),
                "employee_uuid": ident,
                "active": date.fromisoformat(str(effective)) <= date.today(),
                "cancelable": date.fromisoformat(str(effective)) > date.today(),
                "effective_date": effective,
                "run_termination_payroll": bool(body.get("run_termination_payroll", False)),
            }
            self.terminations.setdefault(ident, []).append(term)
            self._bump(emp)
            return Response(201, term)

        @route("DELETE", "/v1/employees/{ident}/terminations")
        def cancel_termination(req: Request, ident: str) -> Response:
            emp = self._employee(ident)
            terms = self.terminations.get(ident, [])
            future = [t for t in terms if date.fromisoformat(t["effective_date"]) > date.today()]
            if not future:
                raise _error(
                    422,
                    "base",
                    "Only a termination that has not taken effect can be cancelled",
                    "invalid_operation",
                )
            terms.remove(max(future, key=lambda t: t["effective_date"]))
            self._bump(emp)
            return Response(204)

        @route("GET", "/v1/employees/{ident}/rehire")
        def get_rehire(req: Request, ident: str) -> Response:
            self._employee(ident)
            rehires = self.rehires.get(ident, [])
            return Response(200, rehires[-1]) if rehires else Response(204)

        @route("POST", "/v1/employees/{ident}/rehire")
        def rehire(req: Request, ident: str) -> Response:
            emp = self._employee(ident)
            body = self._body(req)
            effective = body.get("effective_date")
            if not _is_date(effective):
                raise _error(422, "effective_date", "effective_date must be a date (YYYY-MM-DD)")
            if body.get("work_location_uuid") not in {loc["uuid"] for loc in self.locations}:
                raise _error(
                    422,
                    "work_location_uuid",
                    "work_location_uuid is required and must be a company location",
                )
            if "file_new_hire_report" not in body:
                raise _error(422, "file_new_hire_report", "file_new_hire_report is required")
            terms = self.terminations.get(ident, [])
            if not any(t["effective_date"] < effective for t in terms):
                raise _error(
                    422,
                    "base",
                    "Only a dismissed employee can be rehired, after the termination date",
                    "invalid_operation",
                )
            entry = {
                "employee_uuid": ident,
                "version": secrets.token_hex(16),
                "effective_date": effective,
                "file_new_hire_report": bool(body["file_new_hire_report"]),
                "work_location_uuid": body["work_location_uuid"],
                "employment_status": body.get("employment_status"),
            }
            self.rehires.setdefault(ident, []).append(entry)
            self._bump(emp)
            return Response(201, entry)

        @route("GET", "/v1/employees/{ident}/federal_taxes")
        def get_federal(req: Request, ident: str) -> Response:
            self._employee(ident)
            return Response(200, self.federal_taxes[ident])

        @route("PUT", "/v1/employees/{ident}/federal_taxes")
        def put_federal(req: Request, ident: str) -> Response:
            self._employee(ident)
            taxes = self.federal_taxes[ident]
            body = self._body(req)
            self._check_version(taxes, body)
            status = body.get("filing_status", taxes["filing_status"])
            if status not in FILING_STATUSES:
                raise _error(
                    422, "filing_status", f"filing_status must be one of {FILING_STATUSES}"
                )
            draft = dict(taxes, filing_status=status)
            for name in ("extra_withholding", "dependents_amount", "other_income", "deductions"):
                if name in body:
                    try:
                        amount = Decimal(str(body[name]))
                    except InvalidOperation:
                        raise _error(422, name, f"{name} must be a decimal amount") from None
                    if not amount.is_finite() or amount < 0:
                        raise _error(422, name, f"{name} must be a non-negative amount")
                    draft[name] = str(amount)
            if "two_jobs" in body:
                if not isinstance(body["two_jobs"], bool):
                    raise _error(422, "two_jobs", "two_jobs must be true or false")
                draft["two_jobs"] = body["two_jobs"]
            taxes.update(draft)
            self._bump(taxes)
            return Response(200, taxes)

        @route("GET", "/v1/employees/{ident}/employee_benefits")
        def list_benefits(req: Request, ident: str) -> Response:
            self._employee(ident)
            return Response(
                200, [b for b in self.employee_benefits.values() if b["employee_uuid"] == ident]
            )

        def benefit_fields(target: dict[str, Any], body: dict[str, Any]) -> None:
            if "employee_deduction" in body:
                try:
                    amount = Decimal(str(body["employee_deduction"]))
                except InvalidOperation:
                    raise _error(
                        422, "employee_deduction", "employee_deduction must be a decimal amount"
                    ) from None
                if not amount.is_finite() or amount < 0:
                    raise _error(422, "employee_deduction", "employee_deduction must be >= 0")
                target["employee_deduction"] = f"{amount:.2f}"
            if "deduct_as_percentage" in body:
                target["deduct_as_percentage"] = bool(body["deduct_as_percentage"])
            if target.get("deduct_as_percentage") and Decimal(target["employee_deduction"]) > 100:
                raise _error(422, "employee_deduction", "a percentage cannot exceed 100")
            for name in ("effective_date", "expiration_date"):
                if name in body:
                    if body[name] is not None and not _is_date(body[name]):
                        raise _error(422, name, f"{name} must be a date (YYYY-MM-DD)")
                    target[name] = body[name]
            if "active" in body:
                target["active"] = bool(body["active"])

        @route("POST", "/v1/employees/{ident}/employee_benefits")
        def create_benefit(req: Request, ident: str) -> Response:
            self._employee(ident)
            body = self._body(req)
            benefit = body.get("company_benefit_uuid")
            if benefit not in {b["uuid"] for b in self.company_benefits}:
                raise _error(
                    422,
                    "company_benefit_uuid",
                    "company_benefit_uuid is not a benefit of the company",
                )
            entry: dict[str, Any] = {
                "uuid": str(uuidlib.uuid4()),
                "version": "",
                "employee_uuid": ident,
                "company_benefit_uuid": benefit,
                "active": True,
                "employee_deduction": "0.00",
                "deduct_as_percentage": False,
                "effective_date": "1970-01-01",
                "expiration_date": None,
            }
            benefit_fields(entry, body)
            overlapping = [
                b
                for b in self.employee_benefits.values()
                if b["employee_uuid"] == ident
                and b["company_benefit_uuid"] == benefit
                and b["effective_date"] == entry["effective_date"]
            ]
            if overlapping:
                raise _error(
                    422,
                    "effective_date",
                    "An employee benefit for this company benefit already starts on this date",
                )
            self._bump(entry)
            self.employee_benefits[entry["uuid"]] = entry
            return Response(201, entry)

        @route("PUT", "/v1/employee_benefits/{ident}")
        def update_benefit(req: Request, ident: str) -> Response:
            entry = self.employee_benefits.get(ident)
            if entry is None:
                raise _error(
                    404, "employee_benefit_uuid", f"Employee benefit {ident} not found", "not_found"
                )
            body = self._body(req)
            self._check_version(entry, body)
            draft = dict(entry)
            benefit_fields(draft, body)
            entry.update(draft)
            self._bump(entry)
            return Response(200, entry)

        # --- sandbox admin (never faulted, no auth) ---------------------------------------

        @self.route("POST", "/_sandbox/gusto")
        def settings(req: Request) -> Response:
            changes = req.json() or {}
            with self._lock:
                for name in ("token_ttl", "rate_limit", "rate_window"):
                    if name in changes:
                        setattr(self, name, changes[name])
                if changes.get("expire_tokens"):
                    self.expire_tokens()
                out: dict[str, Any] = {"token_grants": self.token_grants}
                if changes.get("issue_refresh_token"):
                    out["refresh_token"] = self.issue_refresh_token()
            return Response(200, out)

        @self.route("GET", "/_sandbox/gusto/state")
        def state(req: Request) -> Response:
            return Response(200, self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """Everything the company holds, by HRIS employee id where there is one (for tests)."""
        with self._lock:
            people = {}
            for emp in self.employees.values():
                uid = emp["uuid"]
                key = emp.get("_external_id") or uid
                people[key] = {
                    **self.render_employee(emp, set()),
                    "external_id": emp.get("_external_id"),
                    "ssn_on_file": bool(emp.get("_ssn")),
                    "rehires": list(self.rehires.get(uid, [])),
                    "federal_taxes": dict(self.federal_taxes[uid]),
                    "employee_benefits": [
                        b for b in self.employee_benefits.values() if b["employee_uuid"] == uid
                    ],
                }
            return {
                "employees": people,
                "writes": len(self.writes),
                "versions_seen": dict(self.versions_seen),
            }


def make_app(world: World, credentials: dict[str, str]) -> Gusto:
    return Gusto(world, credentials)
