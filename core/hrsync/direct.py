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

Anything else (a mapped, aliased, filtered or flattened stream, a sink that adds ``_sdc_``
metadata columns, a record that is not an object, an unknown stream) takes singer-sdk's own
path, so its errors and behaviour are unchanged.
"""

from __future__ import annotations

import copy
import typing as t

from singer_sdk.mapper import SameRecordTransform

if t.TYPE_CHECKING:
    from singer_sdk.sinks import Sink

__all__ = ["DirectRecords", "take"]


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

    def _process_record_message(self, message_dict: dict) -> None:
        record = message_dict.get("record")
        direct = self.__dict__.get("_direct")
        sink = direct.get(message_dict.get("stream")) if direct else None
        if sink is None or type(record) is not dict:
            super()._process_record_message(message_dict)  # type: ignore[misc]
            return
        take(sink, copy.copy(record))
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
            direct[stream] = sink
