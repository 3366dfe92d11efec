"""Interchange control numbers that never repeat: a persisted counter, safe across processes.

One small text file holds the last number handed out. :meth:`ControlNumbers.reserve` takes an
exclusive ``flock`` on it, reads, writes the new last number, ``fsync``s and unlocks, so two
runs started at once get disjoint ranges and a crash never hands a number out twice (a number
may be skipped, never reused). ISA13, GS06 and every ST02 of a file come from one reserved
range. X12 allows at most nine digits: the counter refuses to wrap.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

MAX = 999_999_999


class ControlNumberError(RuntimeError):
    """The counter file is unreadable or exhausted."""


class ControlNumbers:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def reserve(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive numbers; returns the first."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 64).decode("ascii", "replace").strip()
            if raw and not raw.isdigit():
                raise ControlNumberError(
                    f"control number file {self.path} holds {raw[:20]!r}, not a number: "
                    "restore it (numbers must never repeat)"
                )
            last = int(raw or 0)
            first, new_last = last + 1, last + count
            if new_last > MAX:
                raise ControlNumberError(
                    f"control numbers in {self.path} are exhausted ({last} of {MAX}): "
                    "agree a new sender id with the carrier"
                )
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{new_last}\n".encode("ascii"))
            os.fsync(fd)
            return first
        finally:
            os.close(fd)  # closing releases the lock

    def last(self) -> int:
        """The last number handed out (0 if none)."""
        try:
            raw = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        return int(raw or 0)
