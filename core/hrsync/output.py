"""Every hrsync tap's Singer output: the same bytes as singer-sdk's, for less work.

A tap moving tens of thousands of employees spends most of its time in singer-sdk's
per-record costs: its simplejson encoder, one flush (one write to the pipe) per message, and a
walk over every property for deselected ones. Here (used by :class:`hrsync.taps.HRTap` and
:class:`hrsync.http.HRRESTStream`, so every tap has it):

- :class:`OrjsonRecordWriter` encodes RECORD messages with orjson when the output is certainly
  byte-identical to singer-sdk's ``serialize_json`` (simplejson, ``ensure_ascii``, compact
  separators, ``datetime.isoformat``): plain JSON values only, floats only where orjson and
  ``repr`` agree; text beyond ASCII (accents, emoji, DEL) is escaped afterwards as simplejson
  escapes it (``\\u00e9``, surrogate pairs). Anything else (big ints, Decimals, datetimes
  inside a record, exotic floats) takes singer-sdk's own path. RECORD lines
  are written in 64 KiB chunks instead of one flushed write each; every other message
  (SCHEMA, STATE, ...) is written and flushed as before, after the records ahead of it.
- :class:`SelectedRecordMessages` skips the deselected-property walk when the stream's
  selection mask selects everything (then the walk removes nothing), and a generator per
  record; and conforms records with :func:`conform_record`, singer-sdk's type conformance
  planned once per schema: a text, integer, boolean or null value of a property that is not
  boolean-only is left as it is without a call per value (what singer-sdk's walk does to it
  too), and every other value goes through singer-sdk's own code.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
import sys
import typing as t
import weakref

import orjson
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._typing import (
    _conform_record_data_types,
    _is_exclusive_boolean_type,
    _warn_unmapped_properties,
    is_object_type,
    is_uniform_list,
)
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding import SimpleSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib.encoding.simple import Message
    from singer_sdk.streams import Stream

#: floats whose orjson text equals ``repr`` (outside it orjson writes ``1e-7`` for ``1e-07``)
_FLOAT_LOW, _FLOAT_HIGH = 1e-4, 1e16


_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: t.Any) -> bool:
    """Whether orjson writes ``value`` exactly as singer-sdk's simplejson call would (a
    non-string key makes orjson raise: :func:`record_line` then falls back)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return value == 0 or _FLOAT_LOW <= abs(value) < _FLOAT_HIGH  # NaN, inf: False
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for item in value:  # noqa: SIM110 - a loop, not all(...): runs for every field
        if type(item) not in _SCALARS and not _plain(item):
            return False
    return True


#: what simplejson's ``ensure_ascii`` escapes besides the escapes orjson also writes
_BEYOND_ASCII = re.compile("[^\\x00-\\x7e]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as simplejson writes it
    return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"


def record_line(message: RecordMessage) -> bytes | None:
    """The message's line (with its newline) if orjson can write it byte-identically, else
    None. ``time_extracted`` is an aware UTC datetime (singer-sdk makes it so): orjson writes
    it as ``isoformat`` does."""
    extracted = message.time_extracted
    if not _plain(message.record) or (
        extracted is not None and type(extracted) is not datetime.datetime
    ):
        return None
    try:
        line = orjson.dumps(message.to_dict(), option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits
        return None
    if not line.isascii() or b"\x7f" in line:  # simplejson escapes these: \u00e9, \u007f
        # (only inside strings: JSON has no other place for them)
        line = _BEYOND_ASCII.sub(_escape, line.decode()).encode()
    return line


class OrjsonRecordWriter(SimpleSingerWriter):
    """singer-sdk's writer with RECORD lines from orjson, written in 64 KiB chunks.

    singer-sdk writes and flushes each message: one write to the pipe per record (stdout is
    unbuffered under ``PYTHONUNBUFFERED``). Here RECORD lines collect in a buffer that is
    written out when it is full, before any other message (so a STATE never reaches the
    target ahead of the records it covers: singer-sdk ends every sync with one) and, should a
    sync end by an error, when the writer goes or the process exits.
    """

    CHUNK = 1 << 16

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        # the stdout the pending lines were written under: a writer that goes with lines still
        # pending (a sync ended by an error) writes them there, not into whatever stdout is set
        # when it is collected (another in-process run's)
        self._stdout: list[t.Any] = [None]
        weakref.finalize(self, _write_out, self._pending, self._stdout)

    def write_message(self, message: Message) -> None:
        if type(message) is RecordMessage:
            line = record_line(message)
            if line is not None:
                if not self._pending:
                    self._stdout[0] = sys.stdout
                self._pending += line
                if len(self._pending) >= self.CHUNK:
                    self.flush()
                return
        self.flush()
        super().write_message(message)  # writes through sys.stdout and flushes it

    def flush(self) -> None:
        """Write the buffered RECORD lines to stdout."""
        _write_out(self._pending, self._stdout)


def _write_out(pending: bytearray, where: list[t.Any] | None = None) -> None:
    """Write ``pending`` (whole lines) to the stdout they were written under (``where[0]``,
    else ``sys.stdout``), and empty it."""
    if not pending:
        return
    data = bytes(pending)
    pending.clear()
    stdout = (where[0] if where else None) or sys.stdout
    out = getattr(stdout, "buffer", None)
    if out is None:  # a text-only stdout (singer-sdk's test runner)
        stdout.write(data.decode())
        return
    stdout.flush()  # (empty: every message through it is flushed)
    view = memoryview(data)
    while view:  # an unbuffered stdout is a raw file: a write may be partial
        view = view[out.write(view) or 0 :]
    out.flush()


#: a property's plan: the value is kept as it is when its type is one of these
_KEPT = frozenset({str, int, bool, type(None)})
_BOOLEAN, _OTHER = "boolean", "other"


class ConformPlan(dict[str, str]):
    """Per top-level property its kind (see :func:`conform_plan`), and ``deep``: the plan of
    the whole schema for values that are lists, objects or floats (:func:`_deep_value`)."""

    deep: _ObjectPlan | None = None
    #: (keys, value types) of a record -> the keys whose values are not simply kept
    memo: dict[tuple[tuple[str, ...], tuple[type, ...]], tuple[str, ...]] | None = None


class _ObjectPlan(t.NamedTuple):
    """An object schema's plan: its properties', and whether it takes other properties."""

    props: dict[str, _ValuePlan]
    extra: bool


class _ValuePlan(t.NamedTuple):
    """What singer-sdk's RECURSIVE conformance does to a value of one property schema."""

    boolean: bool  #: boolean-only: a text, integer or boolean becomes ``value != 0``
    obj: _ObjectPlan | None  #: an object value is conformed against these properties
    items: _ValuePlan | None  #: a list value is conformed item by item (a uniform list)


def _plan_object(schema: dict[str, t.Any]) -> _ObjectPlan:
    props = schema["properties"]
    return _ObjectPlan(
        props={name: _plan_value(prop) for name, prop in props.items() if isinstance(prop, dict)},
        extra=bool(schema.get("additionalProperties")),
    )


def _plan_value(schema: dict[str, t.Any]) -> _ValuePlan:
    """singer-sdk's own tests of the schema (``is_object_type``, ``is_uniform_list``,
    ``_is_exclusive_boolean_type``), made once; a property whose schema they cannot read gets
    no object / items plan, and its lists and objects take singer-sdk's code; one whose
    ``type`` they cannot read raises (the enclosing object then has no plan at all)."""
    boolean = bool(_is_exclusive_boolean_type(schema))
    obj = items = None
    with contextlib.suppress(Exception):
        if is_object_type(schema) and "properties" in schema:
            obj = _plan_object(schema)
    with contextlib.suppress(Exception):
        if is_uniform_list(schema):
            item = schema["items"]
            items = _ValuePlan(
                boolean=bool(_is_exclusive_boolean_type(item)),
                obj=_plan_object(item) if is_object_type(item) and "properties" in item else None,
                items=None,
            )
    return _ValuePlan(boolean, obj, items)


#: a value the plan does not cover: singer-sdk's code conforms it
_FALLBACK: t.Any = object()


def _deep_value(value: t.Any, plan: _ValuePlan) -> t.Any:
    """``value`` conformed as singer-sdk's RECURSIVE ``_conform_record_data_types`` does (new
    lists and objects, unmapped properties dropped), or :data:`_FALLBACK` where that code
    would do anything but keep, drop or ``!= 0`` a value (a date, bytes, an unmapped
    property it would report, a list of lists, a schema it reads otherwise)."""
    kind = type(value)
    if kind in _KEPT:
        return value if value is None or not plan.boolean else value != 0
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        return _FALLBACK if plan.obj is None else _deep_object(value, plan.obj)
    if kind is list and plan.items is not None:
        items = plan.items
        out = []
        for item in value:
            kind = type(item)
            if kind in _KEPT:
                out.append(item if item is None or not items.boolean else item != 0)
                continue
            if kind is dict and items.obj is not None:
                done = _deep_object(item, items.obj)
            elif kind is float:
                done = item if math.isfinite(item) else None
            else:
                return _FALLBACK
            if done is _FALLBACK:
                return _FALLBACK
            out.append(done)
        return out
    return _FALLBACK


def _work(plan: dict[str, str], record: dict[str, t.Any], extra: bool) -> tuple[str, ...]:
    """The keys of ``record`` whose values conformance does not simply keep, in order
    (remembered per record shape: keys and value types)."""
    shape = (tuple(record), tuple(map(type, record.values())))
    memo = getattr(plan, "memo", None)
    work = memo.get(shape) if memo is not None else None
    if work is None:
        work = tuple(
            name
            for name, kind in zip(*shape, strict=True)
            if not (
                (name not in plan and extra)
                or (plan.get(name) is _OTHER and kind in _KEPT)
                or (plan.get(name) is _BOOLEAN and kind is type(None))
            )
        )
        if memo is not None and len(memo) < _MEMO_LIMIT:
            memo[shape] = work
    return work


#: record shapes remembered per schema
_MEMO_LIMIT = 4096


def _root_only_value(value: t.Any, plan: _ValuePlan) -> t.Any:
    """``value`` as singer-sdk's ROOT_ONLY conformance leaves it, or :data:`_FALLBACK`."""
    kind = type(value)
    if (kind is list and plan.items is not None) or (kind is dict and plan.obj is not None):
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    return _FALLBACK


def _deep_object(obj: dict[str, t.Any], plan: _ObjectPlan) -> t.Any:
    out: dict[str, t.Any] = {}
    props = plan.props
    for name, value in obj.items():
        prop = props.get(name)
        if prop is None:
            if not plan.extra:
                return _FALLBACK  # singer-sdk reports its path
            out[name] = value
            continue
        done = _deep_value(value, prop)
        if done is _FALLBACK:
            return _FALLBACK
        out[name] = done
    return out


def conform_plan(schema: dict[str, t.Any]) -> ConformPlan:
    """Per top-level property: ``boolean`` for a boolean-only schema (singer-sdk turns values
    into ``value != 0``), else ``other`` (a text, integer, boolean or null value is kept); and
    the plan of nested values (:attr:`ConformPlan.deep`)."""
    plan = ConformPlan()
    plan.memo = {}
    for name, prop in schema.get("properties", {}).items():
        boolean = isinstance(prop, dict) and _is_exclusive_boolean_type(prop)
        plan[name] = _BOOLEAN if boolean else _OTHER
    with contextlib.suppress(Exception):
        plan.deep = _plan_object(schema)
    return plan


def conform_record(
    stream_name: str,
    record: dict[str, t.Any],
    schema: dict[str, t.Any],
    plan: dict[str, str],
    level: TypeConformanceLevel,
    logger: t.Any,
) -> dict[str, t.Any]:
    """singer-sdk's ``conform_record_data_types`` (same output, same once-per-stream warning
    about properties the schema does not have), without its per-value calls for plain values,
    for lists and objects of plain values its plan covers (:func:`_deep_value`) and, at
    level ROOT_ONLY, for lists and objects it keeps as they are; anything else (dates, bytes,
    unmapped nested properties...) is conformed by singer-sdk's code."""
    unmapped: list[str] = []
    extra = bool(schema.get("additionalProperties"))
    deep: _ObjectPlan | None = getattr(plan, "deep", None)
    recursive = level is TypeConformanceLevel.RECURSIVE
    if not recursive and level is not TypeConformanceLevel.ROOT_ONLY:
        deep = None
    out: dict[str, t.Any] = dict(record)  # every value kept, in order; then the others:
    for name in _work(plan, record, extra):
        value = record[name]
        kind = plan.get(name)
        if kind is None:  # not in the schema (and no additionalProperties)
            del out[name]
            unmapped.append(name)
        elif type(value) in _KEPT:  # a boolean-only property's text, integer or boolean
            out[name] = value != 0
        else:
            prop = deep.props.get(name) if deep is not None else None
            if prop is None:
                done = _FALLBACK
            elif recursive:
                done = _deep_value(value, prop)
            else:  # ROOT_ONLY: a uniform list, or an object of its schema, is kept as it is
                done = _root_only_value(value, prop)
            if done is _FALLBACK:
                done, nested = _conform_record_data_types({name: value}, schema, level, None)
                out[name] = done[name]
                unmapped.extend(nested)
            else:
                out[name] = done
    if unmapped:
        _warn_unmapped_properties(stream_name, tuple(unmapped), logger)
    return out


class SelectedRecordMessages:
    """Mix in before the singer-sdk stream class: singer-sdk 0.54's
    ``Stream._write_record_message`` (with its ``_generate_record_messages`` inlined) minus the
    deselected-property walk when nothing is deselected (every mask entry True: then every
    lookup is True and the walk is a no-op), and minus the conforming call at level NONE
    (which returns the record as it is).

    Also: no child context per record when the stream has no child streams (singer-sdk's
    default is a copy of each record, then a loop over no children)."""

    _mask_checked: t.Any = None
    _all_selected: bool = False
    _plan_for: t.Any = None
    _plan: ConformPlan | None = None

    def _write_record_message(self, record: dict) -> None:
        stream = t.cast("Stream", self)
        mask = stream.mask
        if mask is not self._mask_checked:
            self._mask_checked, self._all_selected = mask, all(mask.values())
        if not self._all_selected:
            pop_deselected_record_properties(record, stream.schema, mask)
        if stream.TYPE_CONFORMANCE_LEVEL is not TypeConformanceLevel.NONE:  # NONE: as is
            schema = stream.effective_schema
            plan = self._plan
            if plan is None or schema is not self._plan_for:
                self._plan_for, self._plan = schema, (plan := conform_plan(schema))
            record = conform_record(
                stream.name,
                record,
                schema,
                plan,
                stream.TYPE_CONFORMANCE_LEVEL,
                stream.logger,
            )
        for stream_map in stream.stream_maps:
            mapped_record = stream_map.transform(record)
            if mapped_record is not None:
                stream._tap.write_message(
                    RecordMessage(
                        stream=stream_map.stream_alias,
                        record=mapped_record,
                        version=stream._stream_version,
                        time_extracted=utc_now(),
                    )
                )
        stream.state_manager.is_flushed = False

    def generate_child_contexts(
        self, record: Record, context: Context | None
    ) -> Iterable[Context | None]:
        stream = t.cast("Stream", self)
        if stream.child_streams:
            yield from super().generate_child_contexts(record, context)  # type: ignore[misc]
