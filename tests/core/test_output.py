"""Every tap's Singer output (hrsync.output): the same bytes as singer-sdk's, in order.

The console-script and selection tests run tap-surveymonkey, whose answers stream emits the
most records; tests/taps/test_fast_output.py runs every other tap."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk.helpers._typing import _conform_record_data_types
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage, StateMessage
from singer_sdk.singerlib.encoding import SimpleSingerWriter
from singer_sdk.singerlib.json import serialize_json

from hrsync import output
from hrsync.output import OrjsonRecordWriter, conform_plan, record_line
from sandbox.server import Sandbox
from tap_surveymonkey.tap import TapSurveyMonkey

TAP = Path(sys.executable).parent / "tap-surveymonkey"

#: values where orjson and singer-sdk's simplejson call could differ, and plain ones
UGLY: list[Any] = [
    "plain",
    "Zoë O'Brien-Łukasiewicz",  # non-ASCII: \u escapes
    'tab\tnew\nline\x00nul\x1fus\x7fdel "quoted" back\\slash /slash',
    "emoji \U0001f600 (a surrogate pair)",
    "\u2028\u2029",
    0,
    -7,
    2**63 - 1,
    2**64 + 1,  # beyond orjson's ints
    True,
    None,
    0.5,
    -0.0,
    1e-5,  # repr 1e-05, orjson 0.00001
    1e-7,
    1e16,
    123456.789,
    float("nan"),
    float("inf"),
    Decimal("1.10"),
    datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    {"nested": {"list": [1, "é", None, {"x": 1e-9}]}},
    {1: "an int key"},
    [],
    {},
]


def message(value: Any, stream: str = "answers") -> RecordMessage:
    return RecordMessage(
        stream=stream,
        record={"id": "1", "value": value},
        version=1700000000000,
        time_extracted=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )


#: the values orjson writes (all others go through singer-sdk's serializer): non-ASCII text,
#: control characters and DEL included
FAST = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 16, 23, 24}


@pytest.mark.parametrize("index", range(len(UGLY)), ids=lambda i: repr(UGLY[i]))
def test_a_record_line_is_singer_sdks_or_none(index: int) -> None:
    msg = message(UGLY[index])
    want = serialize_json(msg.to_dict()) + "\n"
    line = record_line(msg)
    assert line is None or line.decode() == want
    assert (line is not None) == (index in FAST)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400)
@given(record=st.dictionaries(st.text(), JSON, max_size=6))
def test_any_record_is_written_as_singer_sdk_writes_it(record: dict[str, Any]) -> None:
    """Any text (accents, emoji, lone surrogates, controls), number or nesting: the fast line,
    when there is one, is exactly singer-sdk's."""
    msg = RecordMessage(stream="s", record=record, time_extracted=datetime(2026, 1, 2, tzinfo=UTC))
    line = record_line(msg)
    if line is not None:
        assert line.decode("ascii") == serialize_json(msg.to_dict()) + "\n"


class RawStdout(io.TextIOWrapper):
    """An unbuffered stdout (PYTHONUNBUFFERED): ``buffer`` is a raw file that takes at most
    ``chunk`` bytes per write."""

    def __init__(self, chunk: int) -> None:
        self.sink = io.BytesIO()
        super().__init__(self.sink, encoding="utf-8", write_through=True)
        self.chunk = chunk
        self.writes = 0

    @property
    def buffer(self) -> Any:
        outer = self

        class Raw:
            def write(self, data: memoryview) -> int:
                outer.writes += 1
                return outer.sink.write(bytes(data[: outer.chunk]))

            def flush(self) -> None:
                pass

        return Raw()


def sdk_bytes(messages: list[Any]) -> bytes:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        writer = SimpleSingerWriter()
        for m in messages:
            writer.write_message(m)
    return out.getvalue().encode()


@pytest.mark.parametrize("stdout", ["text", "raw"])
def test_the_writer_writes_singer_sdks_bytes_in_order(stdout: str) -> None:
    """RECORD lines (fast or not) and a STATE between them: same bytes, same order; the
    buffered records are out before the STATE, and partial raw writes lose nothing."""
    messages: list[Any] = [message(v) for v in UGLY]
    messages.insert(7, StateMessage(value={"bookmarks": {"answers": {"n": 7}}}))
    messages += [message("x" * 5000) for _ in range(30)]  # past the 64 KiB chunk
    target: Any = io.StringIO() if stdout == "text" else RawStdout(chunk=4093)
    writer = OrjsonRecordWriter()
    with contextlib.redirect_stdout(target):
        for i, m in enumerate(messages[:8]):
            writer.write_message(m)
            if i == 0:  # a fast record: buffered (the next, non-ASCII, goes out with it)
                assert not (target.getvalue() if stdout == "text" else target.sink.getvalue())
        written = target.getvalue().encode() if stdout == "text" else target.sink.getvalue()
        assert written == sdk_bytes(messages[:8])  # the STATE flushed the records before it
        for m in messages[8:]:
            writer.write_message(m)
        writer.flush()
    got = target.getvalue().encode() if stdout == "text" else target.sink.getvalue()
    assert got == sdk_bytes(messages)
    if stdout == "raw":
        assert target.writes > 40  # many partial writes, nothing lost


def records(lines: list[str]) -> list[tuple[str, Any]]:
    msgs = [json.loads(line) for line in lines]
    return [(m["stream"], m["record"]) for m in msgs if m["type"] == "RECORD"]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("surveymonkey",)) as sandbox:
        yield sandbox


def test_the_console_script_writes_singer_sdks_bytes(sb: Sandbox, tmp_path: Path) -> None:
    """The real stdout (a pipe, unbuffered): every line re-encodes to itself with singer-sdk's
    serializer, accents included, and no line is lost or split."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "access_token": sb.credentials["surveymonkey"]["access_token"],
                "api_url": f"{sb.url('surveymonkey')}/v3",
                "page_size": 7,
            }
        )
    )
    run = subprocess.run(
        [str(TAP), "--config", str(config)],
        capture_output=True,
        check=True,
        env={"PYTHONUNBUFFERED": "1", "PATH": str(TAP.parent)},
    )
    lines = run.stdout.decode("ascii").splitlines()
    assert len(run.stdout) > 2 * OrjsonRecordWriter.CHUNK
    for line in lines:
        assert serialize_json(json.loads(line)) == line
    # the same records as a run in this process (through singer-sdk's text path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TapSurveyMonkey(config=str(config), parse_env_config=False).sync_all()
    assert records(lines) == records(out.getvalue().splitlines())
    assert any("\\u00e9" in line for line in lines if '"stream":"answers"' in line)


def test_a_deselected_property_is_still_left_out(sb: Sandbox) -> None:
    """Selection still prunes records (the walk is skipped only when all is selected)."""
    tap = TapSurveyMonkey(
        config={
            "access_token": sb.credentials["surveymonkey"]["access_token"],
            "api_url": f"{sb.url('surveymonkey')}/v3",
        },
        parse_env_config=False,
    )
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] in (
                ["properties", "choice_text"],
                ["properties", "custom_variables"],
            ):
                meta["metadata"]["selected"] = False
    tap = TapSurveyMonkey(config=dict(tap.config), catalog=catalog, parse_env_config=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    msgs = [json.loads(line) for line in out.getvalue().splitlines()]
    answers = [m["record"] for m in msgs if m["type"] == "RECORD" and m["stream"] == "answers"]
    responses = [m["record"] for m in msgs if m.get("stream") == "responses" and "record" in m]
    assert answers and all("choice_text" not in a and "choice_weight" in a for a in answers)
    assert responses and all("custom_variables" not in r and "employee_id" in r for r in responses)


# --- type conformance, planned once per schema --------------------------------------------

PROPERTY_SCHEMAS = st.sampled_from(
    [
        {"type": "string"},
        {"type": ["string", "null"], "format": "date-time"},
        {"type": ["integer", "null"]},
        {"type": "boolean"},
        {"type": ["boolean", "null"]},
        {"type": ["number", "null"]},
        {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        {"type": ["array", "null"], "items": {"type": "string"}},
        {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "boolean"}}}},
        {"type": ["object", "null"], "properties": {"x": {"type": ["boolean", "null"]}}},
        {"type": "object"},
        {},
        # nested plans (hrsync.output._deep_value)
        {"type": ["array", "null"], "items": {"type": ["boolean", "null"]}},
        {"type": "array", "items": {"type": "object"}},
        {"type": "array", "items": {"type": ["number", "null"]}},
        {
            "type": ["array", "null"],
            "items": {
                "type": ["object", "null"],
                "properties": {
                    "a": {"type": ["string", "null"]},
                    "b": {"type": ["boolean", "null"]},
                    "x": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        {
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "boolean"}}},
                "x": {"type": ["number", "integer", "null"]},
            },
            "additionalProperties": True,
        },
        {"anyOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"type": "null"}]},
        {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"format": "x"}}},
        {"type": "object", "properties": {"a": {"type": [{"odd": 1}]}}},
    ]
)
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.decimals(allow_nan=False)
    | st.just(Decimal("NaN"))
    | st.datetimes()
    | st.dates()
    | st.binary(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abx"), inner),
    max_leaves=6,
)


@settings(max_examples=500)
@given(
    properties=st.dictionaries(st.sampled_from("pqrstu"), PROPERTY_SCHEMAS, max_size=5),
    record=st.dictionaries(st.sampled_from("pqrstuvw"), VALUES, max_size=7),
    additional=st.booleans(),
    level=st.sampled_from([TypeConformanceLevel.RECURSIVE, TypeConformanceLevel.ROOT_ONLY]),
)
def test_conformance_is_singer_sdks(
    properties: dict[str, Any],
    record: dict[str, Any],
    additional: bool,
    level: TypeConformanceLevel,
) -> None:
    """Same output record and the same unmapped properties (the warning's content) as
    singer-sdk's conform_record_data_types, for any schema and values."""
    schema = {"type": "object", "properties": properties, "additionalProperties": additional}
    plan = conform_plan(schema)
    warned: list[tuple[str, ...]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(output, "_warn_unmapped_properties", lambda _s, names, _l: warned.append(names))
        try:
            want, want_unmapped = _conform_record_data_types(dict(record), schema, level, None)
        except Exception as exc:  # e.g. a list under an empty schema: the same error
            with pytest.raises(type(exc)):
                output.conform_record("s", dict(record), schema, plan, level, None)
            return
        got = output.conform_record("s", dict(record), schema, plan, level, None)
        # the same shape again: from the plan's memo (hrsync.output._work)
        again = output.conform_record("s", dict(record), schema, plan, level, None)
    assert _same(got, want)
    assert _same(again, want)
    assert warned == ([tuple(want_unmapped)] * 2 if want_unmapped else [])


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (a Decimal NaN is not equal to itself)."""
    return repr(a) == repr(b)


def test_lines_pending_when_a_writer_goes_reach_the_stdout_they_were_written_under() -> None:
    """A sync that ends by an error leaves RECORD lines pending; they are written when the
    writer goes, to that sync's stdout, not into whatever stdout is set then (another
    in-process run's: it once put other tests' records into a tap test's output)."""
    first, second = io.StringIO(), io.StringIO()
    writer = OrjsonRecordWriter()
    with contextlib.redirect_stdout(first):
        writer.write_message(RecordMessage(stream="people", record={"id": 1}))
        writer.write_message(RecordMessage(stream="people", record={"id": 2}))
    assert first.getvalue() == ""  # still pending: no STATE came after them
    with contextlib.redirect_stdout(second):
        del writer  # the writer goes while another run's stdout is set
    assert second.getvalue() == ""
    lines = [json.loads(line) for line in first.getvalue().splitlines()]
    assert [m["record"]["id"] for m in lines] == [1, 2]
