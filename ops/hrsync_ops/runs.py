"""The run ledger: one row per ``hrsync run <job>`` (SQLite, ``$HRSYNC_RUNS_PATH``, else
``.hrsync/runs.sqlite``).

Each row: job, start, end, duration, outcome (``running`` -> ``success`` | ``failed``), the
exit code, records moved (the writes the job's targets audited in the run window, by outcome)
and the dead letters the run added. ``consecutive_failures`` counts the failed runs since the
last success (what alerts fire on); ``last_success`` is what staleness is judged on.
A run that was killed stays ``running``; the next run of the job marks it ``failed``.

``PluginLocks``: jobs sharing a Meltano plugin run one after the other (see the class).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hrsync import sqlite
from hrsync.audit import AuditLog, audit_files

DEFAULT_PATH = Path(".hrsync/runs.sqlite")
ENV_PATH = "HRSYNC_RUNS_PATH"
#: audit outcomes that are not a write to the destination
NOT_MOVED = frozenset({"unchanged", "failed", "skipped", "refused", "rejected"})

__all__ = ["PluginLocks", "Run", "RunLedger", "moved_records"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    duration_s REAL,
    outcome TEXT NOT NULL,
    exit_code INTEGER,
    records_moved INTEGER,
    moved_by_outcome TEXT,
    dead_letters INTEGER,
    args TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_job ON runs (job, id);
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL
);
"""


def default_path() -> Path:
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Run:
    id: int
    job: str
    started_at: str
    ended_at: str | None
    duration_s: float | None
    outcome: str
    exit_code: int | None
    records_moved: int | None
    moved_by_outcome: dict[str, int]
    dead_letters: int | None
    args: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunLedger:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite.connect(self.path, schema=_SCHEMA, private=False, name="run ledger")
        conn.row_factory = sqlite3.Row
        try:
            with sqlite.transaction(conn):
                yield conn
        finally:
            conn.close()

    def start(self, job: str, args: list[str], started: datetime | None = None) -> int:
        """A new ``running`` row; an earlier run of the job still ``running`` was killed."""
        started_at = (started or now()).isoformat()
        with self._db() as db:
            db.execute("UPDATE runs SET outcome='failed' WHERE job=? AND outcome='running'", (job,))
            db.execute(
                "INSERT OR IGNORE INTO jobs (job, first_seen) VALUES (?,?)", (job, started_at)
            )
            cur = db.execute(
                "INSERT INTO runs (job, started_at, outcome, args) VALUES (?,?,'running',?)",
                (job, started_at, json.dumps(args)),
            )
            return int(cur.lastrowid or 0)

    def first_seen(self, job: str, at: datetime | None = None) -> datetime:
        """When hrsync first saw the job (its first ``hrsync run``, or the first ``hrsync
        status`` that listed it: the deployment); recorded as ``at`` (default now) if never."""
        with self._db() as db:
            row = db.execute(
                "SELECT COALESCE((SELECT first_seen FROM jobs WHERE job=?), "
                "(SELECT MIN(started_at) FROM runs WHERE job=?))",
                (job, job),
            ).fetchone()
            seen = row[0] if row and row[0] else (at or now()).isoformat()
            db.execute("INSERT OR IGNORE INTO jobs (job, first_seen) VALUES (?,?)", (job, seen))
        return datetime.fromisoformat(seen)

    def finish(
        self,
        run_id: int,
        *,
        outcome: str,
        exit_code: int | None,
        moved: Mapping[str, int],
        dead_letters: int,
        ended: datetime | None = None,
    ) -> Run:
        ended = ended or now()
        with self._db() as db:
            row = db.execute("SELECT started_at FROM runs WHERE id=?", (run_id,)).fetchone()
            duration = (ended - datetime.fromisoformat(row["started_at"])).total_seconds()
            db.execute(
                "UPDATE runs SET ended_at=?, duration_s=?, outcome=?, exit_code=?, "
                "records_moved=?, moved_by_outcome=?, dead_letters=? WHERE id=?",
                (
                    ended.isoformat(),
                    round(duration, 3),
                    outcome,
                    exit_code,
                    sum(moved.values()),
                    json.dumps(dict(moved), sort_keys=True),
                    dead_letters,
                    run_id,
                ),
            )
        run = self.get(run_id)
        assert run is not None
        return run

    def get(self, run_id: int) -> Run | None:
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return _run(row) if row else None

    def history(self, job: str, limit: int = 50) -> list[Run]:
        """The job's runs, newest first."""
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM runs WHERE job=? ORDER BY id DESC LIMIT ?", (job, limit)
            ).fetchall()
        return [_run(r) for r in rows]

    def last(self, job: str) -> Run | None:
        runs = self.history(job, 1)
        return runs[0] if runs else None

    def last_success(self, job: str) -> Run | None:
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM runs WHERE job=? AND outcome='success' ORDER BY id DESC LIMIT 1",
                (job,),
            ).fetchone()
        return _run(row) if row else None

    def consecutive_failures(self, job: str) -> int:
        if not self.path.exists():
            return 0
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM runs WHERE job=? AND outcome='failed' AND id > "
                "COALESCE((SELECT MAX(id) FROM runs WHERE job=? AND outcome='success'), 0)",
                (job, job),
            ).fetchone()
        return int(row[0])


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        job=row["job"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        outcome=row["outcome"],
        exit_code=row["exit_code"],
        records_moved=row["records_moved"],
        moved_by_outcome=json.loads(row["moved_by_outcome"] or "{}"),
        dead_letters=row["dead_letters"],
        args=json.loads(row["args"]),
    )


def audit_offset(path: Path | None = None) -> int:
    """Where the audit log ends now: a run's events are the ones written after it."""
    target = path or AuditLog(integration="-").path
    return target.stat().st_size if target.exists() else 0


def moved_records(job: str, since_offset: int, path: Path | None = None) -> dict[str, int]:
    """Writes the job's targets audited after ``since_offset`` (bytes into the audit log), by
    outcome (``created``, ``updated``, ``deactivated`` ...); dry-run plans and unchanged,
    failed or refused records are not moved."""
    target = path or AuditLog(integration="-").path
    counts: dict[str, int] = {}
    if not target.exists():
        return counts
    # rotated during the run: the rest of the file it started in, then the new one from 0
    files = audit_files(target)
    if target.stat().st_size < since_offset and len(files) > 1:
        parts = [(files[-2], since_offset), (target, 0)]
    else:
        parts = [(target, since_offset)]
    for file, offset in parts:
        _count_moved(file, offset, job, counts)
    return counts


def _count_moved(file: Path, offset: int, job: str, counts: dict[str, int]) -> None:
    with file.open("rb") as fh:
        fh.seek(offset)
        for line in fh:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written by another process right now
            outcome = str(event.get("outcome"))
            if event.get("integration") != job or outcome in NOT_MOVED:
                continue
            if outcome.startswith("planned-"):
                continue
            counts[outcome] = counts.get(outcome, 0) + 1


class PluginLocks:
    """One ``hrsync run`` at a time per Meltano plugin in a project.

    Meltano keeps a plugin's per-run files in ``.meltano/run/<plugin>/``: the tap's catalog and
    ``state.json`` (the bookmark it starts from), the target's ``new_state.json``. Two jobs that
    run the same extractor or loader at once overwrite each other's files there; a tap can start
    from the other job's bookmark and skip records (see MeltanoProject.exclusive_plugins).
    ``hrsync run`` therefore holds an advisory lock (``flock``) per plugin of its job, taken in
    name order so two jobs never wait on each other, and released when the last process holding
    its descriptor ends (``hrsync run`` hands them to its reaper, so they stay held until every
    process of the run is gone: see hrsync_ops.supervise). A run that finds a plugin busy waits.

    ``shared`` plugins (the job's mappers, which every job may run at once) are locked shared;
    :attr:`alone` lists those no other run held when they were taken (locked exclusively then,
    so their leftovers can be swept) until :meth:`share` turns them into shared locks.
    """

    def __init__(
        self, directory: Path, plugins: list[str], holder: str, shared: list[str] | None = None
    ) -> None:
        self.directory = directory
        self.plugins = sorted(set(plugins))
        self.shared = sorted(set(shared or []) - set(self.plugins))
        self.holder = holder
        self.alone: list[str] = []
        self._fds: list[int] = []
        self._shared_fds: dict[str, int] = {}

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptors holding the locks (to hand to a process that must hold them too)."""
        return (*self._fds, *self._shared_fds.values())

    def _open(self, plugin: str) -> int:
        return os.open(self.directory / f"{plugin}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(
        self, timeout: float | None, on_wait: Callable[[str, str], None] | None = None
    ) -> str | None:
        """Take every lock; None when done, else the plugin still busy after ``timeout``
        seconds (no lock is then held). ``on_wait(plugin, holder)`` is called when a plugin is
        busy, with what its holder wrote (job and pid)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        for plugin in self.plugins:
            fd = self._open(plugin)
            if not self._wait(fd, fcntl.LOCK_EX, plugin, deadline, on_wait):
                return plugin
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.holder} (pid {os.getpid()})".encode(), 0)
            self._fds.append(fd)
        for plugin in self.shared:
            fd = self._open(plugin)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.alone.append(plugin)
            except BlockingIOError:  # other runs use it: share it with them
                if not self._wait(fd, fcntl.LOCK_SH, plugin, deadline, None):
                    return plugin
            self._shared_fds[plugin] = fd
        return None

    def _wait(
        self,
        fd: int,
        mode: int,
        plugin: str,
        deadline: float | None,
        on_wait: Callable[[str, str], None] | None,
    ) -> bool:
        waited = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait(plugin, os.pread(fd, 200, 0).decode("utf-8", "replace").strip())
                waited = True
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    self.release()
                    return False
                time.sleep(0.2)

    def share(self) -> None:
        """Turn the exclusive locks on shared plugins (:attr:`alone`) into shared ones."""
        for plugin in self.alone:
            fcntl.flock(self._shared_fds[plugin], fcntl.LOCK_SH)
        self.alone.clear()

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)  # closing the last descriptor of the lock file drops its flock
        self._fds.clear()
        self._shared_fds.clear()
        self.alone.clear()
