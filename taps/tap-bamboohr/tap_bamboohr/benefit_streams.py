"""BambooHR benefits streams: coverage levels, plans, dependants and employee elections.

None of these endpoints has a change filter, so each stream is a full read every run (small:
a few rows per employee); the target decides what changed. Permissions: the API key's owner
needs access to benefit settings (Benefits Administration); a 403 names the endpoint.

They are **not selected by default**: a plain sync (no catalog) leaves them out, so taps whose
key may not read benefits, and incremental runs that should stay quiet, are unaffected. Select
them in the catalog (Meltano's default ``*.*`` selection does) for the hris-to-benefits job.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterable

import requests

from hrsync.shapes import expect_rows
from tap_bamboohr.client import BambooHRStream, expect_object

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class FullTableStream(BambooHRStream):
    """A BambooHR list without a ``since`` filter: read whole, no bookmark."""

    replication_key = None  # type: ignore[assignment]

    _opted_in = False

    @property
    def selected(self) -> bool:
        """Opt-in (needs Benefits Administration permission; see the module): without an
        input catalog the stream syncs only when explicitly selected."""
        if self._tap_input_catalog is None and not self._opted_in:
            return False
        return bool(self.mask.get((), True))

    @selected.setter
    def selected(self, value: bool | None) -> None:
        self._opted_in = bool(value)
        self.metadata.root.selected = value
        self._mask = self.metadata.resolve_selection()

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        """Full-table reads keep no bookmark."""


class BenefitCoveragesStream(FullTableStream):
    """``GET /benefitcoverages``: the coverage levels (Employee, Employee + Spouse, ...)."""

    name = "benefit_coverages"
    path = "/benefitcoverages"
    records_jsonpath = "$['Benefit Coverages'][*]"
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id",)


class CompanyBenefitsStream(FullTableStream):
    """``GET /benefit/company_benefit``: the company's benefit plans (medical, dental, ...)."""

    name = "company_benefits"
    path = "/benefit/company_benefit"
    records_jsonpath = "$[*]"
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id",)

    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"companyBenefitId": record["id"]}


class EmployeeDependentsStream(FullTableStream):
    """``GET /employeedependents``: every employee's dependants (SSN/SIN come masked)."""

    name = "employee_dependents"
    path = "/employeedependents"
    records_jsonpath = "$['Employee Dependents'][*]"
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id", "employeeId")


class EmployeeBenefitsStream(FullTableStream):
    """``GET /benefit/employee_benefit`` with ``{"filters": {"companyBenefitId": id}}``, once per
    plan: every employee's current and scheduled enrolment records in that plan, one record per
    (employee, plan) row, with ``employeeId`` added from the enclosing group."""

    name = "employee_benefits"
    path = "/benefit/employee_benefit"
    parent_stream_type = CompanyBenefitsStream
    ignore_parent_replication_keys = True
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one state, not one per plan
    primary_keys: t.ClassVar[list[str]] = ["id"]
    int_fields = ("id", "employeeId", "companyBenefitId", "benefitCoverageId")

    def prepare_request_payload(
        self, context: Context | None, next_page_token: t.Any
    ) -> dict[str, t.Any] | None:
        # BambooHR documents filters in a JSON body on this GET (non-standard, but so it is)
        return {"filters": {"companyBenefitId": (context or {}).get("companyBenefitId")}}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        data = expect_object(
            response, self.parse_json(response), 'an object with "employeeBenefits"'
        )
        groups = expect_rows(response, "BambooHR", data.get("employeeBenefits") or [], "groups")
        for group in groups:
            rows = expect_rows(response, "BambooHR", group.get("employeeBenefit") or [], "rows")
            for row in rows:
                yield {"employeeId": group.get("employeeId"), **row}


#: Emission order: reference data (coverages, plans) before what points at it.
BENEFIT_STREAMS: tuple[type[BambooHRStream], ...] = (
    BenefitCoveragesStream,
    CompanyBenefitsStream,
    EmployeeDependentsStream,
    EmployeeBenefitsStream,
)
