"""tap-ldap vs a bare ldap3 paged-search loop, reading N people back from OpenLDAP.

    .venv/bin/python benchmarks/bench_tap_ldap.py [--people 20000] [--page-size 500]

One fresh slapd (sandbox.directories: mdb, loopback port, Debian's sizelimit 500) is seeded
with N inetOrgPerson entries, then read in the same run by:

- ``peer: ldap3 paged search``: one ldap3 connection, ``paged_search`` with the same filter,
  attributes and page size, values decoded to text. No record building, no Singer.
- ``tap-ldap``: the real tap as its console script (process start-up included), its RECORD
  lines counted: the TLS-policy connection, the paged search, every record built (enabled,
  ISO stamps, identifiers), the incremental window, Singer messages.

Both must see N people, so a fast wrong answer cannot win. Results: a table on stdout and
benchmarks/results/tap_ldap.md.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "tap_ldap.md"
sys.path.insert(0, str(HERE))

from ldap3 import SUBTREE  # noqa: E402

from sandbox.directories import ADMIN, PASSWORD, PEOPLE, start_slapd  # noqa: E402
from tap_ldap.streams import PeopleStream  # noqa: E402
from tapbench import run_tap, select_streams  # noqa: E402

FILTER = "(objectClass=inetOrgPerson)"


def seed(server: object, people: int) -> None:
    conn = server.connect()  # type: ignore[attr-defined]
    for n in range(people):
        conn.add(
            f"uid=p{n:06d},{PEOPLE}",
            ["inetOrgPerson"],
            {
                "cn": f"Given{n} Family{n}",
                "givenName": f"Given{n}",
                "sn": f"Family{n}",
                "mail": f"p{n:06d}@example.com",
                "employeeNumber": f"E{n:06d}",
                "title": ["Engineer", "Analyst"][: 1 + n % 2],
                "departmentNumber": "Engineering",
            },
        )
    conn.unbind()


def peer(server: object, page_size: int) -> tuple[int, float]:
    attributes = [*PeopleStream.text_attributes, *PeopleStream.list_attributes,
                  "modifyTimestamp", "createTimestamp", "entryUUID"]  # fmt: skip
    started = time.perf_counter()
    conn = server.connect()  # type: ignore[attr-defined]
    count = 0
    for entry in conn.extend.standard.paged_search(
        PEOPLE, FILTER, SUBTREE, attributes=attributes, paged_size=page_size, generator=True
    ):
        if entry.get("type") == "searchResEntry":
            {k: [v.decode() for v in vs] for k, vs in entry["raw_attributes"].items()}
            count += 1
    conn.unbind()
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()
    tap = Path(sys.executable).parent / "tap-ldap"
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_slapd(Path(tmp) / "slapd", ppolicy=False)
        try:
            seed(server, args.people)
            count, seconds = peer(server, args.page_size)
            rows.append(("peer: ldap3 paged search", count, seconds))
            config = {"url": server.url, "bind_dn": ADMIN, "bind_password": PASSWORD,
                      "base_dn": PEOPLE, "page_size": args.page_size}  # fmt: skip
            config_path = Path(tmp) / "config.json"
            config_path.write_text(json.dumps(config))
            catalog = select_streams(tap, config_path, ["people"], Path(tmp))
            counts, seconds = run_tap(tap, config_path, catalog)
            rows.append(("tap-ldap", counts["people"], seconds))
        finally:
            server.stop()
    for name, count, _ in rows:
        assert count == args.people, f"{name} read {count} people, expected {args.people}"
    peer_rate = rows[0][1] / rows[0][2]
    tap_rate = rows[1][1] / rows[1][2]
    lines = [
        "# tap-ldap benchmark",
        "",
        f"`benchmarks/bench_tap_ldap.py --people {args.people} --page-size {args.page_size}`: "
        "one slapd on loopback, the same filter, attributes and page size for both.",
        "",
        "| contender | people | seconds | records/s | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| tap-ldap | {rows[1][1]} | {rows[1][2]:.1f} | {tap_rate:,.0f} | "
        f"{tap_rate / peer_rate:.2f} |",
        f"| {rows[0][0]} | {rows[0][1]} | {rows[0][2]:.1f} | {peer_rate:,.0f} | |",
        "",
        f"tap-ldap / peer throughput ratio {tap_rate / peer_rate:.2f}",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other work while measured).",
        "",
        "The peer only pages and decodes values; the tap also starts a process, builds each "
        "record (enabled, ISO 8601 stamps, identifiers), applies the incremental window and "
        "writes Singer messages.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
