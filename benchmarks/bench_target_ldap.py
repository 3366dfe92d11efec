"""target-ldap vs a plain sequential ldap3 add loop, provisioning N users into OpenLDAP.

    .venv/bin/python benchmarks/bench_target_ldap.py [--users 20000] [--connections 4]

Every contender gets its own fresh slapd (same generated slapd.conf: mdb, dbnosync, the
core/cosine/inetorgperson/nis schemas, ppolicy and auditlog overlays), started here on a
free loopback port, in the same run:

- ``ldap3 add loop``: one ldap3 SYNC connection, one add per user, in order, flat under
  ou=People. No lookup, no plan, no guard, no audit: the least a client can do.
- ``target-ldap (1 connection)`` / ``(N connections)``: the real target, in-process, reading
  Singer messages: the paged read of the directory, the full plan (logins, DNs, collisions,
  manager links), the mass-deprovisioning guard, then the writes (python-ldap, pipelined:
  64 requests in flight per connection), the audit log.
- ``target-ldap + OUs + groups``: DNs under ou={department} (OUs created on the fly) and
  three group rules (an all-staff group with N members, one per department).
- ``target-ldap re-run``: the same feed again: it must write nothing (plan only).
- ``python-ldap add loop``: the same adds through OpenLDAP's own C client library (the one
  target-ldap uses), one at a time and 64 in flight on one connection: the ceiling of the
  writes alone.

Each row also gives the CPU seconds of the client (this process) and of slapd, so the table
shows where the time goes.

Every directory is read back (number of person entries) so a fast wrong answer cannot win.
Results: a table on stdout and benchmarks/results/target_ldap.md.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "target_ldap.md"
sys.path.insert(0, str(ROOT / "tests" / "targets" / "target_ldap"))  # the slapd test kit

from ldap3 import NONE, SYNC, Connection, Server  # noqa: E402
from ldap_testkit import (  # noqa: E402
    ADMIN,
    DISABLED,
    GROUPS,
    PASSWORD,
    PEOPLE,
    Slapd,
    messages,
    start_slapd,
)

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
    "Te Rangi",
]
DEPTS = ["Engineering", "Sales", "Finance", "People", "Support", "R&D, Labs"]


def records(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        given, family = GIVEN[i % len(GIVEN)], FAMILY[(i // 10) % len(FAMILY)]
        out.append(
            {
                "employee_id": f"{100000 + i}",
                "employee_number": f"N{100000 + i}",
                "user_name": f"user{i}@example.com",
                "work_email": f"user{i}@example.com",
                "given_name": given,
                "family_name": family,
                "title": "Engineer",
                "department": DEPTS[i % len(DEPTS)],
                "location": "Lisbon",
                "manager_employee_id": f"{100000 + (i // 50) * 50}" if i % 50 else None,
                "employment_status": "Active",
                "hire_date": "2021-03-01",
            }
        )
    return out


def count_people(server: Slapd) -> int:
    conn = Connection(
        Server("127.0.0.1", port=server.port, get_info=NONE), ADMIN, PASSWORD, auto_bind=True
    )
    entries = conn.extend.standard.paged_search(
        PEOPLE.split(",", 1)[1],
        "(objectClass=inetOrgPerson)",
        attributes=["1.1"],
        paged_size=1000,
        generator=True,
    )
    total = sum(1 for e in entries if e.get("type") == "searchResEntry")
    conn.unbind()
    return total


def ldap3_loop(server: Slapd, people: list[dict[str, Any]]) -> None:
    conn = Connection(
        Server("127.0.0.1", port=server.port, get_info=NONE),
        ADMIN,
        PASSWORD,
        client_strategy=SYNC,
        auto_bind=True,
        check_names=False,
    )
    for p in people:
        uid = p["work_email"].split("@")[0]
        attrs = {
            "uid": uid,
            "cn": f"{p['given_name']} {p['family_name']}",
            "sn": p["family_name"],
            "givenName": p["given_name"],
            "displayName": f"{p['given_name']} {p['family_name']}",
            "mail": p["work_email"],
            "title": p["title"],
            "departmentNumber": p["department"],
            "l": p["location"],
            "employeeNumber": p["employee_id"],
        }
        if not conn.add(
            f"uid={uid},{PEOPLE}", ["top", "person", "organizationalPerson", "inetOrgPerson"], attrs
        ):
            raise RuntimeError(f"add failed: {conn.result}")
    conn.unbind()


def python_ldap_loop(server: Slapd, people: list[dict[str, Any]], window: int) -> None:
    import ldap

    conn = ldap.initialize(f"ldap://127.0.0.1:{server.port}")
    conn.simple_bind_s(ADMIN, PASSWORD)
    pending: list[int] = []
    for p in people:
        uid = p["work_email"].split("@")[0]
        name = f"{p['given_name']} {p['family_name']}"
        attrs = {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": [uid],
            "cn": [name],
            "sn": [p["family_name"]],
            "givenName": [p["given_name"]],
            "displayName": [name],
            "mail": [p["work_email"]],
            "title": [p["title"]],
            "departmentNumber": [p["department"]],
            "l": [p["location"]],
            "employeeNumber": [p["employee_id"]],
        }
        modlist = [(k, [v.encode("utf-8") for v in vs]) for k, vs in attrs.items()]
        pending.append(conn.add_ext(f"uid={uid},{PEOPLE}", modlist))
        if len(pending) >= window:
            conn.result3(pending.pop(0))
    for msgid in pending:
        conn.result3(msgid)
    conn.unbind_s()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_target(server: Slapd, feed: str, tmp: Path, **overrides: Any) -> Any:
    from target_ldap.target import TargetLDAP

    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "dn_template": "uid={uid},{base_dn}",
        "disabled_ou": DISABLED,
        "retry_file": str(tmp / "retry.jsonl"),
    }
    config.update(overrides)
    target = TargetLDAP(config=config, validate_config=True)
    stdout = sys.stdout
    sys.stdout = io.StringIO()  # the STATE line
    try:
        target.listen(io.StringIO(feed))
    finally:
        sys.stdout = stdout
    assert not target.summary.failures, target.summary.failures[:3]
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    people = records(args.users)
    feed = messages(people)
    groups = [
        {"group": f"cn=all-staff,{GROUPS}", "match": {}},
        {"group": f"cn=engineering,{GROUPS}", "match": {"department": "Engineering"}},
        {"group": f"cn=sales,{GROUPS}", "match": {"department": "Sales"}},
    ]
    rows: list[tuple[str, float, int, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ["HRSYNC_AUDIT_LOG"] = str(tmp / "audit.jsonl")

        def contender(
            name: str, fn: Callable[[Slapd], Any], server: Slapd | None = None, keep: bool = False
        ) -> Slapd:
            server = server or start_slapd(
                tmp / name.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "")
            )
            start = time.perf_counter()
            client, slapd_cpu = time.process_time(), cpu_seconds(server.process.pid)
            fn(server)
            elapsed = time.perf_counter() - start
            client = time.process_time() - client
            slapd_cpu = cpu_seconds(server.process.pid) - slapd_cpu
            rows.append((name, elapsed, count_people(server), "", client, slapd_cpu))
            print(f"{name:<38} {elapsed:8.2f} s", flush=True)
            if not keep:
                server.stop()
            return server

        contender("ldap3 add loop (sequential)", lambda s: ldap3_loop(s, people))
        contender("python-ldap add loop (sequential)", lambda s: python_ldap_loop(s, people, 1))
        contender("python-ldap add loop (64 in flight)", lambda s: python_ldap_loop(s, people, 64))
        contender(
            "target-ldap (1 connection)", lambda s: run_target(s, feed, tmp, max_connections=1)
        )
        server = contender(
            f"target-ldap ({args.connections} connections)",
            lambda s: run_target(s, feed, tmp, max_connections=args.connections),
            keep=True,
        )
        contender(
            "target-ldap re-run (writes nothing)",
            lambda s: run_target(s, feed, tmp, max_connections=args.connections),
            server=server,
        )
        assert server.write_count() == args.users + 8  # the seed (8 entries) + the users
        contender(
            f"target-ldap + OUs + groups ({args.connections} conn.)",
            lambda s: run_target(
                s,
                feed,
                tmp,
                max_connections=args.connections,
                group_rules=groups,
                dn_template="uid={uid},ou={department},ou=People,dc=example,dc=com",
            ),
        )

    base = rows[0][1]
    lines = [
        f"# target-ldap benchmark: {args.users} users into OpenLDAP slapd",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; slapd {slapd_version()}; ldap3 {ldap3_version()}; "
        f"python-ldap {python_ldap_version()} (target-ldap's client); "
        "mdb with dbnosync; every contender on its own fresh slapd on loopback.",
        "",
        "| contender | seconds | users/s | entries read back | vs ldap3 loop | client CPU s "
        "| slapd CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, secs, count, _, client, slapd_cpu in rows:
        lines.append(
            f"| {name} | {secs:.2f} | {args.users / secs:,.0f} | {count} | {base / secs:.2f}x "
            f"| {client:.1f} | {slapd_cpu:.1f} |"
        )
    lines += [
        "",
        "`vs ldap3 loop` > 1 means faster than the plain loop. The target also reads the "
        "directory (paged), plans every user (logins, DNs, manager links), runs the guard and "
        "writes one audit line per change; the re-run row is that plan alone.",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_target_ldap.py --users {args.users} "
        f"--connections {args.connections}`",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def slapd_version() -> str:
    out = subprocess.run(["slapd", "-VV"], capture_output=True, text=True)
    text = (out.stdout + out.stderr).split("slapd ", 1)[-1]
    return text.split(" ", 1)[0]


def python_ldap_version() -> str:
    import ldap

    from target_ldap import directory

    assert directory.ldap is ldap, "target-ldap writes through python-ldap"
    return f"{ldap.__version__}, libldap {ldap.VENDOR_VERSION}"


def ldap3_version() -> str:
    import ldap3

    return str(ldap3.__version__)


if __name__ == "__main__":
    main()
