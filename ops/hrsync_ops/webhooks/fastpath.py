"""The webhook fast path: a job's own plugins, started before the event, run for what changed.

``hrsync webhooks serve --fast-path`` resolves, once at start, every plugin of the routed jobs'
tasks exactly as Meltano would run them: the configuration from ``meltano invoke --dump=config
<plugin>`` (for a mapping, Meltano's merge of its mapper's and its own), the extractor's catalog
from ``meltano invoke --dump=catalog`` (its ``select`` rules applied), and the executable in the
plugin's own Meltano virtualenv (``.meltano/<type>/<plugin>/venv``). Nothing is configured
twice.

Each plugin then gets one long-lived *zygote*: an interpreter that imports the plugin's console
script once (Python and singer-sdk start-up: most of a plugin's start-up, seconds of CPU) and
waits. When an event arrives the worker hands each zygote its arguments and the ends of the
``tap | mapper... | target`` pipes; the zygote forks a child that runs the plugin on them, so
every event gets fresh processes (nothing one run sets up is seen by the next) without an
interpreter start-up, and the zygotes are ready for the next event at once. A zygote that
ended is replaced in the background (its job's events run through Meltano until then).

What the tap reads: the job's normal extractor with its normal configuration, plus
``start_date`` = the start of the job's last successful ``hrsync run`` (the runs ledger) less
``margin``, and no state: every change the scheduled job has not yet seen, the event's person
among them (the join data map-hr needs too, e.g. a candidate created after that run). The tap
is given no state and the STATE it and the target emit is discarded, so Meltano's bookmarks are
untouched: the next scheduled run still extracts everything since its own bookmark, and the
targets' idempotent upserts (keyed on the source ids) write nothing twice. Without a
successful ``hrsync run`` on record, or when a target is configured to deactivate what a feed
does not list (``deactivate_missing_users``: a partial feed would look like mass leavers), the
fast path declines and the job runs through Meltano as before.

Tasks that differ only in their loader (``hris-to-iam``: the same extractor and mappers into
target-scim and into target-ldap) share one run of that extractor and those mappers per event:
its output is copied to each loader (a loader that ends early stops getting it; the others
still get all of it). Each loader still gets every record and its own exit code, audit lines
and locks; the extract, its requests and the mapping are done once, not once per loader (what
``meltano run`` does, block by block).

The same environment as ``hrsync run`` (``HRSYNC_INTEGRATION=<job>``, the audit log and the
dead-letter store under the project root, the project's ``.env``) and the plugin names Meltano
exports (``MELTANO_PROJECT_ROOT``, ``MELTANO_EXTRACTOR_NAME``, the loader's
``MELTANO_LOADER_NAME``) give the same audit entries and dead letters. The fast run holds the
job's loaders' ``hrsync run`` locks (and its mappers' shared locks), so it never writes beside
a scheduled run of the same target.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from hrsync.audit import DEFAULT_PATH as AUDIT_DEFAULT
from hrsync.audit import ENV_PATH as AUDIT_ENV
from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.errors import ConfigError
from hrsync_ops.ops import MeltanoProject, meltano_command, safe_load, under_root
from hrsync_ops.runs import DEFAULT_PATH as RUNS_DEFAULT
from hrsync_ops.runs import ENV_PATH as RUNS_ENV
from hrsync_ops.runs import PluginLocks, RunLedger
from hrsync_ops.webhooks import trace

log = logging.getLogger("hrsync_ops.webhooks")

KINDS = {"extractors": "extractor", "mappers": "mapper", "loaders": "loader"}
#: the zygote: imports a console script once and says so ("R" on its control socket), then,
#: for each event, receives the plugin's arguments (one JSON message) with the descriptors of
#: its stdin, stdout and stderr, and forks a child that runs the plugin on them, answering
#: "P <pid>" and, when the child has ended, "X <exit code> <CPU seconds>". Each child starts
#: from the imported state (no interpreter or singer-sdk start-up per event) and is otherwise
#: a fresh process: nothing one run sets up is seen by the next. The modules a run imported
#: lazily (phonenumbers, say) the zygote imports after it, so the next run finds them loaded.
#: A console script's optional ``warm(argv)`` (hrsync.cli.prefork) runs once before the first
#: fork. EOF on the socket ends the zygote. With $HRSYNC_FAST_PATH_PROFILE set to a folder, each
#: child leaves a cProfile there.
ZYGOTE = r"""
import atexit, importlib, json, os, socket, sys
from importlib.metadata import entry_points
name, imported = sys.argv[1], sys.argv[3]
ctl = socket.socket(fileno=int(sys.argv[2]))
main = next(iter(entry_points(group="console_scripts", name=name))).load()
warm = getattr(main, "warm", None)  # hrsync.cli.prefork: what every run derives, once
if callable(warm):
    try:
        warm(json.loads(sys.argv[4]))
    except Exception as exc:  # each run does it itself then
        print(f"{name}: warm-up failed: {exc!r}", file=sys.stderr)
ctl.send(b"R")
while True:
    try:
        msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 3)
    except OSError:
        break
    if not msg:
        break
    before = set(sys.modules)
    pid = os.fork()
    if pid == 0:
        ctl.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = [name, *json.loads(msg)]
        def note_imports():  # what the run imported lazily: the zygote imports it for the next
            with open(imported, "w") as out:
                out.write("\n".join(sorted(set(sys.modules) - before)))
        atexit.register(note_imports)
        folder = os.environ.get("HRSYNC_FAST_PATH_PROFILE")
        if folder:  # cProfile of each run, for profiling the fast path
            import cProfile
            profile = cProfile.Profile()
            out = os.path.join(folder, f"{name}-{os.getpid()}.prof")
            atexit.register(lambda: (profile.disable(), profile.dump_stats(out)))
            profile.enable()
        sys.exit(main())
    for fd in fds:
        os.close(fd)
    ctl.send(b"P %d" % pid)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if os.path.exists(imported):
        with open(imported) as lines:
            for module in lines.read().split():
                if module not in sys.modules and not module.startswith("__"):
                    try:
                        importlib.import_module(module)
                    except Exception:  # not importable on its own: the child imports it
                        pass
        os.unlink(imported)
    ctl.send(b"X %d %.3f" % (code, usage.ru_utime + usage.ru_stime))
"""
MARGIN = timedelta(minutes=5)
LOCK_WAIT = 600.0
RUN_TIMEOUT = 600.0


class FastPathUnavailable(Exception):
    """The fast path cannot run this job (now): the job runs through Meltano instead."""


@dataclass(frozen=True)
class Plugin:
    """One plugin of a task, resolved as Meltano would run it."""

    name: str  # the name in the task (a mapping name for a mapper)
    kind: str  # extractor | mapper | loader
    python: Path  # the interpreter of the plugin's virtualenv
    executable: str  # its console script
    config: Mapping[str, Any]
    catalog: Mapping[str, Any] | None = None


@dataclass
class _Zygote:
    """One plugin's warm process: imported once, it forks a child to run each event."""

    plugin: Plugin
    proc: subprocess.Popen[bytes]
    ctl: socket.socket
    ready: bool = False

    def alive(self) -> bool:
        return self.ready and self.proc.poll() is None

    def close(self) -> None:
        self.ctl.close()  # EOF: the zygote ends (after a child it still waits for)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class _Child:
    """One plugin run for one event: the zygote's child."""

    zygote: _Zygote
    log: Path
    pid: int | None = None


@dataclass
class _Launch:
    """One event's pipeline for a group of tasks that share all but their loader: the shared
    plugins once, then each task's loader (more than one: fed by ``relay``)."""

    children: list[_Child]
    outs: list[IO[bytes]]  # each loader's stdout (STATE lines)
    relay: threading.Thread | None = None


@dataclass
class FastJob:
    """A job's tasks, resolved, with one warm zygote per plugin ready for every event."""

    job: str
    tasks: list[list[Plugin]]
    root: Path
    env: dict[str, str]
    workdir: Path
    ledger: RunLedger
    locks_dir: Path
    loaders: list[str]
    mappers: list[str]
    margin: timedelta = MARGIN
    lock_wait: float = LOCK_WAIT
    _zygotes: list[list[_Zygote]] | None = None
    #: task indexes whose plugins, all but the loader, are the same: run once per event
    _groups: list[list[int]] = field(default_factory=list)
    _warming: threading.Thread | None = None
    _files: dict[str, list[str]] = field(default_factory=dict)
    _runs: int = 0
    _spawned: int = 0

    # --- warm processes ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Write each plugin's config (and catalog) file, 0600 in a 0700 folder."""
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._groups = share_prefixes(self.tasks)
        for t, task in enumerate(self.tasks):
            for p, plugin in enumerate(task):
                base = self.workdir / f"{t}-{p}-{plugin.name}"
                files = ["--config", str(_private(base.with_suffix(".config.json"), plugin.config))]
                if plugin.catalog is not None:
                    catalog = _private(base.with_suffix(".catalog.json"), plugin.catalog)
                    files += ["--catalog", str(catalog)]
                self._files[f"{t}-{p}"] = files
        self.warm_up()

    def warm_up(self) -> None:
        """Start, in the background, every zygote that is not running: all of them at first,
        a replacement for one that ended later (:meth:`run` waits for it)."""
        if self._warming is not None and self._warming.is_alive():
            return
        self._warming = threading.Thread(
            target=self._start_missing, name=f"fast-path-warm-{self.job}", daemon=True
        )
        self._warming.start()

    def _start_missing(self) -> None:
        old = self._zygotes
        zygotes: list[list[_Zygote]] = []
        started: list[_Zygote] = []
        first = {t: group[0] for group in self._groups for t in group}
        for t, task in enumerate(self.tasks):
            row: list[_Zygote] = []
            for p, plugin in enumerate(task):
                if first.get(t, t) != t and p < len(task) - 1:
                    row.append(zygotes[first[t]][p])  # shared with the group's first task
                    continue
                zygote = old[t][p] if old else None
                if zygote is None or zygote.proc.poll() is not None:
                    if zygote is not None:
                        zygote.close()
                    zygote = self._spawn(t, p, plugin)
                    started.append(zygote)
                row.append(zygote)
            zygotes.append(row)
        for zygote in started:  # each has imported its plugin (or ended: b"")
            zygote.ready = zygote.ctl.recv(16) == b"R"
        self._zygotes = zygotes

    def _spawn(self, t: int, p: int, plugin: Plugin) -> _Zygote:
        self._spawned += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_path = self.workdir / f"zygote-{self._spawned}-{t}-{p}-{plugin.name}.log"
        imports = str(log_path.with_suffix(".imports"))  # what each run imported lazily
        task = self.tasks[t]
        argv = [str(plugin.python), "-c", ZYGOTE, plugin.executable, str(theirs.fileno()), imports,
                json.dumps(self._files[f"{t}-{p}"])]  # fmt: skip
        with log_path.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.root,
                env=self.env | _meltano_names(self.root, task, plugin),
                pass_fds=(theirs.fileno(),),
            )
        theirs.close()
        return _Zygote(plugin, proc, ours)

    @property
    def spawned(self) -> int:
        """How many zygotes this job has started (one per plugin, then replacements)."""
        return self._spawned

    @property
    def warm(self) -> bool:
        """Whether the next event finds every plugin of the job imported and waiting."""
        if self._warming is None or self._warming.is_alive() or not self._zygotes:
            return False
        return all(z.alive() for task in self._zygotes for z in task)

    def stop(self) -> None:
        if self._warming is not None:
            self._warming.join()
        unique = {id(z): z for task in self._zygotes or [] for z in task}
        for zygote in unique.values():
            zygote.close()
        self._zygotes = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- one event --------------------------------------------------------------------------

    def since(self) -> datetime:
        last = self.ledger.last_success(self.job)
        if last is None:
            raise FastPathUnavailable(
                f"no successful 'hrsync run {self.job}' on record: the fast path starts from "
                "the last scheduled run"
            )
        return datetime.fromisoformat(last.started_at) - self.margin

    def run(self) -> tuple[int, str]:
        """Run every task of the job once for what changed since the last scheduled run."""
        since = self.since()
        locks = PluginLocks(
            self.locks_dir, self.loaders, f"{self.job} (webhook fast path)", shared=self.mappers
        )
        trace.stage("locking", job=self.job)
        busy = locks.acquire(self.lock_wait)
        if busy is not None:
            raise FastPathUnavailable(f"{busy} still in use after {self.lock_wait:.0f} s")
        try:
            trace.stage("locked", job=self.job)
            if self._warming is not None:
                self._warming.join()
            zygotes = self._zygotes or []
            dead = [z.plugin.name for task in zygotes for z in task if not z.alive()]
            if not zygotes or dead:
                self.warm_up()  # replacements, for the next event
                raise FastPathUnavailable(f"warm plugin(s) {dead} ended: see their logs")
            self._runs += 1
            event = _private(
                self.workdir / f"event-{self._runs}.json", {"start_date": since.isoformat()}
            )
            launched: list[_Launch] = []
            try:
                for group in self._groups:
                    launched.append(self._launch(group, zygotes, event))
            except OSError as exc:  # a zygote ended between the check and its arguments
                for launch in launched:
                    _finish(launch)
                self.warm_up()
                raise FastPathUnavailable(f"a warm plugin could not be started: {exc}") from exc
            results = [_finish(launch) for launch in launched]
        finally:
            locks.release()
        event.unlink()
        for launch, (code, _) in zip(launched, results, strict=True):
            for child in launch.children:
                if trace.enabled():  # the plugins' own timestamps, for the profile
                    trace.stage("log", job=self.job, plugin=child.zygote.plugin.name,
                                path=str(child.log))  # fmt: skip
                elif code == 0:  # a failed task's logs stay (in the workdir) for the operator
                    child.log.unlink(missing_ok=True)
        failed = [r for r in results if r[0] != 0]
        if failed:
            return failed[0]
        shared = len(self.tasks) - len(self._groups)
        note = f" ({shared} sharing another's extract)" if shared else ""
        return 0, f"fast path: {len(self.tasks)} task(s){note} since {since.isoformat()}"

    def _launch(self, group: list[int], zygotes: list[list[_Zygote]], event: Path) -> _Launch:
        """Start one group's pipeline: each zygote forks its plugin onto the pipes, the
        extractor first, the plugins the group's tasks share once, then each task's loader (if
        a later one cannot start, the earlier ones see a closed pipe and end, and nothing
        reaches the loader)."""
        children: list[_Child] = []
        first, last = group[0], len(self.tasks[group[0]]) - 1
        stdin = os.open(os.devnull, os.O_RDONLY)  # the extractor reads nothing
        outs: list[IO[bytes]] = []
        sinks: list[int] = []
        try:
            for p, zygote in enumerate(zygotes[first][:last]):
                fd, stdin = stdin, -1  # _fork closes it
                stdin = self._fork(zygote, first, p, fd, event, children)
            if len(group) == 1:
                fd, stdin = stdin, -1
                outs.append(os.fdopen(self._fork(zygotes[first][last], first, last, fd, event,
                                                 children), "rb"))  # fmt: skip
                return _Launch(children, outs)
            for t in group:  # one pipe per loader, fed from the shared output by a relay
                read, write = os.pipe()
                sinks.append(write)
                outs.append(os.fdopen(self._fork(zygotes[t][last], t, last, read, event,
                                                 children), "rb"))  # fmt: skip
        except BaseException:
            for fd in [stdin, *sinks]:
                if fd >= 0:
                    os.close(fd)
            for out in outs:
                out.close()
            for child in children:
                _wait(child, 30)
            raise
        relay = threading.Thread(target=_relay, args=(stdin, sinks), daemon=True,
                                 name=f"fast-path-relay-{self.job}")  # fmt: skip
        relay.start()
        return _Launch(children, outs, relay)

    def _fork(
        self, zygote: _Zygote, t: int, p: int, stdin: int, event: Path, children: list[_Child]
    ) -> int:
        """Have ``zygote`` fork its plugin reading ``stdin`` (closed here); the read end of
        the new process's stdout."""
        plugin = zygote.plugin
        read_next, write = os.pipe()
        log_path = self.workdir / f"{self._runs}-{t}-{p}-{plugin.name}.log"
        child = _Child(zygote, log_path)
        try:
            err = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                argv = json.dumps(self._argv(t, p, plugin, event)).encode()
                socket.send_fds(zygote.ctl, [argv], [stdin, write, err])
                trace.stage("sent", job=self.job, task=t, plugin=plugin.name)
            finally:
                os.close(err)
            children.append(child)
            zygote.ctl.settimeout(30)
            answer = zygote.ctl.recv(64)
            if not answer.startswith(b"P "):
                raise OSError(f"{plugin.name}: no process started ({answer!r})")
        except BaseException:
            os.close(read_next)
            raise
        finally:
            os.close(write)
            os.close(stdin)
        child.pid = int(answer[2:])
        trace.stage("forked", job=self.job, task=t, plugin=plugin.name, pid=child.pid)
        return read_next

    def _argv(self, t: int, p: int, plugin: Plugin, event: Path) -> list[str]:
        files = list(self._files[f"{t}-{p}"])
        if plugin.kind == "extractor":
            files[2:2] = ["--config", str(event)]  # after the plugin's own: overrides start_date
        return files


def share_prefixes(tasks: list[list[Plugin]]) -> list[list[int]]:
    """Task indexes grouped by what they run before their loader (the same plugins, by name,
    in the same order): each group's shared plugins run once per event."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for t, task in enumerate(tasks):
        groups.setdefault(tuple(p.name for p in task[:-1]), []).append(t)
    return list(groups.values())


def _relay(source: int, sinks: list[int]) -> None:
    """Copy ``source`` to every sink until it ends; a sink whose reader ended (its loader
    failed: its exit code says so) is dropped, the others get everything. Closes them all."""
    live = list(sinks)
    try:
        while live:
            chunk = os.read(source, 1 << 16)
            if not chunk:
                break
            for fd in list(live):
                view = memoryview(chunk)
                try:
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError:
                    live.remove(fd)
                    os.close(fd)
    finally:
        os.close(source)  # no reader left: the shared plugins see a closed pipe, as before
        for fd in live:
            os.close(fd)


def _meltano_names(root: Path, task: list[Plugin], plugin: Plugin) -> dict[str, str]:
    """What ``meltano run`` tells a plugin of its block (the audit log and dead letters read
    them): the project root, the block's extractor, and to the loader its own name."""
    names = {"MELTANO_PROJECT_ROOT": str(root), "MELTANO_EXTRACTOR_NAME": task[0].name}
    if plugin.kind == "loader":
        names["MELTANO_LOADER_NAME"] = plugin.name
    return names


def _wait(child: _Child, timeout: float) -> int:
    """The exit code of ``child`` (killed after ``timeout`` s; -1 if its zygote ended)."""
    ctl = child.zygote.ctl
    ctl.settimeout(timeout)
    try:
        answer = ctl.recv(64)
    except TimeoutError:
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        ctl.settimeout(30)
        try:
            answer = ctl.recv(64)
        except TimeoutError:
            answer = b""
    words = answer.split()
    code = int(words[1]) if len(words) == 3 and words[0] == b"X" else -1
    cpu = float(words[2]) if code != -1 else None
    trace.stage("exited", plugin=child.zygote.plugin.name, pid=child.pid, code=code, cpu=cpu)
    return code


def _finish(launch: _Launch) -> tuple[int, str]:
    counts = [0] * len(launch.outs)

    def drain(i: int) -> None:  # each loader's stdout at once: none waits on another's
        with launch.outs[i] as out:
            counts[i] = len(out.read().splitlines())

    readers = [threading.Thread(target=drain, args=(i,), daemon=True) for i in range(len(counts))]
    for reader in readers[1:]:
        reader.start()
    drain(0)
    for reader in readers[1:]:
        reader.join()
    if launch.relay is not None:
        launch.relay.join()
    states = sum(counts)
    codes = [_wait(child, RUN_TIMEOUT) for child in launch.children]
    for code, child in zip(codes, launch.children, strict=True):
        if code != 0:
            tail = child.log.read_text("utf-8", "replace")[-2000:]
            return code, f"{child.log.name.removesuffix('.log')} exited {code}: {tail}"
    return 0, f"{states} state line(s) discarded"


def _private(path: Path, content: Any) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(content, fh)
    return path


# --- resolution -----------------------------------------------------------------------------


def _dump(root: Path, env: Mapping[str, str], what: str, plugin: str) -> dict[str, Any]:
    proc = subprocess.run(
        [*meltano_command(), "invoke", f"--dump={what}", plugin],
        cwd=root,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigError(f"meltano invoke --dump={what} {plugin} failed: {proc.stderr[-1500:]}")
    value = json.loads(proc.stdout)
    if not isinstance(value, dict):
        raise ConfigError(f"meltano invoke --dump={what} {plugin}: not a JSON object")
    return value


def _plugin_table(root: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (kind, definition) for every plugin and mapping in meltano.yml."""
    data = safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
    table: dict[str, tuple[str, dict[str, Any]]] = {}
    for section, kind in KINDS.items():
        for plugin in (data.get("plugins") or {}).get(section) or []:
            table[str(plugin["name"])] = (kind, plugin)
            for mapping in plugin.get("mappings") or []:
                table[str(mapping["name"])] = ("mapping", {**mapping, "_mapper": plugin})
    return table


def _venv(
    root: Path, kind: str, name: str, table: Mapping[str, tuple[str, dict[str, Any]]]
) -> Path:
    while True:
        venv = root / ".meltano" / f"{kind}s" / name / "venv"
        if venv.exists():
            return venv
        parent = table.get(name, ("", {}))[1].get("inherit_from")
        if not parent:
            raise ConfigError(f"{name} is not installed ({venv} missing): run meltano install")
        name = str(parent)


def resolve_job(
    root: Path, job: str, env: Mapping[str, str]
) -> tuple[list[list[Plugin]], list[str], list[str]]:
    """The job's tasks as :class:`Plugin` lists, and its loaders and mapper plugins."""
    project = MeltanoProject.load(root)
    if job not in project.jobs:
        raise ConfigError(f"no job {job!r} in meltano.yml")
    table = _plugin_table(root)
    words = [task.split() for task in project.jobs[job]]
    for task, names in zip(project.jobs[job], words, strict=True):
        missing = [w for w in names if w not in table]
        if missing:
            raise ConfigError(f"job {job}: task {task!r} names no plugin {missing[0]!r}")
    dumps: dict[tuple[str, str], Any] = {}
    for name in dict.fromkeys(w for names in words for w in names):
        dumps[("config", name)] = None  # a mapping's: its mapper's with its own merged in
        if table[name][0] == "extractor":
            dumps[("catalog", name)] = None
    with ThreadPoolExecutor(max_workers=4) as pool:  # each is a Meltano start-up
        futures = {key: pool.submit(_dump, root, env, *key) for key in dumps}
        dumps = {key: future.result() for key, future in futures.items()}
    tasks: list[list[Plugin]] = []
    loaders: list[str] = []
    mappers: list[str] = []
    for task, names in zip(project.jobs[job], words, strict=True):
        plugins: list[Plugin] = []
        for word in names:
            kind, spec = table[word]
            if kind == "mapping":
                mapper = spec["_mapper"]
                name = str(mapper["name"])
                config = dumps[("config", word)]
                python = _venv(root, "mapper", name, table) / "bin" / "python"
                exe = str(mapper.get("executable") or name)
                plugins.append(Plugin(word, "mapper", python, exe, config))
                mappers.append(name)
                continue
            config = dumps[("config", word)]
            catalog = dumps.get(("catalog", word))
            parent = table.get(str(spec.get("inherit_from")), ("", {}))[1]
            exe = str(spec.get("executable") or parent.get("executable") or word)
            python = _venv(root, kind, word, table) / "bin" / "python"
            if kind == "loader":
                if config.get("deactivate_missing_users"):
                    raise FastPathUnavailable(
                        f"{word} deactivates accounts absent from its input "
                        "(deactivate_missing_users): it needs the full feed of a scheduled run"
                    )
                loaders.append(word)
            plugins.append(Plugin(word, kind, python, exe, config, catalog))
        if not plugins or plugins[0].kind != "extractor" or plugins[-1].kind != "loader":
            raise ConfigError(f"job {job}: task {task!r} is not extractor ... loader")
        tasks.append(plugins)
    return tasks, sorted(set(loaders)), sorted(set(mappers))


def job_env(root: Path, job: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What ``hrsync run`` gives a job's plugins, with the project's ``.env`` as Meltano adds."""
    from dotenv import dotenv_values

    env = dict(os.environ if base is None else base)
    dotenv = root / ".env"
    if dotenv.exists():
        env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(
        {
            "HRSYNC_INTEGRATION": job,
            AUDIT_ENV: str(under_root(root, AUDIT_ENV, AUDIT_DEFAULT)),
            DLQ_ENV: str(under_root(root, DLQ_ENV, DLQ_DEFAULT)),
        }
    )
    return env


def start_fast_job(root: Path, job: str, *, margin: timedelta = MARGIN) -> FastJob:
    """Resolve ``job`` and start its first warm pipeline."""
    env = job_env(root, job)
    # ``meltano invoke --dump`` writes the plugin's run files (.meltano/run/<plugin>/) that a
    # scheduled run of it uses at the same time: resolve under that run's locks
    locks = PluginLocks(
        root / ".hrsync" / "locks",
        MeltanoProject.load(root).exclusive_plugins(job),
        f"{job} (webhook fast path set-up)",
    )
    busy = locks.acquire(LOCK_WAIT)
    if busy is not None:
        raise FastPathUnavailable(f"{busy} still in use after {LOCK_WAIT:.0f} s")
    try:
        tasks, loaders, mappers = resolve_job(root, job, env)
    finally:
        locks.release()
    fast = FastJob(
        job=job,
        tasks=tasks,
        root=root,
        env=env,
        workdir=Path(tempfile.mkdtemp(prefix=f"hrsync-fast-{job}-")),
        ledger=RunLedger(under_root(root, RUNS_ENV, RUNS_DEFAULT)),
        locks_dir=root / ".hrsync" / "locks",
        loaders=loaders,
        mappers=mappers,
        margin=margin,
    )
    fast.prepare()
    return fast


Runner = Callable[[str], tuple[int, str]]


class FastPathRunner:
    """The scheduler's runner: a job's fast path once it is ready, else (and whenever it
    declines or fails) ``fallback``: the job through Meltano."""

    def __init__(self, fallback: Runner) -> None:
        self.fallback = fallback
        self.fast: dict[str, FastJob] = {}
        self.declined: dict[str, str] = {}
        self.runs: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._resolving: threading.Thread | None = None

    def start(self, root: Path, jobs: list[str], margin: timedelta = MARGIN) -> None:
        """Resolve and warm ``jobs`` in the background (their events run ``fallback`` until
        then): the receiver answers from its first second."""

        def resolve() -> None:
            for job in jobs:
                try:
                    fast = start_fast_job(root, job, margin=margin)
                except (ConfigError, FastPathUnavailable) as exc:
                    log.warning("%s: no fast path (%s): its events run the job", job, exc)
                    with self._lock:
                        self.declined[job] = str(exc)[-300:]
                    continue
                with self._lock:
                    self.fast[job] = fast
                log.info("%s: fast path ready", job)

        self._resolving = threading.Thread(target=resolve, name="fast-path-resolve", daemon=True)
        self._resolving.start()

    def __call__(self, job: str) -> tuple[int, str]:
        with self._lock:
            fast = self.fast.get(job)
        if fast is not None:
            started = time.monotonic()
            try:
                code, output = fast.run()
            except FastPathUnavailable as exc:
                code, output = -1, str(exc)
            if code == 0:
                with self._lock:
                    self.runs[job] = self.runs.get(job, 0) + 1
                log.info("%s: fast path done in %.2f s (%s)", job, time.monotonic() - started,
                         output)  # fmt: skip
                return code, output
            log.warning("%s: fast path did not complete (%s): running the job", job, output[-500:])
            with self._lock:
                self.fallbacks[job] = self.fallbacks.get(job, 0) + 1
        return self.fallback(job)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "ready": sorted(self.fast),
                "warm": sorted(job for job, fast in self.fast.items() if fast.warm),
                "declined": dict(self.declined),
                "runs": dict(self.runs),
                "fallbacks": dict(self.fallbacks),
                # warm processes started per job: one per plugin, then only replacements
                "spawned": {job: fast.spawned for job, fast in self.fast.items()},
            }

    def stop(self) -> None:
        if self._resolving is not None:
            self._resolving.join()
        with self._lock:
            fast, self.fast = self.fast, {}
        for job in fast.values():
            job.stop()
