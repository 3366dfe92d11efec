"""Errors that name what went wrong precisely: which record, which field, why."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A config, profile or settings problem: the message names the file, key/line and problem."""


class RecordError(Exception):
    """A record that cannot be processed.

    The message reads like ``stream offers, record 9000000012: field starts_on: 'next tuesday'
    is not a date (expected YYYY-MM-DD)`` so a person can find and fix the source record.
    """

    def __init__(self, stream: str, record_key: Any, field: str | None, reason: str) -> None:
        self.stream = stream
        self.record_key = record_key
        self.field = field
        self.reason = reason
        where = f"stream {stream}, record {record_key}"
        if field:
            where += f": field {field}"
        super().__init__(f"{where}: {reason}")
