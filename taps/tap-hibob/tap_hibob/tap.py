"""tap-hibob: HiBob (service-user Basic auth; people search, work/employment/lifecycle tables)."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_hibob.streams import STREAM_TYPES


class TapHibob(HRTap, Tap):
    """Singer tap for HiBob."""

    name = "tap-hibob"
    package_name = "hrsync-tap-hibob"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "service_user_id",
            th.StringType,
            required=True,
            description="HiBob API service user ID (sent as the Basic-auth user name).",
        ),
        th.Property(
            "token",
            th.StringType,
            required=True,
            secret=True,
            description="The service user's token (sent as the Basic-auth password).",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description="API base URL (default https://api.hibob.com/v1; the sandbox is "
            "https://api.sandbox.hibob.com/v1; http only for loopback test servers).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=200),
            default=200,
            description="Employees per bulk table request (1-200).",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-hibob console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapHibob, "tap-hibob")


if __name__ == "__main__":
    main()
