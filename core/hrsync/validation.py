"""Record validation compiled once per schema, deciding exactly as singer-sdk does.

singer-sdk 0.54 validates each record by interpreting the stream's JSON schema with the
``jsonschema`` library (``Draft202012Validator``): about 40 Python calls per property per
record, most of a target's time. :class:`CompiledValidator` compiles the schema once with
``fastjsonschema`` into one Python function and keeps singer-sdk's validator as the reference:

- a record the compiled function accepts is accepted;
- a record it refuses (or that makes it raise) is validated again by the reference, whose
  answer and error are the ones used: the same ``InvalidRecord`` with the same message and the
  same ``jsonschema.ValidationError`` as its cause, so dead letters read exactly as before.

So the compiled function can only ever add speed, never a refusal of its own. The one way the
two could differ is the compiled function accepting a record the reference refuses; that is
ruled out by compiling only schemas made of keywords whose meaning is the same in both (the
keywords hrsync's streams use: ``type``, ``properties``, ``required``, ``additionalProperties``,
``items``, string-valued ``enum``/``const``, ``format``, ``pattern``, ``anyOf``/``oneOf``/
``allOf``/``not``, lengths), with annotations (``description``, ``x-pii``...) dropped; a schema
with any other keyword (``$ref``, ``multipleOf``, ``uniqueItems``, a numeric ``enum``...) keeps
the reference alone. ``pattern`` is compiled as the reference reads it (``re.search`` on the
pattern as written: fastjsonschema's own would turn ``$`` into ``\\Z``).
tests/core/test_validation.py runs both over the fuzz corpus and hypothesis-drawn records
against every stream schema of the repository.

Formats: singer-sdk checks none by default (``validate_field_string_format = False``); a
sink that turns it on gets the reference's own format checker compiled in (each ``format``
calls ``FormatChecker.conforms``), so ``date-time`` and the others are judged the same way.

Shapes: when every property's schema says no more than a type (``{"type": ["string",
"null"]}``, a ``format`` when formats are not checked, an ``anyOf`` of such), a record's
verdict depends only on its field names and the Python types of its values. For such a schema
:meth:`CompiledValidator.accepts` remembers the shapes (names, value types) of records the
compiled function accepted and accepts a record of a known shape without running it again
(values of type str, int, bool, None, dict or list only: a float's or a Decimal's verdict can
depend on its value). A refusal is never remembered: it always goes to the reference.

Sinks use it through singer-sdk's validator hook: :class:`CompiledValidation` is a mixin whose
``get_validator`` returns a :class:`CompiledValidator`.
"""

from __future__ import annotations

import re
import typing as t

import fastjsonschema
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

__all__ = ["CompiledValidation", "CompiledValidator", "compile_schema"]

#: keywords compiled as they are (same meaning in fastjsonschema's draft 7 and 2020-12)
_SAME = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "format",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "pattern",
    }
)
_PATTERN = "hrsync-pattern:"  # a pattern travels to fastjsonschema as a format of this name
#: annotations: no effect on validation in 2020-12, dropped before compiling
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "readOnly",
        "writeOnly",
        "deprecated",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)
_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


class _Unsupported(Exception):
    """A schema the compiled function might judge differently: keep the reference alone."""


def _plain(value: t.Any) -> bool:
    """An enum/const member compared the same way by both (``True == 1`` in Python only)."""
    return value is None or isinstance(value, str)


def _clean(schema: t.Any, formats: set[str]) -> t.Any:
    """The schema without annotations; raises _Unsupported for any keyword outside _SAME."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise _Unsupported(f"schema {type(schema).__name__}")
    out: dict[str, t.Any] = {}
    extra: list[dict[str, t.Any]] = []
    for key, value in schema.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key not in _SAME:
            raise _Unsupported(key)
        if key == "type":
            kinds = [value] if isinstance(value, str) else value
            if not isinstance(kinds, list) or not kinds or not set(kinds) <= _TYPES:
                raise _Unsupported("type")
        elif key == "properties":
            if not isinstance(value, dict):
                raise _Unsupported(key)
            value = {name: _clean(sub, formats) for name, sub in value.items()}
        elif key in ("additionalProperties", "items", "not"):
            value = _clean(value, formats)  # the list form of items is not compiled
        elif key in ("anyOf", "oneOf", "allOf"):
            if not isinstance(value, list) or not value:
                raise _Unsupported(key)
            value = [_clean(sub, formats) for sub in value]
        elif key == "enum":
            if not isinstance(value, list) or not all(_plain(v) for v in value):
                raise _Unsupported(key)
        elif key == "const":
            if not _plain(value):
                raise _Unsupported(key)
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _Unsupported(key)
        elif key == "format":
            if not isinstance(value, str):
                raise _Unsupported(key)
            formats.add(value)
        elif key == "pattern":
            if not isinstance(value, str):
                raise _Unsupported(key)
            try:
                re.compile(value)
            except re.error as exc:
                raise _Unsupported(key) from exc
            formats.add(_PATTERN + value)
            extra.append({"format": _PATTERN + value})
            continue
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _Unsupported(key)  # lengths and counts: non-negative integers
        out[key] = value
    if extra:
        out["allOf"] = [*out.get("allOf", []), *extra]
    return out


def _searcher(regex: re.Pattern[str]) -> t.Callable[[str], bool]:
    def search(value: str) -> bool:
        return regex.search(value) is not None

    return search


def _conforms(checker: t.Any, name: str) -> t.Callable[[str], bool]:
    def conforms(value: str) -> bool:
        return bool(checker.conforms(value, name))

    return conforms


def _anything(_value: str) -> bool:
    return True


def compile_schema(
    schema: dict[str, t.Any], reference: JSONSchemaValidator, *, validate_formats: bool
) -> t.Callable[[t.Any], t.Any] | None:
    """The schema compiled to one function, or None where only the reference can judge."""
    formats: set[str] = set()
    try:
        cleaned = _clean(schema, formats)
    except _Unsupported:
        return None
    checker = reference.validator.format_checker
    custom: dict[str, t.Callable[[t.Any], bool]] = {}
    for name in formats:  # fastjsonschema calls these for strings only, as the reference does
        if name.startswith(_PATTERN):
            custom[name] = _searcher(re.compile(name.removeprefix(_PATTERN)))
        elif validate_formats and checker is not None:
            # each format the way the reference checks it (unknown formats pass, as there)
            custom[name] = _conforms(checker, name)
        else:
            custom[name] = _anything  # the reference checks no format
    try:
        return fastjsonschema.compile(
            cleaned,
            formats=custom,
            use_default=False,  # never fill in defaults: validation must not change a record
            use_formats=True,
            detailed_exceptions=False,
        )
    except Exception:
        return None


_SHAPE_TYPES = frozenset({str, int, bool, type(None), dict, list})
_SHAPES_MAX = 4096  # shapes remembered per schema (a stream has a handful)
_TOP_KEYS = frozenset({"type", "properties", "required", "additionalProperties"})


def _type_only(schema: t.Any, *, formats: bool) -> bool:
    """Whether a (cleaned) schema's verdict on a value depends on the value's type alone."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        if key == "type":
            continue
        if key == "format" and not formats and not str(value).startswith(_PATTERN):
            continue  # no format is checked: the format says nothing
        if key in ("anyOf", "oneOf") and all(_type_only(v, formats=formats) for v in value):
            continue
        return False
    return True


def _shape_decides(schema: t.Any, *, formats: bool) -> bool:
    """Whether field names and value types decide every verdict of this (cleaned) schema."""
    if not isinstance(schema, dict) or not schema.keys() <= _TOP_KEYS:
        return False
    if schema.get("type", "object") not in ("object", ["object"]):
        return False
    props = schema.get("properties", {})
    return all(_type_only(p, formats=formats) for p in props.values()) and _type_only(
        schema.get("additionalProperties", True), formats=formats
    )


class CompiledValidator(BaseJSONSchemaValidator):
    """singer-sdk's validator, with a compiled fast path for the records it accepts."""

    def __init__(
        self,
        schema: dict[str, t.Any],
        *,
        validate_formats: bool = False,
    ) -> None:
        super().__init__(schema)
        # raises singer-sdk's InvalidJSONSchema for a bad schema, exactly as before
        self.reference = JSONSchemaValidator(schema, validate_formats=validate_formats)
        self.compiled = compile_schema(schema, self.reference, validate_formats=validate_formats)
        formats: set[str] = set()
        try:
            cleaned = _clean(schema, formats)
        except _Unsupported:
            cleaned = None
        #: shapes (field names, value types) of accepted records; None: shapes do not decide
        self.shapes: set[tuple[tuple[str, ...], tuple[type, ...]]] | None = (
            set()
            if self.compiled is not None and _shape_decides(cleaned, formats=validate_formats)
            else None
        )

    def accepts(self, record: dict[str, t.Any]) -> bool:
        """True if the record is valid for sure (the compiled function, or a known shape,
        accepts it); False: only the reference (``validate``) can say."""
        compiled = self.compiled
        if compiled is None:
            return False
        shapes = self.shapes
        if shapes is not None:
            shape = (tuple(record), tuple(map(type, record.values())))
            if shape in shapes:
                return True
        try:
            compiled(record)
        except Exception:
            return False
        if shapes is not None and len(shapes) < _SHAPES_MAX and _SHAPE_TYPES.issuperset(shape[1]):
            shapes.add(shape)
        return True

    def validate(self, record: dict[str, t.Any]) -> None:
        """Raise singer-sdk's ``InvalidRecord`` (cause: the ``jsonschema`` error) if invalid."""
        if not self.accepts(record):
            self.reference.validate(record)


class CompiledValidation:
    """Sink mixin: singer-sdk's validator hook returns a :class:`CompiledValidator`.

    Put it before the singer-sdk sink class: ``class MySink(CompiledValidation, RecordSink)``.
    """

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        sink: t.Any = self  # a singer-sdk Sink
        if sink.validate_schema:
            return CompiledValidator(
                sink.schema, validate_formats=sink.validate_field_string_format
            )
        return None
