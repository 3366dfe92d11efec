"""A rotating OAuth token kept on disk, shared by every plugin that uses one authorisation.

Some vendors (Gusto) rotate refresh tokens: each works once, and the answer to a refresh carries
the next. The newest refresh token, with the current access token and its expiry, is kept in a
0600 JSON file written atomically: ``{"refresh_token", "access_token", "expires_at"}``
(``expires_at``: Unix time). Plugins sharing an authorisation share the file, and refresh only
while holding its lock, re-reading it first: two processes never spend one refresh token, and
an access token another process has just obtained is used as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class TokenFile:
    """The token file: read (an unreadable or missing file reads as empty), written atomically
    0600, and locked (an advisory lock in ``<file>.lock``) around a refresh."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, t.Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, t.Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".token-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Held while reading, refreshing and saving: one refresh at a time across processes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
