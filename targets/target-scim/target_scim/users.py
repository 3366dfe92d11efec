"""From an identity record (see docs: the IAM record) to the SCIM user it should become."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hrsync.errors import RecordError
from hrsync.identity import should_be_active
from target_scim import scim

USER_NAME_SOURCES = ("user_name", "work_email", "employee_id")


@dataclass
class DesiredUser:
    """What one employee's SCIM account should look like after this run."""

    stream: str
    employee_id: str
    values: dict[str, Any]  # managed path -> value (None: clear it); manager excluded
    active: bool
    manager_employee_id: str | None
    record: dict[str, Any] = field(repr=False)

    @property
    def user_name(self) -> str | None:
        value = self.values.get(scim.USER_NAME)
        return str(value) if value else None

    @property
    def prior_employee_id(self) -> str | None:
        """The employee id of an earlier employment, when the HRIS links a rehire to it."""
        value = _text(self.record.get("prior_employee_id"))
        value = value.strip() if value else None
        return value if value and value != self.employee_id else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


# one rule for every directory: hrsync.identity
desired_active = should_be_active


def display_name(record: Mapping[str, Any]) -> str | None:
    explicit = _text(record.get("display_name"))
    if explicit:
        return explicit
    given = _text(record.get("preferred_name")) or _text(record.get("given_name"))
    family = _text(record.get("family_name"))
    if given and family and given != family:
        return f"{given} {family}"
    return given or family  # a mononym has given_name == family_name


def build_desired(
    stream: str,
    record: dict[str, Any],
    *,
    today: dt.date,
    user_name_attribute: str = "user_name",
    organization: str | None = None,
) -> DesiredUser:
    """Map one identity record; raises RecordError naming the field that is wrong."""
    key = _text(record.get("employee_id"))
    if key is None:
        raise RecordError(stream, "?", "employee_id", "required, and missing or empty")
    key = key.strip()
    user_name = _text(record.get(user_name_attribute))
    if user_name is not None:
        user_name = user_name.strip()
    positions = record.get("positions")
    if positions is not None and not isinstance(positions, list):
        raise RecordError(stream, key, "positions", "must be an array of {title, department}")
    values: dict[str, Any] = {
        scim.EXTERNAL_ID: key,
        scim.GIVEN_NAME: _text(record.get("given_name")),
        scim.FAMILY_NAME: _text(record.get("family_name")),
        scim.DISPLAY_NAME: display_name(record),
        scim.NICK_NAME: _text(record.get("preferred_name")),
        scim.TITLE: _text(record.get("title")),
        scim.EMPLOYEE_NUMBER: _text(record.get("employee_number")),
        scim.DEPARTMENT: _text(record.get("department")),
        scim.DIVISION: _text(record.get("division")),
        scim.COST_CENTER: _text(record.get("cost_center")),
    }
    if user_name is not None:  # without one the account can be updated but not created
        values[scim.USER_NAME] = user_name
    if organization is not None:  # a static setting: unmanaged when unset
        values[scim.ORGANIZATION] = organization
    email = _text(record.get("work_email"))
    if email is not None:  # contractors may have none: then their emails are left alone
        values[scim.WORK_EMAIL] = email.strip()
    active = desired_active(record, today, stream=stream, key=key)
    values[scim.ACTIVE] = active
    return DesiredUser(
        stream=stream,
        employee_id=key,
        values=values,
        active=active,
        manager_employee_id=_text(record.get("manager_employee_id")),
        record=record,
    )
