"""Crash safety of ``hrsync run``: a pipeline's processes live and die together.

``meltano run`` starts the tap, the mappers and the target as its children. Left alone, a
SIGKILLed ``meltano`` leaves them writing to the destination, a SIGKILLed ``hrsync run`` drops
its plugin locks while they still run, Meltano's system database keeps the run ``RUNNING``
(every later ``meltano run`` of the state id is refused for five minutes) and Meltano's
generated config files (``.meltano/run/<plugin>/*.config.json``, API keys inside) stay behind.
:class:`Pipeline` starts ``meltano`` so that none of this happens:

* in a **process group of its own**, which the tap, mappers and target join (Meltano does not
  give them groups of their own); when ``meltano`` ends, however it ends, whatever is left of
  the group gets SIGTERM, then SIGKILL after a grace period, and ``hrsync run`` returns only
  when no process of the group is left. ``hrsync run`` is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``) so that orphaned plugins are reaped, not left as zombies;
* with ``PR_SET_PDEATHSIG``: if ``hrsync run`` dies, ``meltano`` gets SIGTERM;
* with a **reaper** (``python -m hrsync_ops.supervise``, in a session of its own, ignoring
  SIGINT/SIGTERM/SIGHUP) that holds a copy of the plugin lock descriptors and a pipe from
  ``hrsync run``: when that pipe closes because ``hrsync run`` died, the reaper ends the
  group the same way; the locks are released when both are gone, that is when every process
  of the run is gone;
* with **umask 077**: everything Meltano writes for the run, the config files included, is
  ``0600``.

SIGINT, SIGTERM and SIGHUP sent to ``hrsync run`` (Ctrl-C, a scheduler's timeout) are passed
to the group: the pipeline is stopped, not abandoned.

Before a run, with the job's locks held, :func:`sweep_config_files` removes config files a
killed run left and :func:`close_dead_meltano_runs` closes the Meltano runs that hrsync
started and that are still marked ``RUNNING`` (see both).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO

__all__ = [
    "TRIGGER",
    "MeltanoRun",
    "Pipeline",
    "close_dead_meltano_runs",
    "end_group",
    "failure_cause",
    "group_members",
    "running_meltano_runs",
    "sweep_config_files",
    "system_db",
    "wait_for_foreign_runs",
]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
#: ``MELTANO_JOB_TRIGGER`` of the runs hrsync starts (Meltano keeps it in ``runs.trigger``)
TRIGGER = "hrsync run"
#: seconds between SIGTERM and SIGKILL for what is left of a pipeline
GRACE_SECONDS = 10.0
#: Meltano gives up on a run whose heartbeat is older than this (meltano.core.job.job)
MELTANO_HEARTBEAT = timedelta(minutes=5)
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # not Linux: the reaper still ends the group
        return False


# --- process groups --------------------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():  # no procfs: ask the kernel whether any is left
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            stat = (proc / entry.name / "stat").read_bytes()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _reap(pgid: int) -> None:
    """Collect the exit status of this process's children in the group (orphaned plugins
    re-parented to us as subreaper), so that none is left a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_group(pgid: int, grace: float = GRACE_SECONDS, *, reap: bool = False) -> list[int]:
    """End every process of the group: SIGTERM, SIGKILL after ``grace`` seconds; return once
    none is left (the pids that were still there, for the message)."""
    left = group_members(pgid)
    if not left:
        if reap:
            _reap(pgid)
        return []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    while group_members(pgid):
        if reap:
            _reap(pgid)
        if not killed and time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    if reap:
        _reap(pgid)
    return left


# --- the pipeline ----------------------------------------------------------------------------


@dataclass
class Pipeline:
    """``meltano run`` in its own process group, ended with everything it started (see the
    module). ``keep_fds`` (the plugin locks) are handed to the reaper so that they stay held
    until the last process of the run is gone. Meltano's stderr passes through and its last
    lines are kept (``tail``) for :func:`failure_cause`."""

    command: list[str]
    cwd: Path
    env: dict[str, str]
    keep_fds: tuple[int, ...] = ()
    grace: float = GRACE_SECONDS
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=400))
    leftovers: list[int] = field(default_factory=list)  # pids still there after meltano ended
    signalled: int | None = None

    def run(self) -> int:
        """Run to the end; the exit status (128 + N when killed by signal N)."""
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        parent = os.getpid()

        def die_with_parent() -> None:  # in the child, before exec
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the line above
                os._exit(1)

        proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            process_group=0,
            umask=0o077,
            preexec_fn=die_with_parent,
            stderr=subprocess.PIPE,
        )
        pgid = proc.pid
        read_end, write_end = os.pipe()
        try:
            reaper = subprocess.Popen(
                [sys.executable, "-m", "hrsync_ops.supervise", str(pgid), str(read_end)],
                pass_fds=(read_end, *self.keep_fds),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            end_group(pgid, self.grace, reap=True)  # no reaper: do not leave meltano unwatched
            proc.wait()
            os.close(write_end)
            raise
        finally:
            os.close(read_end)

        def forward(signum: int, frame: FrameType | None) -> None:
            self.signalled = signum
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)

        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.getsignal(sig) for sig in _FORWARDED} if in_main_thread else {}
        for sig in previous:  # signal handlers can only be set from the main thread
            signal.signal(sig, forward)
        assert proc.stderr is not None
        pump = threading.Thread(target=self._pump, args=(proc.stderr,), daemon=True)
        pump.start()
        try:
            code = proc.wait()
            self.leftovers = end_group(pgid, self.grace, reap=True)
            pump.join()  # EOF: every holder of meltano's stderr is gone
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(write_end)  # the reaper finds the group empty and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                reaper.wait(timeout=self.grace + 5)
            _prctl(PR_SET_CHILD_SUBREAPER, 0)
        return 128 - code if code < 0 else code

    def _pump(self, stream: IO[bytes]) -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        for raw in stream:
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\n"))
            try:
                if out is not None:
                    out.write(raw)
                    out.flush()
                else:
                    sys.stderr.write(raw.decode("utf-8", "replace"))
            except (BrokenPipeError, ValueError):
                out = None  # our own stderr is gone: keep draining meltano's
        stream.close()


def reaper_main(argv: list[str]) -> int:
    """``python -m hrsync_ops.supervise PGID FD``: wait for FD to close (``hrsync run`` done
    or dead), then end process group PGID. Holds the descriptors it was given till then."""
    pgid, fd = int(argv[0]), int(argv[1])
    for sig in _FORWARDED:
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            if not os.read(fd, 1):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    end_group(pgid)
    return 0


# --- what failed -----------------------------------------------------------------------------

_ERROR_WORDS = re.compile(
    r"(Error|Exception|error:|failed|FAILED|CRITICAL|FATAL|refused|not found|No such file)"
)
# Meltano's console log: "<time> [<level>] <plugin or meltano> <message>", or (other Meltano
# versions) "<time> [<level>] <message> key=value ... name=<plugin> ... stdio=stderr"
_LINE = re.compile(r"^\S+\s+\[(?P<level>\w+)\s*\]\s+(?P<rest>.*)$")
_FIELDS = re.compile(r"(?:\s+\w+=\S*)+\s*$")
_NAME_FIELD = re.compile(r"\bname=(?P<name>[\w.-]+)")
# a singer-sdk log line inside a plugin's output: "<date> <time> | LEVEL | logger | message"
_SDK = re.compile(r"^\S+ \S+ \| (?P<level>\w+)\s*\| \S+\s*\| (?P<msg>.*)$")
_PLUGIN_FAILED = re.compile(r"\b(Extractor|Loader|Mappers?|Transformer)s? failed")
_GENERIC = ("Block run completed", "Run completed", "Run invocation could not be completed")
_KINDS = {"extractor": "tap-", "loader": "target-", "mapper": "map", "mappers": "map"}


def _parse(line: str) -> tuple[str, str, str] | None:
    """(level, source, message) of a Meltano log line: source is "meltano" or a plugin."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    level, rest = match["level"].lower(), match["rest"]
    if (field := _NAME_FIELD.search(rest)) is not None and _FIELDS.search(rest):
        source = field["name"] if "stdio=" in rest else "meltano"
        return level, source, _FIELDS.sub("", rest).strip()
    source, _, message = rest.partition(" ")
    return level, source, message.strip()


_EXC_TYPE = re.compile(r"\s*\bplugin_exc_type=(?P<value>\S+)")
_EXC_MESSAGE = re.compile(
    r"\s*\bplugin_exc_message=(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)"
)


def _structured_exception(message: str) -> str:
    """Meltano's rendering of a plugin's structured log (singer-sdk with the
    structured-logging capability) appends the exception as ``plugin_exc_message='...'
    plugin_exc_type=X``: one ``X: message`` instead."""
    kind = _EXC_TYPE.search(message)
    if kind is None:
        return message
    text = _EXC_MESSAGE.sub("", _EXC_TYPE.sub("", message)).strip()
    return f"{kind['value']}: {text}"


def _plugin_error(message: str) -> str | None:
    """The error a plugin's stderr line reports, if it reports one."""
    message = _structured_exception(message)
    if (sdk := _SDK.match(message)) is not None:
        return sdk["msg"].strip() if sdk["level"] in ("ERROR", "CRITICAL", "FATAL") else None
    if message.startswith(("Traceback", "File ", "raise ", "^", "~")) or not message:
        return None
    return message if _ERROR_WORDS.search(message) else None


def failure_cause(lines: Iterable[str]) -> str | None:
    """The cause of a failed ``meltano run``, from its log lines: the plugin that failed (the
    kind Meltano names, "Extractor failed"...) and its first error line (``tap-x: 'base_url'
    is a required property``, and how many more it logged), else Meltano's own first error."""
    errors: dict[str, list[str]] = {}
    seen: list[str] = []
    meltano_error: str | None = None
    failed_kind: str | None = None
    for line in lines:
        parsed = _parse(line)
        if parsed is None:
            continue
        level, source, message = parsed
        if source != "meltano":
            if source not in seen:
                seen.append(source)
            if (error := _plugin_error(message)) is not None:
                errors.setdefault(source, []).append(error)
        elif level in ("error", "critical"):
            if (kind := _PLUGIN_FAILED.search(message)) is not None:
                failed_kind = failed_kind or kind[1].lower()
            elif meltano_error is None and not message.startswith(_GENERIC):
                meltano_error = message
    if errors:
        prefix = _KINDS.get(failed_kind or "", "")
        chosen = [n for n in errors if prefix and n.startswith(prefix)] or list(errors)
        plugin = chosen[0]
        first, more = errors[plugin][0], len(errors[plugin]) - 1
        return f"{plugin}: {first}" + (f" (+{more} more error line(s))" if more else "")
    if failed_kind is not None:  # a plugin that died without a word: killed, out of memory
        prefix = _KINDS.get(failed_kind, "")
        plugin = next((n for n in seen if prefix and n.startswith(prefix)), failed_kind)
        return f"{plugin}: ended without an error message (killed?); Meltano: {failed_kind} failed"
    return meltano_error


# --- leftovers of a killed run ---------------------------------------------------------------


def sweep_config_files(root: Path, plugins: Iterable[str]) -> list[Path]:
    """Remove the config files Meltano generated for ``plugins`` and left behind
    (``.meltano/run/<plugin>/*.config.json``: a killed run never deletes them, and they hold
    the plugin's secrets). Call it only while holding the plugins' locks exclusively: no run
    of them is going on then. Returns what was removed."""
    removed = []
    for plugin in plugins:
        folder = root / ".meltano" / "run" / plugin
        if not folder.is_dir():
            continue
        for path in folder.glob("*.config.json"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def system_db(root: Path) -> Path | None:
    """Meltano's SQLite system database (``$MELTANO_DATABASE_URI`` or
    ``.meltano/meltano.db``); None when it is another database or does not exist."""
    uri = os.environ.get("MELTANO_DATABASE_URI")
    if not uri:
        path = root / ".meltano" / "meltano.db"
        return path if path.exists() else None
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    path = path if path.is_absolute() else root / path
    return path if path.exists() else None


@dataclass(frozen=True)
class MeltanoRun:
    id: int
    state_id: str
    started_at: str
    last_heartbeat_at: str | None
    trigger: str | None

    @property
    def by_hrsync(self) -> bool:
        return (self.trigger or "").startswith(TRIGGER)

    def valid_until(self) -> datetime | None:
        """When Meltano itself gives up on the run (its heartbeat check)."""
        beat = self.last_heartbeat_at or self.started_at
        try:
            at = datetime.fromisoformat(beat)
        except ValueError:
            return None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return at + MELTANO_HEARTBEAT


def running_meltano_runs(db: Path, state_ids: list[str]) -> list[MeltanoRun]:
    """Runs of ``state_ids`` that Meltano's system database marks ``RUNNING``."""
    if not state_ids:
        return []
    marks = ",".join("?" * len(state_ids))
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute(
                "SELECT id, job_name, started_at, last_heartbeat_at, trigger FROM runs "  # noqa: S608
                f"WHERE state='RUNNING' AND job_name IN ({marks}) ORDER BY id",
                state_ids,
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [MeltanoRun(*row) for row in rows]


def close_dead_meltano_runs(db: Path, state_ids: list[str]) -> list[MeltanoRun]:
    """Mark ``FAIL`` the runs of ``state_ids`` that ``hrsync run`` started
    (``trigger='hrsync run ...'``) and that Meltano still marks ``RUNNING``.

    Call it only while holding the job's plugin locks: every ``hrsync run`` of these state ids
    holds them until all of its processes are gone, so such a row belongs to a run that is
    over (killed before Meltano could close it). It is what Meltano itself does to a stale
    run (``Job.fail_stale``), without the five-minute wait. Runs started otherwise (a bare
    ``meltano run``) are left to Meltano. Returns the runs closed."""
    dead = [r for r in running_meltano_runs(db, state_ids) if r.by_hrsync]
    if not dead:
        return []
    ended = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    reason = json.dumps(
        {"error": "The process was killed: closed by `hrsync run`, which held its locks."}
    )
    conn = sqlite3.connect(db, timeout=30)
    try:
        with conn:
            for run in dead:
                conn.execute(
                    "UPDATE runs SET state='FAIL', ended_at=?, "
                    "payload=json_patch(COALESCE(payload, '{}'), ?) "
                    "WHERE id=? AND state='RUNNING'",
                    (ended, reason, run.id),
                )
    finally:
        conn.close()
    return dead


def wait_for_foreign_runs(
    db: Path,
    state_ids: list[str],
    deadline: float | None,
    on_wait: Callable[[MeltanoRun], None],
) -> MeltanoRun | None:
    """Wait while a run hrsync did not start (a bare ``meltano run``) is marked ``RUNNING``
    for one of ``state_ids`` and Meltano would refuse to start another; None once it ends or
    goes stale (Meltano then closes it itself), else the run still there at ``deadline``."""
    told: set[int] = set()
    while True:
        now = datetime.now(UTC)
        live = [
            r
            for r in running_meltano_runs(db, state_ids)
            if not r.by_hrsync and (r.valid_until() or now) > now
        ]
        if not live:
            return None
        for run in live:
            if run.id not in told:
                told.add(run.id)
                on_wait(run)
        if deadline is not None and time.monotonic() >= deadline:
            return live[0]
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(reaper_main(sys.argv[1:]))
