"""From an identity record (the IAM record, see docs) to the directory entry it should become."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hrsync.errors import RecordError
from hrsync.identity import parse_flag, should_be_active
from target_ldap.config import Settings
from target_ldap.naming import login_source

AD_NORMAL_ACCOUNT = 0x200  # 512
AD_ACCOUNTDISABLE = 0x2  # 512 | 2 = 514


def text(value: Any) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out or None


# one rule for every directory: hrsync.identity
parse_bool = parse_flag
desired_enabled = should_be_active


def _unique(values: list[str | None]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if value and value.casefold() not in seen:
            seen.add(value.casefold())
            out.append(value)
    return out


@dataclass
class DesiredPerson:
    """What one employee's directory account should look like after this run."""

    stream: str
    employee_id: str
    enabled: bool
    fields: dict[str, Any]  # source field -> value (str, list[str] or None)
    login_base: str
    manager_employee_id: str | None
    facets: list[dict[str, str | None]]  # primary position first, then the others
    record: dict[str, Any] = field(repr=False)
    login_from_address: bool = False  # the login is the work e-mail's (or userName's) local part


def build_person(
    stream: str, record: dict[str, Any], *, today: dt.date, settings: Settings
) -> DesiredPerson:
    """Map one identity record; raises RecordError naming the field that is wrong."""
    key = text(record.get("employee_id"))
    if key is None:
        raise RecordError(stream, "?", "employee_id", "required, and missing or empty")
    for name in ("given_name", "family_name", "work_email", "title", "department"):
        value = record.get(name)
        if value is not None and not isinstance(value, str | int | float):
            raise RecordError(stream, key, name, f"expected a string, got {type(value).__name__}")
    positions = record.get("positions") or []
    if not isinstance(positions, list) or any(not isinstance(p, Mapping) for p in positions):
        raise RecordError(stream, key, "positions", "must be an array of {title, department}")

    given = text(record.get("given_name"))
    family = text(record.get("family_name"))
    preferred = text(record.get("preferred_name"))
    display = text(record.get("display_name"))
    if not display:
        first = preferred or given
        display = f"{first} {family}" if first and family and first != family else first or family
    if not family:
        family = given or display  # sn is mandatory in person: a mononym fills it
    if not family or not display:
        raise RecordError(
            stream, key, "family_name", "no name at all (given_name, family_name, display_name)"
        )
    email = text(record.get("work_email"))
    user_name = text(record.get("user_name"))
    primary = {
        "title": text(record.get("title")),
        "department": text(record.get("department")),
    }
    common = {
        "division": text(record.get("division")),
        "location": text(record.get("location")),
        "cost_center": text(record.get("cost_center")),
        "employee_id": key,
    }
    facets = [primary | common] + [
        {"title": text(p.get("title")), "department": text(p.get("department"))} | common
        for p in positions
    ]
    fields: dict[str, Any] = {
        "employee_id": key,
        "employee_number": text(record.get("employee_number")),
        "given_name": given,
        "family_name": family,
        "preferred_name": preferred,
        "display_name": display,
        "work_email": email,
        "user_name": user_name,
        "title": primary["title"],
        "department": primary["department"],
        "titles": _unique([f["title"] for f in facets]),
        "departments": _unique([f["department"] for f in facets]),
        **{k: v for k, v in common.items() if k != "employee_id"},
    }
    return DesiredPerson(
        stream=stream,
        employee_id=key,
        enabled=desired_enabled(record, today, stream=stream, key=key),
        fields=fields,
        login_base=login_source(email, user_name, given, family, key),
        manager_employee_id=text(record.get("manager_employee_id")),
        facets=facets,
        record=record,
        login_from_address=any(a and "@" in a for a in (email, user_name)),
    )


def desired_attributes(person: DesiredPerson, settings: Settings) -> dict[str, list[str]]:
    """The managed attributes (empty list: the attribute should be absent); no DN attributes,
    no manager, no account state."""
    out: dict[str, list[str]] = {}
    for attr, source in settings.attributes.items():
        value = person.fields.get(source)
        if isinstance(value, list):
            out[attr] = [str(v) for v in value]
        else:
            out[attr] = [str(value)] if value not in (None, "") else []
    out[settings.employee_id_attribute] = [person.employee_id]
    return out


def template_values(person: DesiredPerson, login: str, base_dn: str) -> dict[str, str]:
    values = {
        name: person.fields[name]
        for name in (
            "display_name",
            "given_name",
            "family_name",
            "employee_id",
            "department",
            "division",
            "location",
            "cost_center",
        )
        if isinstance(person.fields.get(name), str)
    }
    values["uid"] = login
    values["cn"] = person.fields["display_name"]
    values["base_dn"] = base_dn
    return values
