"""tap-moodle vs a bare ``requests`` loop, reading one Moodle site back in one run.

    .venv/bin/python benchmarks/bench_tap_moodle.py [--employees 20000]

The Moodle sandbox runs in its own process (so neither contender shares its GIL), holding
``--employees`` users as target-moodle leaves them (id number, department, every tenth
suspended) and their enrolments (everyone in the two company-wide courses, every fifth also in
a third; every twentieth enrolment suspended). The users are written into the fake's store (its
``core_user_create_users`` checks uniqueness against every user: quadratic at this size), the
enrolments through its ``enrol_users``.

- **tap-moodle**: the console script as a subprocess, both streams (users, enrolments); its
  stdout (Singer JSON lines) is read and the RECORD lines are counted.
- **peer**: a plain ``requests.Session`` loop in this process making the same web-service calls
  (``core_user_get_users`` with the ``%`` e-mail criterion; ``core_course_get_courses``; for each
  course ``core_enrol_get_enrolled_users`` with ``onlysuspended`` then without, in pages of
  ``--page-size``), ``resp.json()`` each, counting users and enrolments. No overlap checks, no
  validation, no Singer output, no retries: the floor.

Prints records/s for each and the ratio, and writes benchmarks/results/tap_moodle.md.
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
from pathlib import Path
from typing import Any

import requests

import tapbench

RESULTS = Path(__file__).resolve().parent / "results" / "tap_moodle.md"
TAP = tapbench.PY.parent / "tap-moodle"


def fill(moodle: Any, employees: int) -> None:
    now = int(time.time())
    enrol: list[dict[str, int]] = []
    with moodle.lock:
        for n in range(employees):
            uid = moodle.next_user_id
            moodle.next_user_id += 1
            row = moodle._user_row(uid, f"user{n:06d}@example.com", f"Given{n}", f"Family{n}",
                                   f"user{n:06d}@example.com", "manual", now)  # fmt: skip
            row.update(idnumber=str(n + 1), department=("Engineering", "Sales")[n % 2],
                       suspended=int(n % 10 == 0))  # fmt: skip
            moodle.users[uid] = row
            for course in (2, 3, 9) if n % 5 == 0 else (2, 3):
                enrol.append({"roleid": 5, "userid": uid, "courseid": course,
                              "suspend": int(len(enrol) % 20 == 0)})  # fmt: skip
    for first in range(0, len(enrol), 1000):
        moodle.enrol_users({"enrolments": enrol[first : first + 1000]})


def serve(employees: int) -> None:
    """Child mode: the filled Moodle fake; print its URL and token."""
    from sandbox.server import Sandbox

    sb = Sandbox(employees=50, vendors=("moodle",)).start()
    fill(sb.apps["moodle"], employees)
    print(json.dumps({"url": sb.url("moodle"), **sb.credentials["moodle"]}))
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sb.stop()


def run_tap(info: dict[str, Any], workdir: Path, page_size: int) -> tuple[int, float]:
    config_path = workdir / "config.json"
    config = {"base_url": info["url"], "token": info["token"], "page_size": page_size}
    config_path.write_text(json.dumps(config))
    counts, seconds = tapbench.run_tap(TAP, config_path)
    return sum(counts.values()), seconds


def run_peer(info: dict[str, Any], page_size: int) -> tuple[int, float]:
    started = time.perf_counter()
    session = requests.Session()
    url = f"{info['url']}/webservice/rest/server.php"

    def call(function: str, **args: Any) -> Any:
        data = {"wstoken": info["token"], "wsfunction": function, "moodlewsrestformat": "json"}
        resp = session.post(url, data={**data, **args}, timeout=120)
        resp.raise_for_status()
        return resp.json()

    users = call("core_user_get_users", **{"criteria[0][key]": "email",
                                            "criteria[0][value]": "%"})["users"]  # fmt: skip
    count = len(users)
    for course in call("core_course_get_courses"):
        if course["id"] == 1:
            continue
        for only in ({"options[0][name]": "onlysuspended", "options[0][value]": "1"}, {}):
            offset, i = 0, len(only) // 2
            while True:
                page = call("core_enrol_get_enrolled_users", courseid=str(course["id"]), **only,
                            **{f"options[{i}][name]": "limitfrom", f"options[{i}][value]": offset,
                               f"options[{i + 1}][name]": "limitnumber",
                               f"options[{i + 1}][value]": page_size})  # fmt: skip
                if not only:
                    count += len(page)
                if len(page) < page_size:
                    break
                offset += page_size
    return count, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.employees)
        return 0
    with (
        tapbench.sandbox_process(__file__, args.employees) as info,
        tempfile.TemporaryDirectory() as tmp,
    ):
        peer_n, peer_s = run_peer(info, args.page_size)
        tap_n, tap_s = run_tap(info, Path(tmp), args.page_size)
    if tap_n != peer_n:
        raise SystemExit(f"record counts differ: tap {tap_n}, peer {peer_n}")
    tap_rate, peer_rate = tap_n / tap_s, peer_n / peer_s
    ratio = tap_rate / peer_rate
    where = f"{args.employees:,} users"
    lines = [
        "| site | contender | records | seconds | records/s | ratio |",
        "|---|---|---:|---:|---:|---:|",
        f"| {where} | tap-moodle | {tap_n} | {tap_s:.1f} | {tap_rate:,.0f} | {ratio:.2f} |",
        f"| {where} | peer: bare requests loop | {peer_n} | {peer_s:.1f} | {peer_rate:,.0f} | |",
    ]
    summary = f"tap-moodle / peer throughput ratio {ratio:.2f}"
    print("\n".join(lines))
    print(summary)
    load = os.getloadavg()
    RESULTS.write_text(
        "# tap-moodle benchmark\n\n"
        f"`benchmarks/bench_tap_moodle.py --employees {args.employees} --page-size "
        f"{args.page_size}`: the Moodle sandbox in a separate process, loopback HTTP, users and "
        "enrolments.\n\n" + "\n".join(lines) + f"\n\n{summary}\n\n"
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work (load average {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} at the end).\n\n"
        "Both make the same web-service calls. The tap also validates config, reports drift, "
        "overlaps its enrolment pages by one row (so a list that changes while it is read loses "
        "and doubles nothing), conforms each record and writes Singer messages; its time "
        "includes process start-up and discovery.\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
