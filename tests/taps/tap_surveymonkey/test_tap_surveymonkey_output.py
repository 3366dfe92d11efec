"""tap-surveymonkey's Singer output (output.py): the same bytes as singer-sdk's, in order."""

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
from singer_sdk.singerlib import RecordMessage, StateMessage
from singer_sdk.singerlib.encoding import SimpleSingerWriter
from singer_sdk.singerlib.json import serialize_json

from sandbox.server import Sandbox
from tap_surveymonkey.output import OrjsonRecordWriter, record_line
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


#: the values orjson writes (all others go through singer-sdk's serializer)
FAST = {0, 5, 6, 7, 9, 10, 11, 12, 16, 23, 24}


@pytest.mark.parametrize("index", range(len(UGLY)), ids=lambda i: repr(UGLY[i]))
def test_a_record_line_is_singer_sdks_or_none(index: int) -> None:
    msg = message(UGLY[index])
    want = serialize_json(msg.to_dict()) + "\n"
    line = record_line(msg)
    assert line is None or line.decode() == want
    assert (line is not None) == (index in FAST)


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
