"""Webhook -> destination latency on the sandbox: the fast path against today's Meltano path.

    .venv/bin/python benchmarks/bench_webhook_latency.py [--employees 600] [--events 50]
        [--peer-events 5]

One sandbox (Greenhouse + BambooHR fakes, in this process), a real scim2-server and slapd (the
two directories of ``hris-to-iam``), and a first ``hrsync run --full-refresh`` of
``ats-to-hris`` and ``hris-to-iam`` (what a schedule would have done; the runs ledger records
them). Then ``hrsync webhooks serve`` (real process, window 0.2 s) receives the fakes' signed
web hooks, first without and then with ``--fast-path``:

- **ATS -> HRIS, hire**: an offer is accepted in the Greenhouse fake -> ``offer_updated`` +
  ``hire_candidate`` -> ``ats-to-hris`` -> the employee exists in the BambooHR fake;
- **HRIS -> SCIM, hire**: an employee is created through BambooHR's API -> ``employee.created``
  -> ``hris-to-iam`` -> an active SCIM user with that ``externalId`` exists;
- **HRIS -> SCIM, termination**: a termination date (yesterday) is set through BambooHR's API ->
  ``employee.updated`` -> ``hris-to-iam`` -> that SCIM user is inactive.

Each event is timed from the change in the vendor fake until the destination shows it (polled
every 0.05 s through the destination's own API), one event at a time; with the fast path, the
next event is made once the receiver reports the job warm again (the warm-up time is reported
too: an event that arrives during it waits for it). **Peer**: the same events through today's
path, the receiver running ``hrsync run <job>`` (a whole ``meltano run``).

Writes benchmarks/results/webhook_latency.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from hrsync.audit import AuditLog
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import ScimServer, start_scim_server, start_slapd
from sandbox.seed import CANDIDATE_BASE, Offer
from sandbox.server import Sandbox
from sandbox.webhooks import ReceiverProcess, start_receiver

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "webhook_latency.md"
BIN = Path(sys.executable).parent
SECRETS = {"greenhouse": "bench-greenhouse-webhook-secret", "bamboohr": "bench-bamboohr-key"}
ROUTES = ["--route", "greenhouse=ats-to-hris", "--route", "bamboohr=hris-to-iam"]
POLL = 0.05


class Bench:
    def __init__(self, sb: Sandbox, scim: ScimServer, env: dict[str, str], work: Path) -> None:
        self.sb, self.scim, self.env, self.work = sb, scim, env, work
        self.api = sb.info()["bamboohr"]["api_url"]
        self.creds = (sb.credentials["bamboohr"]["api_key"], "x")
        self.offers = iter(self._offers())
        self.leavers = iter(self._leavers())
        self.hires = 0
        self.warmups: list[float] = []
        self.trace: Path | None = None  # the receiver's stage log (fast path)
        self.keep_logs: Path | None = None  # where to copy each traced event's plugin logs
        self.profiles: dict[str, list[dict[str, float]]] = {}

    # --- the vendor side ------------------------------------------------------------------

    def _offers(self) -> Iterator[Offer]:
        """One offer per candidate never hired (their newest), reopened if it was not open."""
        w = self.sb.world
        for k in range(w.employees + 1, w.employees + w.not_hired + 1):
            offers = w.offers_for_candidate(CANDIDATE_BASE + k)
            if offers:
                yield offers[-1]

    def _leavers(self) -> Iterator[str]:
        for p in self.sb.world.people(start=2):
            if p.work_email and p.status == "Active" and p.termination_date is None:
                yield str(p.employee_id)

    def ats_hire(self) -> tuple[Callable[[], None], Callable[[], bool]]:
        offer = next(self.offers)
        gh = f"{self.sb.greenhouse_url}/_sandbox/greenhouse/offers/{offer.id}"
        if offer.status != "Created":  # set up before the clock starts
            requests.post(gh, json={"status": "Created"}, timeout=10).raise_for_status()
        since = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            lambda: requests.post(f"{gh}/accept", timeout=10).raise_for_status(),
            lambda: self.in_hris(offer.candidate_id, since),
        )

    def hris_hire(self) -> tuple[Callable[[], None], Callable[[], bool]]:
        self.hires += 1
        n = self.hires
        made: dict[str, str] = {}

        def act() -> None:
            resp = requests.post(
                f"{self.api}/employees",
                json={"firstName": "Bench", "lastName": f"Hire{n}",
                      "workEmail": f"bench.hire{n}@example.com",
                      "hireDate": datetime.now(UTC).date().isoformat(),
                      "jobTitle": "Engineer", "department": "Engineering",
                      "location": "Remote"},
                auth=self.creds, timeout=10,
            )  # fmt: skip
            resp.raise_for_status()
            made["id"] = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

        return act, lambda: self.scim_active(made["id"]) is True

    def termination(self) -> tuple[Callable[[], None], Callable[[], bool]]:
        eid = next(self.leavers)
        day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

        def act() -> None:
            requests.post(
                f"{self.api}/employees/{eid}",
                json={"terminationDate": day},
                auth=self.creds,
                timeout=10,
            ).raise_for_status()

        return act, lambda: self.scim_active(eid) is False

    # --- the destination side -------------------------------------------------------------

    def in_hris(self, candidate_id: int, since: str) -> bool:
        """Whether an employee created since ``since`` has the candidate's id: the employees
        changed since then (``GET /employees/changed``), each read alone, so each poll costs
        the fake (in this process, beside the measured run) little."""
        json_ = {"Accept": "application/json"}
        resp = requests.get(f"{self.api}/employees/changed", params={"since": since},
                            auth=self.creds, headers=json_, timeout=30)  # fmt: skip
        resp.raise_for_status()
        for eid in resp.json().get("employees") or {}:
            one = requests.get(f"{self.api}/employees/{eid}",
                               params={"fields": "customATSCandidateID"},
                               auth=self.creds, headers=json_, timeout=30)  # fmt: skip
            one.raise_for_status()
            if one.json().get("customATSCandidateID") == str(candidate_id):
                return True
        return False

    def scim_active(self, external_id: str) -> bool | None:
        resp = requests.get(
            f"{self.scim.url('hrsync')}/Users",
            params={"filter": f'externalId eq "{external_id}"'},
            headers={"Authorization": f"Bearer {self.scim.token}"},
            timeout=10,
        )
        resp.raise_for_status()
        users = resp.json().get("Resources") or []
        return bool(users[0]["active"]) if users else None

    # --- measuring ------------------------------------------------------------------------

    def wait_idle(self, receiver: ReceiverProcess, fast: bool, timeout: float = 600) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            health = receiver.health()
            busy = any(j["running"] for j in health["jobs"].values())
            warm = set(health.get("fast_path", {}).get("warm", []))
            if not busy and (not fast or {"ats-to-hris", "hris-to-iam"} <= warm):
                if fast and busy is False and health["jobs"]:
                    self.warmups.append(time.monotonic() - started)
                return
            time.sleep(0.1)
        raise RuntimeError(f"receiver not idle after {timeout} s: {receiver.health()}")

    def measure(
        self,
        receiver: ReceiverProcess,
        fast: bool,
        make: Callable[[], Any],
        n: int,
        label: str,
        seconds: list[float],
        after_each: Callable[[], None],
    ) -> None:
        for _ in range(n):
            self.wait_idle(receiver, fast)
            act, arrived = make()
            wall, t0 = time.time(), time.monotonic()
            act()
            while not arrived():
                if time.monotonic() - t0 > 600:
                    raise RuntimeError(f"{label}: the change never reached the destination")
                time.sleep(POLL)
            seconds.append(time.monotonic() - t0)
            print(f"  {label}: {seconds[-1]:.2f} s", flush=True)
            if fast and self.trace is not None:
                self.wait_idle(receiver, fast)  # the run's last stages are in the log
                stages = profile(self.trace, Path(self.env["HRSYNC_AUDIT_LOG"]), wall,
                                 wall + seconds[-1], self.keep_logs)  # fmt: skip
                self.profiles.setdefault(label, []).append(stages)
            after_each()


def hrsync_run(env: dict[str, str], job: str) -> None:
    started = time.monotonic()
    proc = subprocess.run([str(BIN / "hrsync"), "run", job, "--full-refresh"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"hrsync run {job} failed: {proc.stderr[-3000:]}")
    print(f"first full sync of {job}: {time.monotonic() - started:.1f} s", flush=True)


def serve(bench: Bench, fast: bool) -> ReceiverProcess:
    args = ["--window", "0.2", *ROUTES, *(["--fast-path"] if fast else [])]
    env = dict(bench.env)
    if fast:
        bench.trace = bench.work / "fast-trace.jsonl"
        args += ["--trace", str(bench.trace)]
        if bench.keep_logs is not None:  # a cProfile of every plugin run too
            (bench.keep_logs / "prof").mkdir(parents=True, exist_ok=True)
            env["HRSYNC_FAST_PATH_PROFILE"] = str(bench.keep_logs / "prof")
    return start_receiver(bench.work / ("fast" if fast else "peer"), secrets=SECRETS,
                          args=args, env=env, cwd=ROOT)  # fmt: skip


#: singer-sdk's log line: "2026-12-06 08:45:12,345 | INFO | name | message"
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \| ")
STAGES = (
    ("received", "webhook received by the receiver"),
    ("stored", "event stored (fsync'd), 200 sent"),
    ("run-start", "job run starts (after the 0.2 s window)"),
    ("forked", "first plugin process forked"),
    ("tap-log", "extractor's first log line (its set-up begins)"),
    ("tap-request", "extractor's first request answered"),
    ("mapper-done", "first map-hr summary line (a mapper's input ended)"),
    ("target-write", "destination written (first audit line of the job)"),
    ("tap-exit", "extractor ended"),
    ("run-end", "every task ended (the run is complete)"),
    ("seen", "the change seen through the destination's API"),
)


def _log_times(path: Path, pattern: str | None = None) -> list[float]:
    times = []
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m and (pattern is None or pattern in line):
            stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            times.append(stamp.replace(tzinfo=UTC).timestamp())
    return times


def profile(
    trace: Path, audit: Path, t0: float, seen: float, keep: Path | None = None
) -> dict[str, float]:
    """Seconds from the change in the vendor fake to each stage of the event's first run (the
    receiver's stage log, the plugins' own logs and the audit log)."""
    lines = [json.loads(x) for x in trace.read_text().splitlines() if x.strip()]
    lines = [x for x in lines if x["t"] >= t0]
    first: dict[str, float] = {}
    for x in lines:
        first.setdefault(x["stage"], x["t"])
    out: dict[str, float] = {
        k: first[k] - t0 for k in ("received", "stored", "run-start", "forked") if k in first
    }
    run_end = next((x["t"] for x in lines if x["stage"] == "run-end"), None)
    logs = {x["plugin"]: Path(x["path"]) for x in lines if x["stage"] == "log"}
    if keep is not None:  # the plugins' logs of this event, for a closer look
        folder = keep / f"{t0:.0f}"
        folder.mkdir(parents=True, exist_ok=True)
        for log in {Path(x["path"]) for x in lines if x["stage"] == "log"}:
            shutil.copy(log, folder / log.name)
        (folder / "trace.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    tap = next((Path(p) for name, p in logs.items() if name.startswith("tap-")), None)
    if tap is not None:
        times = _log_times(tap)
        if times:
            out["tap-log"] = times[0] - t0
        request = _log_times(tap, "http_request_duration")
        if request:
            out["tap-request"] = request[0] - t0
    mapped = [t for name, p in logs.items() if name.startswith("map-")
              for t in _log_times(p, "record(s) out to")]  # fmt: skip
    if mapped:
        out["mapper-done"] = min(mapped) - t0
    exits = [x["t"] for x in lines if x["stage"] == "exited" and x["plugin"].startswith("tap-")]
    if exits:
        out["tap-exit"] = exits[0] - t0
    writes = [
        datetime.fromisoformat(e["ts"]).timestamp()
        for e in AuditLog.read(audit)
        if e.get("ts")
        and e.get("record_key") is not None
        and e.get("outcome") not in (None, "unchanged", "skipped")
        and not str(e.get("outcome")).startswith("planned-")
    ]
    writes = [w for w in writes if w >= t0]
    if writes:
        out["target-write"] = min(writes) - t0
    if run_end is not None:
        out["run-end"] = run_end - t0
    for x in lines:  # CPU seconds of each plugin's run(s) for this event (load-independent)
        if x["stage"] == "exited" and x.get("cpu") is not None and x["t"] <= (run_end or seen):
            key = f"cpu {x['plugin']}"
            out[key] = out.get(key, 0.0) + x["cpu"]
    out["seen"] = seen - t0
    return out


def hook(sb: Sandbox, receiver: ReceiverProcess, vendor: str) -> None:
    """Only ``vendor`` posts to the receiver (a Greenhouse hire also changes BambooHR: its
    event would run hris-to-iam beside the measurement)."""
    for name in ("greenhouse", "bamboohr"):
        sb.apps[name].webhooks.clear()  # type: ignore[attr-defined]
    sb.apps[vendor].webhooks.register(  # type: ignore[attr-defined]
        f"{receiver.url}/webhooks/{vendor}", SECRETS[vendor]
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


KINDS = ("ATS -> HRIS hire", "HRIS -> SCIM hire", "HRIS -> SCIM termination")
PATHS = ("fast path", "peer: Meltano run")
PARTIAL = " (**partial: the run was still going or stopped when this was written**)"


#: the 1, 5 and 15-minute load averages when the bench started
LOAD_AT_START: list[str] = []


def _load() -> list[str]:
    path = Path("/proc/loadavg")
    return path.read_text().split()[:3] if path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=600)
    parser.add_argument("--events", type=int, default=50, help="per kind, fast path")
    parser.add_argument("--peer-events", type=int, default=5, help="per kind, Meltano path")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    parser.add_argument("--skip-install", action="store_true", help="no 'meltano install'")
    parser.add_argument("--keep-logs", type=Path, help="copy each fast event's plugin logs here")
    args = parser.parse_args()
    if not args.skip_install:
        subprocess.run([str(BIN / "meltano"), "install"], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
    LOAD_AT_START.extend(_load())
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    scim, slapd = start_scim_server(), start_slapd(work / "slapd")
    results: dict[tuple[str, str], list[float]] = {}
    stats: dict[str, Any] = {}
    try:
        with Sandbox(employees=args.employees, vendors=("greenhouse", "bamboohr")) as sb:
            env = (
                meltano_env(sb, work)
                | iam_env(scim, slapd, work)
                | {
                    "HRSYNC_RUNS_PATH": str(work / "runs.sqlite"),
                }
            )
            for job in ("ats-to-hris", "hris-to-iam"):
                hrsync_run(env, job)
            bench = Bench(sb, scim, env, work)
            bench.keep_logs = args.keep_logs
            makers = (bench.ats_hire, bench.hris_hire, bench.termination)
            # the peer first (fewer events): a run cut short still has its ratio
            for path, n in ((PATHS[1], args.peer_events), (PATHS[0], args.events)):
                fast = path == "fast path"
                if n == 0:
                    continue
                receiver = serve(bench, fast)
                try:
                    for kind, make in zip(KINDS, makers, strict=True):
                        hook(sb, receiver, "greenhouse" if kind.startswith("ATS") else "bamboohr")
                        results[(kind, path)] = []
                        bench.measure(
                            receiver, fast, make, n, kind, results[(kind, path)],
                            lambda: write(args, results, bench, stats),  # so far
                        )  # fmt: skip
                    bench.wait_idle(receiver, fast)
                    health = receiver.health()
                finally:
                    receiver.stop()
                stats[path] = health.get("fast_path") or health["jobs"]
                print(f"{path}: receiver {stats[path]}", flush=True)
    finally:
        scim.stop()
        slapd.stop()
    write(args, results, bench, stats)
    print(f"wrote {args.out}")
    return 0


def write(
    args: argparse.Namespace,
    results: dict[tuple[str, str], list[float]],
    bench: Bench,
    stats: dict[str, Any],
) -> None:
    warmups = bench.warmups
    rows, verdicts = [], []
    for kind in KINDS:
        for path in PATHS:
            values = results.get((kind, path))
            if values:
                p50, p95 = statistics.median(values), pct(values, 0.95)
                rows.append(f"| {kind} | {path} | {len(values)} | {p50:.2f} | {p95:.2f} | "
                            f"{min(values):.2f} | {max(values):.2f} |")  # fmt: skip
        fast_s, peer = results.get((kind, PATHS[0])), results.get((kind, PATHS[1]))
        if fast_s:
            p50, p95 = statistics.median(fast_s), pct(fast_s, 0.95)
            verdict = (
                f"- {kind}: fast path p50 {p50:.2f} s, p95 {p95:.2f} s (goal p50 <= 2 s: "
                f"{'met' if p50 <= 2 else 'NOT met'}; p95 <= 5 s: "
                f"{'met' if p95 <= 5 else 'NOT met'})"
            )
            if peer:
                ratio = statistics.median(peer) / p50
                verdict += f"; the Meltano path's median is **{ratio:.1f}x** the fast path's"
            verdicts.append(verdict)
    warm = statistics.median(warmups) if warmups else float("nan")
    load = _load()
    done = len(results) == len(KINDS) * len(PATHS) and len(stats) == len(PATHS)
    args.out.write_text(
        f"""# Webhook -> destination latency

`benchmarks/bench_webhook_latency.py --employees {args.employees} --events {args.events}
--peer-events {args.peer_events}`{"" if done else PARTIAL}:
from the change in the vendor fake (offer accepted in Greenhouse; employee created, or given a
termination date, through BambooHR's API) until the destination's own API shows it (the
employee in the BambooHR fake; an active or inactive user in a real scim2-server), one event at
a time, on the sandbox (loopback HTTP, real `hrsync webhooks serve --window 0.2`, signed web
hooks sent by the fakes). `ats-to-hris` is `tap-greenhouse map-ats-to-hris target-bamboohr`;
`hris-to-iam` is two tasks, `tap-bamboohr-iam map-bamboohr-to-canonical map-hris-to-iam` into
`target-scim` and into `target-ldap` (a real slapd), both run for every BambooHR event (the
fast path extracts and maps once per event and feeds both loaders; Meltano runs each task).

- **fast path**: `--fast-path`: the jobs' own plugins, resolved from meltano.yml through
  `meltano invoke --dump`, each kept warm in one long-lived process (imported, its sealing key
  derived, map-hr's profile compiled) that forks a fresh process per event, run for the
  changes since the last successful `hrsync run` of the job without Meltano's state;
- **peer: Meltano run**: today's path, the receiver runs `hrsync run <job>` (`meltano run`).

| event | path | events | p50 s | p95 s | min s | max s |
|---|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

{chr(10).join(verdicts)}

From an event's arrival at the destination until the receiver reported the fast path idle
and warm again: median {warm:.1f} s (no processes to start: the warm ones fork). Events within
the 0.2 s window share one run. Receiver counters at the end of each phase: {stats or "n/a"}.

{profile_table(bench.profiles)}

Where the time goes: the Meltano path pays Meltano's start-up, the plugins' start-up (Python +
singer-sdk imports, about 2.5 s of CPU each on this machine) and discovery for every event;
the fast path pays each plugin's own per-run set-up (config validation, the catalog, an OAuth
token for Greenhouse, the stores it opens), one incremental extract since the last scheduled
run and the writes, its processes running as one pipeline (CPU seconds per plugin above: they
do not depend on the load). On this machine (2 CPUs shared with other work; load average
{" ".join(LOAD_AT_START)} at the start, {" ".join(load)} when written) every wall-clock figure,
the peer's included, is several times what it is on an idle machine: the ratio is the
comparable number.

Machine: {platform.platform()}, Python {platform.python_version()}, 2 CPUs shared.
""",
        encoding="utf-8",
    )


def profile_table(profiles: dict[str, list[dict[str, float]]]) -> str:
    """Median seconds from the change to each stage, per kind of event (fast path)."""
    if not profiles:
        return "Profile: n/a (no fast-path event traced)."
    kinds = [k for k in KINDS if k in profiles]
    head = "| stage (seconds since the change, median) | " + " | ".join(kinds) + " |"
    rows = [head, "|---|" + "---:|" * len(kinds)]
    for stage, what in STAGES:
        cells = []
        for kind in kinds:
            values = [p[stage] for p in profiles[kind] if stage in p]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        rows.append(f"| {stage}: {what} | " + " | ".join(cells) + " |")
    cpus = sorted({k for kind in kinds for p in profiles[kind] for k in p if k.startswith("cpu ")})
    for key in cpus:
        cells = []
        for kind in kinds:
            values = [p[key] for p in profiles[kind] if key in p]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        rows.append(f"| {key.replace('cpu ', 'CPU seconds of ')} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{k}: {len(profiles[k])}" for k in kinds)
    return (
        "Profile of the fast path, per stage (the receiver's `--trace` stage log, the plugins' "
        f"own logs and the audit log; events traced: {counts}):\n\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    sys.exit(main())
