"""Opening hrsync's SQLite stores: one place for WAL, file mode, set-up races and transactions.

Every store hrsync keeps on disk (dead letters, run ledger, webhook inbox, transfer ledger,
map-hr lookups, the 834 ledger, Moodle state) can be opened by two processes at once: two
pipelines starting together, a replay next to a scheduled run, the fuzz suite's parallel cases.
Switching a database to WAL and creating its tables need a lock that SQLite does not wait for
through its busy timeout (it answers "database is locked" at once), so the loser of that race
retries here instead of crashing. Files that hold personal data are created mode 0600, and
the folders created for them 0700.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: How long a writer waits for another one's transaction (seconds).
BUSY_TIMEOUT = 60.0
#: How long set-up (WAL switch, schema) keeps retrying while another process holds it.
SETUP_DEADLINE = 60.0


def _locked(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _make_folder(folder: Path, private: bool) -> None:
    """Create ``folder`` (and missing parents) 0700 for a private store; a folder hrsync did
    not create keeps its mode (it may be the project directory)."""
    if folder.is_dir():
        return
    if not private:
        folder.mkdir(parents=True, exist_ok=True)
        return
    _make_folder(folder.parent, private)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask


def connect(
    path: str | Path,
    *,
    schema: str = "",
    migrate: Callable[[sqlite3.Connection], None] | None = None,
    synchronous: str | None = None,
    private: bool = True,
    check_same_thread: bool = True,
    name: str = "store",
) -> sqlite3.Connection:
    """An autocommit connection to a WAL database with ``schema`` applied.

    ``private`` creates a new file readable by its owner only. ``migrate`` runs after the
    schema (add a column to an older store, ...), inside the same retry. ``name`` goes into
    the error when the set-up lock never frees.
    """
    memory = str(path) == ":memory:"
    if not memory:
        path = Path(path)
        _make_folder(path.parent, private)
        if private and not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=check_same_thread
    )
    deadline = time.monotonic() + SETUP_DEADLINE
    attempt = 0
    while True:
        try:
            if not memory:
                conn.execute("PRAGMA journal_mode=WAL")
            if synchronous:
                conn.execute(f"PRAGMA synchronous={synchronous}")
            if schema:
                conn.executescript(schema)
            if migrate is not None:
                migrate(conn)
            return conn
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not _locked(exc) or time.monotonic() > deadline:
                conn.close()
                if _locked(exc):
                    raise sqlite3.OperationalError(
                        f"{name} at {path}: the database stayed locked for "
                        f"{SETUP_DEADLINE:.0f} s while opening it (is another process stuck "
                        "holding it?)"
                    ) from exc
                raise
            attempt += 1
            time.sleep(min(0.01 * attempt, 0.2))


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
