"""Errors that name what went wrong precisely: which record, which field, why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "RecordError", "Undelivered"]


class RecordError(Exception):
    """A record that cannot be processed.

    The message reads like ``stream offers, record 9000000012: field starts_on: 'next tuesday'
    is not a date (expected YYYY-MM-DD)`` so a person can find and fix the source record.
    ``field`` may be None when the problem is the record as a whole.
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

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return (type(self), (self.stream, self.record_key, self.field, self.reason))


class Undelivered(RecordError):
    """A record the destination did not take; ``error_class`` is a data-free token for alerts
    (``http_409``, ``RetryBudgetExhausted``, ``missing_required_field``...)."""

    def __init__(
        self, stream: str, record_key: Any, field: str | None, reason: str, error_class: str
    ) -> None:
        super().__init__(stream, record_key, field, reason)
        self.error_class = error_class

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.stream, self.record_key, self.field, self.reason, self.error_class)
        return (type(self), args)


class ConfigError(ValueError):
    """A config, profile or settings problem; the message names the file, key/line and problem.

    ``ConfigError("message")``, or :meth:`at` to build the message from its parts. Subclasses
    (e.g. map-hr's ``ProfileError``) may set ``file``, ``key``, ``line`` and ``problem`` themselves.
    """

    file: str | None = None
    key: str | None = None
    line: int | None = None
    problem: str | None = None

    @classmethod
    def at(
        cls,
        problem: str,
        *,
        file: str | Path | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> ConfigError:
        """``profiles/ats_to_hris.yml:12: fields.salary: <problem>`` (the parts given)."""
        where = str(file) if file is not None else ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = ": ".join(part for part in (where, key) if part)
        error = cls(f"{prefix}: {problem}" if prefix else problem)
        error.file = str(file) if file is not None else None
        error.key, error.line, error.problem = key, line, problem
        return error
