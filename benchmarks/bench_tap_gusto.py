"""tap-gusto vs a bare ``requests`` loop, reading one Gusto company back in one run.

    .venv/bin/python benchmarks/bench_tap_gusto.py [--employees 20000]

The Gusto sandbox runs in its own process (so neither contender shares its GIL), filled with
``--employees`` payroll employees as target-payroll-api leaves them (the HRIS id in the custom
field, a job at a company location with its compensation; every tenth also a raise, every
seventh terminated), its rate limit lifted (Gusto's 200 requests a minute would measure the
limit, not the contenders).

- **tap-gusto**: the console script as a subprocess, every stream selected (locations,
  employees, jobs, compensations, terminations); its stdout (Singer JSON lines) is read and the
  RECORD lines are counted.
- **peer**: a plain ``requests.Session`` loop in this process: bearer token,
  ``X-Gusto-API-Version``, the locations, then ``GET .../employees?include=custom_fields`` pages
  (``per=100``) until ``X-Total-Pages``, ``resp.json()`` each page, counting the employees and
  the jobs, compensations and terminations they embed. No validation, no Singer output, no
  retries: the floor.

Prints records/s for each and the ratio, and writes benchmarks/results/tap_gusto.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

import tapbench

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tap_gusto.md"
PY = Path(sys.executable)
TAP = PY.parent / "tap-gusto"
VERSION = "2025-06-15"


def fill(app: Any, employees: int) -> None:
    """The company as target-payroll-api leaves it, written straight into the fake."""
    location = app.locations[0]["uuid"]
    hire = (date.today() - timedelta(days=900)).isoformat()
    raise_on = (date.today() - timedelta(days=30)).isoformat()
    for i in range(1, employees + 1):
        emp_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
        app.employees[emp_id] = {
            "uuid": emp_id, "company_uuid": app.company_uuid, "version": "v1",
            "onboarded": True, "onboarding_status": "onboarding_completed",
            "payment_method": "Direct Deposit", "department": None,
            "current_employment_status": "full_time", "first_name": f"First{i}",
            "middle_initial": None, "last_name": f"Last{i}", "preferred_first_name": None,
            "email": None, "work_email": f"p{i}@acme.example", "date_of_birth": "1990-01-01",
            "_ssn": "123456789", "_external_id": str(i),
        }  # fmt: skip
        app.jobs[job_id] = {
            "uuid": job_id, "version": "v1", "employee_uuid": emp_id, "title": "Engineer",
            "hire_date": hire, "location_uuid": location, "primary": True,
        }  # fmt: skip
        for n, when in enumerate([hire, raise_on] if i % 10 == 0 else [hire]):
            comp_id = str(uuid.uuid4())
            app.compensations[comp_id] = {
                "uuid": comp_id, "version": "v1", "job_uuid": job_id,
                "rate": f"{80000 + 1000 * n:.2f}", "payment_unit": "Year",
                "flsa_status": "Exempt", "effective_date": when,
            }  # fmt: skip
        if i % 7 == 0:
            app.terminations[emp_id] = [
                {"uuid": str(uuid.uuid4()), "version": "v1", "employee_uuid": emp_id,
                 "active": True, "cancelable": False, "effective_date": raise_on,
                 "run_termination_payroll": True}
            ]  # fmt: skip


def serve(employees: int) -> None:
    """Child mode: the filled Gusto fake; print its URL, credentials and two refresh tokens."""
    from sandbox.server import Sandbox

    sb = Sandbox(employees=50, vendors=("gusto",)).start()
    app = sb.apps["gusto"]
    app.rate_limit = 10_000_000  # type: ignore[attr-defined]
    fill(app, employees)
    tokens = [app.issue_refresh_token() for _ in range(2)]  # type: ignore[attr-defined]
    print(json.dumps({"url": sb.url("gusto"), "refresh": tokens, **sb.credentials["gusto"]}))
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sb.stop()


def run_tap(info: dict[str, Any], workdir: Path) -> tuple[int, float]:
    config_path = workdir / "config.json"
    config_path.write_text(
        json.dumps(
            {
                "company_uuid": info["company_uuid"],
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "refresh_token": info["refresh"][0],
                "token_file": str(workdir / "token.json"),
                "api_url": info["url"],
                "api_version": VERSION,
                "page_size": 100,
            }
        )
    )
    counts, seconds = tapbench.run_tap(TAP, config_path)
    return sum(counts.values()), seconds


def run_peer(info: dict[str, Any]) -> tuple[int, float]:
    started = time.perf_counter()
    session = requests.Session()
    token = session.post(
        f"{info['url']}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "refresh_token": info["refresh"][1],
        },
        timeout=60,
    ).json()["access_token"]
    session.headers.update({"Authorization": f"Bearer {token}", "X-Gusto-API-Version": VERSION})
    base = f"{info['url']}/v1/companies/{info['company_uuid']}"
    resp = session.get(f"{base}/locations", timeout=60)
    resp.raise_for_status()
    count = len(resp.json())
    page = 1
    while True:
        resp = session.get(
            f"{base}/employees",
            params={"include": "custom_fields", "page": page, "per": 100},
            timeout=60,
        )
        resp.raise_for_status()
        for emp in resp.json():
            count += 1 + len(emp["terminations"]) + len(emp["jobs"])
            count += sum(len(job["compensations"]) for job in emp["jobs"])
        if page >= int(resp.headers["X-Total-Pages"]):
            break
        page += 1
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.employees)
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
        "| company | contender | records | seconds | records/s | ratio |",
        "|---|---|---:|---:|---:|---:|",
        f"| {where} | tap-gusto | {tap_n} | {tap_s:.1f} | {tap_rate:,.0f} | {ratio:.2f} |",
        f"| {where} | peer: bare requests loop | {peer_n} | {peer_s:.1f} | {peer_rate:,.0f} | |",
    ]
    summary = f"tap-gusto / peer throughput ratio {ratio:.2f}"
    print("\n".join(lines))
    print(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# tap-gusto benchmark\n\n"
        f"`benchmarks/bench_tap_gusto.py --employees {args.employees}`: the Gusto sandbox in a "
        "separate process, loopback HTTP, `per=100`, every stream.\n\n"
        + "\n".join(lines)
        + f"\n\n{summary}\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other work while measured).\n\n"
        "Both read the employee pages only: jobs, compensations and terminations come embedded "
        "in each employee (the tap emits them as child streams without a request of their "
        "own). The tap also validates config, reports drift, looks up each job's location and "
        "writes Singer messages; its time includes process start-up and discovery.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
