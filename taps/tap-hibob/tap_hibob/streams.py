"""HiBob streams: one small declaration per endpoint (schemas in schemas/<name>.json)."""

from __future__ import annotations

import typing as t

from hrsync.shapes import expect, expect_rows, read_json
from tap_hibob.client import VENDOR, HibobStream, TableStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context

#: the fields the canonical worker needs, by HiBob field id (``/v1/company/people/fields``)
EMPLOYEE_FIELDS = (
    "root.id", "root.firstName", "root.surname", "root.secondName", "root.displayName",
    "root.email", "personal.preferredName", "personal.birthDate", "personal.gender",
    "home.privateEmail", "home.mobilePhone", "work.workPhone", "work.employeeIdInCompany",
    "work.title", "work.department", "work.division", "work.site", "work.startDate",
    "work.reportsTo", "work.manager", "work.isManager", "internal.status",
    "internal.lifecycleStatus", "internal.terminationDate", "internal.terminationReason",
    "payroll.employment.contract", "payroll.employment.type", "address.line1", "address.line2",
    "address.city", "address.usState", "address.postCode", "address.country",
    "financial.identificationNumber",
    # a US tenant's payroll custom fields (work state, W-4): each tenant has its own field ids
    "payroll.custom.field_1700000000101", "payroll.custom.field_1700000000102",
    "payroll.custom.field_1700000000103", "payroll.custom.field_1700000000104",
    "payroll.custom.field_1700000000105",
)  # fmt: skip


class EmployeesStream(HibobStream):
    """``POST /people/search``: every employee, leavers included (``showInactive``), with the
    fields above; list fields (title, department, site...) come as item ids, so the names are
    asked for too (``humanReadable: APPEND`` adds them under ``humanReadable``)."""

    name = "employees"
    path = "/people/search"
    rest_method = "POST"

    def prepare_request_payload(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        return {"fields": list(EMPLOYEE_FIELDS), "showInactive": True, "humanReadable": "APPEND"}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        body = expect(
            response, VENDOR, read_json(response, VENDOR), dict, 'an object with "employees"'
        )
        yield from expect_rows(response, VENDOR, body.get("employees"), '"employees"')


class WorkHistoryStream(TableStream):
    """``GET /bulk/people/work``: title, department, site and manager over time."""

    name = "work_history"
    table = "work"


class EmploymentHistoryStream(TableStream):
    """``GET /bulk/people/employment``: contract, employment type and hours over time."""

    name = "employment_history"
    table = "employment"


class LifecycleHistoryStream(TableStream):
    """``GET /bulk/people/lifecycle``: hires, terminations and rehires (``status``)."""

    name = "lifecycle_history"
    table = "lifecycle"


class SalariesStream(TableStream):
    """``GET /bulk/people/salaries``: the payroll salary table (base pay, pay period and
    frequency over time); the service user needs the Payroll section's history permission."""

    name = "salaries"
    table = "salaries"


#: Emission order: employees, then their history tables.
STREAM_TYPES: tuple[type[HibobStream], ...] = (
    EmployeesStream,
    WorkHistoryStream,
    EmploymentHistoryStream,
    LifecycleHistoryStream,
    SalariesStream,
)
