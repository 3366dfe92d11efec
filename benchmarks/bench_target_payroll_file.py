"""target-payroll-file vs a bare csv.writer + gpg CLI + paramiko put, for N employees.

    .venv/bin/python benchmarks/bench_target_payroll_file.py [--employees 100000 10000]
        [--before DIR] [--repeat N]

Both contenders get the same Singer feed (per employee: one EMP line with identity and W-4
fields, one PAY line with a compensation change; accents, apostrophes, non-Latin names), the
same real OpenSSH sshd on loopback (started here) and the same GnuPG recipient key, and run as
their own process (so the peak memory of each is measured: ``ru_maxrss`` of the child):

- ``bare peer``: reads the Singer lines, ``csv.writer`` of the same 35 columns (no checks),
  ``gpg --encrypt`` (CLI, the recipient's key in a temporary keyring), then one paramiko
  ``SSHClient`` (RejectPolicy, the same known_hosts) and ``sftp.put`` under the final name.
  No validation, no dead letters, no atomic rename, no ledger, no audit: the least a script
  that sends a payroll file can do.
- ``target-payroll-file``: the real console script, reading the same Singer lines on stdin:
  every line checked against the layout, streamed to a temporary file, encrypted with
  python-gnupg, uploaded to a temporary name and renamed, the ledger of sent lines written,
  the audit log written.
- ``target-payroll-file re-run``: the same feed again: every line is found in the ledger and
  nothing is sent.
- with ``--before DIR`` (DIR: ``git archive <commit> core targets | tar -x -C DIR``), the
  target as it was at that commit (``PYTHONPATH`` on DIR's packages, its own ledger), first
  run and re-run, so a speed-up is measured before and after in one run.

Each file that arrived is decrypted and its data lines counted, so a fast wrong answer cannot
win. Results: a table on stdout and benchmarks/results/target_payroll_file.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "target_payroll_file.md"
BIN = Path(sys.executable).parent

GIVEN = ["Zoë", "Seán", "小龙", "Ana", "François", "Olusegun", "Priya", "Jürgen", "Łukasz", "Ngai"]
FAMILY = ["O'Brien", "D'Arcy", "李", "Silva", "Lefèvre", "Adeyemi", "Iyer", "Groß", "Te Rangi"]
STATES = ["CA", "NY", "TX", "CO", "WA"]
STRING = {"type": ["string", "null"]}
DATE = {"type": ["string", "null"], "format": "date"}
EMP_PROPS = {
    "employee_id": {"type": "string"},
    **dict.fromkeys(
        ("employee_number", "first_name", "last_name", "work_email", "ssn", "employment_status",
         "federal_filing_status", "federal_extra_withholding", "w4_dependents_amount",
         "work_state"),
        STRING,
    ),
    **dict.fromkeys(("date_of_birth", "hire_date", "termination_date"), DATE),
    "w4_multiple_jobs": {"type": ["boolean", "null"]},
}  # fmt: skip
PAY_PROPS = {
    "employee_id": {"type": "string"},
    "row_id": {"type": "string"},
    "effective_date": DATE,
    **dict.fromkeys(("rate", "currency", "pay_type", "paid_per", "flsa_status", "pay_schedule"),
                    STRING),
}  # fmt: skip


def write_feed(path: Path, employees: int) -> int:
    """The Singer feed, written once; returns the number of records."""
    with path.open("w", encoding="utf-8") as fh:
        for stream, props, keys in (
            ("payroll_employees", EMP_PROPS, ["employee_id"]),
            ("payroll_compensations", PAY_PROPS, ["employee_id", "row_id"]),
        ):
            schema = {"type": "object", "properties": props}
            message = {"type": "SCHEMA", "stream": stream, "key_properties": keys, "schema": schema}
            fh.write(json.dumps(message) + "\n")
        for i in range(employees):
            eid = str(100000 + i)
            emp = {
                "employee_id": eid,
                "employee_number": f"E{eid}",
                "first_name": GIVEN[i % len(GIVEN)],
                "last_name": FAMILY[(i // 10) % len(FAMILY)],
                "work_email": f"user{i}@example.com",
                # numbers the SSA issues: area 100-599, group 10-98, serial 0001-9999
                "ssn": f"{100 + i % 500:03d}-{10 + i % 89:02d}-{1 + i % 9999:04d}",
                "date_of_birth": f"19{60 + i % 40}-0{1 + i % 9}-1{i % 10}",
                "hire_date": f"20{10 + i % 16}-0{1 + i % 9}-2{i % 9}",
                "employment_status": "active",
                "federal_filing_status": ("Single", "Married", "Head of Household")[i % 3],
                "federal_extra_withholding": f"{(i % 5) * 25}.00",
                "w4_multiple_jobs": i % 6 == 0,
                "w4_dependents_amount": f"{(i % 3) * 2000}.00",
                "work_state": STATES[i % len(STATES)],
            }
            fh.write(json.dumps({"type": "RECORD", "stream": "payroll_employees", "record": emp},
                                ensure_ascii=False) + "\n")  # fmt: skip
            pay = {
                "employee_id": eid,
                "row_id": f"{eid}01",
                "effective_date": f"2027-0{1 + i % 9}-01",
                "rate": f"{40000 + (i * 37) % 90000}.{i % 100:02d}",
                "currency": "USD",
                "pay_type": "Salary",
                "paid_per": "Year",
                "flsa_status": "Exempt",
                "pay_schedule": "Semi-monthly",
            }
            fh.write(json.dumps({"type": "RECORD", "stream": "payroll_compensations",
                                 "record": pay}) + "\n")  # fmt: skip
        fh.write(json.dumps({"type": "STATE", "value": {"bookmarks": {"n": employees}}}) + "\n")
    return 2 * employees


# --- the peer -----------------------------------------------------------------------------


def peer(feed: Path, cfg: dict[str, Any]) -> None:
    """csv.writer + gpg CLI + paramiko put: run as its own process (``--peer``)."""
    import paramiko

    from target_payroll_file.layout import load_layout

    columns = [(c.name, c.source) for c in load_layout("payroll_changes").columns]
    sets = {"payroll_employees": "EMP", "payroll_compensations": "PAY"}
    work = Path(tempfile.mkdtemp(prefix="peer-"))
    plain, sealed = work / "payroll.csv", work / "payroll.csv.pgp"
    with feed.open(encoding="utf-8") as src, plain.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([name for name, _ in columns])
        for line in src:
            msg = json.loads(line)
            if msg["type"] != "RECORD":
                continue
            record = {**msg["record"], "record_type": sets[msg["stream"]]}
            writer.writerow(["" if record.get(s) is None else record[s] for _, s in columns])
    home = work / "gnupg"
    home.mkdir(mode=0o700)
    key = work / "recipient.asc"
    key.write_text(cfg["pgp_recipient_public_key"], encoding="ascii")
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", "--import", str(key)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always",
                    "--recipient", cfg["pgp_recipient_fingerprint"], "--output", str(sealed),
                    "--encrypt", str(plain)], check=True, capture_output=True)  # fmt: skip
    client = paramiko.SSHClient()
    client.load_host_keys(cfg["sftp_known_hosts_path"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", port=cfg["sftp_port"], username=cfg["sftp_username"],
                   key_filename=cfg["sftp_private_key_path"], look_for_keys=False,
                   allow_agent=False)  # fmt: skip
    sftp = client.open_sftp()
    sftp.put(str(sealed), f"{cfg['sftp_remote_dir']}/peer_payroll.csv.pgp")
    client.close()
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(work, ignore_errors=True)


# --- harness -----------------------------------------------------------------------------


def run_child(cmd: list[str], stdin: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Run through a tiny reaper so the child's own ru_maxrss and CPU seconds (user + system,
    its gpg included) are reported."""
    probe = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        "p=subprocess.run(sys.argv[2:],stdin=open(sys.argv[1],'rb'),stdout=subprocess.DEVNULL,"
        "stderr=subprocess.PIPE);"
        "s=time.perf_counter()-t;"
        "sys.stderr.write(p.stderr.decode()[-3000:] if p.returncode else '');"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(s, r.ru_maxrss/1024, p.returncode, r.ru_utime+r.ru_stime)"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(stdin), *cmd], env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    seconds, rss, code, cpu = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(cmd[:2])} failed:\n{out.stderr}")
    return float(seconds), float(rss), float(cpu)


def measure(
    n: int,
    rep: int,
    records: int,
    feed: Path,
    work: Path,
    sshd: Any,
    recipient: Any,
    before: Path | None,
) -> list[tuple[int, str, float, float, int, int, float]]:
    """One round of every contender at ``n`` employees (its own drop folder and ledgers)."""
    rows: list[tuple[int, str, float, float, int, int, float]] = []
    drop = sshd.upload_dir / f"n{n}-{rep}"
    drop.mkdir()
    cfg = {
        "sftp_host": "127.0.0.1",
        "sftp_port": sshd.port,
        "sftp_username": sshd.username,
        "sftp_private_key_path": str(sshd.client_key_path),
        "sftp_known_hosts_path": str(sshd.write_known_hosts(work / "known_hosts")),
        "sftp_remote_dir": str(drop),
        "pgp_recipient_public_key": recipient.public_key,
        "pgp_recipient_fingerprint": recipient.fingerprint,
        "company_code": "BENCH",
        "transfer_ledger_path": str(work / f"ledger-{n}-{rep}.sqlite"),
    }
    cfg_path = work / f"config-{n}-{rep}.json"
    cfg_path.write_text(json.dumps(cfg))
    env = {**os.environ, "HRSYNC_AUDIT_LOG": str(work / "audit.jsonl"),
           "HRSYNC_DLQ_PATH": str(work / "dlq.sqlite")}  # fmt: skip
    target = [str(BIN / "target-payroll-file"), "--config", str(cfg_path)]
    contenders = [
        ("bare peer (csv.writer + gpg CLI + paramiko put)",
         [sys.executable, __file__, "--peer", str(feed), str(cfg_path)], env),
        ("target-payroll-file", target, env),
        ("target-payroll-file re-run (sends nothing)", target, env),
    ]  # fmt: skip
    if before is not None:
        old_cfg = work / f"config-{n}-{rep}-before.json"
        old_cfg.write_text(
            json.dumps({**cfg, "transfer_ledger_path": str(work / f"ledger-{n}-{rep}-b.sqlite")})
        )
        old_env = {
            **env,
            "PYTHONPATH": f"{before / 'core'}:{before / 'targets' / 'target-payroll-file'}",
        }
        old = [sys.executable, "-m", "target_payroll_file", "--config", str(old_cfg)]
        contenders += [
            ("target-payroll-file before (`--before`)", old, old_env),
            ("target-payroll-file before (`--before`), re-run", old, old_env),
        ]
    for label, cmd, cmd_env in contenders:
        existing = {p.name for p in drop.iterdir()}
        seconds, rss, cpu = run_child(cmd, feed, cmd_env)
        new = [p for p in drop.iterdir() if p.name not in existing]
        size = sum(p.stat().st_size for p in new)
        lines = 0
        for p in new:
            data = recipient.decrypt_file(p)
            lines += data.count(b"\r\n") - 1  # minus the header row
        rows.append((n, label, seconds, rss, size, lines, cpu))
        print(f"{n:>7} {label:<50} {seconds:8.2f} s {rss:7.0f} MiB "
              f"{size / 1e6:7.2f} MB {lines:>8} lines", flush=True)  # fmt: skip
    sent = [r[5] for r in rows]
    assert sent[:3] == [records, records, 0], sent
    assert sent[3:] in ([], [records, 0]), sent
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--employees", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--peer", nargs=2, metavar=("FEED", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="an earlier tree (core/, targets/) to compare")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every contender (medians reported)"
    )
    args = parser.parse_args()
    if args.peer:
        peer(Path(args.peer[0]), json.loads(Path(args.peer[1]).read_text()))
        return

    sys.path.insert(0, str(ROOT))
    import gnupg

    from sandbox.pgp import Recipient
    from sandbox.sftp import start_sshd

    work = Path(tempfile.mkdtemp(prefix="bench-payroll-"))
    sshd = start_sshd(work / "sshd")
    recipient = Recipient.create()
    rows: list[tuple[int, str, float, float, int, int, float]] = []
    try:
        for n in args.employees:
            feed = work / f"feed-{n}.jsonl"
            records = write_feed(feed, n)
            for rep in range(args.repeat):  # contenders interleaved, each with a fresh ledger
                rows += measure(n, rep, records, feed, work, sshd, recipient, args.before)
    finally:
        sshd.stop()
        recipient.close()
        shutil.rmtree(work, ignore_errors=True)

    gpg_version = gnupg.GPG().version if shutil.which("gpg") else "?"
    ssh_version = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True).stderr
    import paramiko

    out = [
        "# target-payroll-file benchmark: a payroll change file, built, checked, encrypted and "
        "sent over SFTP",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"GnuPG {'.'.join(map(str, gpg_version or ()))}; {ssh_version.strip().split(',')[0]} on "
        f"loopback; paramiko {paramiko.__version__}. Per employee: one EMP and one PAY line "
        "(35 columns, CSV layout `payroll_changes`). Every contender is its own process "
        "(peak RSS = the child's `ru_maxrss`); every file that arrived was decrypted and its "
        "lines counted. Load average at the end: "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (absolute times on a shared "
        "machine are inflated; the ratios come from the same run).",
        "",
        "| employees | contender | seconds | lines/s | peak RSS MiB | encrypted MB | lines "
        "arrived | vs peer | CPU s | vs peer (CPU) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.employees:
        group = [r for r in rows if r[0] == n]
        table = []
        for label in dict.fromkeys(r[1] for r in group):  # medians over the rounds
            runs = [r for r in group if r[1] == label]
            seconds = statistics.median(r[2] for r in runs)
            cpu = statistics.median(r[6] for r in runs)
            table.append((label, seconds, max(r[3] for r in runs), runs[0][4], runs[0][5], cpu))
        base, base_cpu = table[0][1], table[0][5]
        for label, seconds, rss, size, lines, cpu in table:
            rate = 2 * n / seconds
            out.append(
                f"| {n:,} | {label} | {seconds:.2f} | {rate:,.0f} | {rss:.0f} | "
                f"{size / 1e6:.2f} | {lines:,} | {base / seconds:.2f}x | {cpu:.2f} | "
                f"{base_cpu / cpu:.2f}x |"
            )
    out += [
        "",
        f"Each figure is the median of {args.repeat} round(s); in each round every contender "
        "runs once, one after the other (a fresh ledger each round). "
        "`vs peer` > 1 means faster than the bare peer (wall time); `CPU s` is the child's "
        "user + system time (its gpg included), less sensitive to the load of a shared machine. "
        "The target also checks every line "
        "against the layout (types, patterns, widths, required fields), keeps a ledger of sent "
        "lines (sha256 per line; the re-run reads, checks and looks up every line and sends "
        "nothing), writes atomically (temporary name, size check, rename) and logs the transfer.",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_target_payroll_file.py --employees "
        f"{' '.join(map(str, args.employees))} --repeat {args.repeat}"
        + (" --before DIR`" if args.before else "`"),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(out), encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
