"""Run a tap | mapper(s) | target pipeline as real processes (as ``meltano run`` does), kill
the target with SIGKILL when a condition holds, and record what the chaos tests measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
# The committed figures are refreshed with HRSYNC_RECORD_RESULTS=1; a plain test run leaves
# the repository alone and keeps its figures in the temp dir.
RESULTS = (
    ROOT / "benchmarks" / "results"
    if os.environ.get("HRSYNC_RECORD_RESULTS")
    else Path(tempfile.gettempdir()) / "hrsync-results"
) / "chaos.md"


@dataclass
class Run:
    codes: list[int]
    stderr: list[str]
    killed_at: int | None = None  # what the destination held when the target was killed
    seconds: float = 0.0

    def tail(self, n: int = 3000) -> str:
        return "\n---\n".join(err[-n:] for err in self.stderr)


def stage(executable: str, config: dict[str, Any], workdir: Path) -> list[str]:
    path = workdir / f"{executable}-{abs(hash(json.dumps(config, sort_keys=True)))}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return [str(BIN / executable), "--config", str(path)]


def run_pipeline(
    stages: list[list[str]],
    env: dict[str, str],
    workdir: Path,
    *,
    kill_when: Callable[[], int | None] | None = None,
    timeout: float = 240,
) -> Run:
    """Start the stages chained by pipes; with ``kill_when`` (returns the destination count
    once the target should die, else None), SIGKILL the last stage at that moment."""
    procs: list[subprocess.Popen[bytes]] = []
    errs: list[Path] = []
    upstream: Any = subprocess.DEVNULL
    started = time.monotonic()
    for i, argv in enumerate(stages):
        err = workdir / f"stage-{i}-{int(time.time() * 1000)}.err"
        errs.append(err)
        last = i == len(stages) - 1
        with err.open("wb") as err_out:
            proc = subprocess.Popen(
                argv,
                stdin=upstream,
                stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                stderr=err_out,
                env=env,
            )
        if upstream is not subprocess.DEVNULL:
            upstream.close()  # the child holds it now
        upstream = proc.stdout
        procs.append(proc)
    killed_at = None
    deadline = started + timeout
    try:
        if kill_when is not None:
            while procs[-1].poll() is None and time.monotonic() < deadline:
                count = kill_when()
                if count is not None:
                    os.kill(procs[-1].pid, signal.SIGKILL)
                    killed_at = count
                    break
                time.sleep(0.02)
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        raise AssertionError(f"pipeline hung for {timeout} s: {[str(e) for e in errs]}") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = [e.read_text(encoding="utf-8", errors="replace") for e in errs]
    return Run([p.returncode for p in procs], stderr, killed_at, time.monotonic() - started)


@dataclass
class ChaosNumbers:
    job: str
    destination: str
    records_in: int
    at_destination: int
    duplicates: int
    dead_letters: int
    lost: int
    killed_at: int | None
    faults: dict[str, int] = field(default_factory=dict)
    runs: int = 2
    note: str = ""

    def line(self) -> str:
        faults = ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items())) or "none"
        return (
            f"| {self.job} | {self.destination} | {self.records_in} | {self.killed_at} | "
            f"{self.at_destination} | {self.duplicates} | {self.dead_letters} | {self.lost} | "
            f"{faults} | {self.note} |"
        )


def record(numbers: ChaosNumbers) -> None:
    """Print the numbers and keep them in benchmarks/results/chaos.md (one row per job)."""
    print(
        f"\nchaos {numbers.job} -> {numbers.destination}: records in {numbers.records_in}, "
        f"target killed at {numbers.killed_at}, at destination {numbers.at_destination}, "
        f"duplicates {numbers.duplicates}, dead letters {numbers.dead_letters}, "
        f"lost {numbers.lost}, faults injected {numbers.faults}"
    )
    header = (
        "# Chaos results\n\n"
        "Written by `tests/chaos/` (each test rewrites its own row). Each job runs as real\n"
        "processes (tap | map-hr | target, like `meltano run`) against the sandbox with fault\n"
        "injection (429 + Retry-After, 5xx, slow answers, dropped connections); the target is\n"
        "killed with SIGKILL when the destination holds about half of what it should, then the\n"
        "job is run again (faults still on) and the destination is compared with the source.\n\n"
        "| job | destination | records in | destination when killed | at destination after "
        "re-run | duplicates | dead letters | lost | faults injected | note |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|\n"
    )
    rows: dict[str, str] = {}
    if RESULTS.exists():
        for line in RESULTS.read_text(encoding="utf-8").splitlines():
            if line.startswith("| ") and not line.startswith("| job ") and "|---" not in line:
                parts = [p.strip() for p in line.split("|")]
                rows[f"{parts[1]}|{parts[2]}"] = line
    rows[f"{numbers.job}|{numbers.destination}"] = numbers.line()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(header + "\n".join(rows[k] for k in sorted(rows)) + "\n", "utf-8")
