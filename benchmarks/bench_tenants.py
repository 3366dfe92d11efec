"""Many tenants: Dagster with a concurrency limit against the same jobs run one by one.

    .venv/bin/python benchmarks/bench_tenants.py [--tenants 4] [--employees 40] [--limits 2 4]

N tenants, each with its own sandbox (Greenhouse + BambooHR fakes, in this process, a different
seed each), its own SCIM store (one scim2-server, one dynamic tenant each) and its own slapd;
each tenant's folder holds its `.env`. Every mode starts from fresh tenant folders, fresh
sandboxes and fresh directories, and runs `ats-to-hris` then `hris-to-iam` for every tenant:

- **peer: one by one**: `hrsync run --tenant T <job>` for each tenant and job in turn (a cron
  line per tenant and job, never overlapping);
- **Dagster, limit C**: `dagster job execute -m hrsync_dagster.definitions -j ats_to_hris`, then
  `-j hris_to_iam`: each fans out one op per tenant, at most C at once
  (`HRSYNC_DAGSTER_MAX_CONCURRENT`).

Measured: wall time, jobs per minute, p50/p95 per-job latency (hrsync's run ledger: `hrsync
run`'s own duration per tenant and job), peak memory (RSS of the whole process tree, sampled
every 0.2 s), and where one job's time goes (Meltano start-up, plugin start-up, the work).
Writes benchmarks/results/tenants.md. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import psutil
import requests

from hrsync_ops.runs import RunLedger
from sandbox.cli import env_lines
from sandbox.demo import iam_env
from sandbox.directories import ScimServer, start_scim_server, start_slapd
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tenants.md"
BIN = Path(sys.executable).parent
JOBS = ("ats-to-hris", "hris-to-iam")


class PeakRSS:
    """Peak summed RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        def sample() -> None:
            while not self._stop.is_set():
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    return
                total = 0
                for proc in procs:
                    with suppress(psutil.NoSuchProcess):
                        total += proc.memory_info().rss
                self.peak = max(self.peak, total)
                time.sleep(0.2)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def run_watched(cmd: list[str], env: dict[str, str], log: Path) -> tuple[int, float, int]:
    """(exit code, seconds, peak RSS bytes of the tree)."""
    rss = PeakRSS()
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        rss.watch(proc.pid)
        code = proc.wait()
    rss.stop()
    return code, time.monotonic() - started, rss.peak


class Tenants:
    """N tenants with fresh sandboxes, SCIM stores and slapds, under ``base``."""

    def __init__(self, base: Path, count: int, employees: int, scim: ScimServer, tag: str):
        self.base = base
        self.names = [f"t{n:02d}" for n in range(count)]
        self.stack = ExitStack()
        self.sandboxes: dict[str, Sandbox] = {}
        for n, name in enumerate(self.names):
            sb = Sandbox(employees=employees, seed=100 + n, vendors=("greenhouse", "bamboohr"))
            self.sandboxes[name] = self.stack.enter_context(sb)
            slapd = start_slapd(base / "slapd" / name)
            self.stack.callback(slapd.stop)
            folder = base / "tenants" / name
            folder.mkdir(parents=True)
            iam = iam_env(scim, slapd, folder)
            iam["TARGET_SCIM_BASE_URL"] = scim.url(f"{tag}-{name}")
            lines = [
                *env_lines(sb.info()),
                *(f"{k}={v}" for k, v in iam.items()),
                f"MAP_HR_HMAC_KEY=bench-{name}-pseudonym-key",
            ]
            (folder / ".env").write_text("\n".join(lines) + "\n")

    def durations(self) -> list[float]:
        found = []
        for name in self.names:
            ledger = RunLedger(self.base / "tenants" / name / ".hrsync" / "runs.sqlite")
            for job in JOBS:
                found += [r.duration_s or 0.0 for r in ledger.history(job)]
        return found

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in self.names:
            ledger = RunLedger(self.base / "tenants" / name / ".hrsync" / "runs.sqlite")
            for job in JOBS:
                for r in ledger.history(job):
                    counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return counts

    def hires_delivered(self) -> bool:
        for sb in self.sandboxes.values():
            creds = sb.credentials["bamboohr"]
            resp = requests.post(
                f"{sb.bamboohr_url}/api/v1/reports/custom",
                params={"format": "JSON", "onlyCurrent": "false"},
                json={"fields": ["id", "customATSCandidateID"]},
                auth=(creds["api_key"], "x"),
                headers={"Accept": "application/json"},
                timeout=30,
            )
            new = [e for e in resp.json()["employees"] if int(e["id"]) > sb.world.employees]
            if len(new) != len(sb.world.pending_hires()):
                return False
        return True

    def close(self) -> None:
        self.stack.close()


def base_env(tenants_dir: Path, dagster_home: Path, limit: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_", "TARGET_", "MAP_HR_", "HRSYNC_"))
    }
    return env | {
        "HRSYNC_TENANTS_DIR": str(tenants_dir),
        "HRSYNC_DAGSTER_MAX_CONCURRENT": str(limit),
        "DAGSTER_HOME": str(dagster_home),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def one_mode(
    mode: str, limit: int, args: argparse.Namespace, scim: ScimServer, work: Path
) -> dict[str, Any]:
    base = work / mode
    home = base / "dagster-home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    tenants = Tenants(base, args.tenants, args.employees, scim, mode)
    env = base_env(base / "tenants", home, limit)
    log = base / "run.log"
    peak, codes = 0, []
    started = time.monotonic()
    try:
        if mode == "sequential":
            for job in JOBS:
                for name in tenants.names:
                    cmd = [str(BIN / "hrsync"), "run", "--tenant", name, job]
                    code, _, rss = run_watched(cmd, env, log)
                    codes.append(code)
                    peak = max(peak, rss)
        else:
            for job in JOBS:
                cmd = [str(BIN / "dagster"), "job", "execute", "-m", "hrsync_dagster.definitions"]
                cmd += ["-j", job.replace("-", "_")]
                code, _, rss = run_watched(cmd, env, log)
                codes.append(code)
                peak = max(peak, rss)
        wall = time.monotonic() - started
        durations = tenants.durations()
        result = {
            "mode": mode,
            "limit": limit,
            "wall": wall,
            "jobs": len(durations),
            "per_min": len(durations) / wall * 60 if wall else 0.0,
            "p50": pct(durations, 0.5),
            "p95": pct(durations, 0.95),
            "peak_mb": peak / 1e6,
            "outcomes": tenants.outcomes(),
            "exit_codes": codes,
            "delivered": tenants.hires_delivered(),
        }
    finally:
        tenants.close()
    print(result, flush=True)
    return result


def breakdown(work: Path, scim: ScimServer, employees: int) -> dict[str, float]:
    """Where one job's time goes, for one tenant (medians of 3)."""
    base = work / "breakdown"
    home = base / "dagster-home"
    home.mkdir(parents=True)
    tenants = Tenants(base, 1, employees, scim, "breakdown")
    env = base_env(base / "tenants", home, 1)
    folder = base / "tenants" / tenants.names[0]
    env_t = env | {
        "MELTANO_PROJECT_ROOT": str(ROOT),
        "MELTANO_SYS_DIR_ROOT": str(folder / ".meltano"),
    }
    log = base / "run.log"
    found: dict[str, list[float]] = {}

    def timed(key: str, cmd: list[str], e: dict[str, str]) -> None:
        code, seconds, _ = run_watched(cmd, e, log)
        if code == 0:
            found.setdefault(key, []).append(seconds)

    try:
        timed(
            "warm-up",
            [str(BIN / "hrsync"), "run", "--tenant", tenants.names[0], "ats-to-hris"],
            env,
        )
        for _ in range(3):
            timed("python start-up", [sys.executable, "-c", "pass"], env)
            timed(
                "meltano start-up (`meltano job list`)",
                [str(BIN / "meltano"), "job", "list"],
                env_t,
            )
            for plugin in ("tap-greenhouse", "map-hr", "target-bamboohr"):
                timed(f"plugin start-up: `{plugin} --about`", [str(BIN / plugin), "--about"], env)
            timed(
                "`meltano run ats-to-hris` (incremental, nothing new)",
                [
                    str(BIN / "meltano"),
                    "--cwd",
                    str(folder),
                    "--env-file",
                    str(folder / ".env"),
                    "run",
                    "ats-to-hris",
                ],
                env_t,
            )
            timed(
                "`hrsync run --tenant` (same, + ledger, locks, alerts)",
                [str(BIN / "hrsync"), "run", "--tenant", tenants.names[0], "ats-to-hris"],
                env,
            )
            timed(
                "Dagster: `dagster job execute` of the same (1 op)",
                [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-m",
                    "hrsync_dagster.definitions",
                    "-j",
                    "ats_to_hris",
                ],
                env,
            )
    finally:
        tenants.close()
    return {k: statistics.median(v) for k, v in found.items() if k != "warm-up"}


def report(results: list[dict[str, Any]], parts: dict[str, float], args: argparse.Namespace) -> str:
    seq = next(r for r in results if r["mode"] == "sequential")
    lines = [
        "# Many tenants: Dagster fan-out against one-by-one `hrsync run`",
        "",
        f"`benchmarks/bench_tenants.py --tenants {args.tenants} --employees {args.employees} "
        f"--limits {' '.join(map(str, args.limits))}`: {args.tenants} tenants x "
        "`ats-to-hris` and `hris-to-iam` (each tenant: its own Greenhouse + BambooHR sandbox, "
        "SCIM store and slapd; fresh folders, state and destinations for every mode; full syncs).",
        "",
        "| mode | wall s | jobs | jobs/min | p50 job s | p95 job s | peak MB (tree) | outcomes "
        "| vs one by one |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        name = (
            "peer: `hrsync run` one by one"
            if r["mode"] == "sequential"
            else (f"Dagster, limit {r['limit']}")
        )
        ratio = seq["wall"] / r["wall"] if r["wall"] else 0.0
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(r["outcomes"].items()))
        lines.append(
            f"| {name} | {r['wall']:.0f} | {r['jobs']} | {r['per_min']:.1f} | {r['p50']:.1f} | "
            f"{r['p95']:.1f} | {r['peak_mb']:.0f} | {outcomes} | {ratio:.2f}x |"
        )
    lines += [
        "",
        "Per-job latency is each `hrsync run`'s duration in its tenant's run ledger (inside the "
        "Dagster op for the Dagster modes); wall time includes Dagster's own start-up. Peak "
        "memory: summed RSS of the launched process and all its descendants.",
        "",
        "Every mode delivered every tenant's hires exactly once: "
        + ("yes" if all(r["delivered"] for r in results) else "NO (see the run log)")
        + ".",
        "",
        "## Where one job's time goes (one tenant, `ats-to-hris`, incremental, median of 3)",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {k} | {v:.2f} |" for k, v in parts.items()),
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--employees", type=int, default=40)
    parser.add_argument("--limits", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    subprocess.run([str(BIN / "meltano"), "install"], cwd=ROOT, check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
    scim = start_scim_server()
    try:
        results = [one_mode("sequential", 1, args, scim, work)]
        results += [one_mode(f"dagster-{c}", c, args, scim, work) for c in args.limits]
        parts = {} if args.no_breakdown else breakdown(work, scim, args.employees)
    finally:
        scim.stop()
    text = report(results, parts, args)
    print(text)
    args.out.write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
