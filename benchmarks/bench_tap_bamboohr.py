"""tap-bamboohr vs a bare ``requests`` loop, reading the same BambooHR endpoints in one run.

    .venv/bin/python benchmarks/bench_tap_bamboohr.py [--employees 100000]

The BambooHR sandbox runs in its own process (so neither contender shares its GIL) with
``--employees`` people. Contenders, one after the other, over the same data (a full sync):

- **tap-bamboohr**: the console script as a subprocess, all streams (employees through the
  cursor-paged ``GET /employees`` with ``--page-size``, deletions, jobInfo / compensation /
  employmentStatus through ``/employees/all/tables``); its stdout (Singer JSON lines) is read
  and the RECORD lines are counted.
- **peer**: a plain ``requests.Session`` loop in this process making the same requests (same
  fields, same page size), ``resp.json()`` each and counting the records. No validation, no
  Singer output, no retries: the floor.

Prints records/s for each and the ratio, and writes benchmarks/results/tap_bamboohr.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

import tapbench

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tap_bamboohr.md"
PY = Path(sys.executable)
TAP = PY.parent / "tap-bamboohr"
STREAMS = ("employees", "employee_deletions", "job_info", "compensation", "employment_status")
TABLES = ("jobInfo", "compensation", "employmentStatus")


def run_peer(info: dict[str, Any], page_size: int) -> tuple[int, float]:
    from tap_bamboohr.streams import employee_fields

    base = f"{info['url']}/api/v1"
    started = time.perf_counter()
    session = requests.Session()
    session.auth = (info["api_key"], "x")
    session.headers["Accept"] = "application/json"
    count = 0
    params: dict[str, Any] = {"fields": ",".join(employee_fields({})), "page[limit]": page_size}
    while True:  # the same cursor-paged list the tap reads in a full sync
        resp = session.get(f"{base}/employees", params=params, timeout=600)
        resp.raise_for_status()
        body = resp.json()
        count += len(body["data"])
        cursor = body["meta"]["page"]["nextCursor"]
        if not cursor:
            break
        params["page[after]"] = cursor
    resp = session.get(
        f"{base}/employees/changed",
        params={"since": "2011-06-05T00:00:00Z", "type": "deleted"},
        timeout=600,
    )
    resp.raise_for_status()
    count += len(resp.json()["employees"])
    for table in TABLES:
        resp = session.get(f"{base}/employees/all/tables/{table}", timeout=600)
        resp.raise_for_status()
        count += len(resp.json())
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        tapbench.serve("bamboohr", args.employees)
        return 0

    with (
        tapbench.sandbox_process(__file__, args.employees) as info,
        tempfile.TemporaryDirectory() as tmp,
    ):
        config_path = Path(tmp) / "config.json"
        config_path.write_text(
            json.dumps(
                {
                    "api_key": info["api_key"],
                    "api_url": f"{info['url']}/api/v1",
                    "page_size": args.page_size,
                }
            )
        )
        peer_n, peer_s = run_peer(info, args.page_size)
        # the streams the peer reads (the tap also has payroll deductions and opt-in benefits)
        catalog = tapbench.select_streams(TAP, config_path, STREAMS, Path(tmp))
        counts, tap_s = tapbench.run_tap(TAP, config_path, catalog)
        tap_n = sum(counts.values())

    if tap_n != peer_n:
        raise SystemExit(f"record counts differ: tap {tap_n}, peer {peer_n}")
    tap_rate, peer_rate = tap_n / tap_s, peer_n / peer_s
    ratio = tap_rate / peer_rate
    rows = [
        ("tap-bamboohr (console script, Singer out)", tap_n, tap_s, tap_rate),
        ("peer: bare requests loop", peer_n, peer_s, peer_rate),
    ]
    lines = [
        "| contender | records | seconds | records/s |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {n} | {s:.1f} | {r:,.0f} |" for name, n, s, r in rows),
    ]
    summary = f"tap-bamboohr / peer throughput ratio: {ratio:.2f}"
    print("\n".join(lines))
    print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# tap-bamboohr benchmark\n\n"
        f"`benchmarks/bench_tap_bamboohr.py --employees {args.employees} "
        f"--page-size {args.page_size}`: a full sync (employees list, deletions, jobInfo, "
        "compensation, employmentStatus) from the BambooHR sandbox (separate process, "
        "loopback HTTP).\n\n" + "\n".join(lines) + f"\n\n{summary}\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs.\n\n"
        "Both make the same requests and pay the same server time. The peer only parses "
        "JSON and counts; the tap also validates config, normalises values (ids to "
        "integers, empty strings and zero dates to null, "
        "one timestamp form, rates to objects), checks for schema drift, filters on the "
        "bookmark, conforms each record to its schema and writes Singer messages. The tap's "
        "time includes its process start-up (about 1 s).\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
