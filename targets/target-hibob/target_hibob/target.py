"""target-hibob: creates (or updates) the HiBob employee for each accepted offer."""

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
from target_hibob.client import HiBobClient, at
from target_hibob.sinks import NewHireSink


class TargetHiBob(BatchAsRecords, Target):  # BATCH files take the RECORD path
    name = "target-hibob"
    package_name = "hrsync-target-hibob"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = NewHireSink
    config_jsonschema = th.PropertiesList(
        th.Property("service_user_id", th.StringType, required=True,
                    description="HiBob API service user ID (sent as the Basic-auth user name)"),
        th.Property("token", th.StringType, required=True, secret=True,
                    description="The service user's token (sent as the Basic-auth password)"),
        th.Property("api_url", th.StringType,
                    description="API base URL (default https://api.hibob.com/v1)"),
        th.Property("candidate_id_field", th.StringType, required=True,
                    description="HiBob custom field id that stores the ATS candidate id, e.g. "
                    "work.custom.field_1700000000001 (GET /company/people/fields lists them)"),
        th.Property("candidate_id_property", th.StringType, default="ats_candidate_id",
                    description="Record property carrying the ATS candidate id"),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Log what would be created/updated; write nothing"),
        th.Property("audit_log_path", th.StringType,
                    description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG"),
        *HTTP_SETTINGS,
    ).to_dict()  # fmt: skip

    @cached_property
    def client(self) -> HiBobClient:
        return HiBobClient(self.config)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.get("audit_log_path"))

    @cached_property
    def letters(self) -> TargetDeadLetters:
        """Undeliverable records ($HRSYNC_DLQ_PATH, else .hrsync/deadletters.sqlite)."""
        return TargetDeadLetters(self.name)

    @cached_property
    def _fields(self) -> dict[str, str]:
        return self.client.fields()

    def hibob_fields(self) -> dict[str, str]:
        return self._fields

    def candidate_index(self, key_field: str, fields: list[str]) -> dict[str, dict[str, t.Any]]:
        """Every employee that carries an ATS candidate id, by that id (one search)."""
        index: dict[str, dict[str, t.Any]] = {}
        for doc in self.client.search(["root.id", key_field, *fields]):
            key = at(doc, key_field)
            if key in (None, ""):
                continue
            if str(key) in index:
                self.logger.warning(
                    "employees %s and %s both carry ATS candidate id %s: updating the first",
                    index[str(key)]["id"],
                    doc.get("id"),
                    key,
                )
                continue
            index[str(key)] = doc
        return index


#: the target-hibob console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetHiBob, "target-hibob")


if __name__ == "__main__":
    main()
