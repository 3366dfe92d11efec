"""tap-gusto's RECORD lines per stream, as the bytes it wrote, made comparable across runs and
days: ``time_extracted`` blanked, every date written as its distance from today, and the ids the
fake makes at random (uuid4 and version hashes) numbered in order of appearance, streams taken
by name (so ids still link a job to its employee).

``python -m tests.taps.tap_gusto.record_bytes`` rewrote ``fixtures/records.json`` from the
tap as it was before its child streams were emitted from the employee pass (see
test_tap_gusto_sync.py::test_every_stream_writes_the_same_record_bytes_as_before)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "fixtures" / "records.json"
_EXTRACTED = re.compile(r'"time_extracted":"[^"]*"')
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_ID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32}\b"
)
_STREAM = re.compile(r'^\{"type":"RECORD","stream":"([a-z_]+)"')


def _relative(match: re.Match[str]) -> str:
    days = (date(*(int(g) for g in match.groups())) - date.today()).days
    return f"today{days:+d}"


def record_bytes(config: dict[str, Any], deselect: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Stream name -> its RECORD lines in the order written (everything else left out), the
    ``deselect`` streams deselected."""
    from tap_gusto.tap import TapGusto

    tap = TapGusto(config=config, parse_env_config=False)
    for name in deselect:
        tap.streams[name].selected = False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    streams: dict[str, list[str]] = {}
    for line in out.getvalue().splitlines():
        found = _STREAM.match(line)
        if found:
            line = _DATE.sub(_relative, _EXTRACTED.sub('"time_extracted":""', line))
            streams.setdefault(found.group(1), []).append(line)
    return numbered(streams, _ID)


def numbered(streams: dict[str, list[str]], ids: re.Pattern[str]) -> dict[str, list[str]]:
    """Every match of ``ids`` replaced by ``id<n>``, n in order of first appearance, streams
    taken by name. ``numbered(some_streams_of_the_fixture, NUMBERED)`` numbers them as
    :func:`record_bytes` would have without the other streams."""
    numbers: dict[str, str] = {}
    return {
        name: [
            ids.sub(lambda m: numbers.setdefault(m.group(), f"id{len(numbers) + 1}"), line)
            for line in streams[name]
        ]
        for name in sorted(streams)
    }


NUMBERED = re.compile(r"\bid\d+\b")


def main() -> None:  # pragma: no cover - how the fixture was made
    from tests.taps.tap_gusto.gusto_seed import seed, tap_config

    from sandbox.server import Sandbox

    with Sandbox(employees=20, vendors=("gusto",)) as sb, tempfile.TemporaryDirectory() as tmp:
        seed(sb)
        config = tap_config(sb, Path(tmp) / "token.json", page_size=3)
        FIXTURE.write_text(json.dumps(record_bytes(config), indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
