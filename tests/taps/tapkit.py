"""What every tap's sync tests share: run a tap in this process, read the Singer messages."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from singer_sdk import Tap

Messages = list[dict[str, Any]]


def sync(tap: Tap) -> Messages:
    """Sync every selected stream of ``tap``; return the Singer messages it wrote."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def records(messages: Messages, stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


def final_state(messages: Messages) -> dict[str, Any]:
    return [m["value"] for m in messages if m["type"] == "STATE"][-1]
