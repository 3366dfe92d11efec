"""tap-scim: any SCIM 2.0 service provider (bearer token, startIndex paging, incremental on
``meta.lastModified`` where the server can filter on it)."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_scim.client import MAX_PAGE_SIZE
from tap_scim.streams import STREAM_TYPES


class TapSCIM(HRTap, Tap):
    """Singer tap for SCIM 2.0 (RFC 7644): users and groups."""

    name = "tap-scim"
    package_name = "hrsync-tap-scim"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            required=True,
            description="SCIM base URL, e.g. https://example.okta.com/scim/v2 (HTTPS; plain "
            "http only on loopback)",
        ),
        th.Property(
            "bearer_token",
            th.StringType,
            required=True,
            secret=True,
            description="Bearer token of the SCIM API (RFC 6750)",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Only resources whose meta.lastModified is at or after this instant "
            "(first run; resources without meta.lastModified are always read)",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
            default=100,
            description="Resources asked per page (count); the server's filter.maxResults "
            "caps it, and a server may return fewer",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


main = plugin_main(TapSCIM, "tap-scim")


if __name__ == "__main__":
    main()
