"""tap-bamboohr: BambooHR API v1 (current or legacy gateway base), incremental by lastChanged."""

from __future__ import annotations

import typing as t

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS, secure_request
from hrsync.taps import HRTap
from tap_bamboohr.client import ERROR_HEADER, base_url, load_schema
from tap_bamboohr.streams import (
    DEFAULT_CANDIDATE_FIELD,
    DEFAULT_FIELDS,
    STREAM_TYPES,
    EmployeesStream,
    employee_fields,
)


class TapBambooHR(HRTap, Tap):
    """Singer tap for BambooHR: employees (incl. inactive), deletions, job/pay/status history."""

    name = "tap-bamboohr"
    package_name = "hrsync-tap-bamboohr"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="BambooHR API key (sent as the Basic-auth user name; password 'x').",
        ),
        th.Property(
            "company_domain",
            th.StringType,
            description="The `acme` of acme.bamboohr.com (not needed when api_url is set).",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description=(
                "Overrides the base URL, e.g. https://acme.bamboohr.com/api/v1 or "
                "https://api.bamboohr.com/api/gateway.php/acme/v1."
            ),
        ),
        th.Property(
            "legacy_gateway",
            th.BooleanType,
            default=False,
            description=(
                "Use the legacy base https://api.bamboohr.com/api/gateway.php/{company}/v1 "
                "instead of https://{company}.bamboohr.com/api/v1 (ignored when api_url is set)."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="First run only: records changed at or after this instant.",
        ),
        th.Property(
            "full_sync",
            th.StringType,
            default="list",
            allowed_values=["list", "report"],
            description=(
                "How a full sync reads employees: `list` pages GET /employees (memory flat); "
                "`report` asks one custom report for everyone. Incremental runs always use "
                "the custom report filtered by lastChanged."
            ),
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=1000,
            description="page[limit] of GET /employees in list mode (1-2500).",
        ),
        th.Property(
            "employee_fields",
            th.ArrayType(th.StringType),
            default=list(DEFAULT_FIELDS),
            description="BambooHR field aliases read for each employee (at most 400 in all).",
        ),
        th.Property(
            "custom_fields",
            th.ArrayType(th.StringType),
            default=[],
            description="Extra (custom) field aliases read and emitted under their own names.",
        ),
        th.Property(
            "candidate_id_field",
            th.StringType,
            default=DEFAULT_CANDIDATE_FIELD,
            description=(
                "The custom field holding the ATS candidate id; emitted as `candidate_id`. "
                "Empty: not read."
            ),
        ),
        th.Property(
            "discover_custom_fields",
            th.BooleanType,
            default=False,
            description=(
                "At discovery, read GET /meta/fields and add every custom field (alias "
                "custom*) to the employees stream."
            ),
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        streams: list[Stream] = []
        for stream_type in STREAM_TYPES:
            schema = load_schema(stream_type.name)  # type: ignore[misc]
            if stream_type is EmployeesStream:
                discovered = (
                    self._meta_custom_fields() if self.config.get("discover_custom_fields") else []
                )
                self._add_employee_fields(schema, discovered)
                streams.append(EmployeesStream(tap=self, schema=schema, discovered=discovered))
            else:
                streams.append(stream_type(tap=self, schema=schema))
        return streams

    def _add_employee_fields(self, schema: dict[str, t.Any], discovered: list[str]) -> None:
        """Declare configured and discovered fields the schema lacks as nullable strings."""
        props = schema["properties"]
        candidate = self.config.get("candidate_id_field", DEFAULT_CANDIDATE_FIELD)
        for name in employee_fields(self.config, discovered):
            if name not in props and name != candidate:
                props[name] = {"type": ["null", "string"]}

    def _meta_custom_fields(self) -> list[str]:
        """Aliases of the company's custom fields, from ``GET /meta/fields``."""
        url = f"{base_url(self.config)}/meta/fields"
        response = secure_request(
            "GET",
            url,
            auth=(str(self.config["api_key"]), "x"),
            headers={"Accept": "application/json"},
            timeout=60,
        )
        if not response.ok:
            reason = response.headers.get(ERROR_HEADER) or response.text[:200]
            raise RuntimeError(
                f"tap-bamboohr: GET /meta/fields failed with {response.status_code}: {reason}"
            )
        return [
            str(field["alias"])
            for field in response.json()
            if isinstance(field, dict) and str(field.get("alias") or "").startswith("custom")
        ]


#: the tap-bamboohr console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapBambooHR, "tap-bamboohr")


if __name__ == "__main__":
    main()
