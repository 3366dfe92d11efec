"""tap-hibob vs a bare ``requests`` loop, reading the same HiBob endpoints in one run.

    .venv/bin/python benchmarks/bench_tap_hibob.py [--employees 20000]

The HiBob sandbox runs in its own process (so neither contender shares its GIL). Each
contender, one after the other, reads every employee with the fields tap-hibob asks for
(``POST /people/search``, one response: HiBob does not page it) and the work, employment and
lifecycle tables (``GET /bulk/people/{table}``, 200 employees a page, following
``response_metadata.next_cursor``).

- **tap-hibob**: the console script as a subprocess (all four streams); its stdout (Singer JSON
  lines) is read and the RECORD lines are counted.
- **peer**: a plain ``requests.Session`` loop in this process: Basic auth, the same requests,
  ``resp.json()`` each response and count the employees and table entries. No validation, no
  Singer output, no retries: the floor.

Prints records/s for each and the ratio, and writes benchmarks/results/tap_hibob.md.
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
RESULTS = HERE / "results" / "tap_hibob.md"
PY = Path(sys.executable)
TAP = PY.parent / "tap-hibob"
TABLES = ("work", "employment", "lifecycle")


def run_tap(info: dict[str, Any], workdir: Path) -> tuple[int, float]:
    config_path = workdir / "config.json"
    config = {"service_user_id": info["service_user_id"], "token": info["token"],
              "api_url": f"{info['url']}/v1", "page_size": 200}  # fmt: skip
    config_path.write_text(json.dumps(config))
    counts, seconds = tapbench.run_tap(TAP, config_path)
    return sum(counts.values()), seconds


def run_peer(info: dict[str, Any]) -> tuple[int, float]:
    from tap_hibob.streams import EMPLOYEE_FIELDS  # the same fields, asked the same way

    started = time.perf_counter()
    session = requests.Session()
    session.auth = (info["service_user_id"], info["token"])
    base = f"{info['url']}/v1"
    body = {"fields": list(EMPLOYEE_FIELDS), "showInactive": True, "humanReadable": "APPEND"}
    resp = session.post(f"{base}/people/search", json=body, timeout=600)
    resp.raise_for_status()
    count = len(resp.json()["employees"])
    for table in TABLES:
        params: dict[str, Any] = {"limit": 200}
        while True:
            page = session.get(f"{base}/bulk/people/{table}", params=params, timeout=60)
            page.raise_for_status()
            data = page.json()
            count += sum(len(r["values"]) for r in data["results"])
            cursor = data["response_metadata"]["next_cursor"]
            if not cursor:
                break
            params = {"limit": 200, "cursor": cursor}
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        tapbench.serve("hibob", args.employees)
        return 0
    with (
        tapbench.sandbox_process(__file__, args.employees) as info,
        tempfile.TemporaryDirectory() as tmp,
    ):
        peer_n, peer_s = run_peer(info)
        tap_n, tap_s = run_tap(info, Path(tmp))
    if tap_n != peer_n:
        raise SystemExit(f"record counts differ: tap {tap_n}, peer {peer_n}")
    tap_rate, peer_rate = tap_n / tap_s, peer_n / peer_s
    ratio = tap_rate / peer_rate
    where = f"{args.employees:,} employees"
    lines = [
        "| round | contender | records | seconds | records/s | ratio |",
        "|---|---|---:|---:|---:|---:|",
        f"| {where} | tap-hibob | {tap_n} | {tap_s:.1f} | {tap_rate:,.0f} | {ratio:.2f} |",
        f"| {where} | peer: bare requests loop | {peer_n} | {peer_s:.1f} | {peer_rate:,.0f} | |",
    ]
    summary = f"tap-hibob / peer throughput ratio {ratio:.2f}"
    print("\n".join(lines))
    print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# tap-hibob benchmark\n\n"
        f"`benchmarks/bench_tap_hibob.py --employees {args.employees}`: the HiBob sandbox in a "
        "separate process, loopback HTTP; the people search (one response) and the three bulk "
        "employee tables at 200 employees a page.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + summary
        + "\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other work while measured).\n\n"
        "The peer only requests and parses JSON; the tap also validates config, conforms each "
        "record to the schema, checks for schema drift and writes Singer messages; its time "
        "includes process start-up (about 1 s). Both read everything: HiBob has no change feed.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
