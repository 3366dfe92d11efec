"""Append-only audit log: every exchange, with field names and never values.

One JSON object per line: ``integration, stream, record_key, fields, destination, outcome,
detail, ts``. Writers in several threads or processes append whole lines (``O_APPEND`` and
one ``os.write`` per event), so the file can be tailed, shipped or grepped while a job runs.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(".hrsync/audit.jsonl")

#: variables a Meltano run (or the operator) sets that name the integration being run
_INTEGRATION_ENV = ("HRSYNC_INTEGRATION", "MELTANO_JOB_NAME", "MELTANO_RUN_NAME")


def default_integration() -> str:
    for name in _INTEGRATION_ENV:
        if value := os.environ.get(name):
            return value
    return "adhoc"


class AuditLog:
    """``AuditLog(path=None, integration=None).record(stream=..., record_key=..., ...)``."""

    def __init__(self, path: str | Path | None = None, *, integration: str | None = None) -> None:
        self.path = Path(path or os.environ.get("HRSYNC_AUDIT_LOG") or DEFAULT_PATH)
        self.integration = integration or default_integration()
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def record(
        self,
        *,
        stream: str,
        record_key: Any,
        fields: Iterable[str],
        destination: str,
        outcome: str,
        detail: str | None = None,
        integration: str | None = None,
    ) -> None:
        """Append one event. ``fields`` are the *names* of the fields sent, never their values."""
        if isinstance(fields, Mapping | str | bytes):
            raise TypeError(
                "AuditLog.record(fields=...) takes field names, not a record or a string: "
                "pass record.keys() — values must never reach the audit log"
            )
        names = sorted({str(name) for name in fields})
        event = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "integration": integration or self.integration,
            "stream": stream,
            "record_key": record_key if isinstance(record_key, int | str) else str(record_key),
            "fields": names,
            "destination": destination,
            "outcome": outcome,
        }
        if detail:
            event["detail"] = detail
        line = (json.dumps(event, ensure_ascii=False) + "\n").encode()
        with self._lock:
            os.write(self._open(), line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        self.close()

    @staticmethod
    def read(path: str | Path | None = None) -> list[dict[str, Any]]:
        """All events of a log (for tests, reports and the CLI)."""
        target = Path(path or os.environ.get("HRSYNC_AUDIT_LOG") or DEFAULT_PATH)
        if not target.exists():
            return []
        with target.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
