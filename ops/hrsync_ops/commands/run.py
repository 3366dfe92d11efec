"""``hrsync run <job> [meltano run options]``: one Meltano job, recorded, with alerts.

Runs ``meltano run [options] <job>`` from the project root with ``HRSYNC_INTEGRATION=<job>``
(Meltano does not tell plugins which job they are in), its output passing straight through.
Then records the run in the ledger (start, end, outcome, duration, exit code, records moved
— the writes the job's targets audited in the run window — and the dead letters it added),
counts consecutive failures, and sends the alerts the ops file asks for. Exits with Meltano's
exit code, so cron and orchestrators see the job's own verdict.

Jobs that share a Meltano plugin (tap-bamboohr feeds four of them) run one after the other:
Meltano keeps a plugin's catalog and starting bookmark in one directory per plugin, so two at
once could start a tap from the other job's bookmark. A job waits up to ``--wait`` seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from hrsync.audit import DEFAULT_PATH as AUDIT_DEFAULT
from hrsync.audit import ENV_PATH as AUDIT_ENV
from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError
from hrsync_ops.alerts import evaluate, send
from hrsync_ops.ops import MeltanoProject, load_ops, meltano_command, project_root, under_root
from hrsync_ops.runs import DEFAULT_PATH as RUNS_DEFAULT
from hrsync_ops.runs import ENV_PATH as RUNS_ENV
from hrsync_ops.runs import PluginLocks, RunLedger, audit_offset, moved_records, now
from hrsync_ops.tenants import Tenant

#: exit status when the job could not start because its plugins stayed busy (sysexits.h)
EX_TEMPFAIL = 75


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a Meltano job: record it, count failures, alert",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    run.add_argument("--project-root", type=Path, help="default: nearest dir with meltano.yml")
    run.add_argument("--json", action="store_true", help="print the run record as JSON")
    run.add_argument(
        "--wait",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long to wait for another job that runs one of this job's plugins (default "
        "3600; then the run fails with exit 75 and is recorded and alerted)",
    )
    run.add_argument(
        "--tenant",
        metavar="NAME",
        help="run for the tenant in tenants/NAME (its .env, state, stores and alerts): see "
        "docs/operations.md",
    )
    run.add_argument("job", help="a job name from meltano.yml")
    run.add_argument(
        "meltano_args",
        nargs=argparse.REMAINDER,
        help="passed to `meltano run` (e.g. --full-refresh, --force)",
    )
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    root = (args.project_root or project_root()).resolve()
    tenant: Tenant | None = None
    try:
        if args.tenant:  # first: the tenant's ops file, stores and alert variables apply
            tenant = Tenant.open(root, args.tenant)
            tenant.activate()
        project = MeltanoProject.load(root)
        ops = load_ops(root=root)
    except ConfigError as exc:
        print(f"hrsync run: {exc}", file=sys.stderr)
        return 2
    if args.job not in project.jobs:
        known = ", ".join(sorted(project.jobs)) or "none"
        print(f"hrsync run: no job {args.job!r} in meltano.yml (jobs: {known})", file=sys.stderr)
        return 2
    extra = [a for a in args.meltano_args if a != "--"]
    ledger = RunLedger(under_root(root, RUNS_ENV, RUNS_DEFAULT))
    audit_path = under_root(root, AUDIT_ENV, AUDIT_DEFAULT)
    store = DeadLetterStore(under_root(root, DLQ_ENV, DLQ_DEFAULT))

    home = tenant.home if tenant else root  # a tenant's Meltano run files are its own
    locks = PluginLocks(home / ".hrsync" / "locks", project.exclusive_plugins(args.job), args.job)
    busy = locks.acquire(
        args.wait,
        on_wait=lambda plugin, holder: print(
            f"hrsync run {args.job}: waiting for {plugin}, in use by {holder or 'another run'}",
            file=sys.stderr,
        ),
    )
    started = now()
    offset = audit_offset(audit_path)
    run_id = ledger.start(args.job, extra, started)
    env = {
        **os.environ,
        "HRSYNC_INTEGRATION": args.job,
        AUDIT_ENV: str(audit_path),
        DLQ_ENV: str(store.path),
    }
    command = [*meltano_command(), *(tenant.meltano_args() if tenant else []), "run"]
    command += [*extra, args.job]
    if busy is not None:  # recorded and alerted like any failed run
        print(
            f"hrsync run {args.job}: {busy} was still in use after {args.wait:.0f} s: not run "
            "(raise --wait, or space the schedules apart)",
            file=sys.stderr,
        )
        code = EX_TEMPFAIL
    else:
        try:
            code = subprocess.run(command, cwd=root, env=env, check=False).returncode
        except OSError as exc:  # meltano missing: a failed run, recorded and alerted like any
            print(f"hrsync run: cannot start {command[0]}: {exc}", file=sys.stderr)
            code = 127
        finally:
            locks.release()
    outcome = "success" if code == 0 else "failed"
    moved = moved_records(args.job, offset, audit_path)
    new_letters = [
        x
        for x in store.list(integration=args.job)
        if datetime.fromisoformat(x.last_failed_at) >= started
    ]
    run = ledger.finish(
        run_id, outcome=outcome, exit_code=code, moved=moved, dead_letters=len(new_letters)
    )
    job_ops = project.job_ops(ops, args.job)
    if tenant:  # alerts name the tenant: "acme/ats-to-hris"
        job_ops = dataclasses.replace(job_ops, name=f"{tenant.name}/{args.job}")
    alerts = evaluate(
        job_ops,
        run_id=run_id,
        outcome=outcome,
        exit_code=code,
        consecutive_failures=ledger.consecutive_failures(args.job),
        new_letters=new_letters,
        waiting_letters=store.counts().get(args.job, 0),
    )
    sent: list[dict[str, Any]] = []
    for alert in alerts:
        deliveries = send(alert, ops.channels)
        done = [d.__dict__ for d in deliveries]
        sent.append({"kind": alert.kind, "title": alert.title, "deliveries": done})
        if not ops.channels:
            print(f"hrsync run: alert (no channels configured): {alert.title}", file=sys.stderr)

    if args.json:
        print(json.dumps({"run": run.as_dict(), "alerts": sent}, indent=2))
    else:
        moved_text = ", ".join(f"{n} {o}" for o, n in sorted(moved.items())) or "none"
        print(
            f"hrsync run {args.job}: {outcome} (exit {code}) in {run.duration_s:.1f} s; "
            f"records moved: {run.records_moved} ({moved_text}); "
            f"dead letters added: {len(new_letters)}"
            + (f"; alerts: {', '.join(a['kind'] for a in sent)}" if sent else ""),
            file=sys.stderr,
        )
    return code
