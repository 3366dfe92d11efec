"""Singer output at answers-stream rates: the same bytes as singer-sdk's, for less work.

The answers stream emits a row per answer (five or so per response), so singer-sdk's per-record
costs dominate a run: its simplejson encoder, one flush (one write to the pipe) per message,
and a walk over every property for deselected ones. Here:

- :class:`OrjsonRecordWriter` encodes RECORD messages with orjson when the output is certainly
  byte-identical to singer-sdk's ``serialize_json`` (simplejson, ``ensure_ascii``, compact
  separators, ``datetime.isoformat``): plain JSON values only, floats only where orjson and
  ``repr`` agree, ASCII-only output without DEL. Anything else (non-ASCII text, big ints,
  Decimals, datetimes inside a record, exotic floats) takes singer-sdk's own path. RECORD lines
  are written in 64 KiB chunks instead of one flushed write each; every other message
  (SCHEMA, STATE, ...) is written and flushed as before, after the records ahead of it.
- :class:`SelectedRecordMessages` skips the deselected-property walk when the stream's
  selection mask selects everything (then the walk removes nothing), and a generator per
  record.
"""

from __future__ import annotations

import datetime
import sys
import typing as t
import weakref

import orjson
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._typing import conform_record_data_types
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
        return None
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
        weakref.finalize(self, _write_out, self._pending)

    def write_message(self, message: Message) -> None:
        if type(message) is RecordMessage:
            line = record_line(message)
            if line is not None:
                self._pending += line
                if len(self._pending) >= self.CHUNK:
                    self.flush()
                return
        self.flush()
        super().write_message(message)  # writes through sys.stdout and flushes it

    def flush(self) -> None:
        """Write the buffered RECORD lines to stdout."""
        _write_out(self._pending)


def _write_out(pending: bytearray) -> None:
    """Write ``pending`` (whole lines) to stdout, and empty it."""
    if not pending:
        return
    data = bytes(pending)
    pending.clear()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stdout (singer-sdk's test runner)
        sys.stdout.write(data.decode())
        return
    sys.stdout.flush()  # (empty: every message through it is flushed)
    view = memoryview(data)
    while view:  # an unbuffered stdout is a raw file: a write may be partial
        view = view[out.write(view) or 0 :]
    out.flush()


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

    def _write_record_message(self, record: dict) -> None:
        stream = t.cast("Stream", self)
        mask = stream.mask
        if mask is not self._mask_checked:
            self._mask_checked, self._all_selected = mask, all(mask.values())
        if not self._all_selected:
            pop_deselected_record_properties(record, stream.schema, mask)
        if stream.TYPE_CONFORMANCE_LEVEL is not TypeConformanceLevel.NONE:  # NONE: as is
            record = conform_record_data_types(
                stream_name=stream.name,
                record=record,
                schema=stream.effective_schema,
                level=stream.TYPE_CONFORMANCE_LEVEL,
                logger=stream.logger,
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
