"""tap-lever: Lever Data API v1 (Basic auth with the API key, ``next``-token paging)."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_lever.streams import STREAM_TYPES


class TapLever(HRTap, Tap):
    """Singer tap for Lever: opportunities, offers, postings, users, stages."""

    name = "tap-lever"
    package_name = "hrsync-tap-lever"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Lever API key (Settings > Integrations and API > API credentials); "
            "sent as the Basic-auth user name with a blank password.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.lever.co/v1",
            description="Lever API base URL (sandbox tenants: https://api.sandbox.lever.co/v1).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Only opportunities and postings updated at or after this instant "
            "(first run only).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=100),
            default=100,
            description="limit of each list request (1-100).",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-lever console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapLever, "tap-lever")


if __name__ == "__main__":
    main()
