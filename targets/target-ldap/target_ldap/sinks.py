"""The sink: each record becomes a desired directory entry; the target plans and writes at
the end of the input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hrsync.errors import RecordError
from hrsync.identity import PlanningSink
from target_ldap.people import build_person
from target_ldap.provision import Failure

if TYPE_CHECKING:
    from target_ldap.target import TargetLDAP


class LDAPUserSink(PlanningSink):
    """Hands every identity record to the target's provisioner.

    Nothing is written here: the mass-deprovisioning guard needs the whole batch planned
    first, so the writes happen once, at the end of the input (TargetLDAP.process_endofpipe).
    """

    def __init__(
        self,
        target: TargetLDAP,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.ldap_target = target
        target.letters.stream(stream_name, schema, key_properties or ())

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
