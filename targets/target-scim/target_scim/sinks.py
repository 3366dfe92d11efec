"""The sink: each record becomes a desired user; the target plans and writes at the end."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hrsync.errors import RecordError
from hrsync.identity import PlanningSink
from target_scim.provision import Failure
from target_scim.users import build_desired

if TYPE_CHECKING:
    from target_scim.target import TargetSCIM


class SCIMUserSink(PlanningSink):
    """Hands every identity record to the target's provisioner.

    Nothing is written here: the mass-deprovisioning guard needs the whole batch planned
    first, so the writes happen once, at the end of the input (TargetSCIM.process_endofpipe).
    """

    def __init__(
        self,
        target: TargetSCIM,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.scim_target = target
        target.letters.stream(stream_name, schema, key_properties or ())

    def _today(self) -> dt.date:
        return dt.datetime.now(ZoneInfo(self.config.get("timezone") or "UTC")).date()

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        provisioner = self.scim_target.provisioner
        try:
            user = build_desired(
                self.stream_name,
                record,
                today=self._today(),
                user_name_attribute=self.config.get("user_name_attribute") or "user_name",
                organization=self.config.get("organization"),
            )
        except RecordError as error:
            provisioner.reject(
                Failure(
                    error.stream,
                    str(error.record_key),
                    "plan",
                    error.field or "(record)",
                    error.reason,
                    record,
                )
            )
            return
        provisioner.add(user)
