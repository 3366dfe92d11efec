"""hrsync.singer_input.SingerObjectReader reads every line as singer-sdk's reader does.

Its fast path (orjson where no float is involved) must give the very same Python values
(Decimal numbers, big integers, NaN, lone surrogates included) and refuse the same lines: a
differential test against singer-sdk's ``deserialize_json`` over hypothesis-drawn JSON and the
fuzz suite's Singer lines.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

from hrsync.shapes import unencodable
from hrsync.singer_input import REFUSED, SingerObjectReader

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from fuzz_kit import draw  # noqa: E402

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 3, max_value=2**64 + 3),
    st.integers(min_value=-(2**63) - 3, max_value=-(2**63) + 3),
    st.floats(),  # NaN and infinities too: json.dumps writes them, singer-sdk reads them
    st.decimals(allow_nan=False, allow_infinity=False).map(float),
    st.text(),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
MESSAGES = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("RECORD"), "stream": st.text(max_size=5), "record": VALUES}
    ),
    VALUES,
)


def _typed(value: Any) -> Any:
    """The value with every type spelled out (1, 1.0, True and Decimal('1') differ)."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN equals nothing, itself included
        return ("nan",)
    return (type(value).__name__, value)


def _reference(line: str) -> Any:
    try:
        value = deserialize_json(line)
    except (ValueError, RecursionError):
        return "refused"
    return _typed(value) if isinstance(value, dict) else "refused"


def _fast(line: str) -> Any:
    try:
        message = SingerObjectReader().deserialize_json(line)
    except InvalidInputLine:
        return "refused"
    if message.get("type") == REFUSED:  # a record no UTF-8 encoder takes: the message read
        assert unencodable(message["message"]["record"]) is not None
        return _typed(message["message"])
    assert message.get("type") != "RECORD" or unencodable(message.get("record")) is None
    return _typed(message)


def test_same_values_and_refusals_as_singer_sdk() -> None:
    lines = [json.dumps(m, ensure_ascii=False) for m in draw(MESSAGES, 150)]
    lines += [json.dumps(m) for m in draw(MESSAGES, 50)]  # \\uXXXX escapes
    lines += [
        '{"a": 123456789012345678901234}',
        '{"a": 18446744073709551615, "b": -9223372036854775809}',
        '{"a": 1e400, "b": [1.0]}',
        '{"a": [[{"b": 2.5}]]}',
        '{"type": "RECORD", "stream": "s", "record": {"a": 1, "b": "x"}, "version": 1.5}',
        '{"type": "RECORD", "stream": "s", "record": {"a": 1, "b": 2.0}}',
        '{"type": "RECORD", "stream": "s", "record": {"a": 1}, "extra": {"c": 3.25}}',
        '{"type": "RECORD", "stream": "s", "record": {"a": 99999999999999999999}}',
        '{"a": 1, "a": 2}',
        '{"a": "\\ud800"}',
        "\ufeff{}",
        '{"a": NaN}',
        "[" * 2000 + "]" * 2000,
        '{"a": ' + "[" * 990 + "]" * 990 + "}",
        "not json",
        "",
    ]
    refused = 0
    for line in lines:
        want = _reference(line)
        assert _fast(line) == want, line[:200]
        refused += want == "refused"
    assert 0 < refused < len(lines)


def test_fuzz_lines() -> None:
    """The fuzz suite's Singer lines (stream and record cases) read the same way."""
    fuzz = __import__("test_fuzz_singer")
    schema, keys, good = fuzz.IAM_SCHEMA, ["employee_id"], fuzz.IAM_RECORD
    lines: list[str] = []
    for _kind, case_lines, _field in draw(fuzz.record_cases("iam_users", schema, keys, good), 40):
        lines += case_lines
    for _kind, case_lines in draw(fuzz.stream_cases("iam_users", schema, keys), 40):
        lines += case_lines
    for line in lines:
        assert _fast(line) == _reference(line), line[:200]
