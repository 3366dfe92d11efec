"""target-benefits-834 on a large company: build + pyx12 validation + PGP + SFTP, against peers.

    .venv/bin/python benchmarks/bench_target_benefits_834.py [--employees 100000] [--workers 2]

The input is what map-hr's ``hris_to_benefits`` profile emits (benefit_subscribers,
benefit_dependents, benefit_elections), generated from the sandbox's seeded world (the same
people, dependants and elections the BambooHR fake serves) into one Singer file, so the tap and
the mapper (benchmarked on their own) do not blur the figures. Contenders, in one run:

- ``string-join writer`` (the peer): reads the same messages, keeps them in dicts, joins one
  INS loop per member with ``"*".join`` and writes the file. No ledger, no spool, no
  transliteration beyond ``upper()``, no control-number file, no checks. The least work that
  produces an 834 of the same members.
- ``target-benefits-834 build``: the real target, in-process, reading the Singer file: spool
  (SQLite), per-family planning against the ledger, transliteration, control numbers, the
  file; pyx12 switched off for this row only.
- ``validation``: what the target runs (``document.validate``): the fast check that gives
  pyx12's verdict (``fastcheck``: pyx12 on the file's distinct member-loop shapes, pyx12's
  segment checks once per distinct segment) over ``--workers`` processes. With
  ``--full-pyx12`` also pyx12 4's Python API on every segment, split by transaction set over
  ``--workers`` processes (what the target ran before; and 1 process unless ``--skip-single``).
- ``PGP + SFTP``: ``hrsync.transfer.deliver`` of that file to a real sshd (GnuPG encryption to
  a real key, strict host key, atomic rename).
- ``target-benefits-834 re-run``: the same feed again: plans every family, sends nothing.

Results: a table on stdout and benchmarks/results/target_benefits_834.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "target_benefits_834.md"
sys.path[:0] = [str(ROOT)]

from sandbox.benefits import Benefits  # noqa: E402
from sandbox.seed import World  # noqa: E402

LINES = {11: "HLT", 12: "DEN", 13: "VIS"}
LEVELS = {1: "EMP", 2: "ESP", 3: "ECH", 4: "FAM"}
RELATION = {"spouse": "01", "child": "19"}


def generate(employees: int, path: Path) -> dict[str, int]:
    """The mapped Singer messages of a world of ``employees`` people."""
    world = World(employees=employees, seed=7)
    benefits = Benefits(world)
    counts = {"benefit_subscribers": 0, "benefit_dependents": 0, "benefit_elections": 0}
    with path.open("w", encoding="utf-8") as out:
        for stream, key in (
            ("benefit_subscribers", "employee_id"),
            ("benefit_dependents", "dependent_id"),
            ("benefit_elections", "election_id"),
        ):
            schema = {"type": "object", "properties": {key: {"type": "string"}}}
            out.write(json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema,
                                  "key_properties": [key]}) + "\n")  # fmt: skip
        for person in world.people():
            k = person.employee_id
            elections = benefits.elections(k)
            a = person.address
            rec: dict[str, Any] = {
                "employee_id": str(k),
                "first_name": person.first_name,
                "middle_name": person.middle_name,
                "last_name": person.last_name,
                "ssn": person.ssn,
                "date_of_birth": person.date_of_birth.isoformat() if person.date_of_birth else None,
                "gender": {"Female": "F", "Male": "M"}.get(person.gender or ""),
                "address_line1": a.line1 if a else None,
                "address_line2": a.line2 if a else None,
                "city": a.city if a else None,
                "state": a.state if a else None,
                "postal_code": a.postal_code if a else None,
                "country": a.country if a else None,
                "hire_date": person.hire_date.isoformat(),
                "termination_date": person.termination_date.isoformat()
                if person.termination_date
                else None,
                "employment_type": {"Full-Time": "FT", "Part-Time": "PT"}.get(
                    person.employment_type
                ),
            }
            lines = [("benefit_subscribers", rec)]
            for d in benefits.dependants(k) if elections else []:
                lines.append(("benefit_dependents", {
                    "dependent_id": str(d.id), "employee_id": str(k), "first_name": d.first_name,
                    "middle_name": d.middle_name, "last_name": d.last_name,
                    "relationship": RELATION[d.relationship],
                    "date_of_birth": d.date_of_birth.isoformat() if d.date_of_birth else None,
                    "gender": {"female": "F", "male": "M"}.get(d.gender or ""),
                }))  # fmt: skip
            for e in elections:
                lines.append(("benefit_elections", {
                    "election_id": str(e.id), "employee_id": str(k), "plan_id": str(e.plan.id),
                    "insurance_line": LINES[e.plan.id], "coverage_level": LEVELS[e.coverage],
                    "status": e.status.lower(), "effective_date": e.effective_date.isoformat(),
                    "start_date": e.start_date.isoformat(),
                    "end_date": e.end_date.isoformat() if e.end_date else None,
                    "group_number": e.plan.group_number,
                }))  # fmt: skip
            for stream, record in lines:
                counts[stream] += 1
                out.write(json.dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
    return counts


def string_join_writer(messages: Path, out: Path) -> int:
    """The peer: dicts in memory, one ``*``-joined INS loop per member, written out."""
    subs: dict[str, dict[str, Any]] = {}
    deps: dict[str, list[dict[str, Any]]] = {}
    elections: dict[str, list[dict[str, Any]]] = {}
    with messages.open(encoding="utf-8") as fh:
        for line in fh:
            msg = json.loads(line)
            if msg["type"] != "RECORD":
                continue
            r = msg["record"]
            if msg["stream"] == "benefit_subscribers":
                subs[r["employee_id"]] = r
            elif msg["stream"] == "benefit_dependents":
                deps.setdefault(r["employee_id"], []).append(r)
            else:
                elections.setdefault(r["employee_id"], []).append(r)
    segs: list[str] = []

    def d8(value: str | None) -> str:
        return (value or "").replace("-", "")

    for k, sub in subs.items():
        plans = elections.get(k)
        if not plans:
            continue
        for member in [sub, *deps.get(k, [])]:
            is_sub = member is sub
            relationship = "18" if is_sub else member["relationship"]
            segs.append(f"INS*{'Y' if is_sub else 'N'}*{relationship}*021*28*A")
            segs.append(f"REF*0F*{k}")
            last, first = str(member["last_name"]).upper(), str(member["first_name"] or "").upper()
            segs.append(f"NM1*IL*1*{last}*{first}")
            if member.get("date_of_birth"):
                segs.append(f"DMG*D8*{d8(member['date_of_birth'])}*{member.get('gender') or 'U'}")
            for p in plans:
                segs.append(f"HD*021**{p['insurance_line']}**{p['coverage_level']}")
                segs.append(f"DTP*348*D8*{d8(p['start_date'])}")
    body = "~\n".join(segs)
    out.write_text(f"ST*834*0001*005010X220A1~\n{body}~\nSE*{len(segs) + 2}*0001~\n")
    return len(segs)


CPU: dict[float, float] = {}  # wall seconds of a timed call -> its CPU seconds (this process
# and the children it waited for): on a shared machine the CPU is the steadier figure


def _cpu() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), _cpu()
    value = fn()
    wall = time.perf_counter() - start
    CPU[wall] = _cpu() - cpu
    return wall, value


def run_target(messages: Path, config: dict[str, Any], *, validate: bool) -> Any:
    import target_benefits_834.run as run_module
    from target_benefits_834.document import Validation
    from target_benefits_834.target import TargetBenefits834

    original = run_module.validate
    if not validate:
        run_module.validate = lambda path, workers=1, full=False: Validation(True, [])  # type: ignore[assignment]
    try:
        target = TargetBenefits834(config=config, validate_config=True)
        with messages.open(encoding="utf-8") as fh:
            target.listen(file_input=fh)
        return target.run.summary
    finally:
        run_module.validate = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-single", action="store_true",
                        help="skip the one-process pyx12 row (it is the slowest)")  # fmt: skip
    parser.add_argument("--skip-rerun", action="store_true",
                        help="skip the re-run of the same feed (two more builds)")  # fmt: skip
    parser.add_argument("--full-pyx12", action="store_true",
                        help="also time pyx12 on every segment (minutes)")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from hrsync.transfer import SFTPTarget, deliver
    from sandbox.pgp import Recipient
    from sandbox.sftp import start_sshd
    from target_benefits_834.document import validate

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench834-") as tmp:
        work = Path(tmp)
        t_gen, counts = timed(lambda: generate(args.employees, work / "messages.jsonl"))
        print(f"generated {counts} in {t_gen:.1f} s", flush=True)

        t_peer, peer_segments = timed(
            lambda: string_join_writer(work / "messages.jsonl", work / "peer.x12")
        )
        peer_size = (work / "peer.x12").stat().st_size
        rows.append(("string-join writer (peer)", t_peer, f"{peer_segments:,} segments, "
                     f"{peer_size / 1e6:.1f} MB"))  # fmt: skip
        print(rows[-1], flush=True)

        config = {
            "sender_id": "ACMEHR", "receiver_id": "CARRIER", "usage_indicator": "T",
            "sponsor_name": "Acme Inc", "sponsor_id": "123456789",
            "payer_name": "Blue Prairie Health", "payer_id": "987654321",
            "work_dir": str(work / "wd"), "keep_files": True, "dry_run": True,
            "dead_letter_path": str(work / "dlq.sqlite"),
            "audit_log_path": str(work / "audit.jsonl"),
            "sftp_host": "127.0.0.1", "sftp_username": "x", "sftp_known_hosts_path": "/dev/null",
            "pgp_recipient_public_key": "unused in a dry run",
            "validation_workers": args.workers,
        }  # fmt: skip
        t_build, summary = timed(
            lambda: run_target(work / "messages.jsonl", config, validate=False)
        )
        path = Path(summary.file)
        size = path.stat().st_size
        with path.open(encoding="ascii") as fh:
            segments = sum(1 for _ in fh)
        rows.append(("target-benefits-834 build (spool, plan, write)", t_build,
                     f"{summary.members:,} member loops, {summary.transactions} ST sets, "
                     f"{segments:,} segments, {size / 1e6:.1f} MB, "
                     f"{summary.dead_letters} dead letters"))  # fmt: skip
        print(rows[-1], flush=True)

        sshd = start_sshd(work / "sshd")
        recipient = Recipient.create("bench@carrier.example")
        try:
            target = SFTPTarget(
                host="127.0.0.1", port=sshd.port, username=sshd.username,
                private_key_path=sshd.client_key_path,
                known_hosts_path=sshd.write_known_hosts(work / "known_hosts"),
                remote_dir=str(sshd.upload_dir),
            )  # fmt: skip
            t_send, sent = timed(lambda: deliver(
                path, target, recipient_public_key=recipient.public_key,
                remote_name=path.name + ".pgp", record_count=summary.members,
                ledger=work / "transfers.sqlite", stream="benefit_enrolments",
            ))  # fmt: skip
            rows.append(("PGP encrypt + SFTP send (hrsync.transfer)", t_send,
                         f"{sent.status}; {sent.sent_size / 1e6:.1f} MB encrypted"))  # fmt: skip
            print(rows[-1], flush=True)
        finally:
            sshd.stop()
            recipient.close()

        if not args.skip_rerun:
            # the ledger only moves on delivery: commit a run's plan, then re-run the same feed
            t_rerun, rerun = rerun_after_commit(work, {**config, "dry_run": False})
            rows.append(("target-benefits-834 re-run (nothing changed)", t_rerun,
                         f"{rerun.members} member loops sent"))  # fmt: skip
            print(rows[-1], flush=True)
            report(args, counts, rows)

        t_fast, result = timed(lambda: validate(path, workers=args.workers))
        assert result.valid, result.errors[:5]
        rows.append((f"validation (the target's: fast check), {args.workers} processes", t_fast,
                     f"valid (pyx12's verdict); {segments / t_fast:,.0f} segments/s"))  # fmt: skip
        print(rows[-1], flush=True)
        if args.full_pyx12:
            t_par, result = timed(lambda: validate(path, workers=args.workers, full=True))
            assert result.valid, result.errors[:5]
            rows.append((f"pyx12 on every segment, per ST set, {args.workers} processes", t_par,
                         f"valid; {segments / t_par:,.0f} segments/s"))  # fmt: skip
            print(rows[-1], flush=True)
            if not args.skip_single:
                t_one, result = timed(lambda: validate(path, workers=1, full=True))
                assert result.valid, result.errors[:5]
                rows.append(("pyx12 on every segment, 1 process", t_one,
                             f"valid; {segments / t_one:,.0f} segments/s"))  # fmt: skip
                print(rows[-1], flush=True)
        t_total = t_build + t_fast + t_send
        CPU[t_total] = CPU[t_build] + CPU[t_fast] + CPU[t_send]
        rows.append(("one run: build + validation + PGP/SFTP", t_total,
                     f"{t_total / t_peer:.1f}x the string-join writer; CPU "
                     f"{CPU[t_total] / CPU[t_peer]:.1f}x"))  # fmt: skip
        report(args, counts, rows)


def rerun_after_commit(work: Path, config: dict[str, Any]) -> tuple[float, Any]:
    """Commit a plan as a delivered run would (delivery stubbed), then time the re-run."""
    import target_benefits_834.run as run_module

    original = run_module.Run._deliver

    class Sent:
        status, destination = "sent", "sftp://bench"

    run_module.Run._deliver = lambda self, path, key, members: Sent()  # type: ignore[assignment,method-assign]
    try:
        run_target(work / "messages.jsonl", config, validate=False)  # commits the ledger
        return timed(lambda: run_target(work / "messages.jsonl", config, validate=False))
    finally:
        run_module.Run._deliver = original  # type: ignore[method-assign]


def _cpu_text(wall: float) -> str:
    cpu = CPU.get(wall)
    return "" if cpu is None else f"{cpu:.1f}"


def report(
    args: argparse.Namespace, counts: dict[str, int], rows: list[tuple[str, float, str]]
) -> None:
    """Print and (for 10,000+ employees) write the results so far."""
    t_peer, t_build = rows[0][1], rows[1][1]
    header = (
        f"# target-benefits-834 benchmark\n\n{args.employees:,} employees ({counts}) on "
        f"{platform.machine()} / {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}; the machine is shared with other work (load "
        f"average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} when this was written). "
        "Produced "
        f"by `benchmarks/bench_target_benefits_834.py --employees {args.employees} "
        f"--workers {args.workers}`.\n\n"
        "| contender | seconds | CPU seconds | notes |\n|---|---:|---:|---|\n"
    )
    table = "".join(
        f"| {name} | {secs:.1f} | {_cpu_text(secs)} | {note} |\n" for name, secs, note in rows
    )
    ratio = t_build / t_peer if t_peer else float("nan")
    text = (
        header
        + table
        + (
            f"\n**Ratio: the target's build takes {ratio:.1f}x the bare string-join writer** "
            f"(CPU: {CPU.get(t_build, 0) / (CPU.get(t_peer) or 1):.1f}x) "
            "(it also spools to SQLite so memory stays flat, plans every family against the "
            "ledger, transliterates names and reserves control numbers).\n"
        )
    )
    print(text)
    if args.employees >= 10_000:
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
