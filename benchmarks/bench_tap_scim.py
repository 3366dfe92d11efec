"""tap-scim vs a bare requests loop, reading N users back from the real scim2-server.

    .venv/bin/python benchmarks/bench_tap_scim.py [--users 2000] [--page-size 100]

(scim2-server filters and sorts its whole store for every page, so a read costs it O(N^2):
20,000 users would take the server most of an hour, whoever reads.)

One scim2-server (its own process, loopback, in-memory) is seeded with N enterprise users
through SCIM Bulk, then read in the same run by:

- ``peer: bare requests loop``: one ``requests.Session``, ``GET /Users?startIndex=&count=``
  until ``totalResults``, JSON parsed. No schema, no Singer.
- ``tap-scim``: the real tap as its console script (process start-up included), its RECORD
  lines counted: the HTTP policy, /ServiceProviderConfig, paging, drift check, the window,
  Singer messages.

Both must see N users, so a fast wrong answer cannot win. Results: a table on stdout and
benchmarks/results/tap_scim.md.
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

import requests

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "tap_scim.md"
sys.path.insert(0, str(HERE))

from sandbox.directories import start_scim_server  # noqa: E402
from tapbench import run_tap, select_streams  # noqa: E402

TOKEN = "bench-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def seed(session: requests.Session, url: str, users: int) -> None:
    for first in range(0, users, 1000):
        operations = [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": f"u{n}",
                "data": {
                    "schemas": [USER, ENTERPRISE],
                    "userName": f"user{n:06d}@example.com",
                    "externalId": f"E{n:06d}",
                    "active": n % 10 != 0,
                    "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
                    "title": "Engineer",
                    "emails": [{"value": f"user{n:06d}@example.com", "primary": True}],
                    ENTERPRISE: {"employeeNumber": f"N{n:06d}", "department": "Engineering"},
                },
            }
            for n in range(first, min(users, first + 1000))
        ]
        response = session.post(
            f"{url}/Bulk", json={"schemas": [BULK], "Operations": operations}, timeout=600
        )
        response.raise_for_status()


def peer(session: requests.Session, url: str, page_size: int) -> tuple[int, float]:
    started = time.perf_counter()
    count, start = 0, 1
    while True:
        body = session.get(
            f"{url}/Users", params={"startIndex": start, "count": page_size}, timeout=60
        ).json()
        resources = body.get("Resources") or []
        count += len(resources)
        start += len(resources)
        if not resources or start > body["totalResults"]:
            return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    tap = Path(sys.executable).parent / "tap-scim"
    server = start_scim_server(token=TOKEN)
    rows: list[tuple[str, int, float]] = []
    try:
        url = server.url("bench")
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        seed(session, url, args.users)
        rows.append(("peer: bare requests loop", *peer(session, url, args.page_size)))
        with tempfile.TemporaryDirectory() as tmp:
            config = {"base_url": url, "bearer_token": TOKEN, "page_size": args.page_size}
            config_path = Path(tmp) / "config.json"
            config_path.write_text(json.dumps(config))
            catalog = select_streams(tap, config_path, ["users"], Path(tmp))
            counts, seconds = run_tap(tap, config_path, catalog)
            rows.append(("tap-scim", counts["users"], seconds))
    finally:
        server.stop()
    for name, count, _ in rows:
        assert count == args.users, f"{name} read {count} users, expected {args.users}"
    peer_rate, tap_rate = rows[0][1] / rows[0][2], rows[1][1] / rows[1][2]
    lines = [
        "# tap-scim benchmark",
        "",
        f"`benchmarks/bench_tap_scim.py --users {args.users} --page-size {args.page_size}`: the "
        "real scim2-server in its own process on loopback, the same page size for both.",
        "",
        "| contender | users | seconds | records/s | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| tap-scim | {rows[1][1]} | {rows[1][2]:.1f} | {tap_rate:,.0f} | "
        f"{tap_rate / peer_rate:.2f} |",
        f"| {rows[0][0]} | {rows[0][1]} | {rows[0][2]:.1f} | {peer_rate:,.0f} | |",
        "",
        f"tap-scim / peer throughput ratio {tap_rate / peer_rate:.2f}",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other work while measured).",
        "",
        "scim2-server answers each page by filtering and sorting its whole in-memory store, so "
        "the server's time dominates both contenders. The tap also starts a process, reads "
        "/ServiceProviderConfig, checks each record against its schema (drift), applies the "
        "incremental window and writes Singer messages.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
