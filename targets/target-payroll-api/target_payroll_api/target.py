"""target-payroll-api: payroll employees, jobs, pay, terminations, tax and deductions -> Gusto."""

from __future__ import annotations

from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import DeadLetterStore
from hrsync.http import HTTP_SETTINGS
from hrsync.singer_input import SingerObjectReader
from target_payroll_api.client import (
    DEFAULT_API_URL,
    DEFAULT_API_VERSION,
    DEFAULT_TOKEN_STORE,
    GustoClient,
)
from target_payroll_api.payroll import Payroll
from target_payroll_api.sinks import PayrollSink


class TargetPayrollAPI(BatchAsRecords, Target):  # BATCH files take the RECORD path
    """Loads the hris_to_payroll streams into Gusto, idempotent on the HRIS employee id."""

    name = "target-payroll-api"
    package_name = "hrsync-target-payroll-api"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = PayrollSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "company_uuid",
            th.StringType,
            required=True,
            description="The Gusto company the employees belong to",
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
            description="Refresh token from authorising the app for the company; Gusto "
            "rotates it on every use, the newest is kept in token_file",
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
            "token_file",
            th.StringType,
            default=DEFAULT_TOKEN_STORE,
            description="File (0600) keeping the rotated refresh token and access token",
        ),
        th.Property(
            "external_id_field",
            th.StringType,
            default="HRIS Employee ID",
            description="Gusto company custom field holding the HRIS employee id",
        ),
        th.Property(
            "run_termination_payroll",
            th.BooleanType,
            default=True,
            description="Terminations run the final (termination) payroll",
        ),
        th.Property(
            "file_new_hire_report",
            th.BooleanType,
            default=True,
            description="Rehires file a new-hire report for the work state",
        ),
        th.Property(
            "benefit_map",
            th.ObjectType(additional_properties=th.StringType),
            description="HRIS deduction type -> Gusto company benefit description, "
            "where they differ",
        ),
        th.Property(
            "audit_log_path",
            th.StringType,
            description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG",
        ),
        th.Property(
            "dead_letter_path",
            th.StringType,
            description="Dead-letter store (SQLite); default $HRSYNC_DLQ_PATH",
        ),
        *HTTP_SETTINGS,
    ).to_dict()

    @cached_property
    def client(self) -> GustoClient:
        return GustoClient(self.config)

    @cached_property
    def payroll(self) -> Payroll:
        return Payroll(self.client, self.config)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.get("audit_log_path"))

    @cached_property
    def deadletters(self) -> DeadLetterStore:
        return DeadLetterStore(self.config.get("dead_letter_path"))


#: the target-payroll-api console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetPayrollAPI, "target-payroll-api")


if __name__ == "__main__":
    main()
