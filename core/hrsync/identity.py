"""The joiner / mover / leaver rule every IAM target applies to an identity record.

One definition, so SCIM, LDAP and any later directory agree on who has an account today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.sinks import RecordSink

from hrsync.errors import RecordError
from hrsync.validation import CompiledValidation

_TRUE = frozenset({"true", "1", "yes", "y", "on"})


def parse_flag(value: Any) -> bool:
    """A boolean as HR systems send it: true, "True", "yes", 1; anything else is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def parse_date(value: Any, *, stream: str, key: str, name: str) -> dt.date | None:
    """Accept ``date``, ``datetime`` or a ``YYYY-MM-DD[...]`` string; reject anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise RecordError(stream, key, name, f"{value!r} is not a date (expected YYYY-MM-DD)")


def should_be_active(record: Mapping[str, Any], today: dt.date, *, stream: str, key: str) -> bool:
    """Should this person's account be active today?

    - ``deleted: true`` -> inactive;
    - a termination on or before today that no later hire follows -> inactive; a termination
      in the future keeps the account active until that date;
    - a rehire (``hire_date`` after the termination) -> active;
    - otherwise ``employment_status`` decides ("Inactive" -> inactive).
    """
    if parse_flag(record.get("deleted")):
        return False
    hired = parse_date(record.get("hire_date"), stream=stream, key=key, name="hire_date")
    ended = parse_date(
        record.get("termination_date"), stream=stream, key=key, name="termination_date"
    )
    if ended is not None and (hired is None or hired <= ended):
        return ended > today
    status = str(record.get("employment_status") or "Active").strip().lower()
    return status != "inactive"


class PlanningSink(CompiledValidation, RecordSink):
    """Base sink of the IAM targets: records are collected, never written one by one.

    The mass-deprovisioning guard needs the whole batch planned before any write, so the
    target writes once at the end of the input. A record that fails schema validation still
    reaches ``process_record``, and a malformed date is kept as it came (the SDK would raise,
    or null it — and a leaver whose termination date vanished would stay active): the
    target's record builder then names the record, the field and the reason.
    """

    fail_on_record_validation_exception = False

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """A record without its key properties is left to the target's record builder, which
        files it as a dead letter naming the field (singer-sdk's MissingKeyPropertiesError
        would stop the run, and every record after it)."""

    def _parse_timestamps_in_record(
        self, record: dict[str, Any], schema: dict[str, Any], treatment: Any
    ) -> None:
        try:
            super()._parse_timestamps_in_record(
                record, self._datelike_only(record, schema), treatment
            )
        except ValueError:
            return

    def _datelike_only(self, record: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        """The schema singer-sdk's timestamp parsing needs for this record: when every field
        of the record is in the schema, only its date, date-time and time properties (the
        others it passes over anyway, after working out each one's type for every record);
        a record with a field the schema lacks gets the whole schema (and its warning)."""
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not record.keys() <= properties.keys():
            return schema
        cached = getattr(self, "_datelike_cache", None)
        if cached is None or cached[0] is not properties:
            reduced: dict[str, Any] | None = None
            if all(isinstance(v, dict) for v in properties.values()):  # else: as it is
                datelike = {k: v for k, v in properties.items() if get_datelike_property_type(v)}
                reduced = {"properties": datelike, "additionalProperties": True}
            cached = (properties, reduced)
            self._datelike_cache = cached
        return schema if cached[1] is None else cached[1]


def settle_failures(
    letters: Any,
    failures: Iterable[Any],
    batch: Iterable[tuple[str, str]],
    error_class: Callable[[Any], str],
    logger: Any,
    plugin: str,
) -> list[Any]:
    """End of an IAM target's run: failures with a record become dead letters (one per person
    and run: the first failure says why); every other person of the batch is now what the HRIS
    says, so its waiting letter (if any) is resolved. Returns the failures that have no record
    to keep (a full feed's missing accounts).

    ``letters`` is the target's :class:`hrsync.deadletter.TargetDeadLetters`; a failure has
    ``stream``, ``employee_id``, ``record`` and ``message()``; ``batch`` yields
    ``(stream, employee_id)`` of everyone planned.
    """
    lost: list[Any] = []
    failed: set[tuple[str, str]] = set()
    for failure in failures:
        if (failure.stream, failure.employee_id) in failed:
            continue
        failed.add((failure.stream, failure.employee_id))
        if not failure.record:
            lost.append(failure)
            continue
        letters.dead(
            stream=failure.stream,
            record_key=failure.employee_id,
            record=failure.record,
            error=failure.message(),
            error_class=error_class(failure),
        )
    for stream, employee_id in batch:
        if (stream, employee_id) not in failed:
            letters.delivered(stream, [employee_id])
    letters.flush()
    if letters.added:
        logger.warning(
            "%s: %d employee(s) could not be provisioned, kept as dead letters in %s "
            "(hrsync dlq list; hrsync dlq replay once the cause is fixed)",
            plugin,
            len(letters.added),
            letters.store.path,
        )
    return lost
