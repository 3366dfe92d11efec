"""tap-gusto reads the employee pages one page ahead of the records it emits
(tap_gusto.streams.read_ahead): same rows, same order, errors where they happened."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tap_gusto.streams import read_ahead


def test_every_row_in_order_then_the_error_where_reading_stopped() -> None:
    def pages() -> Iterator[dict]:
        yield from ({"n": n} for n in range(250))
        raise ValueError("page 4: 503 Service Unavailable")

    got: list[int] = []
    with pytest.raises(ValueError, match="page 4"):
        for row in read_ahead(pages(), 100):
            got.append(row["n"])
    assert got == list(range(250))


def test_a_reader_that_stops_early_stops_the_thread_and_closes_the_pages() -> None:
    closed = threading.Event()

    def pages() -> Iterator[dict]:
        try:
            n = 0
            while True:
                yield {"n": n}
                n += 1
        finally:
            closed.set()

    rows = read_ahead(pages(), 10)
    assert [next(rows)["n"] for _ in range(25)] == list(range(25))
    rows.close()  # e.g. singer-sdk's max-records limit in its standard tests
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "tap-gusto-read-ahead"]
