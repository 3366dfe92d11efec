"""Every paginated HRRESTStream reads its next page while the current one is written
(hrsync.http.HRRESTStream.request_records, hrsync.http.OneAhead): the same records, state and
errors as singer-sdk's own page loop, over real HTTP against the Greenhouse sandbox (paging by
Link header), with a 503 and a 429 mid-paging, a page that fails for good, and a run that stops
half-way."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from singer_sdk.singerlib.encoding import SimpleSingerWriter
from tests.taps.tapkit import Messages, records

from hrsync.http import HRRESTStream, OneAhead, RetryBudgetExhausted
from sandbox.greenhouse import GreenhouseApp
from sandbox.seed import CANDIDATE_BASE
from sandbox.server import Sandbox
from tap_greenhouse.tap import TapGreenhouse

PAGE = 7  # 60 employees: 9 candidate pages, the last one short

# --- OneAhead ---------------------------------------------------------------------------


def test_every_item_in_order_then_the_error_where_reading_stopped() -> None:
    def pages() -> Iterator[int]:
        yield from range(5)
        raise ValueError("page 6: 503 Service Unavailable")

    got: list[int] = []
    with pytest.raises(ValueError, match="page 6"):
        for item in OneAhead(pages()):
            got.append(item)
    assert got == list(range(5))


def test_the_reader_is_never_more_than_one_item_ahead() -> None:
    produced: list[int] = []
    seen_ahead: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(20):
            produced.append(n)
            yield n

    for item in OneAhead(pages()):
        # item n+1 may be being read now, never n+2
        seen_ahead.append(len(produced) - 1 - item)
    assert max(seen_ahead) <= 1
    assert produced == list(range(20))


def test_a_caller_that_stops_early_stops_the_thread_and_closes_the_items() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def pages() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    ahead = OneAhead(pages(), name="test-read-ahead")
    assert [next(ahead) for _ in range(5)] == list(range(5))
    ahead.close()  # e.g. singer-sdk's max-records limit in its standard tests
    assert closed.is_set()
    assert len(produced) <= 6
    assert next(ahead, None) is None
    assert not [t for t in threading.enumerate() if t.name == "test-read-ahead"]


# --- a REST stream over real HTTP --------------------------------------------------------


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("greenhouse",)) as sandbox:
        yield sandbox


@pytest.fixture
def faults(sb: Sandbox) -> Iterator[Any]:
    app = sb.apps["greenhouse"]
    assert isinstance(app, GreenhouseApp)
    sb.faults.retry_after = 0
    yield sb.faults
    sb.faults.reset()
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    creds = sb.credentials["greenhouse"]
    return {
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "user_id": creds["user_id"],
        "api_url": f"{sb.greenhouse_url}/v3",
        "token_url": f"{sb.greenhouse_url}/token",
        "start_date": "2000-01-01T00:00:00Z",
        "backoff_base_seconds": 0.01,
        "page_size": PAGE,
        **extra,
    }


class Unbuffered(TapGreenhouse):
    """Each message written as it is emitted (hrsync.output buffers RECORD lines until the
    process ends when a sync fails): what was written before an error is in the output."""

    message_writer_class = SimpleSingerWriter


class Observed:
    """What one run sent: the candidate pages asked for, and from which threads."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.threads: set[str] = set()


def run(
    sb: Sandbox,
    *,
    read_ahead: bool,
    observed: Observed | None = None,
    stop_after: int | None = None,
    **config: Any,
) -> tuple[Messages, BaseException | None]:
    """Sync the candidates stream with or without read-ahead: (messages, the error raised).
    ``stop_after``: the tap's own processing fails at that record (a run stopping half-way)."""
    tap = Unbuffered(config=config_for(sb, **config), parse_env_config=False)
    for name, stream in tap.streams.items():
        stream.selected = name == "candidates"
    stream = tap.streams["candidates"]
    assert isinstance(stream, HRRESTStream)
    stream.read_ahead = read_ahead  # type: ignore[misc]
    if observed is not None:
        send = stream._request

        def watched(prepared: requests.PreparedRequest, context: Any) -> requests.Response:
            observed.pages.append(prepared.url or "")
            observed.threads.add(threading.current_thread().name)
            return send(prepared, context)

        stream._request = watched  # type: ignore[method-assign]
    if stop_after is not None:
        process = stream.post_process
        count = iter(range(stop_after + 1))

        def failing(row: dict, context: Any = None) -> dict | None:
            if next(count) == stop_after:
                raise RuntimeError(f"stopped at record {stop_after}")
            return process(row, context)

        stream.post_process = failing  # type: ignore[method-assign]
    error: BaseException | None = None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            tap.sync_all()
        except Exception as exc:  # the messages written before it are compared below
            error = exc
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()], error


def _masked(messages: Messages) -> list[dict[str, Any]]:
    """Messages without their run-time stamps (``time_extracted``)."""
    out = []
    for message in messages:
        message = dict(message)
        message.pop("time_extracted", None)
        out.append(message)
    return out


def test_the_same_messages_and_state_as_singer_sdks_loop_with_a_503_and_a_429_mid_paging(
    sb: Sandbox, faults: Any
) -> None:
    faults.paths = r"^/v3/candidates"
    faults.script[:] = ["ok", "ok", "503", "ok", "429", "429", "ok"]
    seen = Observed()
    ahead, error = run(sb, read_ahead=True, observed=seen)
    assert error is None
    assert faults.injected.get("503") == 1 and faults.injected.get("429") == 2
    faults.injected.clear()
    faults.script[:] = ["ok", "ok", "503", "ok", "429", "429", "ok"]
    plain, error = run(sb, read_ahead=False)
    assert error is None
    assert _masked(ahead) == _masked(plain)
    ids = [r["id"] for r in records(ahead, "candidates")]
    assert sorted(ids) == [CANDIDATE_BASE + k for k in range(1, sb.world.candidates + 1)]
    # 9 pages, 3 of them asked twice more; pages 2.. were read by the read-ahead thread
    assert len(seen.pages) == -(-sb.world.candidates // PAGE) + 3
    assert "candidates-read-ahead" in seen.threads


def test_a_page_that_fails_for_good_ends_the_run_after_the_pages_before_it(
    sb: Sandbox, faults: Any
) -> None:
    faults.paths = r"^/v3/candidates"
    outcomes: list[tuple[Messages, BaseException | None]] = []
    for read_ahead in (True, False):
        faults.script[:] = ["ok", "ok", "ok", "503", "503"]
        outcomes.append(run(sb, read_ahead=read_ahead, max_retries=2))
    (ahead, ahead_error), (plain, plain_error) = outcomes
    assert isinstance(ahead_error, RetryBudgetExhausted)
    assert str(ahead_error) == str(plain_error)
    assert "failed after 2 attempts" in str(ahead_error)
    # exactly the three pages before the failed one, once each, and the same state messages
    ids = [r["id"] for r in records(ahead, "candidates")]
    assert len(ids) == len(set(ids)) == 3 * PAGE
    assert _masked(ahead) == _masked(plain)


def test_a_run_that_stops_half_way_writes_what_it_processed_and_reads_one_page_more(
    sb: Sandbox, faults: Any
) -> None:
    stop_at = 2 * PAGE + 3  # in page 3
    seen = Observed()
    ahead, ahead_error = run(sb, read_ahead=True, observed=seen, stop_after=stop_at)
    plain, plain_error = run(sb, read_ahead=False, stop_after=stop_at)
    assert str(ahead_error) == str(plain_error) == f"stopped at record {stop_at}"
    assert _masked(ahead) == _masked(plain)
    ids = [r["id"] for r in records(ahead, "candidates")]
    assert len(ids) == len(set(ids)) == stop_at
    # page 4 at most was read ahead; the thread is gone
    assert 3 <= len(seen.pages) <= 4
    assert not [t for t in threading.enumerate() if t.name == "candidates-read-ahead"]
