"""tap-gusto: Gusto payroll read back: employees, jobs, compensations, terminations."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_gusto.client import DEFAULT_API_URL, DEFAULT_API_VERSION, DEFAULT_TOKEN_FILE, MAX_PER
from tap_gusto.streams import STREAM_TYPES


class TapGusto(HRTap, Tap):
    """Singer tap for Gusto: one company's employees with their jobs, compensations and
    terminations, and its work locations."""

    name = "tap-gusto"
    package_name = "hrsync-tap-gusto"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "company_uuid",
            th.StringType,
            required=True,
            description="The Gusto company to read",
        ),
        th.Property(
            "client_id",
            th.StringType,
            required=True,
            description="OAuth client id of the Gusto application",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            required=True,
            secret=True,
            description="OAuth client secret of the Gusto application",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            description="Refresh token from authorising the app for the company; Gusto rotates "
            "it on every use, the newest is kept in token_file",
        ),
        th.Property(
            "token_file",
            th.StringType,
            default=DEFAULT_TOKEN_FILE,
            description="File (0600) keeping the rotated refresh token and the access token; "
            "point it at target-payroll-api's token_file when both use one authorisation",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            description="https://api.gusto.com (demo: https://api.gusto-demo.com)",
        ),
        th.Property(
            "token_url",
            th.StringType,
            description="OAuth token endpoint; default {api_url}/oauth/token",
        ),
        th.Property(
            "api_version",
            th.StringType,
            default=DEFAULT_API_VERSION,
            description="Sent as X-Gusto-API-Version (YYYY-MM-DD)",
        ),
        th.Property(
            "external_id_field",
            th.StringType,
            default="HRIS Employee ID",
            description="Company custom field holding the HRIS employee id (emitted as "
            "employees.hris_employee_id)",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PER),
            default=MAX_PER,
            description="Employees per list request (per, 1-100)",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-gusto console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapGusto, "tap-gusto")


if __name__ == "__main__":
    main()
