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

The pipeline's processes live and die together (hrsync_ops.supervise): meltano and its plugins
are ended together, the locks are held until all are gone, and the next run cleans up after a
killed one (Meltano's config files, its runs still marked RUNNING). A failed run's summary
names the cause: the failed plugin's first error line from Meltano's log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hrsync.audit import DEFAULT_PATH as AUDIT_DEFAULT
from hrsync.audit import ENV_PATH as AUDIT_ENV
from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError
from hrsync_ops.alerts import Alert, configured, evaluate, send
from hrsync_ops.ops import MeltanoProject, load_ops, meltano_command, project_root, under_root
from hrsync_ops.runs import DEFAULT_PATH as RUNS_DEFAULT
from hrsync_ops.runs import ENV_PATH as RUNS_ENV
from hrsync_ops.runs import PluginLocks, RunLedger, audit_offset, moved_records, now
from hrsync_ops.supervise import (
    TRIGGER,
    Pipeline,
    close_dead_meltano_runs,
    failure_cause,
    sweep_config_files,
    system_db,
    wait_for_foreign_runs,
)
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
    locks = PluginLocks(
        home / ".hrsync" / "locks",
        project.exclusive_plugins(args.job),
        args.job,
        shared=job_mappers(project, args.job),
    )
    busy = locks.acquire(
        args.wait,
        on_wait=lambda plugin, holder: print(
            f"hrsync run {args.job}: waiting for {plugin}, in use by {holder or 'another run'}",
            file=sys.stderr,
        ),
    )
    if busy is None:
        busy = after_crash(home, project, args.job, locks, args.wait)
    started = now()
    offset = audit_offset(audit_path)
    run_id = ledger.start(args.job, extra, started)
    env = {
        **os.environ,
        "HRSYNC_INTEGRATION": args.job,
        "MELTANO_JOB_TRIGGER": f"{TRIGGER} (pid {os.getpid()})",
        AUDIT_ENV: str(audit_path),
        DLQ_ENV: str(store.path),
    }
    command = [*meltano_command(), *(tenant.meltano_args() if tenant else []), "run"]
    command += [*extra, args.job]
    cause: str | None
    if busy is not None:  # recorded and alerted like any failed run
        print(
            f"hrsync run {args.job}: {busy} was still in use after {args.wait:.0f} s: not run "
            "(raise --wait, or space the schedules apart)",
            file=sys.stderr,
        )
        code, cause = EX_TEMPFAIL, f"{busy} still in use after {args.wait:.0f} s"
    else:
        code, cause = run_pipeline(command, root, env, locks)
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
    sent = send_alerts(args.job, alerts, ops.channels)

    if args.json:
        print(json.dumps({"run": run.as_dict(), "cause": cause, "alerts": sent}, indent=2))
    else:
        moved_text = ", ".join(f"{n} {o}" for o, n in sorted(moved.items())) or "none"
        print(
            f"hrsync run {args.job}: {outcome} (exit {code}) in {run.duration_s:.1f} s; "
            f"records moved: {run.records_moved} ({moved_text}); "
            f"dead letters added: {len(new_letters)}"
            + (f"; alerts: {', '.join(a['kind'] for a in sent)}" if sent else "")
            + (f"; cause: {cause}" if cause else ""),
            file=sys.stderr,
        )
    return code


def send_alerts(
    job: str, alerts: list[Alert], channels: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send each alert to the configured channels; channels that are still placeholders in
    hrsync.yml are skipped with one warning per run, not failed on every alert."""
    ready, skipped = configured(channels)
    if alerts and skipped:
        print(
            f"hrsync run {job}: warning: alert channel(s) not configured, skipped: "
            + "; ".join(skipped),
            file=sys.stderr,
        )
    sent: list[dict[str, Any]] = []
    for alert in alerts:
        done = [d.__dict__ for d in send(alert, ready)]
        sent.append({"kind": alert.kind, "title": alert.title, "deliveries": done})
        if not ready:
            print(f"hrsync run: alert (no channels configured): {alert.title}", file=sys.stderr)
    return sent


def job_mappers(project: MeltanoProject, job: str) -> list[str]:
    """The mapper plugins of a job's tasks (its mappings' plugins): locked shared."""
    words = {w for task in project.jobs.get(job, []) for w in task.split()}
    mappers = {project.mappings[w] for w in words if w in project.mappings}
    return sorted(mappers | (words & set(project.mappings.values())))


def after_crash(
    root: Path, project: MeltanoProject, job: str, locks: PluginLocks, wait: float
) -> str | None:
    """With the job's locks held, clear what a killed run of its plugins left: Meltano's
    config files (secrets) and the Meltano runs hrsync started that are still marked RUNNING;
    then wait (up to ``wait`` s) for a run that hrsync did not start. None when the job may
    start, else what it waited for (the locks are then released)."""
    sole = [*locks.plugins, *locks.alone]
    mapping_names = [m for m, plugin in project.mappings.items() if plugin in locks.alone]
    removed = sweep_config_files(root, [*sole, *mapping_names])
    locks.share()
    if removed:
        print(
            f"hrsync run {job}: removed {len(removed)} config file(s) a killed run left in "
            ".meltano/run/",
            file=sys.stderr,
        )
    db = system_db(root)
    if db is None:
        return None
    state_ids = project.state_ids(job)
    for dead in close_dead_meltano_runs(db, state_ids):
        print(
            f"hrsync run {job}: closed Meltano run {dead.id} of {dead.state_id} (started "
            f"{dead.started_at} by a killed `{dead.trigger}`), still marked RUNNING",
            file=sys.stderr,
        )
    foreign = wait_for_foreign_runs(
        db,
        state_ids,
        time.monotonic() + wait,
        lambda r: print(
            f"hrsync run {job}: Meltano marks a run of {r.state_id} RUNNING since "
            f"{r.started_at} that hrsync did not start (a bare `meltano run`?); waiting until "
            f"it ends, or until Meltano gives it up at {r.valid_until()}",
            file=sys.stderr,
        ),
    )
    if foreign is None:
        return None
    locks.release()
    return f"Meltano run {foreign.id} of {foreign.state_id}"


def run_pipeline(
    command: list[str], root: Path, env: dict[str, str], locks: PluginLocks
) -> tuple[int, str | None]:
    """``meltano run`` supervised (hrsync_ops.supervise.Pipeline): its exit code and, when it
    failed, the cause from its log. The locks are released once every process is gone."""
    pipeline = Pipeline(command, root, env, keep_fds=locks.fds)
    try:
        code = pipeline.run()
    except OSError as exc:  # meltano missing: a failed run, recorded and alerted like any
        print(f"hrsync run: cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127, f"cannot start {command[0]}"
    finally:
        locks.release()
    if pipeline.leftovers:
        print(
            f"hrsync run: ended {len(pipeline.leftovers)} process(es) meltano left running "
            f"(pids {', '.join(map(str, pipeline.leftovers))})",
            file=sys.stderr,
        )
    if code == 0:
        return 0, None
    if pipeline.signalled is not None:
        return code, f"stopped by {signal.Signals(pipeline.signalled).name}"
    cause = failure_cause(pipeline.tail)
    if code > 128 and cause is None:
        cause = f"meltano killed by {signal.Signals(code - 128).name}"
    return code, cause
