"""Append-only audit log: every exchange, with field *names* and never values.

One JSON object per line::

    {"ts": "2025-03-01T06:00:00.123+00:00", "integration": "ats-to-hris", "stream": "new_hires",
     "record_key": "4000000001", "fields": ["firstName", "hireDate"], "destination": "bamboohr",
     "outcome": "created", "detail": null}

Writers in several threads or processes append whole lines (``O_APPEND`` and one ``os.write``
per event, nothing buffered), so the file can be tailed, shipped or grepped while a job runs.

The integration is named by the ``integration`` argument, else ``$HRSYNC_INTEGRATION``, else
from what ``meltano run`` puts in a plugin's environment. Meltano 4 exports no job name or run
id to plugins, but every plugin of a ``meltano run`` block sees the names of the plugins before
it and its own (``MELTANO_EXTRACTOR_NAME``, ``MELTANO_MAPPER_NAME``, ``MELTANO_LOADER_NAME``), so
a target audits as ``tap-x-to-target-y``, the form of Meltano's own state ids. Else ``adhoc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import ItemsView, Iterable, Mapping, ValuesView
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PATH = Path(".hrsync/audit.jsonl")
ENV_PATH = "HRSYNC_AUDIT_LOG"
ENV_INTEGRATION = "HRSYNC_INTEGRATION"
DETAIL_MAX = 300

__all__ = ["DEFAULT_PATH", "AuditLog", "default_integration", "default_path"]


def default_integration() -> str:
    """``$HRSYNC_INTEGRATION``, else ``<extractor>-to-<loader>`` under ``meltano run``, else
    the one Meltano plugin name present, else ``adhoc``."""
    if name := os.environ.get(ENV_INTEGRATION):
        return name
    extractor = os.environ.get("MELTANO_EXTRACTOR_NAME")
    loader = os.environ.get("MELTANO_LOADER_NAME")
    if extractor and loader:
        return f"{extractor}-to-{loader}"
    return extractor or loader or "adhoc"


def default_path() -> Path:
    """``$HRSYNC_AUDIT_LOG``, else ``.hrsync/audit.jsonl`` (relative to the working directory)."""
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def _field_names(fields: Iterable[str]) -> list[str]:
    if isinstance(fields, Mapping | ValuesView | ItemsView | str | bytes):
        raise TypeError(
            f"AuditLog.record(fields=...) takes field names, not a {type(fields).__name__}: "
            "pass record.keys() or a list of names; values must never reach the audit log"
        )
    names = set()
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(
                f"AuditLog.record(fields=...) takes field names (str), got a "
                f"{type(name).__name__}: values must never reach the audit log"
            )
        names.add(name)
    return sorted(names)


def _safe_destination(destination: str) -> str:
    """A destination URL without user info, query or fragment (no credentials in the log)."""
    if "://" not in destination:
        return destination
    parts = urlsplit(destination)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class AuditLog:
    """``AuditLog(path=None, integration=None).record(stream=..., record_key=..., ...)``.

    ``path`` defaults to :func:`default_path`, ``integration`` to :func:`default_integration`.
    The file and its parent directories are created on the first event (mode 0640).
    """

    def __init__(self, path: str | Path | None = None, *, integration: str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.integration = integration or default_integration()
        self._lock = threading.Lock()
        self._fd: int | None = None

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
    ) -> dict[str, Any]:
        """Append one event and return it.

        ``fields`` are the *names* of the fields sent (a dict, ``dict.values()`` or
        ``dict.items()`` is refused with a TypeError). ``outcome`` is a short word such as
        ``created``, ``updated``, ``unchanged``, ``skipped``, ``failed``, ``deactivated``.
        ``detail`` is a short reason without personal data (cut at 300 characters).
        """
        names = _field_names(fields)
        if not isinstance(outcome, str) or not outcome.strip():
            raise ValueError(f"AuditLog.record: outcome must be a non-empty word, got {outcome!r}")
        if detail is not None:
            detail = " ".join(str(detail).split())[:DETAIL_MAX] or None
        event = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "integration": integration or self.integration,
            "stream": stream,
            "record_key": record_key
            if record_key is None or isinstance(record_key, int | str)
            else str(record_key),
            "fields": names,
            "destination": _safe_destination(str(destination)),
            "outcome": outcome.strip(),
            "detail": detail,
        }
        self._write((json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))
        return event

    def _write(self, line: bytes) -> None:
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            written = os.write(self._fd, line)  # one write: O_APPEND keeps lines whole
            while written < len(line):  # only on a full disk or a signal; never seen on files
                written += os.write(self._fd, line[written:])

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to do
            self.close()

    @staticmethod
    def read(path: str | Path | None = None) -> list[dict[str, Any]]:
        """All events of a log, oldest first (for tests, reports and the CLI)."""
        target = Path(path) if path else default_path()
        if not target.exists():
            return []
        with target.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
