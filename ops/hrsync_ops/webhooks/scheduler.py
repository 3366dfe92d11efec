"""Debounced job runs: events within ``window`` seconds coalesce into one run per job; events
that arrive while that job runs get exactly one follow-up run; a failed run is retried with
exponential backoff (its events stay pending in the store, so a restart retries them too).

A run covers every pending trigger of the job up to the newest one seen when it *started*:
anything that arrives later is newer than what the run read and gets the follow-up run.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hrsync_ops.webhooks import trace
from hrsync_ops.webhooks.store import EventStore

log = logging.getLogger("hrsync_ops.webhooks")

Runner = Callable[[str], tuple[int, str]]


def hrsync_run_available() -> bool:
    """Whether this hrsync has the ``hrsync run <job>`` command."""
    from hrsync_ops.cli import COMMANDS

    return "hrsync_ops.commands.run" in COMMANDS


def default_command() -> str:
    """``hrsync run {job}`` when that command exists, else ``meltano run {job}``."""
    if hrsync_run_available():
        return "hrsync run {job}"
    return "meltano run {job}"


def command_runner(
    template: str, *, cwd: Path | None = None, log_dir: Path | None = None, timeout: float = 3600
) -> Runner:
    """Run ``template`` (``{job}`` substituted) with ``HRSYNC_INTEGRATION=<job>``; output goes
    to ``log_dir/<job>.log``. Returns (exit code, last lines of output)."""

    def run(job: str) -> tuple[int, str]:
        argv = [part.replace("{job}", job) for part in shlex.split(template)]
        exe = shutil.which(argv[0]) or shutil.which(argv[0], path=str(Path(sys.executable).parent))
        if exe:
            argv[0] = exe
        env = {**os.environ, "HRSYNC_INTEGRATION": job}
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
            )
            code, output = proc.returncode, proc.stdout + proc.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, output = 127, f"{type(exc).__name__}: {exc}"
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            with (log_dir / f"{job}.log").open("a", encoding="utf-8") as out:
                out.write(
                    f"\n$ {shlex.join(argv)}  (exit {code}, {time.monotonic() - started:.1f} s)\n"
                )
                out.write(output)
        return code, output[-2000:]

    return run


@dataclass
class _Job:
    due: float | None = None  # monotonic time of the next run
    running: bool = False
    follow_up: bool = False
    failures: int = 0
    runs: int = 0


@dataclass
class Scheduler:
    store: EventStore
    runner: Runner
    window: float = 1.0
    retry_base: float = 5.0
    retry_max: float = 300.0
    _jobs: dict[str, _Job] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stop: bool = False
    _thread: threading.Thread | None = None
    _workers: list[threading.Thread] = field(default_factory=list)

    # --- control --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and schedule every job that still has unprocessed events."""
        self._thread = threading.Thread(target=self._loop, name="webhook-scheduler", daemon=True)
        self._thread.start()
        for job in self.store.pending_jobs():
            log.info("pending events from before the restart: scheduling %s", job)
            self.notify(job)

    def stop(self, timeout: float = 30) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)
        for worker in list(self._workers):
            worker.join(timeout)

    def notify(self, job: str) -> None:
        """An event for ``job`` was stored: run it within the window (or after the current run)."""
        with self._cond:
            state = self._jobs.setdefault(job, _Job())
            if state.running:
                state.follow_up = True
            elif state.due is None:
                state.due = time.monotonic() + self.window
            self._cond.notify_all()

    def stats(self) -> dict[str, dict[str, int | bool]]:
        with self._cond:
            return {
                job: {"runs": s.runs, "running": s.running, "failures": s.failures}
                for job, s in self._jobs.items()
            }

    def idle(self) -> bool:
        with self._cond:
            return all(s.due is None and not s.running for s in self._jobs.values())

    # --- loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                next_due: float | None = None
                for job, state in self._jobs.items():
                    if state.running or state.due is None:
                        continue
                    if state.due <= now:
                        state.due, state.running, state.follow_up = None, True, False
                        worker = threading.Thread(
                            target=self._run, args=(job,), name=f"webhook-run-{job}", daemon=True
                        )
                        self._workers = [w for w in self._workers if w.is_alive()] + [worker]
                        worker.start()
                    else:
                        next_due = state.due if next_due is None else min(next_due, state.due)
                self._cond.wait(None if next_due is None else max(0.0, next_due - now))

    def _run(self, job: str) -> None:
        upto = self.store.last_pending(job)
        retry_in: float | None = None
        if upto is not None:
            log.info("running %s (events up to trigger %s)", job, upto)
            trace.stage("run-start", job=job, upto=upto)
            code, output = self.runner(job)
            trace.stage("run-end", job=job, upto=upto, code=code)
            if code == 0:
                self.store.complete(job, upto)
                failures = 0
            else:
                attempts = self.store.failed(job, upto, f"exit {code}: {output}")
                failures = attempts
                retry_in = min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1))
                log.error(
                    "%s failed (exit %s, attempt %s): retrying in %.0f s; last output: %s",
                    job, code, attempts, retry_in, output[-500:],
                )  # fmt: skip
        else:
            failures = 0
        with self._cond:
            state = self._jobs[job]
            state.running = False
            state.runs += upto is not None
            state.failures = failures
            if state.follow_up:
                state.follow_up = False
                state.due = time.monotonic() + self.window
            if retry_in is not None:
                retry_at = time.monotonic() + retry_in
                state.due = retry_at if state.due is None else max(state.due, retry_at)
            self._cond.notify_all()
