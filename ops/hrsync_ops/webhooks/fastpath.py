"""The webhook fast path: a job's own plugins, started before the event, run for what changed.

``hrsync webhooks serve --fast-path`` resolves, once at start, every plugin of the routed jobs'
tasks exactly as Meltano would run them: the configuration from ``meltano invoke --dump=config
<plugin>`` (for a mapping, Meltano's merge of its mapper's and its own), the extractor's catalog
from ``meltano invoke --dump=catalog`` (its ``select`` rules applied), and the executable in the
plugin's own Meltano virtualenv (``.meltano/<type>/<plugin>/venv``). Nothing is configured
twice.

Each plugin process is then started *warm*: its interpreter imports the plugin's console
script (singer-sdk and all: most of a plugin's start-up) and waits for one line on stdin. When
an event arrives the worker sends each process its arguments and the processes run as one
``tap | mapper... | target`` pipeline, then a fresh warm set is started for the next event.

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

The same environment as ``hrsync run`` (``HRSYNC_INTEGRATION=<job>``, the audit log and the
dead-letter store under the project root, the project's ``.env``) and the plugin names Meltano
exports (``MELTANO_PROJECT_ROOT``, ``MELTANO_EXTRACTOR_NAME``, the loader's
``MELTANO_LOADER_NAME``) give the same audit entries and dead letters. The fast run holds the
job's loaders' ``hrsync run`` locks (and its mappers' shared locks), so it never writes beside
a scheduled run of the same target.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
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

import yaml

from hrsync.audit import DEFAULT_PATH as AUDIT_DEFAULT
from hrsync.audit import ENV_PATH as AUDIT_ENV
from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.errors import ConfigError
from hrsync_ops.ops import MeltanoProject, meltano_command, under_root
from hrsync_ops.runs import DEFAULT_PATH as RUNS_DEFAULT
from hrsync_ops.runs import ENV_PATH as RUNS_ENV
from hrsync_ops.runs import PluginLocks, RunLedger

log = logging.getLogger("hrsync_ops.webhooks")

KINDS = {"extractors": "extractor", "mappers": "mapper", "loaders": "loader"}
#: the warm stub: imports a console script, says so (a byte on the descriptor named by its
#: second argument), waits for its argv (one JSON line on fd 0, read byte by byte so nothing
#: after it is consumed), then runs it; EOF instead of that line ends it quietly
STUB = r"""
import json, os, sys
from importlib.metadata import entry_points
name = sys.argv[1]
main = next(iter(entry_points(group="console_scripts", name=name))).load()
os.write(int(sys.argv[2]), b"."); os.close(int(sys.argv[2]))
line = bytearray()
while not line.endswith(b"\n"):
    byte = os.read(0, 1)
    if not byte:
        sys.exit(0)
    line += byte
sys.argv = [name, *json.loads(line)]
sys.exit(main())
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
class _Warm:
    """One task's processes, started and waiting for their arguments."""

    procs: list[subprocess.Popen[bytes]]
    triggers: list[int]  # per process: the descriptor its first line is written to
    out: IO[bytes]  # the target's stdout (STATE lines)
    logs: list[Path]


@dataclass
class FastJob:
    """A job's tasks, resolved, with one warm pipeline per task ready for the next event."""

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
    _warm: list[_Warm] | None = None
    _warming: threading.Thread | None = None
    _files: dict[str, list[str]] = field(default_factory=dict)
    _runs: int = 0
    _sets: int = 0

    # --- warm processes ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Write each plugin's config (and catalog) file, 0600 in a 0700 folder."""
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        """Start the next warm set in the background (:meth:`run` waits for it)."""
        self._warming = threading.Thread(
            target=self._start_all, name=f"fast-path-warm-{self.job}", daemon=True
        )
        self._warming.start()

    def _start_all(self) -> None:
        self._sets += 1
        self._warm = [self._start(t, task) for t, task in enumerate(self.tasks)]

    def _start(self, t: int, task: list[Plugin]) -> _Warm:
        procs: list[subprocess.Popen[bytes]] = []
        triggers: list[int] = []
        logs: list[Path] = []
        readiness: list[int] = []
        read, trigger = os.pipe()  # the extractor's stdin carries only its trigger line
        for p, plugin in enumerate(task):
            last = p == len(task) - 1
            if not last:  # the pipe to the next process; the worker keeps a writer on it too,
                # to put that process's trigger line in ahead of anything this one writes
                next_read, writer = os.pipe()
                next_trigger = os.dup(writer)
            log_path = self.workdir / f"{self._sets}-{t}-{p}-{plugin.name}.log"
            logs.append(log_path)
            ready, said = os.pipe()
            with log_path.open("wb") as err:
                proc = subprocess.Popen(
                    [str(plugin.python), "-c", STUB, plugin.executable, str(said)],
                    stdin=read,
                    stdout=subprocess.PIPE if last else writer,
                    stderr=err,
                    cwd=self.root,
                    env=self.env | _meltano_names(self.root, task, plugin),
                    pass_fds=(said,),
                )
            os.close(read)
            os.close(said)
            readiness.append(ready)
            procs.append(proc)
            triggers.append(trigger)
            if not last:
                os.close(writer)
                read, trigger = next_read, next_trigger
        for ready in readiness:  # each has imported its plugin (or ended: b"")
            os.read(ready, 1)
            os.close(ready)
        assert procs[-1].stdout is not None
        return _Warm(procs, triggers, procs[-1].stdout, logs)

    @property
    def warm(self) -> bool:
        """Whether the next event finds every process of the job started and imported."""
        return self._warming is not None and not self._warming.is_alive() and bool(self._warm)

    def stop(self) -> None:
        if self._warming is not None:
            self._warming.join()
        for warm in self._warm or []:
            _cancel(warm)
        self._warm = None
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
        busy = locks.acquire(self.lock_wait)
        if busy is not None:
            raise FastPathUnavailable(f"{busy} still in use after {self.lock_wait:.0f} s")
        try:
            if self._warming is not None:
                self._warming.join()
            warm, self._warm = self._warm or [], None
            self._runs += 1
            event = _private(
                self.workdir / f"event-{self._runs}.json", {"start_date": since.isoformat()}
            )
            dead = [
                plugin.name
                for w, task in zip(warm, self.tasks, strict=False)
                for proc, plugin in zip(w.procs, task, strict=True)
                if proc.poll() is not None
            ]
            if len(warm) != len(self.tasks) or dead:
                for w in warm:
                    _cancel(w)
                raise FastPathUnavailable(f"warm plugin(s) {dead} ended early: see their logs")
            try:
                for t, (w, task) in enumerate(zip(warm, self.tasks, strict=True)):
                    argvs = [self._argv(t, p, plugin, event) for p, plugin in enumerate(task)]
                    _trigger(w, argvs)
            except OSError as exc:  # a process died between the check and its trigger
                for w in warm:
                    _cancel(w)
                raise FastPathUnavailable(f"a warm plugin could not be started: {exc}") from exc
            results = [_finish(w) for w in warm]
        finally:
            locks.release()
            self.warm_up()
        event.unlink()
        for w, (code, _) in zip(warm, results, strict=True):
            if code == 0:  # a failed task's logs stay (in the workdir) for the operator
                for path in w.logs:
                    path.unlink(missing_ok=True)
        failed = [r for r in results if r[0] != 0]
        if failed:
            return failed[0]
        return 0, f"fast path: {len(results)} task(s) since {since.isoformat()}"

    def _argv(self, t: int, p: int, plugin: Plugin, event: Path) -> list[str]:
        files = list(self._files[f"{t}-{p}"])
        if plugin.kind == "extractor":
            files[2:2] = ["--config", str(event)]  # after the plugin's own: overrides start_date
        return files


def _meltano_names(root: Path, task: list[Plugin], plugin: Plugin) -> dict[str, str]:
    """What ``meltano run`` tells a plugin of its block (the audit log and dead letters read
    them): the project root, the block's extractor, and to the loader its own name."""
    names = {"MELTANO_PROJECT_ROOT": str(root), "MELTANO_EXTRACTOR_NAME": task[0].name}
    if plugin.kind == "loader":
        names["MELTANO_LOADER_NAME"] = plugin.name
    return names


def _trigger(warm: _Warm, argvs: list[list[str]]) -> None:
    """Send each process its arguments, downstream first (a mapper's or target's trigger line
    must be in its stdin pipe before anything its upstream writes)."""
    for i in reversed(range(len(warm.triggers))):
        fd = warm.triggers.pop(i)
        try:
            os.write(fd, json.dumps(argvs[i]).encode() + b"\n")
        finally:
            os.close(fd)


def _cancel(warm: _Warm) -> None:
    for fd in warm.triggers:
        os.close(fd)  # EOF before a trigger line: the stub exits 0
    warm.triggers = []
    for proc in warm.procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    warm.out.close()


def _finish(warm: _Warm) -> tuple[int, str]:
    states = warm.out.read().splitlines()
    warm.out.close()
    codes = []
    for proc in warm.procs:
        try:
            codes.append(proc.wait(timeout=RUN_TIMEOUT))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    for code, path in zip(codes, warm.logs, strict=True):
        if code != 0:
            tail = path.read_text("utf-8", "replace")[-2000:]
            return code, f"{path.name.removesuffix('.log')} exited {code}: {tail}"
    return 0, f"{len(states)} state line(s) discarded"


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
    data = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
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
            }

    def stop(self) -> None:
        if self._resolving is not None:
            self._resolving.join()
        with self._lock:
            fast, self.fast = self.fast, {}
        for job in fast.values():
            job.stop()
