"""hris-to-iam at a million employees: peak memory (RSS) and wall time of target-scim and
target-ldap planning the whole feed.

    .venv/bin/python benchmarks/bench_iam_million.py [--employees 1000000] [--small 100000]
        [--targets scim,ldap]

Each target runs as its own process (``python -m target_x --config ... --input feed``) reading
a synthetic identity feed of N employees (generated here, streamed to a file: accented and
non-Latin names, managers in chains of 50, six departments), against a real, empty server
started here on loopback (scim2-server 0.8, OpenLDAP slapd). Both run with ``dry_run: true``:
the full run up to the writes (read the feed, list the destination, match every employee,
plan a create for each, run the mass-deprovisioning guard, print the plan) and no write.
Writing a million users into an in-memory, pure-Python scim2-server or a one-box slapd here
takes hours; write throughput is measured at 20,000 users by bench_target_scim.py and
bench_target_ldap.py. Each target is measured at ``--small`` and at ``--employees`` so the
growth of its peak RSS with the feed shows.

Peak RSS is the child's ``ru_maxrss`` (os.wait4). Results: stdout and
benchmarks/results/iam_million.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "iam_million.md"
sys.path.insert(0, str(ROOT / "tests" / "targets" / "target_ldap"))  # the slapd test kit

GIVEN = ["Zoë", "Seán", "小龙", "محمد", "Ana", "François", "Olusegun", "Priya", "Jürgen", "Ngai"]
FAMILY = [
    "O'Brien",
    "D'Arcy",
    "李",
    "العلي",
    "Silva",
    "Lefèvre",
    "Adeyemi",
    "Iyer",
    "Groß",
    "Rangi",
]
DEPTS = ["Engineering", "Sales", "Finance", "People", "Support", "R&D"]
FIELDS = [
    "employee_id",
    "employee_number",
    "user_name",
    "work_email",
    "given_name",
    "family_name",
    "title",
    "department",
    "location",
    "manager_employee_id",
    "employment_status",
    "hire_date",
]
SCHEMA = {"type": "object", "properties": {k: {"type": ["string", "null"]} for k in FIELDS}}


def write_feed(path: Path, n: int) -> None:
    """N identity records as Singer messages, streamed (the generator holds one record)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": "iam_users",
                    "schema": SCHEMA,
                    "key_properties": ["employee_id"],
                }
            )
            + "\n"
        )
        for i in range(n):
            record = {
                "employee_id": f"{1000000 + i}",
                "employee_number": f"N{1000000 + i}",
                "user_name": f"user{i}@example.com",
                "work_email": f"user{i}@example.com",
                "given_name": GIVEN[i % len(GIVEN)],
                "family_name": FAMILY[(i // 10) % len(FAMILY)],
                "title": "Engineer",
                "department": DEPTS[i % len(DEPTS)],
                "location": "Lisbon",
                "manager_employee_id": f"{1000000 + (i // 50) * 50}" if i % 50 else None,
                "employment_status": "Active",
                "hire_date": "2021-03-01",
            }
            line = {"type": "RECORD", "stream": "iam_users", "record": record}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


def run_plugin(module: str, config: dict[str, Any], feed: Path, tmp: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB) of one target process over the feed."""
    cfg = tmp / f"{module}.json"
    cfg.write_text(json.dumps(config), encoding="utf-8")
    log = tmp / f"{module}.log"
    env = {
        **os.environ,
        "HRSYNC_AUDIT_LOG": str(tmp / "audit.jsonl"),
        "HRSYNC_DLQ_PATH": str(tmp / "dlq.sqlite"),
    }
    start = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(cfg), "--input", str(feed)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{module} failed ({proc.returncode}):\n{tail}")
    return elapsed, usage.ru_maxrss // 1024


def measure_scim(feed: Path, tmp: Path, tenant: str) -> tuple[float, int]:
    from sandbox.directories import start_scim_server

    server = start_scim_server(token="bench-token")
    try:
        config = {
            "base_url": server.url(tenant),
            "bearer_token": "bench-token",
            "dry_run": True,
        }
        return run_plugin("target_scim", config, feed, tmp)
    finally:
        server.stop()


def measure_ldap(feed: Path, tmp: Path, name: str) -> tuple[float, int]:
    from ldap_testkit import ADMIN, DISABLED, PASSWORD, PEOPLE, start_slapd

    server = start_slapd(tmp / name)
    try:
        config = {
            "url": server.url,
            "bind_dn": ADMIN,
            "bind_password": PASSWORD,
            "base_dn": PEOPLE,
            "dn_template": "uid={uid},{base_dn}",
            "disabled_ou": DISABLED,
            "dry_run": True,
        }
        return run_plugin("target_ldap", config, feed, tmp)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--targets", default="scim,ldap")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    rows: list[tuple[str, int, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-iam-million-") as tmpdir:
        tmp = Path(tmpdir)
        for n in (args.small, args.employees):
            feed = tmp / f"feed-{n}.jsonl"
            started = time.perf_counter()
            write_feed(feed, n)
            size = feed.stat().st_size / 2**20
            print(
                f"feed of {n:,} employees: {size:,.0f} MiB in {time.perf_counter() - started:.0f} s"
            )
            for target in targets:
                measure = measure_scim if target == "scim" else measure_ldap
                secs, rss = measure(feed, tmp, f"{target}{n}")
                rows.append((f"target-{target}", n, secs, rss))
                print(f"target-{target} at {n:,}: {secs:,.0f} s, peak RSS {rss:,} MiB", flush=True)
            feed.unlink()

    lines = [
        f"# hris-to-iam at {args.employees:,} employees: peak RSS and wall time of each target",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs "
        "(shared with other work: wall times are noisy). Synthetic feed, each target its own "
        "process against an empty real server on loopback (scim2-server 0.8, OpenLDAP slapd), "
        "`dry_run: true`: read the feed, list the destination, match and plan every employee "
        "(a create each), run the mass-deprovisioning guard, print the plan; no write (see "
        "target_scim.md and target_ldap.md for writes at 20,000 users).",
        "",
        "| target | employees | wall s | employees/s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, n, secs, rss in rows:
        lines.append(f"| {name} | {n:,} | {secs:,.0f} | {n / secs:,.0f} | {rss:,} |")
    lines += [
        "",
        f"Command: `.venv/bin/python benchmarks/bench_iam_million.py --employees {args.employees} "
        f"--small {args.small} --targets {args.targets}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
