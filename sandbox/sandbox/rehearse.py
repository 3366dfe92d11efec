"""``hrsync-sandbox rehearse --people FILE``: every job once, on a copy of real people.

The sandbox's HRIS is seeded from the people file (``sandbox.people``); every Meltano job runs
once (a full refresh) against the vendor fakes and the real directories and file drop (SCIM
server, slapd, sshd + GnuPG), as the demo does. The summary says, per job and destination,
what each person would receive (from the audit log: outcome and field names, never values)
and what was dead-lettered (with the field and the reason), by the file's own ids and names.
It is printed and written to ``<workdir>/rehearsal.md`` and ``rehearsal.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.benefits import carrier_env
from sandbox.demo import JOBS, _run, iam_env, meltano_env
from sandbox.directories import start_scim_server, start_slapd
from sandbox.people import PeopleFileError, PeopleWorld
from sandbox.server import Sandbox
from sandbox.sftp import start_file_drop

#: outcomes that mean "nothing was sent" (the summary lists them apart)
QUIET = {"unchanged", "skipped"}
#: jobs whose records are the HRIS's people (keyed by employee id)
HRIS_JOBS = {"hris-to-iam", "hris-to-lms", "hris-to-payroll", "hris-to-benefits"}


@dataclass
class Delivery:
    """What one destination got from one job."""

    destination: str
    outcomes: dict[str, list[str]] = field(default_factory=dict)  # outcome -> people


@dataclass
class JobReport:
    job: str
    description: str
    exit_status: int
    deliveries: list[Delivery] = field(default_factory=list)
    dead_letters: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # error lines of the job's log
    unaccounted: list[str] = field(default_factory=list)  # people with no outcome at all


def _key(key: Any) -> str:
    """A record key as text; map-hr files its dead letters under ``field=value`` keys
    (``id=8``): a single one of those is the value."""
    text = str(key)
    match = re.fullmatch(r"[A-Za-z_]\w*=([^,=\s]+)", text)
    return match.group(1) if match else text


def _who(world: PeopleWorld, key: Any) -> str:
    """A record key as the operator knows it: the file's id and the name, when it is a person."""
    text = _key(key)
    if text.isdigit() and 1 <= int(text) <= world.employees:
        person = world.person(int(text))
        name = (
            person.first_name
            if person.first_name == person.last_name
            else (f"{person.first_name} {person.last_name}")
        )
        return f"{world.source_id(int(text))} ({name})"
    return text


def _destination(event: dict[str, Any]) -> str:
    dest = str(event.get("destination") or "?")
    return re.sub(r"127\.0\.0\.1:\d+", "sandbox", dest)


def _error_lines(log: Path, limit: int = 8) -> list[str]:
    if not log.exists():
        return []
    found = [
        line.strip()
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if re.search(r"\b(ERROR|CRITICAL|failed:|Error:)", line)
    ]
    # meltano's prefix, then the plugin's own log line: keep the message
    return [line.rsplit(" | ", 1)[-1][-300:] for line in found[-limit:]]


def summarise(
    world: PeopleWorld, job: str, description: str, code: int, events: list[dict[str, Any]],
    letters: list[Any], log: Path,
) -> JobReport:  # fmt: skip
    report = JobReport(job, description, code)
    by_dest: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        by_dest[_destination(event)][str(event["outcome"])].add(_who(world, event["record_key"]))
    for dest, outcomes in sorted(by_dest.items()):
        report.deliveries.append(
            Delivery(dest, {o: sorted(people) for o, people in sorted(outcomes.items())})
        )
    for letter in letters:
        report.dead_letters.append(
            {
                "plugin": letter.plugin,
                "stream": letter.stream,
                "who": _who(world, letter.record_key),
                "error": " ".join(str(letter.error).split())[:300],
            }
        )
    report.errors = _error_lines(log)
    if job in HRIS_JOBS:
        seen = {_key(e["record_key"]) for e in events} | {_key(d.record_key) for d in letters}
        report.unaccounted = [
            _who(world, k) for k in range(1, world.employees + 1) if str(k) not in seen
        ]
    return report


def to_markdown(source: Path, world: PeopleWorld, reports: list[JobReport]) -> str:
    lines = [
        f"# Rehearsal on {source.name}",
        "",
        f"{world.employees} people from the file; every job ran once (full refresh) against the",
        "sandbox's vendor fakes, a SCIM server, slapd and an SFTP drop with a PGP recipient.",
        "",
    ]
    for r in reports:
        status = "ok" if r.exit_status == 0 else f"FAILED (exit {r.exit_status})"
        lines += [f"## {r.job}: {status}", "", r.description, ""]
        for d in r.deliveries:
            lines.append(f"- **{d.destination}**")
            for outcome, people in d.outcomes.items():
                mark = " (nothing sent)" if outcome in QUIET else ""
                lines.append(f"  - {outcome}{mark}: {len(people)}: {', '.join(people)}")
        if not r.deliveries:
            lines.append("- nothing reached a destination")
        if r.dead_letters:
            lines += ["", "Dead letters (not delivered; `hrsync dlq list` shows them):"]
            lines += [
                f"- {d['who']} [{d['plugin']} {d['stream']}]: {d['error']}" for d in r.dead_letters
            ]
        if r.unaccounted:
            lines += ["", f"No outcome recorded (not sent, not skipped, no dead letter) for: "
                      f"{', '.join(r.unaccounted)}"]  # fmt: skip
        if r.errors:
            head = "The job stopped:" if r.exit_status else "Errors in the job's log:"
            lines += ["", head, *(f"    {e}" for e in r.errors)]
        lines.append("")
    return "\n".join(lines)


def run_rehearsal(*, people: Path, workdir: Path, seed: int = 7) -> int:
    if shutil.which("meltano") is None:
        print("meltano is not on PATH: run scripts/demo (it installs everything)", file=sys.stderr)
        return 2
    try:
        world = PeopleWorld.from_file(people, seed=seed)
    except (PeopleFileError, OSError) as exc:
        print(f"hrsync-sandbox rehearse: {exc}", file=sys.stderr)
        return 2
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, mode=0o700)  # it holds copies of real people's data
    scim = start_scim_server()
    slapd = start_slapd(workdir / "slapd")
    drop = start_file_drop(workdir / "sftp")
    reports: list[JobReport] = []
    audit_path = workdir / "audit.jsonl"
    try:
        with Sandbox(world=world) as sandbox:
            env = meltano_env(sandbox, workdir) | iam_env(scim, slapd, workdir)
            env |= drop.env("TARGET_PAYROLL_FILE", "payroll")
            env |= drop.env("TARGET_BENEFITS_834", "benefits") | carrier_env(workdir)
            sandbox.apps["gusto"].rate_limit = 100_000  # type: ignore[attr-defined]
            print(f"hrsync rehearsal — {world.employees} people from {people}", flush=True)
            dlq = DeadLetterStore(workdir / "deadletters.sqlite")
            for job in JOBS:
                log = workdir / f"{job.name}.log"
                mark = len(AuditLog.read(audit_path)) if audit_path.exists() else 0
                seen = {d.id for d in dlq.list(status=None)}
                code, seconds = _run(job.name, env, log, full_refresh=True)
                events = AuditLog.read(audit_path)[mark:] if audit_path.exists() else []
                letters = [d for d in dlq.list(status=None) if d.id not in seen]
                report = summarise(world, job.name, job.description, code, events, letters, log)
                reports.append(report)
                state = "ok" if code == 0 else f"FAILED (exit {code}, see {log})"
                print(f"  {job.name:<20} {state}  {seconds:5.1f} s", flush=True)
    finally:
        scim.stop()
        slapd.stop()
        drop.stop()
    text = to_markdown(people, world, reports)
    data = json.dumps([asdict(r) for r in reports], indent=2, ensure_ascii=False)
    for name, body in (("rehearsal.md", text), ("rehearsal.json", data)):
        path = workdir / name
        path.touch(mode=0o600)
        path.write_text(body, encoding="utf-8")
    print("\n" + text)
    print(f"(written to {workdir}/rehearsal.md and rehearsal.json)")
    return 0 if all(r.exit_status == 0 for r in reports) else 1
