"""BambooHR streams: employees, deletions and the three history tables (schemas in schemas/)."""

from __future__ import annotations

import typing as t
from collections.abc import Iterable

import requests
from singer_sdk.pagination import BaseAPIPaginator

from hrsync.errors import ConfigError
from hrsync.http import require_secure_url
from hrsync.shapes import expect_rows
from tap_bamboohr.benefit_streams import BENEFIT_STREAMS
from tap_bamboohr.client import (
    EPOCH,
    SEEN_AT_BOOKMARK,
    VENDOR,
    BambooHRStream,
    CursorPaginator,
    expect_map,
    expect_object,
    format_since,
    server_time_at_send,
)

if t.TYPE_CHECKING:
    from datetime import datetime

    from singer_sdk.helpers.types import Context

#: The employee fields read by default (BambooHR field aliases).
DEFAULT_FIELDS: tuple[str, ...] = (
    "employeeNumber",
    "firstName",
    "middleName",
    "lastName",
    "preferredName",
    "displayName",
    "workEmail",
    "homeEmail",
    "workPhone",
    "mobilePhone",
    "hireDate",
    "originalHireDate",
    "terminationDate",
    "department",
    "division",
    "jobTitle",
    "location",
    "status",
    "employmentHistoryStatus",
    "supervisorEId",
    "dateOfBirth",
    "ssn",
    "gender",
    "address1",
    "address2",
    "city",
    "state",
    "zipcode",
    "country",
    "payRate",
    "payType",
    "payPer",
    "exempt",
    # payroll tax custom fields (W-4 and work state); unknown fields are left out by BambooHR
    "customFederalFilingStatus",
    "customFederalExtraWithholding",
    "customW4MultipleJobs",
    "customW4DependentsAmount",
    "customWorkState",
    "lastChanged",
)
DEFAULT_CANDIDATE_FIELD = "customATSCandidateID"
MAX_REPORT_FIELDS = 400  # BambooHR's limit per custom report
LIST_PAGE_MAX = 2500  # page[limit] of GET /employees


def employee_fields(config: t.Mapping[str, t.Any], discovered: Iterable[str] = ()) -> list[str]:
    """The field aliases the employees report asks for, in order, without duplicates."""
    names = list(config.get("employee_fields") or DEFAULT_FIELDS)
    names += list(config.get("custom_fields") or [])
    names += list(discovered)
    candidate = config.get("candidate_id_field", DEFAULT_CANDIDATE_FIELD)
    if candidate:
        names.append(str(candidate))
    names.append("lastChanged")  # the bookmark
    seen: dict[str, None] = {}
    for name in names:
        name = str(name).strip()
        if name and name != "id":
            seen.setdefault(name, None)
    if len(seen) > MAX_REPORT_FIELDS:
        raise ConfigError(
            f"tap-bamboohr: employee_fields + custom_fields ask for {len(seen)} fields; "
            f"a BambooHR custom report takes at most {MAX_REPORT_FIELDS}"
        )
    return list(seen)


class EmployeesStream(BambooHRStream):
    """All employees, active and inactive, with the configured fields.

    Full sync (no bookmark, no start_date), ``full_sync: list`` (default): the cursor-paged
    ``GET /employees?fields=...&page[limit]=...`` (all statuses), memory flat however large the
    company; its bookmark is the server's clock when the first page was asked for, so nothing
    changed while paging is lost. ``full_sync: report``: one ``POST /reports/custom`` for everyone.

    Incremental: ``POST /reports/custom?format=JSON&onlyCurrent=false`` with
    ``filters.lastChanged`` = the bookmark: one request for all changes, rather than
    ``GET /employees/changed`` followed by one ``GET /employees/{id}`` per person. The report
    includes inactive people; ``onlyCurrent=false`` adds future-dated hires.

    The ATS candidate id is read from the custom field named by ``candidate_id_field`` and
    emitted as ``candidate_id``, whatever the company called the field.
    """

    name = "employees"
    path = "/reports/custom"
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id",)
    #: keys the list endpoint always sends; not employee fields of this stream
    LIST_ONLY = ("photoUrl", "jobTitleName", "_restrictedFields")

    def __init__(self, *args: t.Any, discovered: Iterable[str] = (), **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: custom fields found by discovery (``GET /meta/fields``)
        self.discovered = list(discovered)
        self._restricted_reported: set[str] = set()

    # --- which endpoint -------------------------------------------------------------------

    def listing(self, context: Context | None) -> bool:
        """True when this run reads the cursor-paged list (a full sync in list mode)."""
        mode = str(self.config.get("full_sync") or "list")
        return mode == "list" and self.since(context) is None

    @property
    def http_method(self) -> str:
        return "GET" if self.listing(None) else "POST"

    @http_method.setter
    def http_method(self, value: str) -> None:
        raise AttributeError("the employees stream picks its HTTP method from the sync mode")

    def get_url(self, context: Context | None) -> str:
        tail = "/employees" if self.listing(context) else "/reports/custom"
        return require_secure_url(self.url_base + tail)

    def get_new_paginator(self) -> BaseAPIPaginator | None:
        return CursorPaginator() if self.listing(None) else None

    @property
    def candidate_field(self) -> str:
        return str(self.config.get("candidate_id_field", DEFAULT_CANDIDATE_FIELD) or "")

    @property
    def field_names(self) -> list[str]:
        """Configured and discovered fields, less those deselected in the catalog: a field
        nobody selected (``ssn``, say) is never requested from BambooHR."""
        names = employee_fields(self.config, self.discovered)
        candidate = self.candidate_field
        return [
            name
            for name in names
            if name == self.replication_key
            or self.mask[("properties", "candidate_id" if name == candidate else name)]
        ]

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        if not self.listing(context):
            return {"format": "JSON", "onlyCurrent": "false"}
        params: dict[str, t.Any] = {
            "fields": ",".join(self.field_names),
            "page[limit]": min(LIST_PAGE_MAX, max(1, int(self.config.get("page_size") or 1000))),
        }
        if next_page_token:
            params["page[after]"] = next_page_token
        return params

    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any] | None:
        if self.listing(context):
            return None
        body: dict[str, t.Any] = {"title": "tap-bamboohr employees", "fields": self.field_names}
        since = self.since(context)
        if since is not None:
            body["filters"] = {"lastChanged": {"includeNull": "no", "value": format_since(since)}}
        return body

    # --- records --------------------------------------------------------------------------

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        data = expect_object(response, self.parse_json(response), 'an object with "data"')
        if "employees" in data:  # the custom report
            yield from expect_rows(response, VENDOR, data["employees"] or [], '"employees"')
            return
        rows = expect_rows(response, VENDOR, data.get("data"), '"data"')
        if self._snapshot_at is None:
            self._snapshot_at = server_time_at_send(response)
        for row in rows:
            row["id"] = row.pop("employeeId", row.get("id"))
            restricted = row.pop("_restrictedFields", None) or []
            for key in self.LIST_ONLY:
                row.pop(key, None)
            self.report_restricted(restricted)
            yield row

    def report_restricted(self, names: Iterable[str]) -> None:
        """Fields BambooHR withheld (the key may not read them): warn once per field."""
        for name in names:
            if name not in self._restricted_reported:
                self._restricted_reported.add(name)
                self.logger.warning(
                    "BambooHR withheld field '%s' of stream '%s' (the API key may not read "
                    "it): it arrives as null",
                    name,
                    self.name,
                )

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        candidate = self.candidate_field
        if candidate and candidate != "candidate_id" and candidate in row:
            value = row.pop(candidate)
            row["candidate_id"] = None if value is None else str(value).strip() or None
        return super().post_process(row, context)


class EmployeeDeletionsStream(BambooHRStream):
    """Employees deleted from BambooHR: ``GET /employees/changed?type=deleted&since=...``.

    A separate stream rather than a ``deleted`` flag on employees: a deleted record has no fields
    left to report, and a flagged employees record full of nulls would make an upserting target
    blank the person out instead of removing them. Targets that deprovision read this stream.
    (Terminations are not deletions: a terminated employee stays, ``status`` Inactive, with a
    Terminated row in employment_status.)
    """

    name = "employee_deletions"
    path = "/employees/changed"
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id",)

    #: the server's clock when the one request was sent (see get_records)
    _read_at: datetime | None = None

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, str]:
        return {"since": format_since(self.since(context) or EPOCH), "type": "deleted"}

    def get_records(self, context: Context | None) -> t.Iterator[dict]:
        """Bookmark the server's clock when the request was sent, unless a deletion stamped
        later came back: one request answers every deletion up to then. Deletions are rare, so
        a bookmark that only moved with the last deletion seen would ask for every deletion
        since the beginning on every run, until the first one."""
        self._read_at = None
        yield from super().get_records(context)
        read_at, mark = self._read_at, self.bookmark(context)
        if read_at is None or (mark is not None and read_at <= mark):
            return  # (a bookmark never moves back)
        if self._newest is None or self._newest < read_at:
            self.set_bookmark(context, read_at)
            self.get_context_state(context)[SEEN_AT_BOOKMARK] = []

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        self._read_at = server_time_at_send(response)
        data = expect_object(response, self.parse_json(response), 'an object with "employees"')
        employees = expect_map(response, data.get("employees"), '"employees" keyed by id')
        for key, entry in employees.items():
            entry = expect_object(response, entry, f'"employees"."{key}"')
            if str(entry.get("action", "")).lower() == "deleted":
                yield {"id": entry.get("id", key), **entry}


class TableStream(BambooHRStream):
    """One employee history table, all employees.

    Full sync: ``GET /employees/all/tables/{table}`` (includes inactive employees). Incremental:
    ``GET /employees/changed/tables/{table}?since=``: every row of each employee changed since,
    stamped with that employee's ``lastChanged``. Rows are keyed by (employeeId, row id), so a
    re-sent row replaces itself downstream.
    """

    table: t.ClassVar[str]
    primary_keys: t.ClassVar[list[str]] = ["employeeId", "id"]
    int_fields = ("employeeId", "id")
    bookmark_key = "employeeId"  # the stamp is the employee's

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/employees/all/tables/{self.table}"  # the metrics label; get_url picks the feed

    def get_url(self, context: Context | None) -> str:
        kind = "changed" if self.since(context) is not None else "all"
        return require_secure_url(f"{self.url_base}/employees/{kind}/tables/{self.table}")

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict[str, str]:
        since = self.since(context)
        return {"since": format_since(since)} if since is not None else {}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        data = self.parse_json(response)
        if isinstance(data, list):  # all/tables: a bare list of rows
            rows = expect_rows(response, VENDOR, data, "table rows")
            self._snapshot_at = server_time_at_send(response)
            for row in rows:
                yield self.shape({**row, "lastChanged": None})
            return
        data = expect_object(response, data, 'table rows, or an object with "employees"')
        employees = expect_map(response, data.get("employees"), '"employees" keyed by id')
        for eid, entry in employees.items():
            entry = expect_object(response, entry, f'"employees"."{eid}"')
            for row in expect_rows(response, VENDOR, entry.get("rows") or [], f'"{eid}".rows'):
                stamp = entry.get("lastChanged")
                row = {**row, "employeeId": row.get("employeeId", eid), "lastChanged": stamp}
                yield self.shape(row)

    def shape(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """Per-table adjustments of a raw row (none by default)."""
        return row

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        # full-sync rows carry no stamp: the bookmark comes from the snapshot time instead
        if latest_record.get(self.replication_key) is not None:
            super()._increment_stream_state(latest_record, context=context)


class JobInfoStream(TableStream):
    """``jobInfo``: effective-dated job rows; two concurrent positions are two current rows."""

    name = "job_info"
    table = "jobInfo"


def _money(value: t.Any) -> dict[str, str | None] | None:
    """``{"value": "75000.00", "currency": "USD"}`` or ``"75000.00 USD"`` -> the object form."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return {"value": value.get("value"), "currency": value.get("currency")}
    amount, _, currency = str(value).strip().partition(" ")
    return {"value": amount or None, "currency": currency.strip() or None}


class CompensationStream(TableStream):
    """``compensation``: pay rate rows (``rate`` as ``{"value", "currency"}``)."""

    name = "compensation"
    table = "compensation"

    def shape(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        for key in ("rate", "overtimeRate"):
            if key in row:
                row[key] = _money(row[key])
        return row


class EmploymentStatusStream(TableStream):
    """``employmentStatus``: hires, status changes, terminations; a rehire is Terminated, then
    a new status row."""

    name = "employment_status"
    table = "employmentStatus"


class PayrollDeductionsStream(TableStream):
    """``customPayrollDeductions``: a custom table of effective-dated payroll deductions
    (401(k) percent, benefit premiums per pay period)."""

    name = "payroll_deductions"
    table = "customPayrollDeductions"


#: Emission order: people first, then deletions, then the history tables.
STREAM_TYPES: tuple[type[BambooHRStream], ...] = (
    EmployeesStream,
    EmployeeDeletionsStream,
    JobInfoStream,
    CompensationStream,
    EmploymentStatusStream,
    PayrollDeductionsStream,
    *BENEFIT_STREAMS,  # coverages, plans, dependants, elections
)
