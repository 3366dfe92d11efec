"""tap-greenhouse: Greenhouse Harvest API v3 (OAuth 2.0 client credentials, cursor paging)."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_greenhouse.streams import STREAM_TYPES


class TapGreenhouse(HRTap, Tap):
    """Singer tap for Greenhouse Harvest v3 (Harvest v1/v2 are retired on 2026-08-31)."""

    name = "tap-greenhouse"
    package_name = "hrsync-tap-greenhouse"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "client_id",
            th.StringType,
            required=True,
            description="Harvest v3 OAuth client id (Dev Center > API Credentials).",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            required=True,
            secret=True,
            description="Harvest v3 OAuth client secret.",
        ),
        th.Property(
            "user_id",
            th.StringType,
            required=True,
            description="Numeric id of the Greenhouse user the API acts as (the token's `sub`).",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default="https://harvest.greenhouse.io/v3",
            description="Harvest v3 base URL.",
        ),
        th.Property(
            "token_url",
            th.StringType,
            default="https://auth.greenhouse.io/token",
            description="OAuth 2.0 token endpoint.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Only records updated at or after this instant (first run only).",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=500,
            description="per_page on the first request of each stream (1-500).",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-greenhouse console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapGreenhouse, "tap-greenhouse")


if __name__ == "__main__":
    main()
