"""The receiver's stage log (``hrsync webhooks serve --trace FILE``): one JSON line per stage of
an event's way to the destination, for profiling (benchmarks/bench_webhook_latency.py reads it).

Each line is ``{"t": <unix time>, "stage": ..., ...}``: ``received`` (a request's body read),
``stored`` (the event committed), ``run-start`` / ``run-end`` (a job's run), and from the fast
path ``sent`` (a plugin given its arguments), ``forked`` (its process started), ``exited``
(with its exit code) and ``log`` (the plugin's own log, kept when tracing, with singer-sdk's
timestamps of its inner stages). Lines carry ids and names, never a record's content.
Nothing is written unless a file was configured.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_fd: int | None = None


def configure(path: Path | None) -> None:
    """Append the stage log to ``path`` (0600), or stop logging (``None``)."""
    global _fd
    with _lock:
        if _fd is not None:
            os.close(_fd)
            _fd = None
        if path is not None:
            _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def enabled() -> bool:
    return _fd is not None


def stage(name: str, **details: Any) -> None:
    """Log that ``name`` happened now (a no-op unless configured)."""
    if _fd is None:
        return
    line = json.dumps({"t": time.time(), "stage": name, **details}, default=str) + "\n"
    with _lock:
        if _fd is not None:
            os.write(_fd, line.encode())
