"""target-moodle: HRIS workers -> Moodle users and compliance enrolments (web services, REST)."""

from __future__ import annotations

import datetime as dt
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import TargetDeadLetters
from hrsync.errors import ConfigError
from hrsync.http import HTTP_SETTINGS
from hrsync.singer_input import SingerObjectReader
from target_moodle.client import MoodleClient
from target_moodle.rules import Rules, load_rules
from target_moodle.sinks import LmsUserSink
from target_moodle.state import StateStore

#: the web-service functions the token's external service must include
REQUIRED_FUNCTIONS = (
    "core_user_get_users_by_field",
    "core_user_create_users",
    "core_user_update_users",
    "core_course_get_courses",
    "enrol_manual_enrol_users",
    "core_enrol_get_users_courses",
)


class TargetMoodle(BatchAsRecords, Target):  # BATCH files take the RECORD path
    name = "target-moodle"
    package_name = "hrsync-target-moodle"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = LmsUserSink
    #: one sink at a time: the state store and the end-of-run re-evaluation are sequential
    max_parallelism = 1
    config_jsonschema = th.PropertiesList(
        th.Property("base_url", th.StringType, required=True,
                    description="Moodle site root, e.g. https://lms.acme.com (HTTPS; plain http "
                    "only on loopback)"),
        th.Property("token", th.StringType, required=True, secret=True,
                    description="Web-service token of a user allowed to create users and enrol "
                    "(Site administration > Server > Web services > Manage tokens)"),
        th.Property("rules_path", th.StringType,
                    description="Compliance rules file (YAML/JSON); default: the example shipped "
                    "with target-moodle (compliance_rules.yml)"),
        th.Property("state_path", th.StringType,
                    default=".hrsync/target-moodle-state.sqlite",
                    description="What the target remembers between runs (rule inputs and the "
                    "enrolments it made; no names or e-mails)"),
        th.Property("when_no_longer_required", th.StringType, default="suspend",
                    allowed_values=["suspend", "keep", "unenrol"],
                    description="A course the rules stop requiring: suspend the enrolment "
                    "(history kept, reactivated if required again), keep it, or unenrol "
                    "(only if not completed; completed ones are suspended)"),
        th.Property("due_date_mode", th.StringType, default="enrolment_end",
                    allowed_values=["enrolment_end", "none"],
                    description="enrolment_end: the due date is the enrolment's end date "
                    "(timeend); none: enrol without an end date"),
        th.Property("auth", th.StringType, default="manual",
                    description="Moodle auth plugin of created users (manual, oauth2, saml2, ...)"),
        th.Property("send_login_email", th.BooleanType, default=True,
                    description="auth=manual: Moodle generates a password and e-mails it "
                    "(createpassword)"),
        th.Property("student_role_id", th.IntegerType, default=5,
                    description="Role given by the enrolments (5 = student in a default Moodle)"),
        th.Property("worker_id_property", th.StringType, default="worker_id",
                    description="Record property holding the HRIS worker id (Moodle idnumber)"),
        th.Property("batch_size", th.IntegerType, default=100,
                    description="Records per batch of Moodle calls"),
        th.Property("as_of", th.DateType,
                    description="The day the run acts as of (terminations, due dates); "
                    "default today (UTC)"),
        th.Property("dry_run", th.BooleanType, default=False,
                    description="Audit what would be written (planned-*); write nothing"),
        th.Property("audit_log_path", th.StringType,
                    description="Audit log (JSON lines); default $HRSYNC_AUDIT_LOG"),
        th.Property("request_timeout", th.NumberType, default=60,
                    description="Seconds to wait for Moodle to answer one web-service call "
                                "(connect and read)"),
        *HTTP_SETTINGS,
    ).to_dict()  # fmt: skip

    @cached_property
    def client(self) -> MoodleClient:
        client = MoodleClient(self.config)
        info = client.site_info()  # a bad token fails here, before any record is read
        offered = {f.get("name") for f in info.get("functions") or []}
        missing = [f for f in REQUIRED_FUNCTIONS if f not in offered]
        if offered and missing:
            raise ConfigError(
                f"the token's external service lacks {', '.join(missing)}: add them in Moodle "
                "(Site administration > Server > Web services > External services > Functions)"
            )
        return client

    @cached_property
    def rules(self) -> Rules:
        rules = load_rules(self.config.get("rules_path"))
        courses = self.client.courses(rules.course_ids)
        unknown = [c for c in rules.course_ids if c not in courses]
        if unknown:
            names = ", ".join(f"{c} (rule {rules.rule_for(c)})" for c in unknown)
            raise ConfigError.at(f"Moodle has no course {names}", file=rules.path, key="courses")
        return rules

    @cached_property
    def memory(self) -> StateStore:
        return StateStore(self.config.get("state_path"))

    @cached_property
    def today(self) -> dt.date:
        value = self.config.get("as_of")
        if value:
            return dt.date.fromisoformat(str(value)[:10])
        return dt.datetime.now(dt.UTC).date()

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.config.get("audit_log_path"))

    @cached_property
    def letters(self) -> TargetDeadLetters:
        """Undeliverable records ($HRSYNC_DLQ_PATH, else .hrsync/deadletters.sqlite)."""
        return TargetDeadLetters(self.name)


#: the target-moodle console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetMoodle, "target-moodle")


if __name__ == "__main__":
    main()
