"""The bulk record path of hrsync's targets: a RECORD goes straight to its sink.

singer-sdk's ``Target._process_record_message`` looks up, for every record, the stream's
maps, the sink, the sink's context and its metadata settings, copies the record and runs the
map's transform; for a stream that no ``stream_maps`` / flattening setting changes all of that
gives the same answer every time. :class:`DirectRecords` (mix it in before ``Target``) works it
out once per SCHEMA message and then hands each record of such a stream to :func:`take`, which
runs the sink's steps of singer-sdk's path in singer-sdk's order: metadata columns removed,
``_validate_and_parse`` (validation, date parsing), ``preprocess_record``,
``_singer_validate_message``, the read tally, ``process_record``, the record counter,
``_after_process_record``; then the drain when the sink is full and the max-age drain check.

A sink with a ``take_many(records)`` method (:class:`ChunkedSink`) gets a stream's
consecutive records in chunks instead: the same steps for each record in the same order, in
one loop of the sink's own. A chunk holds consecutive RECORD messages of one stream only and
never more than the sink has room for before it is full, so every drain happens after the
same record as one record at a time; any other message (SCHEMA, STATE, ACTIVATE_VERSION,
BATCH, a record of another stream), the end of the input and a failing line
(:class:`hrsync.singer_input.SingerObjectReader`'s ``before_failing``) first hand over the
chunk waiting. Only the max-age drain check runs once per chunk rather than once per record
(it looks at the clock, not at the records).

Anything else (a mapped, aliased, filtered or flattened stream, a sink that adds ``_sdc_``
metadata columns, a record that is not an object, an unknown stream) takes singer-sdk's own
path, so its errors and behaviour are unchanged.
"""

from __future__ import annotations

import typing as t

from singer_sdk.mapper import SameRecordTransform

if t.TYPE_CHECKING:
    from singer_sdk.sinks import Sink

__all__ = ["CHUNK", "ChunkedSink", "DirectRecords", "take"]

#: most records handed to a ChunkedSink at once
CHUNK = 1000
_NONE = (None, False)


@t.runtime_checkable
class ChunkedSink(t.Protocol):
    """A sink that takes consecutive records of its stream in one call."""

    def take_many(self, records: list[dict[str, t.Any]]) -> None:
        """:func:`take` for each record, in order."""


def take(sink: Sink, record: dict[str, t.Any]) -> None:
    """One record through ``sink``: singer-sdk's steps for an unmapped stream, in its order."""
    context = sink._get_context(record)
    sink._remove_sdc_metadata_from_record(record)
    sink._validate_and_parse(record)
    record = sink.preprocess_record(record, context)
    sink._singer_validate_message(record)
    sink.tally_record_read()
    sink.process_record(record, context)
    sink.record_counter_metric.increment()
    sink._after_process_record(context)


class DirectRecords:
    """Target mixin: records of unmapped streams skip singer-sdk's per-record look-ups."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._chunk: list[dict[str, t.Any]] = []
        self._chunk_sink: t.Any = None
        self._chunk_room = 0
        reader = getattr(self, "message_reader", None)
        if reader is not None and hasattr(reader, "before_failing"):
            reader.before_failing = self.flush_chunk

    def _process_record_message(self, message_dict: dict) -> None:
        record = message_dict.get("record")
        direct = self.__dict__.get("_direct")
        sink, chunked = direct.get(message_dict.get("stream"), _NONE) if direct else _NONE
        if sink is None or type(record) is not dict:
            self.flush_chunk()
            super()._process_record_message(message_dict)  # type: ignore[misc]
            return
        if chunked:
            if self._chunk_sink is not sink:
                self.flush_chunk()
                self._chunk_sink = sink
                # never past the record that makes the sink full: the drain follows it
                self._chunk_room = max(1, min(CHUNK, sink.max_size - sink.current_size))
            chunk = self._chunk
            chunk.append(record.copy())  # copy.copy's answer for a dict
            if len(chunk) >= self._chunk_room:
                self.flush_chunk()
            return
        self.flush_chunk()
        take(sink, record.copy())
        self._after_records(sink)

    def flush_chunk(self) -> None:
        """Hand the records waiting for a chunked sink over to it (then drain it if full)."""
        sink = self._chunk_sink
        if sink is None:
            return
        records = self._chunk
        self._chunk, self._chunk_sink, self._chunk_room = [], None, 0
        if records:
            sink.take_many(records)
            self._after_records(sink)

    def _after_records(self, sink: Sink) -> None:
        target: t.Any = self  # a singer-sdk Target
        if sink.is_full:
            target.logger.info(
                "Target sink for '%s' is full. Current size is '%s'. Draining...",
                sink.stream_name,
                sink.current_size,
            )
            target.drain_one(sink)
        target._handle_max_record_age()

    def _process_schema_message(self, message_dict: dict) -> None:
        self.flush_chunk()
        super()._process_schema_message(message_dict)  # type: ignore[misc]
        direct = self.__dict__.setdefault("_direct", {})
        stream = message_dict["stream"]
        direct.pop(stream, None)
        target: t.Any = self  # a singer-sdk Target
        maps = target.mapper.stream_maps.get(stream) or []
        sink = target._sinks_active.get(stream)
        if (
            sink is not None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream
            and not maps[0].flattening_enabled
            and not sink.include_sdc_metadata_properties
        ):
            direct[stream] = (sink, isinstance(sink, ChunkedSink))

    def _process_state_message(self, message_dict: dict) -> None:
        self.flush_chunk()
        super()._process_state_message(message_dict)  # type: ignore[misc]

    def _process_activate_version_message(self, message_dict: dict) -> None:
        self.flush_chunk()
        super()._process_activate_version_message(message_dict)  # type: ignore[misc]

    def _process_batch_message(self, message_dict: dict) -> None:
        self.flush_chunk()
        super()._process_batch_message(message_dict)  # type: ignore[misc]
        self.flush_chunk()

    def process_endofpipe(self) -> None:
        self.flush_chunk()
        super().process_endofpipe()  # type: ignore[misc]
