"""tap-bamboohr: a 1%-changed incremental sync against the full sync it follows, in one run.

    .venv/bin/python benchmarks/bench_tap_bamboohr_incremental.py [--employees 20000]

The BambooHR sandbox runs in its own process with ``--employees`` people. The tap (console
script, every default stream) runs a full sync and keeps its final state; then 1% of the
people are changed through the sandbox's admin API, and the tap runs again from that state.
The peer of the incremental run is the full sync: the figure is the incremental run's share
of its time and of its requests (singer-sdk's ``http_request_count`` metrics). The run fails
if the incremental sync misses a changed person or emits an unchanged one.

Writes benchmarks/results/tap_bamboohr_incremental.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

import tapbench

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tap_bamboohr_incremental.md"
TAP = Path(sys.executable).parent / "tap-bamboohr"
REQUESTS = re.compile(r'"metric":"http_request_count","value":(\d+)')


def run(config: Path, state: Path | None) -> tuple[float, int, Counter[str], set[int], Any]:
    """(seconds, requests, records per stream, employee ids emitted, final state)."""
    argv = [str(TAP), "--config", str(config)]
    if state is not None:
        argv += ["--state", str(state)]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, check=True)
    seconds = time.perf_counter() - started
    counts: Counter[str] = Counter()
    ids: set[int] = set()
    last_state: Any = None
    for line in proc.stdout.splitlines():
        msg = json.loads(line)
        if msg["type"] == "RECORD":
            counts[msg["stream"]] += 1
            if msg["stream"] == "employees":
                ids.add(int(msg["record"]["id"]))
        elif msg["type"] == "STATE":
            last_state = msg["value"]
    made = sum(int(n) for n in REQUESTS.findall(proc.stderr.decode()))
    return seconds, made, counts, ids, last_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--employees", type=int, default=20000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of people changed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        tapbench.serve("bamboohr", args.employees)
        return 0

    with (
        tapbench.sandbox_process(__file__, args.employees) as info,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = Path(tmp) / "config.json"
        config.write_text(
            json.dumps({"api_key": info["api_key"], "api_url": f"{info['url']}/api/v1"})
        )
        full_s, full_req, full_counts, full_ids, state = run(config, None)
        if len(full_ids) != args.employees:
            raise SystemExit(f"full sync emitted {len(full_ids)} employees of {args.employees}")
        step = max(1, round(1 / args.changed))
        changed = set(range(1, args.employees + 1, step))
        for ident in sorted(changed):
            requests.post(
                f"{info['url']}/_sandbox/people/{ident}",
                json={"preferred_name": f"Changed {ident}"},
                timeout=30,
            ).raise_for_status()
        state_path = Path(tmp) / "state.json"
        state_path.write_text(json.dumps(state))
        inc_s, inc_req, inc_counts, inc_ids, _ = run(config, state_path)
    if inc_ids != changed:
        missed, extra = sorted(changed - inc_ids)[:5], sorted(inc_ids - changed)[:5]
        raise SystemExit(f"incremental sync: missed {missed}..., unchanged emitted {extra}...")

    rows = [
        ("full sync", full_s, full_req, sum(full_counts.values())),
        (f"incremental, {len(changed)} people changed", inc_s, inc_req, sum(inc_counts.values())),
    ]
    lines = [
        "| run | seconds | requests | records |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {s:.1f} | {r} | {n} |" for name, s, r, n in rows),
    ]
    summary = (
        f"incremental / full: {inc_s / full_s:.1%} of the time, "
        f"{inc_req / full_req:.1%} of the requests; every changed person emitted, no other"
    )
    print("\n".join(lines))
    print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# tap-bamboohr: incremental sync against the full sync\n\n"
        f"`benchmarks/bench_tap_bamboohr_incremental.py --employees {args.employees}`: a full "
        "sync of every default stream from the BambooHR sandbox (separate process, loopback "
        f"HTTP), then {args.changed:.0%} of the people changed through the sandbox's admin API "
        "and a sync from the full sync's state.\n\n" + "\n".join(lines) + f"\n\n{summary}\n\n"
        "Per stream, incremental: "
        + ", ".join(f"{k} {v}" for k, v in sorted(inc_counts.items()))
        + ".\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs. Both runs include the tap's process start-up (about 1 s), "
        "which bounds the share from below at small sizes.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
