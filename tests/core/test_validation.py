"""hrsync.validation.CompiledValidator against singer-sdk's own validator (the reference).

A differential test: every stream schema of the repository (the taps' schemas, the canonical
schemas, map-hr's output schema of every profile stream, the IAM test schemas and the fuzz
suite's schemas) and, for each, records drawn by hypothesis (valid ones and ones broken the
way the fuzz suite breaks them: wrong types, huge strings, NUL bytes, odd unicode, nesting, a
missing or extra field, Decimal and big numbers), plus the fuzz suite's own record cases
parsed as a target reads them. For every record both validators must reach the same decision
with the same message and the same ``jsonschema`` error, the compiled function alone must
agree with the reference, and no record may be changed by validation.
"""

from __future__ import annotations

import copy
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.singerlib.json import deserialize_json
from singer_sdk.sinks.core import JSONSchemaValidator

from hrsync.validation import CompiledValidator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from fuzz_kit import draw  # noqa: E402

EXAMPLES = 15  # hypothesis records per schema (about 70 schemas)

NASTY: list[Any] = [
    None,
    123,
    -(2**70),
    1.5,
    1.0,
    Decimal("2.50"),
    Decimal("3"),
    True,
    False,
    [1, 2],
    [],
    {"a": 1},
    {},
    "not-a-date",
    "",
    "2026-03-01T10:00:00+00:00",
    "2026-03-01T10:00:00Z",
    "2026-03-01",
    "2026-13-45",
    "10:00:00",
    "a\x00b\x00",
    "Ñ" * 5000,
    "line\n",
    [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]],
]


def repository_schemas() -> dict[str, dict[str, Any]]:
    """Every stream schema a target of the repository receives, by a readable name."""
    out: dict[str, dict[str, Any]] = {}
    patterns = [
        "taps/*/*/schemas/*.json",
        "core/hrsync/schemas/canonical/*.json",
        "tests/targets/*/*.schema.json",
    ]
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            out[str(path.relative_to(ROOT))] = json.loads(path.read_text(encoding="utf-8"))
    from hrsync.pseudonym import Pseudonymizer
    from map_hr.plan import compile_profile
    from map_hr.profile import load_profile

    pseudo = Pseudonymizer("differential-test-key-0123456789abcdef")
    for path in sorted((ROOT / "mappers/map-hr/map_hr/profiles").glob("*.yml")):
        for plan in compile_profile(load_profile(path.stem), pseudo):
            out[f"map-hr {path.stem}:{plan.output_stream}"] = plan.output_schema(None, {})
    fuzz = __import__("test_fuzz_singer")
    out["fuzz IAM_SCHEMA"] = fuzz.IAM_SCHEMA
    out["fuzz HIRE_SCHEMA"] = fuzz.HIRE_SCHEMA
    bench = ROOT / "benchmarks"
    sys.path.insert(0, str(bench))
    out["bench target-warehouse"] = __import__("bench_target_warehouse").SCHEMA
    return out


SCHEMAS = repository_schemas()


def _value(prop: Any) -> st.SearchStrategy[Any]:
    """A value that fits ``prop`` most of the time, or one of the nasty ones."""
    if not isinstance(prop, dict):
        return st.sampled_from(NASTY)
    kinds = prop.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    fits: list[st.SearchStrategy[Any]] = []
    for kind in kinds:
        if kind == "string":
            if prop.get("enum"):
                members = [v for v in prop["enum"] if isinstance(v, str)]
                fits.append(st.sampled_from(members or [""]))
            elif prop.get("format") == "date-time":
                fits.append(st.datetimes().map(lambda d: d.isoformat() + "Z"))
            elif prop.get("format") == "date":
                fits.append(st.dates().map(str))
            else:
                fits.append(st.text(max_size=20))
        elif kind == "integer":
            fits.append(st.integers())
        elif kind == "number":
            fits.append(st.one_of(st.integers(), st.decimals(allow_nan=False), st.floats()))
        elif kind == "boolean":
            fits.append(st.booleans())
        elif kind == "null":
            fits.append(st.none())
        elif kind == "array":
            fits.append(st.lists(_value(prop.get("items") or {}), max_size=3))
        elif kind == "object":
            fits.append(_record(prop))
    return st.one_of(*fits, st.sampled_from(NASTY)) if fits else st.sampled_from(NASTY)


def _record(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties") or {}
    if not props:
        return st.dictionaries(st.text(max_size=5), st.sampled_from(NASTY), max_size=3)
    return st.fixed_dictionaries(
        {}, optional={name: st.deferred(lambda p=p: _value(p)) for name, p in props.items()}
    ).flatmap(
        # sometimes a field nobody declared
        lambda rec: st.one_of(
            st.just(rec), st.sampled_from(NASTY).map(lambda v, r=rec: {**r, "undeclared": v})
        )
    )


def _outcome(validator: Any, record: dict[str, Any]) -> tuple[Any, ...] | None:
    try:
        validator.validate(record)
    except InvalidRecord as exc:
        cause = exc.__cause__
        assert cause is not None
        return (str(exc), cause.message, list(cause.absolute_path), cause.validator)  # type: ignore[attr-defined]
    return None


def _compare(schema: dict[str, Any], records: list[dict[str, Any]], *, formats: bool) -> int:
    """Both validators over the records; returns how many the reference refused."""
    reference = JSONSchemaValidator(schema, validate_formats=formats)
    compiled = CompiledValidator(schema, validate_formats=formats)
    assert compiled.compiled is not None, "a repository schema falls back to the reference"
    refused = 0
    for record in records:
        before = copy.deepcopy(record)
        want = _outcome(reference, copy.deepcopy(record))
        assert _outcome(compiled, record) == want, record
        assert record == before, "validation changed the record"
        try:
            compiled.compiled(copy.deepcopy(record))
            fast = True
        except Exception:
            fast = False
        assert fast == (want is None), (record, want)
        # twice: the second time a remembered shape may decide (never a refusal)
        for _ in range(2):
            assert compiled.accepts(copy.deepcopy(record)) == (want is None), (record, want)
        refused += want is not None
    return refused


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_same_decisions_as_singer_sdk(name: str) -> None:
    schema = SCHEMAS[name]
    records = draw(_record(schema), EXAMPLES)
    refused = _compare(schema, records, formats=False)
    # the corpus is worth something only if it has records of both kinds
    assert refused > 0, name


def test_formats_checked_the_same_way() -> None:
    """With format checking on, date-time / date / email... are judged by the same checker."""
    schema = {
        "type": "object",
        "properties": {
            "at": {"type": ["string", "null"], "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "mail": {"type": "string", "format": "email"},
            "odd": {"type": "string", "format": "no-such-format"},
        },
    }
    values = [v for v in NASTY if isinstance(v, str) or v is None] + ["x@y.example", "nobody"]
    records = [{"at": v} for v in values] + [{"day": v} for v in values]
    records += [{"mail": v} for v in values] + [{"odd": v} for v in values]
    assert _compare(schema, records, formats=True) > 0
    assert _compare(schema, records, formats=False) > 0


def test_fuzz_corpus() -> None:
    """The fuzz suite's record cases, read as a target reads them (Decimal numbers)."""
    fuzz = __import__("test_fuzz_singer")
    cases = [
        ("iam_users", fuzz.IAM_SCHEMA, ["employee_id"], fuzz.IAM_RECORD),
        ("bamboohr_new_hires", fuzz.HIRE_SCHEMA, ["ats_candidate_id"], fuzz.HIRE_RECORD),
    ]
    for stream, schema, keys, good in cases:
        records = []
        for _kind, lines, _field in draw(fuzz.record_cases(stream, schema, keys, good), 60):
            try:
                records.append(deserialize_json(lines[1])["record"])
            except (ValueError, RecursionError):
                continue  # the reader refuses the line before any validation
        assert _compare(schema, records, formats=False) > 0


def test_schemas_outside_the_compiled_keywords_keep_the_reference() -> None:
    """A keyword whose meaning could differ (``True == 1`` in a numeric enum) is left to the
    reference alone: same answers, nothing compiled."""
    schema = {"type": "object", "properties": {"n": {"enum": [1, 2]}}}
    validator = CompiledValidator(schema)
    assert validator.compiled is None
    assert _outcome(validator, {"n": True}) == _outcome(JSONSchemaValidator(schema), {"n": True})


def test_pattern_is_read_as_the_reference_reads_it() -> None:
    """``re.search`` on the pattern as written: ``$`` also matches before a final newline."""
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": "^a$"}}}
    assert CompiledValidator(schema).compiled is not None
    records = [{"p": "a"}, {"p": "a\n"}, {"p": "ba"}, {"p": 1}, {"p": "a\n\n"}]
    assert _compare(schema, records, formats=False) == 3
