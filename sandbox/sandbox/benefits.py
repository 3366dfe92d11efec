"""Benefits data of the seeded world: plans, coverage levels, dependants, elections, life events.

Everything is a pure function of the :class:`~sandbox.seed.World` (seed, as_of, employee index)
plus a small overlay of life events recorded through :class:`Benefits` (marriage, birth;
terminations live on the person, ``World.update_person``). Served by ``sandbox.bamboohr`` in
the shapes of BambooHR's benefits endpoints (``sandbox/docs/bamboohr.md`` lists what is
documented and what is assumed).

Rules (deterministic by employee index ``k``):

- Benefits-eligible: Full-Time and Part-Time employees (contractors and interns are not).
- Every eligible employee elects medical unless ``k % 10 == 7`` (waived); dental unless
  ``k % 4 == 3``; vision when ``k % 3 == 0``.
- Dependants: about half are married (spouse), 0-3 children; the first people of every world (the
  catalogue of hard names) always have a spouse and a child with accented / apostrophe names.
- Coverage level follows the family: employee only, + spouse, + child(ren), family.
- Coverage starts on the (latest) hire date, or the first of the month after it; it ends on the
  termination date. A rehire starts a new enrolment.
- Life events: a marriage adds a spouse and moves each elected plan up (EMP->ESP, ECH->FAM) from
  the event date; a birth adds a child (EMP->ECH, ESP->FAM). Both stamp the person as changed
  (BambooHR's ``lastChanged``), as the marital-status / dependant edit would.
"""

from __future__ import annotations

import dataclasses
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sandbox.httpbase import HTTPError, Request, Response
from sandbox.seed import FIRST_NAMES, Person, World

ELIGIBLE_TYPES = frozenset({"Full-Time", "Part-Time"})
DEPENDENT_BASE = 500_000_000  # dependant ids never collide with employee ids


@dataclass(frozen=True)
class Plan:
    id: int
    benefit_type: str  # BambooHR benefit plan type: medical | dental | vision
    name: str
    carrier: str
    group_number: str
    plan_type: str | None  # HMO, PPO, ... (medical/dental)
    start_date: date


@dataclass(frozen=True)
class Coverage:
    id: int
    short_name: str
    description: str


_SINCE = date(2020, 1, 1)
PLANS: tuple[Plan, ...] = (
    Plan(11, "medical", "Acme Health PPO", "Blue Prairie Health", "GRP-4410", "PPO", _SINCE),
    Plan(12, "dental", "Acme Dental Plus", "Bright Smile Dental", "GRP-4420", "PPO", _SINCE),
    Plan(13, "vision", "Acme Vision", "ClearView Vision", "GRP-4430", None, _SINCE),
)
COVERAGES: tuple[Coverage, ...] = (
    Coverage(1, "Employee", "Employee only"),
    Coverage(2, "Employee + Spouse", "Employee and spouse"),
    Coverage(3, "Employee + Child(ren)", "Employee and child(ren)"),
    Coverage(4, "Family", "Employee, spouse and child(ren)"),
)
EMP, ESP, ECH, FAM = (c.id for c in COVERAGES)
_PLAN_BY_ID = {p.id: p for p in PLANS}

# dependants of the first people: (spouse first, spouse last or None = same, child first)
HARD_DEPENDANTS: tuple[tuple[str, str | None, str], ...] = (
    ("Hélène", None, "Noëlle"),
    ("Ana Lucía", "Núñez", "Íñigo"),
    ("Pádraig", "Ó Súilleabháin", "Aoife"),
    ("Jürgen", "Müller", "Zoë"),
    ("Ştefan", None, "Anaïs"),
    ("Œdipe", "L'Heureux", "Çelik"),
)


@dataclass(frozen=True)
class Dependant:
    id: int
    employee_id: int
    first_name: str
    middle_name: str | None
    last_name: str
    relationship: str  # BambooHR: spouse | child
    gender: str | None  # BambooHR: female | male
    date_of_birth: date | None
    ssn: str | None  # served masked only, as BambooHR does
    since: date  # when they became a dependant (initial enrolment, marriage, birth)


@dataclass(frozen=True)
class Election:
    """One plan of one employee: the current (or last) enrolment record."""

    id: int
    employee_id: int
    plan: Plan
    coverage: int  # Coverage.id
    status: str  # Enrolled | Terminated
    effective_date: date  # start of this record's coverage level
    start_date: date  # coverage (deduction) start of the enrolment
    end_date: date | None  # last day of coverage, when it ends (past or scheduled)


@dataclass
class _Events:
    dependants: list[Dependant] = field(default_factory=list)
    changes: list[tuple[date, str]] = field(default_factory=list)  # (date, marriage | birth)


def _level(spouse: bool, children: bool) -> int:
    if spouse and children:
        return FAM
    if spouse:
        return ESP
    return ECH if children else EMP


class Benefits:
    """Benefits of one world, with the life events recorded since it was seeded."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.RLock()
        self._events: dict[int, _Events] = {}

    # --- reference data -------------------------------------------------------------------

    @staticmethod
    def plans() -> tuple[Plan, ...]:
        return PLANS

    @staticmethod
    def coverages() -> tuple[Coverage, ...]:
        return COVERAGES

    @staticmethod
    def plan(plan_id: int) -> Plan:
        return _PLAN_BY_ID[plan_id]

    # --- people ---------------------------------------------------------------------------

    def eligible(self, person: Person) -> bool:
        return person.employment_type in ELIGIBLE_TYPES

    def coverage_start(self, person: Person) -> date:
        hired = person.hire_date
        if person.employee_id % 2:  # half the plans start on the first of the next month
            return hired
        return (hired.replace(day=1) + timedelta(days=32)).replace(day=1)

    def _seeded_dependants(self, person: Person) -> list[Dependant]:
        if not self.eligible(person):
            return []
        k = person.employee_id
        given = getattr(self.world, "given_dependants", None)
        if given is not None:  # a world from a people file: its dependants, or none
            start = self.coverage_start(person)
            return [
                Dependant(
                    DEPENDENT_BASE + k * 10 + n,
                    k,
                    d.first_name,
                    None,
                    d.last_name,
                    d.relationship,
                    d.gender,
                    d.date_of_birth,
                    None,
                    start,
                )
                for n, d in enumerate(given(k)[:9], start=1)
            ]
        rng = self.world._rng("dependants", k)
        start = self.coverage_start(person)
        base = DEPENDENT_BASE + k * 10
        out: list[Dependant] = []
        hard = HARD_DEPENDANTS[k % len(HARD_DEPENDANTS)] if k <= 28 else None
        married = hard is not None or rng.random() < 0.5
        children = (1 if hard else 0) + (rng.choice((0, 0, 1, 2, 3)) if not hard else 0)
        born = person.date_of_birth or date(1985, 6, 1)
        if married:
            first = hard[0] if hard else rng.choice(FIRST_NAMES)
            if hard:
                last = hard[1] or person.last_name
            elif rng.random() < 0.8:
                last = person.last_name
            else:
                last = rng.choice(("Dupont", "García", "O'Hara"))
            out.append(
                Dependant(
                    id=base + 1,
                    employee_id=k,
                    first_name=first,
                    middle_name=None,
                    last_name=last,
                    relationship="spouse",
                    gender=rng.choice(("female", "male")),
                    date_of_birth=born + timedelta(days=rng.randint(-1500, 1500)),
                    ssn=f"1{rng.randint(0, 99):02d}-{rng.randint(70, 99):02d}-"
                    f"{rng.randint(1, 9999):04d}",
                    since=start,
                )
            )
        for n in range(children):
            out.append(
                Dependant(
                    id=base + 2 + n,
                    employee_id=k,
                    first_name=hard[2] if hard else rng.choice(FIRST_NAMES),
                    middle_name=rng.choice(FIRST_NAMES) if rng.random() < 0.2 else None,
                    last_name=person.last_name,
                    relationship="child",
                    gender=rng.choice(("female", "male", None)),
                    date_of_birth=min(
                        self.world.as_of - timedelta(days=30),
                        born + timedelta(days=9000 + rng.randint(0, 4000)),
                    ),
                    ssn=None,
                    since=start,
                )
            )
        return out

    def dependants(self, employee_id: int) -> list[Dependant]:
        person = self.world.person(employee_id)
        with self._lock:
            events = self._events.get(employee_id)
            extra = list(events.dependants) if events else []
        return self._seeded_dependants(person) + extra

    def dependant(self, dependant_id: int) -> Dependant:
        employee_id = (dependant_id - DEPENDENT_BASE) // 10
        if employee_id < 1 or employee_id > self.world.employees:
            raise KeyError(dependant_id)
        for dep in self.dependants(employee_id):
            if dep.id == dependant_id:
                return dep
        raise KeyError(dependant_id)

    def elections(self, employee_id: int) -> list[Election]:
        person = self.world.person(employee_id)
        if not self.eligible(person):
            return []
        k = employee_id
        seeded = self._seeded_dependants(person)
        spouse = any(d.relationship == "spouse" for d in seeded)
        children = any(d.relationship == "child" for d in seeded)
        level, effective = _level(spouse, children), self.coverage_start(person)
        with self._lock:
            events = self._events.get(employee_id)
            changes = sorted(events.changes) if events else []
        for when, kind in changes:
            spouse = spouse or kind == "marriage"
            children = children or kind == "birth"
            level, effective = _level(spouse, children), max(when, effective)
        plan_ids = []
        if k % 10 != 7:
            plan_ids.append(11)
        if k % 4 != 3:
            plan_ids.append(12)
        if k % 3 == 0:
            plan_ids.append(13)
        end = person.termination_date
        start = self.coverage_start(person)
        if end is not None and end < start:
            end = None  # terminated before coverage began: not modelled as enrolled
        out = []
        for pid in plan_ids:
            ended = end is not None and end < self.world.as_of
            out.append(
                Election(
                    id=k * 100 + pid,
                    employee_id=k,
                    plan=_PLAN_BY_ID[pid],
                    coverage=level,
                    status="Terminated" if ended else "Enrolled",
                    effective_date=effective,
                    start_date=start,
                    end_date=end,
                )
            )
        return out

    # --- life events ----------------------------------------------------------------------

    def marry(
        self, employee_id: int, on: date, first_name: str, last_name: str | None = None
    ) -> Dependant:
        """The employee marries on ``on``: a spouse joins their plans from that day."""
        return self._add(employee_id, on, "marriage", "spouse", first_name, last_name, None)

    def birth(self, employee_id: int, on: date, first_name: str) -> Dependant:
        """A child is born on ``on``: covered from birth."""
        return self._add(employee_id, on, "birth", "child", first_name, None, on)

    def _add(
        self,
        employee_id: int,
        on: date,
        kind: str,
        relationship: str,
        first_name: str,
        last_name: str | None,
        born: date | None,
    ) -> Dependant:
        with self._lock:
            person = self.world.person(employee_id)
            events = self._events.setdefault(employee_id, _Events())
            used = {d.id for d in self._seeded_dependants(person)} | {
                d.id for d in events.dependants
            }
            new_id = next(DEPENDENT_BASE + employee_id * 10 + n for n in range(1, 10)
                          if DEPENDENT_BASE + employee_id * 10 + n not in used)  # fmt: skip
            dep = Dependant(
                id=new_id,
                employee_id=employee_id,
                first_name=first_name,
                middle_name=None,
                last_name=last_name or person.last_name,
                relationship=relationship,
                gender=None,
                date_of_birth=born or (person.date_of_birth or date(1985, 1, 1)),
                ssn=None,
                since=on,
            )
            events.dependants.append(dep)
            events.changes.append((on, kind))
            self.world.update_person(employee_id)  # lastChanged moves, as the edit would
            return dep

    def terminate(self, employee_id: int, on: date) -> Person:
        """The employee leaves on ``on`` (their last day): coverage ends that day."""
        person = self.world.person(employee_id)
        current = dataclasses.replace(
            person.current, termination_date=on, termination_reason="Resignation"
        )
        return self.world.update_person(
            employee_id, employments=(*person.employments[:-1], current)
        )


# --- BambooHR shapes and routes (registered by sandbox.bamboohr) ---------------------------

_STATES = {"CA": "California", "NY": "New York", "TX": "Texas", "CO": "Colorado", "AP": "AP"}


def dependant_row(dep: Dependant, person: Person) -> dict[str, str | None]:
    """``Employee Dependents`` entry: masked SSN, state and country as full names."""
    addr = person.address
    return {
        "id": str(dep.id),
        "employeeId": str(dep.employee_id),
        "firstName": dep.first_name,
        "middleName": dep.middle_name,
        "lastName": dep.last_name,
        "relationship": dep.relationship,
        "gender": dep.gender,
        "maskedSSN": f"xxx-xx-{dep.ssn[-4:]}" if dep.ssn else None,
        "maskedSIN": None,
        "dateOfBirth": dep.date_of_birth.isoformat() if dep.date_of_birth else None,
        "addressLine1": addr.line1 if addr else None,
        "addressLine2": addr.line2 if addr else None,
        "city": addr.city if addr else None,
        "state": _STATES.get(addr.state or "", addr.state) if addr else None,
        "zipCode": addr.postal_code if addr else None,
        "homePhone": None,
        "country": ("United States" if addr.country == "US" else addr.country) if addr else None,
        "isUsCitizen": "yes" if addr and addr.country == "US" else "",
        "isStudent": "",
    }


def plan_row(plan: Plan) -> dict[str, str | None]:
    return {
        "id": str(plan.id),
        "name": plan.name,
        "benefitType": plan.benefit_type,
        "carrierName": plan.carrier,
        "groupNumber": plan.group_number,
        "planType": plan.plan_type,
        "startDate": plan.start_date.isoformat(),
        "endDate": None,
    }


def election_row(e: Election) -> dict[str, str | int | None]:
    return {
        "id": str(e.id),
        "companyBenefitId": str(e.plan.id),
        "enrollmentStatus": e.status,
        "enrollmentStatusEffectiveDate": e.effective_date.isoformat(),
        "benefitCoverageId": str(e.coverage),
        "deductionStartDate": e.start_date.isoformat(),
        "deductionEndDate": e.end_date.isoformat() if e.end_date else None,
        "currency": "USD",
        "occurrencesPerYear": 24,
        # cost sharing: pay data the carrier never needs (map-hr strips it)
        "employeePays": f"{40 + e.coverage * 35 + e.plan.id}.00",
        "companyPays": f"{300 + e.coverage * 90}.00",
    }


def register(app: Any, route: Any) -> None:
    """Serve the benefits endpoints on one base (``route`` adds the prefix and the auth)."""
    from sandbox.bamboohr import wants_json, xml_response

    benefits: Benefits = app.benefits

    def deps_of(ids: Any) -> list[dict[str, Any]]:
        rows = []
        for eid in ids:
            if eid in app.created:
                continue  # employees added through the API have no dependants yet
            person = app.world.person(eid)
            rows += [dependant_row(d, person) for d in benefits.dependants(eid)]
        return rows

    def dependants_response(req: Request, rows: list[dict[str, Any]]) -> Response:
        if wants_json(req):
            return Response(200, {"Employee Dependents": rows})
        root = ET.Element("EmployeeDependents")
        for row in rows:
            ET.SubElement(root, "EmployeeDependent", {k: v or "" for k, v in row.items()})
        return xml_response(root)

    @route("GET", "/employeedependents")
    def all_dependants(req: Request) -> Response:
        raw = req.arg("employeeid")
        if raw is None:
            return dependants_response(req, deps_of(app.employee_ids()))
        if not raw.isdigit() or not app.exists(int(raw)):
            raise app.fail(400, f"Employee {raw!r} not found")
        return dependants_response(req, deps_of([int(raw)]))

    @route("GET", "/employeedependents/{ident}")
    def one_dependant(req: Request, ident: str) -> Response:
        try:
            dep = benefits.dependant(int(ident))
        except (KeyError, ValueError):
            raise app.fail(400, "The specified dependent ID was not found.") from None
        if not app.exists(dep.employee_id):
            raise app.fail(400, "The specified dependent ID was not found.")
        return dependants_response(req, [dependant_row(dep, app.world.person(dep.employee_id))])

    @route("GET", "/benefitcoverages")
    def coverages(req: Request) -> Response:
        rows = [{"id": str(c.id), "shortName": c.short_name, "description": c.description}
                for c in benefits.coverages()]  # fmt: skip
        if wants_json(req):
            return Response(200, {"Benefit Coverages": rows})
        root = ET.Element("BenefitCoverages")
        for row in rows:
            ET.SubElement(root, "BenefitCoverage", row)
        return xml_response(root)

    @route("GET", "/benefit/company_benefit")
    def company_benefits(req: Request) -> Response:
        return Response(200, [plan_row(p) for p in benefits.plans()])

    @route("GET", "/benefit/employee_benefit")
    def employee_benefits(req: Request) -> Response:
        try:
            body = req.json() if req.body else None
        except ValueError:
            body = None
        filters = body.get("filters") if isinstance(body, dict) else None
        wanted = {"employeeId", "companyBenefitId", "enrollmentStatusEffectiveDate"}
        if not isinstance(filters, dict) or not wanted & {k for k, v in filters.items() if v}:
            return Response(400, {"errors": [{"field": "filters", "message":
                "filters must contain at least one of employeeId, companyBenefitId, "
                "enrollmentStatusEffectiveDate"}]})  # fmt: skip
        only_employee = filters.get("employeeId")
        plan_id = filters.get("companyBenefitId")
        since = filters.get("enrollmentStatusEffectiveDate")
        ids = [int(only_employee)] if only_employee else app.employee_ids()
        out = []
        for eid in ids:
            if eid in app.created or not app.exists(eid):
                continue
            rows = [
                election_row(e)
                for e in benefits.elections(eid)
                if (not plan_id or str(e.plan.id) == str(plan_id))
                and (not since or e.effective_date.isoformat() >= str(since))
            ]
            if rows or only_employee:
                pay = app.world.person(eid).positions[0].pay_schedule
                out.append({"employeeId": str(eid), "payFrequency": pay, "employeeBenefit": rows})
        return Response(200, {"employeeBenefits": out})


def register_admin(app: Any) -> None:
    """``POST /_sandbox/bamboohr/life_events`` ``{"employeeId", "type": marriage|birth|
    termination, "date", "firstName", "lastName"}`` (sandbox only)."""

    @app.route("POST", "/_sandbox/bamboohr/life_events")
    def life_event(req: Request) -> Response:
        body = req.json() or {}
        try:
            eid, kind = int(body["employeeId"]), str(body["type"])
            on = date.fromisoformat(str(body["date"]))
        except (KeyError, ValueError, TypeError):
            raise HTTPError(400, {"message": "employeeId, type and date are required"}) from None
        if kind == "marriage":
            dep = app.benefits.marry(eid, on, str(body.get("firstName") or "Alex"),
                                     body.get("lastName"))  # fmt: skip
            return Response(201, {"dependentId": str(dep.id)})
        if kind == "birth":
            dep = app.benefits.birth(eid, on, str(body.get("firstName") or "Sam"))
            return Response(201, {"dependentId": str(dep.id)})
        if kind == "termination":
            app.benefits.terminate(eid, on)
            return Response(200, {"employeeId": str(eid)})
        raise HTTPError(400, {"message": f"unknown life event {kind!r}"})


def carrier_env(workdir: Path) -> dict[str, str]:
    """The demo carrier's settings for target-benefits-834 (the SFTP drop and PGP key come
    from ``sandbox.sftp.FileDrop.env("TARGET_BENEFITS_834", ...)``)."""
    prefix = "TARGET_BENEFITS_834"
    return {
        f"{prefix}_SENDER_ID": "ACMEHR",
        f"{prefix}_RECEIVER_ID": "BLUEPRAIRIE",
        f"{prefix}_USAGE_INDICATOR": "T",
        f"{prefix}_SPONSOR_NAME": "Acme Inc",
        f"{prefix}_SPONSOR_ID": "123456789",
        f"{prefix}_PAYER_NAME": PLANS[0].carrier,
        f"{prefix}_PAYER_ID": "987654321",
        f"{prefix}_WORK_DIR": str(workdir / "benefits-834"),
    }
