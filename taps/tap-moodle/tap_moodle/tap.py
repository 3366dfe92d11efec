"""tap-moodle: Moodle web services (REST protocol, JSON): users and course enrolments."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_moodle.client import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tap_moodle.streams import STREAM_TYPES


class TapMoodle(HRTap, Tap):
    """Singer tap for Moodle: users and enrolments, read back over web services."""

    name = "tap-moodle"
    package_name = "hrsync-tap-moodle"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "base_url",
            th.StringType,
            required=True,
            description="Moodle site root, e.g. https://lms.acme.com (HTTPS; plain http only "
            "on loopback).",
        ),
        th.Property(
            "token",
            th.StringType,
            required=True,
            secret=True,
            description="Web-service token of a user allowed to call core_user_get_users, "
            "core_course_get_courses and core_enrol_get_enrolled_users (Site administration > "
            "Server > Web services > Manage tokens); sent in the POST body, never the URL.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=2, maximum=MAX_PAGE_SIZE),
            default=DEFAULT_PAGE_SIZE,
            description="Enrolled users per core_enrol_get_enrolled_users call (limitnumber).",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-moodle console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapMoodle, "tap-moodle")


if __name__ == "__main__":
    main()
