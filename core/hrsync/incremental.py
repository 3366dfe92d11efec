"""Incremental windows every hrsync tap shares: each run reads ``[low, high)`` fixed at its start.

Most HR APIs list in id order, not by change time, so a bookmark (the largest stamp seen) is only
safe if nothing below it can change while the run pages. Each run therefore reads a half-open
window fixed when it starts (per state partition):

- ``low``: the bookmark (exclusive: the run that set it saw everything at or below it), else
  ``start_date`` (inclusive), else open;
- ``high``: the run's start (exclusive): anything changed while the run pages is stamped at or
  after it and comes with the next run - never lost to a page already read. A stream whose API
  has no upper bound sets ``window_upper_bound = False``.

Records outside the window are dropped by :meth:`IncrementalWindows.in_window` (singer-sdk does
not: its bookmark filter is inclusive and it keeps records past the run start). A stream whose
runs must return everything they see (a read-back that is compared with another system: a
record missing from it would read as a missing account) sets ``emit_after_window_end = True``:
records stamped at or after ``high`` are emitted too, but never advance the bookmark, so the
next run reads them again (an idempotent upsert on the same key) and nothing below the
bookmark can be missed. The stream puts
the window into its requests where the vendor documents filters (``Window.low`` /
``Window.high``, ``Window.low_inclusive``). Residual risk: a vendor clock running behind ours
by more than a page's latency.
"""

from __future__ import annotations

import time
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from singer_sdk.streams import Stream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

__all__ = [
    "DateTimeWindows",
    "EpochMillisWindows",
    "IncrementalWindows",
    "Window",
    "epoch_ms",
    "parse_datetime",
]

S = t.TypeVar("S", datetime, int)


def parse_datetime(value: str) -> datetime:
    """An ISO 8601 date-time (``2024-12-15T03:55:00.000Z``, ``...+02:00``) as an aware UTC
    datetime; one without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def epoch_ms(value: datetime | str) -> int:
    """An ISO 8601 date-time (or a datetime) as epoch milliseconds."""
    when = parse_datetime(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class Window(t.Generic[S]):
    """One run's window of change stamps: ``[low, high)``, or ``(bookmark, high)``.

    ``high`` is None for a stream without an upper bound.
    """

    low: S | None
    high: S | None
    bookmark: S | None

    @property
    def low_inclusive(self) -> bool:
        """``start_date`` is inclusive (``gte``); a bookmark is not (``gt``)."""
        return self.bookmark is None

    def admits(self, stamp: S) -> bool:
        """False for a record the run that set the bookmark emitted, one before ``start_date``
        and one that belongs to the next run's window."""
        if self.bookmark is not None and stamp <= self.bookmark:
            return False
        if self.low is not None and stamp < self.low:
            return False
        return self.high is None or stamp < self.high


def _partition(context: Context | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (context or {}).items()))


class IncrementalWindows(Stream, t.Generic[S]):
    """Mix in before the stream's base class (``class X(DateTimeWindows, HRRESTStream[...])``).

    The window of a state partition is computed at its first use and kept for the run. Use a
    concrete one: :class:`DateTimeWindows` or :class:`EpochMillisWindows`.
    """

    #: False: the API has no upper bound and the stream keeps what arrives after the run start
    window_upper_bound: t.ClassVar[bool] = True
    #: True: records stamped at or after the run start are emitted, without moving the bookmark
    emit_after_window_end: t.ClassVar[bool] = False

    def to_stamp(self, value: t.Any) -> S:
        """A stamp from the state, ``start_date`` or a record."""
        raise NotImplementedError

    def window_now(self) -> S:
        """The run's start, as the vendor's stamps can express it."""
        raise NotImplementedError

    def on_new_window(self, context: Context | None, window: Window[S]) -> None:
        """Called when a partition's window is fixed (a hook for per-partition set-up)."""

    def window(self, context: Context | None) -> Window[S]:
        """This run's window for the state partition of ``context``, fixed at its first use."""
        windows: dict[t.Any, Window[S]] | None = self.__dict__.get("_hrsync_windows")
        if windows is None:
            windows = self.__dict__["_hrsync_windows"] = {}
        key = _partition(context) if context else ()
        if key not in windows:
            # the state's own value: singer-sdk's starting value falls back to start_date,
            # which is inclusive where a bookmark is not
            value = self.get_context_state(context).get("replication_key_value")
            bookmark = self.to_stamp(value) if value not in (None, "") else None
            low = bookmark
            if low is None and self.config.get("start_date"):
                low = self.to_stamp(str(self.config["start_date"]))
            high = self.window_now() if self.window_upper_bound else None
            windows[key] = Window(low, high, bookmark)
            self.on_new_window(context, windows[key])
        return windows[key]

    def in_window(self, row: dict[str, t.Any], context: Context | None) -> bool:
        """Whether ``row`` belongs to this run (rows without a stamp always do)."""
        key = self.replication_key
        if not key:
            return True
        stamp = row.get(key)
        if stamp is None or stamp == "":
            return True
        window = self.window(context)
        if self.emit_after_window_end:
            window = Window(window.low, None, window.bookmark)
        return window.admits(self.to_stamp(stamp))

    def after_window_end(self, row: t.Mapping[str, t.Any], context: Context | None) -> bool:
        """Whether ``row`` is stamped at or after this run's start (the next run's window)."""
        key = self.replication_key
        stamp = row.get(key) if key else None
        high = self.window(context).high
        return stamp not in (None, "") and high is not None and self.to_stamp(stamp) >= high

    def _increment_stream_state(
        self, latest_record: t.Any, *, context: Context | None = None
    ) -> None:
        if self.emit_after_window_end and self.after_window_end(latest_record, context):
            return  # emitted now, read again next run: the bookmark stays below the run start
        super()._increment_stream_state(latest_record, context=context)


class DateTimeWindows(IncrementalWindows[datetime]):
    """Windows of ISO 8601 stamps; the run start is cut to ``window_precision`` (what the
    vendor's filter can express: a bound it would round down could miss a change)."""

    window_precision: t.ClassVar[timedelta] = timedelta(milliseconds=1)

    def to_stamp(self, value: t.Any) -> datetime:
        return value if isinstance(value, datetime) else parse_datetime(str(value))

    def window_now(self) -> datetime:
        now = datetime.now(UTC)
        step = self.window_precision // timedelta(microseconds=1)
        micros = now.microsecond - now.microsecond % step if step < 1_000_000 else 0
        return now.replace(microsecond=micros)


class EpochMillisWindows(IncrementalWindows[int]):
    """Windows of epoch-millisecond stamps (``start_date`` is ISO 8601)."""

    def to_stamp(self, value: t.Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else epoch_ms(text)

    def window_now(self) -> int:
        return int(time.time() * 1000)
