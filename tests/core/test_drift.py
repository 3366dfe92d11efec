"""hrsync.drift: what a vendor sends beyond the schema is reported once per field and left out."""

from __future__ import annotations

import copy
import logging
import typing as t
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hrsync import drift
from hrsync.drift import SchemaDrift

SCHEMA: dict[str, t.Any] = {
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "address": {"type": ["null", "object"], "properties": {"city": {"type": "string"}}},
        "emails": {
            "type": "array",
            "items": {"type": "object", "properties": {"value": {"type": "string"}}},
        },
        "custom": {"type": "object", "additionalProperties": True},
    }
}


def drift_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Schema drift" in r.getMessage()]


def check(drift: SchemaDrift, *rows: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    for row in rows:
        drift.check(row)
    return list(rows)


def reporter(**kwargs: t.Any) -> SchemaDrift:
    return SchemaDrift(
        stream="people", vendor="Acme", schema=SCHEMA, logger=logging.getLogger("t"), **kwargs
    )


def test_an_unknown_field_is_reported_once_and_removed(caplog: pytest.LogCaptureFixture) -> None:
    rows = check(reporter(), {"id": 1, "pronouns": "she"}, {"id": 2, "pronouns": "he"})
    assert rows == [{"id": 1}, {"id": 2}]
    assert drift_messages(caplog) == [
        "Schema drift in stream 'people': Acme sent field 'pronouns', which the schema lacks; "
        "it is left out of the output until schemas/people.json declares it"
    ]


def test_nested_fields_are_checked_where_the_schema_describes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = {
        "id": 1,
        "address": {"city": "Oslo", "zip": "0150"},
        "emails": [{"value": "a@x", "verified": True}, {"value": "b@x", "verified": False}],
        "custom": {"anything": 1},
    }
    (out,) = check(reporter(), row)
    assert out == {
        "id": 1,
        "address": {"city": "Oslo"},
        "emails": [{"value": "a@x"}, {"value": "b@x"}],
        "custom": {"anything": 1},
    }
    assert [m.split("field ")[1].split(",")[0] for m in drift_messages(caplog)] == [
        "'address.zip'",
        "'emails.verified'",
    ]


def test_top_level_names_only(caplog: pytest.LogCaptureFixture) -> None:
    row = {"id": "1", "address": {"city": "Oslo", "zip": "0150"}, "extra": 1}
    (out,) = check(reporter(nested=False, declared_in="the {stream} mapping"), row)
    assert out == {"id": "1", "address": {"city": "Oslo", "zip": "0150"}}
    assert drift_messages(caplog) == [
        "Schema drift in stream 'people': Acme sent field 'extra', which the schema lacks; "
        "it is left out of the output until the people mapping declares it"
    ]


def test_a_value_of_another_type_is_reported_once_and_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = check(
        reporter(),
        {"id": True, "name": 42},
        {"id": Decimal(3), "name": 43},
        {"id": "4", "name": None},
    )
    assert rows[0] == {"id": True, "name": 42}
    assert drift_messages(caplog) == [
        "Schema drift in stream 'people': field 'id' arrived as bool, schema allows integer",
        "Schema drift in stream 'people': field 'name' arrived as int, schema allows null/string",
    ]


# --- the shape memo: what a check finds and does is the same as checking every field --------

_NESTED_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "ok": {"type": ["boolean", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "phones": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {"value": {"type": "string"}, "kind": {"type": ["string", "null"]}},
            },
        },
        "address": {
            "type": ["object", "null"],
            "properties": {
                "city": {"type": "string"},
                "geo": {"type": "object", "properties": {"lat": {"type": "number"}}},
            },
        },
        "custom": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "properties": {}, "additionalProperties": True},
    },
}
_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=2) | st.floats(-9, 9)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(st.sampled_from(["value", "kind", "city", "geo", "lat", "x"]), inner)
    ),
    max_leaves=5,
)
_RECORDS = st.lists(
    st.dictionaries(
        st.sampled_from(
            ["id", "name", "ok", "tags", "phones", "address", "custom", "free", "extra"]
        ),
        _VALUES,
        max_size=8,
    ),
    max_size=5,
)


@settings(max_examples=100, deadline=None)
@given(records=_RECORDS)
@example(
    records=[
        {"id": 1, "extra": 2, "address": {"city": "x", "x": 1}, "phones": [{"value": "1", "x": 2}]},
        {"id": "2", "ok": 1, "custom": {"a": 1}, "free": {"x": [1]}, "tags": ["a", 1]},
    ]
)
def test_remembered_shapes_give_the_same_records_and_warnings(records: list[dict]) -> None:
    """Records checked with the memo of object shapes (hrsync.drift._Node.memo) end up as
    checking every field of every record leaves them, with the same warnings in order."""

    def checked(limit: int) -> tuple[list[dict], list[str]]:
        logger = logging.getLogger(f"test-drift-memo-{limit}")
        said: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                said.append(record.getMessage())

        handler = Collect()
        logger.addHandler(handler)
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(drift, "_MEMO_LIMIT", limit)
                check = SchemaDrift(stream="s", vendor="V", schema=_NESTED_SCHEMA, logger=logger)
                rows = copy.deepcopy(records + records)  # the second time: from the memo
                for row in rows:
                    check.check(row)
        finally:
            logger.removeHandler(handler)
        return rows, said

    assert checked(4096) == checked(0)
