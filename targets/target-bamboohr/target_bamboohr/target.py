"""target-bamboohr: creates (or updates) the HRIS employee for each accepted offer."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import TargetDeadLetters
from hrsync.http import HTTP_SETTINGS
from hrsync.singer_input import SingerObjectReader
from target_bamboohr.client import BambooHRClient
from target_bamboohr.sinks import NewHireSink


class TargetBambooHR(BatchAsRecords, Target):  # BATCH files take the RECORD path
    name = "target-bamboohr"
    package_name = "hrsync-target-bamboohr"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = NewHireSink
    config_jsonschema = th.PropertiesList(
        th.Property("api_key", th.StringType, required=True, secret=True,
                    description="BambooHR API key (sent as the Basic-auth user)"),
        th.Property("company_domain", th.StringType,
                    description="The `acme` of acme.bamboohr.com (used when api_url is unset)"),
        th.Property("api_url", th.StringType,
                    description="Base URL: https://{domain}.bamboohr.com/api/v1 or the legacy "
                    "https://api.bamboohr.com/api/gateway.php/{company}/v1"),
        th.Property("candidate_id_field", th.StringType, default="customATSCandidateID",
                    description="BambooHR (custom) field that stores the ATS candidate id"),
        th.Property("candidate_id_property", th.StringType, default="ats_candidate_id",
                    description="Record property carrying the ATS candidate id"),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Log what would be created/updated; write nothing"),
        th.Property("audit_log_path", th.StringType,
                    description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG"),
        *HTTP_SETTINGS,
    ).to_dict()  # fmt: skip

    @cached_property
    def client(self) -> BambooHRClient:
        if not (self.config.get("api_url") or self.config.get("company_domain")):
            raise ValueError("target-bamboohr needs company_domain or api_url")
        return BambooHRClient(self.config)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.get("audit_log_path"))

    @cached_property
    def letters(self) -> TargetDeadLetters:
        """Undeliverable records ($HRSYNC_DLQ_PATH, else .hrsync/deadletters.sqlite)."""
        return TargetDeadLetters(self.name)

    @cached_property
    def _fields(self) -> set[str]:
        return self.client.field_names()

    def bamboohr_fields(self) -> set[str]:
        return self._fields

    def candidate_index(self, key_field: str, fields: list[str]) -> dict[str, dict[str, t.Any]]:
        """Every employee that carries an ATS candidate id, by that id (one report request)."""
        rows = self.client.report(["id", key_field, *fields])
        index: dict[str, dict[str, t.Any]] = {}
        for row in rows:
            key = row.get(key_field)
            if key not in (None, ""):
                if str(key) in index:
                    self.logger.warning(
                        "employees %s and %s both carry ATS candidate id %s: updating the first",
                        index[str(key)]["id"],
                        row["id"],
                        key,
                    )
                    continue
                index[str(key)] = row
        return index


#: the target-bamboohr console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetBambooHR, "target-bamboohr")


if __name__ == "__main__":
    main()
