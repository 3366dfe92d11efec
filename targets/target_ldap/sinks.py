"""The sink: each record becomes a desired directory entry; the target plans and writes at
the end of the input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from singer_sdk.sinks import RecordSink

from hrsync.errors import RecordError
from target_ldap.people import build_person
from target_ldap.provision import Failure

if TYPE_CHECKING:
    from target_ldap.target import TargetLDAP


class LDAPUserSink(RecordSink):
    """Hands every identity record to the target's provisioner.

    Nothing is written here: the mass-deprovisioning guard needs the whole batch planned
    first, so the writes happen once, at the end of the input (TargetLDAP.process_endofpipe).
    """

    # a record that fails schema validation is logged and still reaches process_record,
    # where a specific error sends it to the retry file instead of stopping the run
    fail_on_record_validation_exception = False

    def __init__(
        self,
        target: TargetLDAP,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.ldap_target = target

    def _parse_timestamps_in_record(
        self, record: dict[str, Any], schema: dict[str, Any], treatment: Any
    ) -> None:
        """A malformed date must neither stop the run (the SDK raises) nor become null (a
        leaver whose termination date vanished would stay enabled): keep it as it came and
        let build_person name the record, the field and the reason."""
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError:
            return

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        provisioner = self.ldap_target.provisioner
        settings = provisioner.settings
        today = dt.datetime.now(ZoneInfo(settings.timezone)).date()
        try:
            person = build_person(self.stream_name, record, today=today, settings=settings)
        except RecordError as error:
            provisioner.reject(
                Failure(
                    error.stream,
                    str(error.record_key),
                    "plan",
                    error.field or "record",
                    error.reason,
                    record,
                )
            )
            self.logger.error("%s", error)
            return
        provisioner.add(person)
