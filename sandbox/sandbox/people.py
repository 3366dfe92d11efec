"""A sandbox world seeded from a people file: a rehearsal on a copy of real data.

Two formats (see ``sandbox/docs/people-file.md``):

- **CSV**, an HRIS export with BambooHR's field names as the header (``id``, ``firstName``,
  ``lastName``, ``workEmail``, ``hireDate``, ``jobTitle``, ...): one row per position. Rows of
  one ``id`` with the same ``hireDate`` are the positions of one employment (the first row is the
  primary one); a different ``hireDate`` is another employment of the same id (a rehire).
- **JSON lines** (``.jsonl`` / ``.ndjson``), one canonical worker per line (``id``,
  ``first_name``, ``last_name``, ``work_email``, ``hire_date``, ``job_title``, ...), with the
  optional ``positions``, ``employments``, ``home_address`` and ``dependants``.

People are numbered 1..N in the order of the file (the HRIS fake serves integer ids); each keeps
the file's employee number (``employeeNumber`` / ``employee_number``, else its id), so every
destination shows the number the operator knows. A bad value is a :class:`PeopleFileError`
naming the line, the field and the reason. A malformed e-mail is *not* refused here: it is one of
the hard cases the rehearsal is for (the pipelines must dead-letter it, not the loader).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandbox.seed import Address, Employment, Person, Position, World

EMPLOYMENT_TYPES = {
    "full_time": "Full-Time",
    "full-time": "Full-Time",
    "part_time": "Part-Time",
    "part-time": "Part-Time",
    "contractor": "Contractor",
    "intern": "Intern",
    "temporary": "Temporary",
}


class PeopleFileError(ValueError):
    """A people file that cannot be loaded: file, line, field and reason."""

    def __init__(self, path: Path, line: int, field: str | None, reason: str) -> None:
        where = f"{path}:{line}" + (f": field {field}" if field else "")
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.field, self.reason = path, line, field, reason


@dataclasses.dataclass(frozen=True)
class GivenDependant:
    first_name: str
    last_name: str
    relationship: str  # spouse | child
    date_of_birth: date | None
    gender: str | None


@dataclasses.dataclass
class _Row:
    """One person of the file, before numbering."""

    line: int
    source_id: str
    fields: dict[str, Any]
    employments: list[dict[str, Any]]  # {hire, end, type, reason, positions: [dict]}
    dependants: list[GivenDependant]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class _Reader:
    def __init__(self, path: Path, line: int) -> None:
        self.path, self.line = path, line

    def error(self, field: str | None, reason: str) -> PeopleFileError:
        return PeopleFileError(self.path, self.line, field, reason)

    def day(self, field: str, value: Any, *, required: bool = False) -> date | None:
        text = _text(value)
        if text is None:
            if required:
                raise self.error(field, "required, and missing or empty")
            return None
        for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
            try:
                return datetime.strptime(text[:10], fmt).date()
            except ValueError:
                continue
        raise self.error(field, f"{text!r} is not a date (YYYY-MM-DD or MM/DD/YYYY)")

    def money(self, field: str, value: Any) -> tuple[Decimal | None, str | None]:
        text = _text(value)
        if text is None:
            return None, None
        amount, _, currency = text.replace(",", "").partition(" ")
        try:
            rate = Decimal(amount)
        except InvalidOperation:
            raise self.error(field, f"{text!r} is not an amount (e.g. 85000.00 USD)") from None
        if rate < 0:
            raise self.error(field, "is negative")
        return rate, (currency.strip().upper() or None)


def _position(r: _Reader, src: Mapping[str, Any], start: date, primary: bool) -> dict[str, Any]:
    rate, currency = r.money("payRate", src.get("payRate"))
    currency = currency or _text(src.get("payCurrency")) or "USD"
    pay_type = _text(src.get("payType")) or (
        "Hourly" if rate is not None and rate < 500 else "Salary"
    )
    hourly = pay_type.lower().startswith("hour")
    exempt = _text(src.get("exempt"))
    return {
        "job_title": _text(src.get("jobTitle")) or "",
        "department": _text(src.get("department")) or "",
        "division": _text(src.get("division")) or "",
        "location": _text(src.get("location")) or "",
        "start_date": start,
        "pay_rate": rate if rate is not None else Decimal(0),
        "currency": currency.upper(),
        "pay_type": "Hourly" if hourly else "Salary",
        "pay_per": _text(src.get("paidPer")) or ("Hour" if hourly else "Year"),
        "pay_schedule": _text(src.get("paySchedule")) or "Twice a month",
        "exempt": (exempt or ("Non-exempt" if hourly else "Exempt")).lower() == "exempt",
        "reports_to": _text(src.get("supervisorEId")),
        "primary": primary,
    }


# canonical (JSON lines) -> BambooHR field names, so both formats share one reader
_CANONICAL = {
    "employee_number": "employeeNumber",
    "first_name": "firstName",
    "middle_name": "middleName",
    "last_name": "lastName",
    "preferred_name": "preferredName",
    "work_email": "workEmail",
    "personal_email": "homeEmail",
    "work_phone": "workPhone",
    "mobile_phone": "mobilePhone",
    "date_of_birth": "dateOfBirth",
    "national_id": "ssn",
    "gender": "gender",
    "hire_date": "hireDate",
    "termination_date": "terminationDate",
    "termination_reason": "terminationReason",
    "employment_type": "employmentHistoryStatus",
    "job_title": "jobTitle",
    "department": "department",
    "division": "division",
    "location": "location",
    "manager_id": "supervisorEId",
    "pay_rate": "payRate",
    "pay_currency": "payCurrency",
    "pay_type": "payType",
    "pay_period": "paidPer",
    "pay_frequency": "paySchedule",
    "flsa_status": "exempt",
    "state": "state",
    "country": "country",
}
_ADDRESS = {"line1": "address1", "line2": "address2", "city": "city", "state": "state",
            "postal_code": "zipcode", "country": "country"}  # fmt: skip


def _bamboo(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {_CANONICAL.get(k, k): v for k, v in obj.items()}
    if isinstance(out.get("exempt"), str):
        out["exempt"] = "Exempt" if out["exempt"].lower() == "exempt" else "Non-exempt"
    if out.get("payRate") is not None and out.get("payCurrency"):
        out["payRate"] = f"{out['payRate']} {out['payCurrency']}"
    return out


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise PeopleFileError(path, 1, "id", "the header must name an id column")
        for n, row in enumerate(reader, start=2):
            yield n, {k: v for k, v in row.items() if k is not None}


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PeopleFileError(path, n, None, f"not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise PeopleFileError(path, n, None, "each line must be a JSON object")
            yield n, obj


def load_people(path: str | Path) -> list[_Row]:
    """Read and check a people file; people in the order they first appear."""
    path = Path(path)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson", ".json")
    rows: dict[str, _Row] = {}
    for n, raw in (_read_jsonl if jsonl else _read_csv)(path):
        r = _Reader(path, n)
        src = _bamboo(raw) if jsonl else raw
        sid = _text(src.get("id"))
        if sid is None:
            raise r.error("id", "required, and missing or empty")
        if not (_text(src.get("firstName")) or _text(src.get("lastName"))):
            raise r.error("lastName", "no name at all (firstName, lastName)")
        if jsonl and isinstance(raw.get("home_address"), Mapping):
            for k, v in raw["home_address"].items():
                src.setdefault(_ADDRESS.get(k, k), v)
        r.day("dateOfBirth", src.get("dateOfBirth"))  # checked now, read when served
        employments = _employments(r, src, raw if jsonl else None)
        person = rows.get(sid)
        if person is None:
            deps = _dependants(r, raw.get("dependants")) if jsonl else []
            rows[sid] = _Row(n, sid, src, employments, deps)
            continue
        if jsonl:
            raise r.error("id", f"{sid!r} is on line {person.line} already")
        _merge(r, person, employments[0])  # CSV: another position, or another employment
    return list(rows.values())


def _employments(
    r: _Reader, src: dict[str, Any], raw: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    listed = raw.get("employments") if raw is not None else None
    if listed is not None:
        if not isinstance(listed, list) or not listed:
            raise r.error("employments", "must be a non-empty array")
        out = [_employment(r, {**src, **_bamboo(e)}, e.get("positions")) for e in listed]
        return sorted(out, key=lambda e: e["hire"])
    positions = raw.get("positions") if raw is not None else None
    return [_employment(r, src, positions)]


def _employment(r: _Reader, src: Mapping[str, Any], positions: Any) -> dict[str, Any]:
    hire = r.day("hireDate", src.get("hireDate"), required=True)
    assert hire is not None
    end = r.day("terminationDate", src.get("terminationDate"))
    if end is not None and end < hire:
        raise r.error("terminationDate", f"{end} is before the hire date {hire}")
    etype = _text(src.get("employmentHistoryStatus")) or "Full-Time"
    if positions is None:
        pos = [_position(r, src, hire, True)]
    else:
        if not isinstance(positions, list) or not positions:
            raise r.error("positions", "must be a non-empty array of positions")
        pos = [_position(r, {**src, **_bamboo(p)}, hire, i == 0) for i, p in enumerate(positions)]
    return {
        "hire": hire,
        "end": end,
        "type": EMPLOYMENT_TYPES.get(etype.lower(), etype),
        "reason": _text(src.get("terminationReason")) or ("Resignation" if end else None),
        "positions": pos,
    }


def _merge(r: _Reader, person: _Row, employment: dict[str, Any]) -> None:
    same = next((e for e in person.employments if e["hire"] == employment["hire"]), None)
    if same is None:
        person.employments.append(employment)
        person.employments.sort(key=lambda e: e["hire"])
        return
    extra = dict(employment["positions"][0], primary=False)
    same["positions"].append(extra)


def _dependants(r: _Reader, value: Any) -> list[GivenDependant]:
    if value in (None, []):
        return []
    if not isinstance(value, list):
        raise r.error("dependants", "must be an array")
    out = []
    for i, d in enumerate(value):
        if not isinstance(d, Mapping):
            raise r.error(f"dependants[{i}]", "must be an object")
        relation = (_text(d.get("relationship")) or "").lower()
        if relation not in ("spouse", "child"):
            raise r.error(f"dependants[{i}].relationship", "must be spouse or child")
        first, last = _text(d.get("first_name")), _text(d.get("last_name"))
        if not first and not last:
            raise r.error(f"dependants[{i}].first_name", "no name at all")
        out.append(
            GivenDependant(
                first or str(last),
                last or str(first),
                relation,
                r.day(f"dependants[{i}].date_of_birth", d.get("date_of_birth")),
                (_text(d.get("gender")) or "").lower() or None,
            )
        )
    return out


class PeopleWorld(World):
    """A :class:`World` whose employees are the people of a file (the ATS stays synthetic:
    candidates who were never hired, and no accepted offer waiting)."""

    def __init__(self, people: list[_Row], seed: int = 7, as_of: date | None = None) -> None:
        if not people:
            raise ValueError("the people file holds nobody")
        super().__init__(employees=len(people), seed=seed, as_of=as_of)
        # no accepted offers waiting in the ATS: the ATS jobs run, and add nobody to the HRIS
        # (synthetic hires would mix with the file's people in every other job's summary)
        self.candidates -= self.pending
        self.pending = 0
        self.ats_hires = False  # the Lever fake's signed offers too
        self.rows = people
        self.number = {row.source_id: k for k, row in enumerate(people, start=1)}

    @classmethod
    def from_file(cls, path: str | Path, seed: int = 7, as_of: date | None = None) -> PeopleWorld:
        return cls(load_people(path), seed=seed, as_of=as_of)

    def source_id(self, employee_id: int) -> str:
        return self.rows[employee_id - 1].source_id

    def given_dependants(self, employee_id: int) -> list[GivenDependant] | None:
        return self.rows[employee_id - 1].dependants

    def _hired_from_ats(self, k: int) -> bool:
        return False  # people of a file were hired in the HRIS, not through this fake ATS

    def _has_offer(self, k: int) -> bool:
        return k > self.employees and super()._has_offer(k)

    def _file_person(self, k: int) -> Person:
        row = self.rows[k - 1]
        f = row.fields
        employments = tuple(
            Employment(
                hire_date=e["hire"],
                termination_date=e["end"],
                employment_type=e["type"],
                termination_reason=e["reason"],
                positions=tuple(
                    Position(
                        **{k2: v for k2, v in p.items() if k2 != "reports_to"},
                        end_date=e["end"],
                        reports_to=self.number.get(str(p["reports_to"]))
                        if p["reports_to"]
                        else None,
                        job_id=0,
                    )
                    for p in e["positions"]
                ),
            )
            for e in row.employments
        )
        line1 = _text(f.get("address1"))
        country = (_text(f.get("country")) or "").upper()
        address = (
            Address(
                line1,
                _text(f.get("address2")),
                _text(f.get("city")) or "",
                _text(f.get("state")),
                _text(f.get("zipcode")),
                country or "US",
            )
            if line1
            else None
        )
        r = _Reader(Path("people"), row.line)
        return Person(
            employee_id=k,
            candidate_id=None,
            first_name=_text(f.get("firstName")) or str(_text(f.get("lastName"))),
            middle_name=_text(f.get("middleName")),
            last_name=_text(f.get("lastName")) or str(_text(f.get("firstName"))),
            preferred_name=_text(f.get("preferredName")),
            work_email=_text(f.get("workEmail")),
            personal_email=_text(f.get("homeEmail")),
            phone=_text(f.get("workPhone")),
            mobile=_text(f.get("mobilePhone")),
            date_of_birth=r.day("dateOfBirth", f.get("dateOfBirth")),
            ssn=_text(f.get("ssn")),
            gender=_text(f.get("gender")),
            address=address,
            employments=employments,
            employee_number=_text(f.get("employeeNumber")) or row.source_id,
            updated_at=self.base_updated_at("people", k),
            as_of=self.as_of,
        )

    _person = lru_cache(maxsize=8192)(_file_person)  # the base class caches its people too
