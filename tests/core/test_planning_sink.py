"""hrsync.identity.PlanningSink's timestamp parsing: singer-sdk's own, given only the date-like
properties of the schema when the record has no field the schema lacks; the records must come
out exactly as singer-sdk's full pass (less its ValueError) leaves them."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum
from singer_sdk.sinks import RecordSink
from singer_sdk.target_base import Target

from hrsync.identity import PlanningSink

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "employee_id": {"type": ["string"]},
        "name": {"type": ["string", "null"]},
        "hire_date": {"type": ["string", "null"], "format": "date"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "shift_start": {"type": "string", "format": "time"},
        "ended": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "positions": {"type": ["array", "null"], "items": {"type": "object"}},
    },
}

RECORDS: list[dict[str, Any]] = [
    {"employee_id": "1", "name": "Zoë", "hire_date": "2021-03-01", "ended": None},
    {"employee_id": "2", "hire_date": "2021-02-30", "updated_at": "2024-05-01T09:30:00Z"},
    {"employee_id": "3", "updated_at": "yesterday", "hire_date": "2020-01-06"},
    {"employee_id": "4", "shift_start": "09:30:00", "ended": "2024-06-30", "positions": []},
    {"employee_id": "5", "hire_date": "", "ended": "30/06/2024", "shift_start": "25:00"},
    {"employee_id": "6", "hire_date": None, "updated_at": None, "name": None},
    {"employee_id": "7", "hire_date": "2021-03-01", "nickname": "Z"},  # not in the schema
    {"employee_id": "8", "nickname": None, "updated_at": "2024-05-01"},
    {"employee_id": "9", "hire_date": "2021-03-01T10:00:00+02:00", "ended": "9999-12-31"},
]


class _Sink(PlanningSink):
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Not used."""


class _Target(Target):
    name = "target-planning-test"
    config_jsonschema: dict[str, Any] = {"type": "object", "properties": {}}
    default_sink_class = _Sink


def _sdk(sink: _Sink, record: dict[str, Any], treatment: Any) -> None:
    """What PlanningSink did before: singer-sdk's whole pass, stopped by its ValueError."""
    try:
        RecordSink._parse_timestamps_in_record(sink, record, SCHEMA, treatment)
    except ValueError:
        return


@pytest.mark.parametrize("treatment", list(DatetimeErrorTreatmentEnum))
def test_records_come_out_as_singer_sdks_full_pass_leaves_them(
    treatment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    target = _Target(config={}, validate_config=False)
    ours, theirs = _Sink(target, "s", SCHEMA, ["employee_id"]), _Sink(target, "s", SCHEMA, None)
    for record in RECORDS:
        mine, reference = copy.deepcopy(record), copy.deepcopy(record)
        ours._parse_timestamps_in_record(mine, SCHEMA, treatment)
        _sdk(theirs, reference, treatment)
        assert mine == reference, record
        assert [type(v) for v in mine.values()] == [type(v) for v in reference.values()]
    # the field the schema lacks is still named once, as singer-sdk does
    with caplog.at_level(logging.WARNING):
        ours._parse_timestamps_in_record({"employee_id": "x", "badge": "7"}, SCHEMA, treatment)
    assert "No schema for record field 'badge'" in caplog.text
