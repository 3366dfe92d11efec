"""tap-surveymonkey: SurveyMonkey API v3 (bearer token): surveys, questions, responses, answers."""

from __future__ import annotations

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.http import HTTP_SETTINGS
from hrsync.taps import HRTap
from tap_surveymonkey.streams import STREAM_TYPES


class TapSurveyMonkey(HRTap, Tap):
    """Singer tap for SurveyMonkey survey results, respondents linkable to employees."""

    name = "tap-surveymonkey"
    package_name = "hrsync-tap-surveymonkey"  # the distribution, for --about's version
    stream_types = STREAM_TYPES

    config_jsonschema = th.PropertiesList(
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            description="SurveyMonkey access token (an app's token, or OAuth) with the "
            "surveys_read and responses_read_detail scopes.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.surveymonkey.com/v3",
            description="API base URL (EU data centre: https://api.eu.surveymonkey.com/v3).",
        ),
        th.Property(
            "survey_ids",
            th.ArrayType(th.StringType),
            description="Only these surveys (default: every survey the token can read).",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Only responses modified at or after this instant (first run only).",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=100),
            default=100,
            description="per_page of responses/bulk (1-100).",
        ),
        th.Property(
            "employee_id_variable",
            th.StringType,
            default="employee_id",
            description="Custom variable of the survey link that carries the employee id.",
        ),
        th.Property(
            "include_respondent_email",
            th.BooleanType,
            default=False,
            description="Emit the e-mail collector's recipient address as respondent_email "
            "(off: only the employee_id custom variable links a respondent).",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


#: the tap-surveymonkey console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TapSurveyMonkey, "tap-surveymonkey")


if __name__ == "__main__":
    main()
