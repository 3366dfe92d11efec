"""hrsync.incremental: each run reads [low, high) fixed at its start, for every tap.

A small real singer-sdk tap (records from a list, no HTTP) runs through the Singer protocol;
the taps' own sync tests check the same against the vendor fakes over HTTP.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta

import pytest
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from tests.taps.tapkit import final_state, records, sync

from hrsync.incremental import DateTimeWindows, EpochMillisWindows, Window, epoch_ms

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

NOW = datetime.now(UTC)
ROWS = [
    {"id": 1, "updated_at": "2024-01-01T00:00:00Z"},
    {"id": 2, "updated_at": "2024-02-01T00:00:00Z"},
    {"id": 3, "updated_at": "2024-03-01T00:00:00.000+00:00"},
    {"id": 4, "updated_at": None},  # no stamp: always the run's
]


class Items(DateTimeWindows, Stream):
    name = "items"
    schema = th.PropertiesList(
        th.Property("id", th.IntegerType), th.Property("updated_at", th.DateTimeType)
    ).to_dict()
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "updated_at"
    is_sorted = False

    def get_records(self, context: Context | None) -> Iterable[dict]:
        yield from (dict(row) for row in self._tap.rows)  # type: ignore[attr-defined]

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return row if self.in_window(row, context) else None


class ItemsTap(Tap):
    name = "tap-items"
    config_jsonschema = th.PropertiesList(th.Property("start_date", th.DateTimeType)).to_dict()

    def __init__(self, rows: list[dict[str, t.Any]], **kwargs: t.Any) -> None:
        self.rows = rows
        super().__init__(parse_env_config=False, **kwargs)

    def discover_streams(self) -> list[Stream]:
        return [Items(tap=self)]


def ids(rows: list[dict[str, t.Any]]) -> list[int]:
    return [r["id"] for r in rows]


def test_start_date_is_inclusive_and_the_run_start_exclusive() -> None:
    future = {"id": 5, "updated_at": (NOW + timedelta(hours=1)).isoformat()}
    tap = ItemsTap([*ROWS, future], config={"start_date": "2024-02-01T00:00:00Z"})
    assert ids(records(sync(tap), "items")) == [2, 3, 4]  # 5 belongs to a later run


def test_the_next_run_starts_after_the_bookmark() -> None:
    state = final_state(sync(ItemsTap(ROWS, config={})))
    bookmark = state["bookmarks"]["items"]["replication_key_value"]
    assert bookmark == ROWS[2]["updated_at"]
    changed = {"id": 2, "updated_at": (NOW - timedelta(seconds=5)).isoformat()}
    tap = ItemsTap([*ROWS, changed], config={}, state=state)
    # 1-3 were emitted by the run that set the bookmark (3 is at it: not again)
    assert ids(records(sync(tap), "items")) == [4, 2]


def test_the_window_is_fixed_per_partition_at_first_use() -> None:
    stream = t.cast(Items, ItemsTap(ROWS, config={}).streams["items"])
    first = stream.window(None)
    assert stream.window(None) is first
    assert first.low is None and first.bookmark is None and first.low_inclusive
    assert first.high is not None and first.high.microsecond % 1000 == 0  # milliseconds
    assert stream.window({"survey": "a"}) is not stream.window({"survey": "b"})


def test_window_admits() -> None:
    window = Window(low=10, high=20, bookmark=10)
    assert [s for s in range(8, 23) if window.admits(s)] == list(range(11, 20))
    assert not window.low_inclusive
    first_run = Window(low=10, high=None, bookmark=None)
    assert first_run.admits(10) and first_run.admits(10**9) and not first_run.admits(9)


def test_epoch_millisecond_stamps() -> None:
    class Ms(EpochMillisWindows, Items):
        pass

    stream = Ms(tap=ItemsTap(ROWS, config={}))
    assert stream.to_stamp(1704067200000) == 1704067200000
    assert stream.to_stamp("1704067200000") == 1704067200000
    assert stream.to_stamp("2024-01-01T00:00:00Z") == 1704067200000 == epoch_ms("2024-01-01")
    assert abs(stream.window_now() - epoch_ms(datetime.now(UTC))) < 60_000


@pytest.mark.parametrize(("precision", "step"), [(timedelta(seconds=1), 1_000_000),
                                                 (timedelta(milliseconds=1), 1000)])  # fmt: skip
def test_the_run_start_is_cut_to_what_the_vendor_filters_by(
    precision: timedelta, step: int
) -> None:
    class Cut(Items):
        window_precision = precision

    high = Cut(tap=ItemsTap(ROWS, config={})).window(None).high
    assert high is not None and high.microsecond % step == 0 and high.tzinfo is not None


def test_without_an_upper_bound_later_changes_stay() -> None:
    class Open(Items):
        window_upper_bound = False

    stream = Open(tap=ItemsTap(ROWS, config={}))
    assert stream.window(None).high is None
    assert stream.in_window({"id": 9, "updated_at": (NOW + timedelta(days=1)).isoformat()}, None)


def test_a_read_back_emits_changes_after_the_run_start_without_bookmarking_them() -> None:
    class ReadBack(Items):
        emit_after_window_end = True

    class ReadBackTap(ItemsTap):
        def discover_streams(self) -> list[Stream]:
            return [ReadBack(tap=self)]

    late = {"id": 5, "updated_at": (NOW + timedelta(hours=1)).isoformat()}
    first = sync(ReadBackTap([*ROWS, late], config={}))
    assert ids(records(first, "items")) == [1, 2, 3, 4, 5]  # nothing the run saw is left out
    state = final_state(first)
    assert state["bookmarks"]["items"]["replication_key_value"] == ROWS[2]["updated_at"]
    again = sync(ReadBackTap([*ROWS, late], config={}, state=state))
    assert ids(records(again, "items")) == [4, 5]  # 5 again: it was after the first run's start
