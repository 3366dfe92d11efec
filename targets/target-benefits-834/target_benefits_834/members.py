"""Input records -> members (subscriber or dependant) and their coverages, as X12-ready values.

The input streams (what ``map-hr``'s ``hris_to_benefits`` profile emits):

``benefit_subscribers`` (key ``employee_id``)
    ``employee_id`` (required), ``first_name``, ``middle_name``, ``last_name`` (required),
    ``ssn``, ``date_of_birth``, ``gender`` (F/M/U), ``address_line1``, ``address_line2``,
    ``city``, ``state``, ``postal_code``, ``country`` (ISO alpha-2), ``hire_date``,
    ``termination_date``, ``employment_type`` (X12 INS08: FT, PT, ...).
``benefit_dependents`` (key ``dependent_id``)
    ``dependent_id``, ``employee_id`` (required), ``first_name``, ``middle_name``,
    ``last_name`` (required), ``relationship`` (X12 INS02: 01 spouse, 19 child, 53 domestic
    partner, ...), ``date_of_birth``, ``gender``.
``benefit_elections`` (key ``election_id``)
    ``election_id``, ``employee_id`` (required), ``plan_id`` (required), ``insurance_line``
    (X12 HD03: HLT, DEN, VIS, ...), ``coverage_level`` (HD05: EMP, ESP, ECH, FAM, ...),
    ``status`` (enrolled, terminated, waived), ``effective_date`` (when the current coverage
    level began), ``start_date`` (coverage begin), ``end_date`` (last day, if it ends),
    ``group_number``.

Everything here raises :class:`~hrsync.errors.RecordError` naming the record, the field and
the reason; the target dead-letters the member.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hrsync.errors import RecordError
from hrsync.identifiers import ssn_problem
from target_benefits_834.x12 import Untransliterable, digits, x12_text

SUBSCRIBERS = "benefit_subscribers"
DEPENDENTS = "benefit_dependents"
ELECTIONS = "benefit_elections"
STREAM_KEYS = {SUBSCRIBERS: "employee_id", DEPENDENTS: "dependent_id", ELECTIONS: "election_id"}

SELF = "18"
SPOUSES = frozenset({"01", "53"})  # spouse, life partner
#: which relationships each coverage level (HD05) covers besides the subscriber
LEVEL_COVERS: dict[str, frozenset[str] | None] = {
    "EMP": frozenset(),
    "IND": frozenset(),
    "ESP": SPOUSES,
    "SPO": SPOUSES,
    "ECH": frozenset({"CHILDREN"}),
    "CHD": frozenset({"CHILDREN"}),
    "FAM": None,  # everyone
    "DEP": None,
    "TWO": None,
}
INSURANCE_LINES = frozenset(
    {"AG", "AH", "AJ", "AK", "DCP", "DEN", "EPO", "FAC", "HE", "HLT", "HMO", "LTC", "LTD",
     "MM", "MOD", "PDG", "POS", "PPO", "PRA", "STD", "UR", "VIS"}
)  # fmt: skip
RELATIONSHIPS = frozenset(
    {"01", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
     "16", "17", "19", "23", "24", "25", "26", "31", "38", "53", "60", "D2", "G8", "G9"}
)  # fmt: skip
EMPLOYMENT = frozenset({"AC", "AO", "AU", "FT", "L1", "PT", "RT", "TE"})
GENDERS = frozenset({"F", "M", "U"})


def covers(level: str, relationship: str) -> bool:
    """Does coverage level ``level`` cover a dependant of ``relationship``?"""
    who = LEVEL_COVERS.get(level)
    if who is None:
        return True
    if relationship in SPOUSES:
        return relationship in who
    return "CHILDREN" in who


def d8(value: Any, *, stream: str, key: str, field: str) -> str | None:
    """A date as X12 ``CCYYMMDD`` (None when empty); a bad date is a RecordError."""
    day = to_date(value, stream=stream, key=key, field=field)
    return f"{day.year:04d}{day.month:02d}{day.day:02d}" if day else None


def to_date(value: Any, *, stream: str, key: str, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise RecordError(stream, key, field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _name(rec: dict[str, Any], field: str, *, stream: str, key: str, max_len: int) -> str:
    try:
        return x12_text(rec.get(field), kind="name", max_len=max_len)
    except Untransliterable as exc:
        raise RecordError(stream, key, field, f"the name {exc}: add a Latin name") from None


def _code(rec: dict[str, Any], field: str, allowed: frozenset[str], *, stream: str, key: str,
          default: str | None = None) -> str | None:  # fmt: skip
    value = rec.get(field)
    if value in (None, ""):
        return default
    code = str(value).strip().upper()
    if code not in allowed:
        raise RecordError(
            stream, key, field, f"{value!r} is not an X12 code ({', '.join(sorted(allowed))})"
        )
    return code


def key_of(stream: str, record: dict[str, Any]) -> str:
    value = record.get(STREAM_KEYS[stream])
    return "<missing>" if value in (None, "") else str(value)


def person(rec: dict[str, Any], stream: str) -> dict[str, Any]:
    """Identity of a subscriber or dependant, as X12 text (names transliterated)."""
    key = key_of(stream, rec)
    last = _name(rec, "last_name", stream=stream, key=key, max_len=60)
    first = _name(rec, "first_name", stream=stream, key=key, max_len=35)
    if not last:
        if not first:
            raise RecordError(stream, key, "last_name", "no name: NM103 (last name) is required")
        last, first = first, ""  # a mononym: the one name goes in NM103
    elif first == last:
        # A single name, stored by the HRIS as first = last (BambooHR requires both). The 834
        # guide (005010X220A1, loop 2100A/2100B NM1) makes NM103 (last name) required and NM104
        # (first name) situational: a single name is NM103 alone, NM104 left out.
        first = ""
    ssn = digits(rec.get("ssn"))
    if len(ssn) == 9 and stream != DEPENDENTS:  # dependants' arrive masked and are never sent
        problem = ssn_problem(ssn)
        if problem is not None:  # NM109 would carry a number the SSA never issued
            raise RecordError(stream, key, "ssn", f"{problem} (NM109)")
    return {
        "last": last,
        "first": first,
        "middle": _name(rec, "middle_name", stream=stream, key=key, max_len=25),
        "ssn": ssn if len(ssn) == 9 else "",
        "dob": d8(rec.get("date_of_birth"), stream=stream, key=key, field="date_of_birth"),
        "gender": _code(rec, "gender", GENDERS, stream=stream, key=key, default="U"),
    }


def subscriber(rec: dict[str, Any]) -> dict[str, Any]:
    key = key_of(SUBSCRIBERS, rec)
    if key == "<missing>":
        raise RecordError(SUBSCRIBERS, key, "employee_id", "the employee id is required")
    out = person(rec, SUBSCRIBERS)
    out["relationship"] = SELF
    out["employment"] = _code(rec, "employment_type", EMPLOYMENT, stream=SUBSCRIBERS, key=key)
    out["hire"] = d8(rec.get("hire_date"), stream=SUBSCRIBERS, key=key, field="hire_date")
    out["termination"] = d8(
        rec.get("termination_date"), stream=SUBSCRIBERS, key=key, field="termination_date"
    )
    out["address"] = address(rec, key)
    return out


def address(rec: dict[str, Any], key: str) -> dict[str, str] | None:
    def text(field: str, max_len: int) -> str:
        try:
            return x12_text(rec.get(field), kind="text", max_len=max_len)
        except Untransliterable as exc:
            raise RecordError(SUBSCRIBERS, key, field, f"the address {exc}") from None

    line1, city = text("address_line1", 55), text("city", 30)
    if not line1 or len(city) < 2:
        return None  # N3/N4 are situational: no street or city, no address segments
    country = x12_text(rec.get("country"), kind="id", max_len=3) or "US"
    state = x12_text(rec.get("state"), kind="id", max_len=2)
    postal = x12_text(rec.get("postal_code"), kind="id", max_len=15).replace(" ", "")
    return {
        "line1": line1,
        "line2": text("address_line2", 55),
        "city": city,
        "state": state if len(state) == 2 and country in ("US", "CA") else "",
        "postal": postal if len(postal) >= 3 else "",
        "country": "" if country == "US" else country,
    }


def dependant(rec: dict[str, Any]) -> dict[str, Any]:
    key = key_of(DEPENDENTS, rec)
    if key == "<missing>":
        raise RecordError(DEPENDENTS, key, "dependent_id", "the dependant id is required")
    out = person(rec, DEPENDENTS)
    out["ssn"] = ""  # HRIS dependant SSNs are masked: never sent half
    out["relationship"] = _code(rec, "relationship", RELATIONSHIPS, stream=DEPENDENTS, key=key)
    if out["relationship"] is None:
        raise RecordError(DEPENDENTS, key, "relationship", "the relationship code is required")
    return out


@dataclass(frozen=True)
class ElectionRow:
    plan: str
    line: str
    level: str
    status: str
    effective: dt.date | None
    start: dt.date
    end: dt.date | None
    group: str


def election(rec: dict[str, Any]) -> ElectionRow | None:
    """The election as coverage; None when waived (nothing to send)."""
    key = key_of(ELECTIONS, rec)
    status = str(rec.get("status") or "enrolled").strip().lower()
    if status in ("waived", "not enrolled", "eligible", "not eligible"):
        return None
    plan = rec.get("plan_id")
    if plan in (None, ""):
        raise RecordError(ELECTIONS, key, "plan_id", "the plan id is required")
    line = _code(rec, "insurance_line", INSURANCE_LINES, stream=ELECTIONS, key=key)
    if line is None:
        raise RecordError(ELECTIONS, key, "insurance_line", "the insurance line (HD03) is required")
    level = _code(rec, "coverage_level", frozenset(LEVEL_COVERS), stream=ELECTIONS, key=key,
                  default="EMP")  # fmt: skip
    start = to_date(rec.get("start_date"), stream=ELECTIONS, key=key, field="start_date")
    effective = to_date(
        rec.get("effective_date"), stream=ELECTIONS, key=key, field="effective_date"
    )
    start = start or effective
    if start is None:
        raise RecordError(ELECTIONS, key, "start_date", "a coverage begin date is required")
    end = to_date(rec.get("end_date"), stream=ELECTIONS, key=key, field="end_date")
    if status == "terminated" and end is None:
        end = effective or start
    if end is not None and end < start:
        raise RecordError(ELECTIONS, key, "end_date", "coverage ends before it begins")
    group = x12_text(rec.get("group_number"), kind="id", max_len=50)
    return ElectionRow(str(plan), line, str(level), status, effective, start, end, group)
