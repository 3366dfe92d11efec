"""Tap-side pieces every hrsync tap shares."""

from __future__ import annotations

import typing as t

from hrsync.output import OrjsonRecordWriter

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding import GenericSingerWriter
    from singer_sdk.streams import Stream


class DeclaredStreamOrder:
    """Sync streams in the order of ``stream_types`` (singer-sdk sorts them by name).

    Reference data first, dependants last: a mapper that joins offers to candidates and jobs
    (map-hr lookups) sees the referenced records before the records that point at them.
    Mix in before ``Tap``: ``class TapX(DeclaredStreamOrder, Tap)``.
    """

    stream_types: t.ClassVar[t.Sequence[type[Stream]]] = ()

    @property
    def streams(self) -> dict[str, Stream]:
        streams: dict[str, Stream] = super().streams  # type: ignore[misc]
        if tuple(streams) == self.__dict__.get("_hrsync_ordered"):
            return streams  # read per record by some streams: sort once, not every time
        rank = {cls: i for i, cls in enumerate(self.stream_types)}
        ordered = sorted(streams, key=lambda name: rank.get(type(streams[name]), len(rank)))
        if list(streams) != ordered:
            reordered = {name: streams[name] for name in ordered}
            streams.clear()
            streams.update(reordered)
        self.__dict__["_hrsync_ordered"] = tuple(streams)
        return streams


class HRTap(DeclaredStreamOrder):
    """What every hrsync tap shares: streams in declared order, and RECORD lines written by
    :class:`hrsync.output.OrjsonRecordWriter` (singer-sdk's bytes, several times faster).
    Mix in before ``Tap``: ``class TapX(HRTap, Tap)``."""

    message_writer_class: type[GenericSingerWriter] = OrjsonRecordWriter
