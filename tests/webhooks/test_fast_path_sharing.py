"""The webhook fast path's shared extract: which tasks share one run of their extractor and
mappers, and the copy of that output to each loader (a loader that ends early does not stop
the others getting everything)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from hrsync_ops.webhooks.fastpath import Plugin, _relay, share_prefixes


def plugins(*names: str) -> list[Plugin]:
    kinds = ["extractor", *(["mapper"] * (len(names) - 2)), "loader"]
    python = Path("/nonexistent/python")  # never started: only the names matter here
    return [Plugin(n, k, python, n, {}) for n, k in zip(names, kinds, strict=True)]


def test_tasks_that_differ_only_in_their_loader_share_the_rest() -> None:
    iam = "tap-bamboohr-iam", "map-bamboohr-to-canonical", "map-hris-to-iam"
    tasks = [
        plugins(*iam, "target-scim"),
        plugins("tap-surveymonkey", "map-survey-to-analytics", "target-warehouse"),
        plugins(*iam, "target-ldap"),
        plugins("tap-bamboohr-iam", "map-bamboohr-to-canonical", "target-ldap"),  # not the same
    ]
    assert share_prefixes(tasks) == [[0, 2], [1], [3]]
    assert share_prefixes(tasks[1:2]) == [[0]]


def _read_all(fd: int, out: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as f:
        out.append(f.read())


def test_the_relay_copies_everything_to_each_loader_even_when_one_ends_early() -> None:
    source_r, source_w = os.pipe()
    sinks: list[int] = []
    readers: list[threading.Thread] = []
    got: list[list[bytes]] = [[], []]
    for i in range(2):
        r, w = os.pipe()
        sinks.append(w)
        if i == 0:
            os.close(r)  # this loader ended before reading anything (it failed)
        else:
            readers.append(threading.Thread(target=_read_all, args=(r, got[i])))
    for reader in readers:
        reader.start()
    relay = threading.Thread(target=_relay, args=(source_r, sinks))
    relay.start()
    # more than a pipe holds, in lines, as a mapper writes them
    data = b"".join(b'{"type": "RECORD", "record": {"id": %d}}\n' % i for i in range(20_000))
    with os.fdopen(source_w, "wb") as w:
        w.write(data)
    relay.join(60)
    for reader in readers:
        reader.join(60)
    assert not relay.is_alive()
    assert got[1] == [data]  # the loader still running got every byte, in order


def test_the_relay_closes_the_shared_output_when_no_loader_is_left() -> None:
    source_r, source_w = os.pipe()
    r, w = os.pipe()
    os.close(r)
    relay = threading.Thread(target=_relay, args=(source_r, [w]))
    relay.start()
    os.write(source_w, b"x" * 10)
    relay.join(60)
    assert not relay.is_alive()
    try:  # the shared plugins' next write fails: their pipe has no reader (as before)
        os.write(source_w, b"y")
    except BrokenPipeError:
        pass
    else:
        raise AssertionError("the shared output still had a reader")
    finally:
        os.close(source_w)
