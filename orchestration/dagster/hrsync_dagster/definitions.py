"""hrsync's Dagster code location, read from the Meltano project.

One Dagster job per ``meltano.yml`` job (``ats-to-hris`` -> ``ats_to_hris``) and one schedule per
``meltano.yml`` schedule (its cron, UTC). Each op runs ``hrsync run <job>`` in a subprocess, so
the plugin locks, the run ledger, dead letters and alerts are hrsync's; a failed run fails the op
with the cause (the plugin and its error line); the run's records moved and dead letters are the
op's output metadata. No Dagster retry policy: hrsync and the plugins retry, a failed run is
alerted by hrsync and runs again at the next schedule.

Tenants (``hrsync_ops.tenants``): when the project has tenant folders, each job has one op per
tenant (``run_ats_to_hris__acme``) and runs them in parallel with the multiprocess executor, at most
``$HRSYNC_DAGSTER_MAX_CONCURRENT`` (default 4) at once. Every op is in the ``hrsync`` pool, so a
Dagster instance can also cap hrsync runs across jobs (``dagster instance concurrency``).

Where the project is: ``$HRSYNC_PROJECT_ROOT``, else the nearest folder with a meltano.yml.
"""

# no `from __future__ import annotations`: Dagster reads the ops' annotations at run time

import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from hrsync.errors import ConfigError
from hrsync_ops.ops import MeltanoProject, project_root
from hrsync_ops.tenants import Tenant

from .runner import HrsyncRun, hrsync_run, waiting_dead_letters

ENV_ROOT = "HRSYNC_PROJECT_ROOT"
ENV_MAX_CONCURRENT = "HRSYNC_DAGSTER_MAX_CONCURRENT"
DEFAULT_MAX_CONCURRENT = 4
POOL = "hrsync"

__all__ = ["HrsyncRunConfig", "build_definitions", "dagster_name", "defs"]


class HrsyncRunConfig(dg.Config):
    """Run config of one op: options passed on to ``meltano run`` (e.g. ``--full-refresh``)."""

    meltano_args: list[str] = []


def dagster_name(name: str) -> str:
    """A Meltano name as a Dagster name (letters, digits and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _metadata(run: HrsyncRun, waiting: int) -> dict[str, Any]:
    record = run.record or {}
    meta: dict[str, Any] = {
        "exit_code": run.exit_code,
        "dead_letters_added": int(record.get("dead_letters") or 0),
        "dead_letters_waiting": waiting,
        "records_moved": int(record.get("records_moved") or 0),
        "moved_by_outcome": dg.MetadataValue.json(record.get("moved_by_outcome") or {}),
        "duration_s": float(record.get("duration_s") or 0.0),
        "hrsync_run_id": int(record.get("id") or 0),
        "alerts": dg.MetadataValue.json(run.alerts),
        "command": " ".join(run.command[2:]),  # from `hrsync_ops.cli run ...`
    }
    if run.tenant:
        meta["tenant"] = run.tenant
    return meta


def _make_op(root: Path, job: str, tenant: Tenant | None) -> dg.OpDefinition:
    name = "run_" + dagster_name(job if tenant is None else f"{job}__{tenant.name}")
    tags = {"hrsync/job": job, **({"hrsync/tenant": tenant.name} if tenant else {})}
    where = f" for tenant {tenant.name}" if tenant else ""

    @dg.op(
        name=name,
        description=f"`hrsync run {job}`{where}",
        tags=tags,
        pool=POOL,
        out=dg.Out(dict, description="the run ledger's record of the run"),
    )
    def run_job(context: dg.OpExecutionContext, config: HrsyncRunConfig) -> dg.Output[dict]:
        run = hrsync_run(root, job, tenant=tenant, meltano_args=config.meltano_args)
        waiting = waiting_dead_letters(root, job, tenant)
        meta = _metadata(run, waiting)
        if not run.ok:
            raise dg.Failure(
                description=f"hrsync run {job}{where} failed (exit {run.exit_code}): {run.cause}",
                metadata=meta,
                allow_retries=False,
            )
        if meta["dead_letters_added"]:
            context.log.warning(
                f"hrsync run {job}{where}: {meta['dead_letters_added']} new dead letter(s), "
                f"{waiting} waiting (`hrsync dlq list --integration {job}`)"
            )
        return dg.Output(run.record or {}, metadata=meta)

    return run_job


def _meltano_schedules(root: Path) -> list[tuple[str, str, str]]:
    """(schedule name, job, cron) of every job schedule in meltano.yml."""
    data = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
    found = []
    for schedule in data.get("schedules") or []:
        job, interval = schedule.get("job"), schedule.get("interval")
        if job and interval and interval != "@once":
            found.append((str(schedule["name"]), str(job), str(interval)))
    return found


def _make_job(
    job: str, ops: list[dg.OpDefinition], max_concurrent: int, description: str
) -> dg.JobDefinition:
    def body() -> None:
        for op_def in ops:
            op_def()

    return dg.job(
        name=dagster_name(job),
        description=description,
        tags={"hrsync/job": job},
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": max_concurrent}),
    )(body)


def build_definitions(
    root: str | Path | None = None,
    *,
    tenants: list[Tenant] | None = None,
    max_concurrent: int | None = None,
) -> dg.Definitions:
    """The code location of the Meltano project at ``root``; ``tenants`` default to the
    project's tenant folders (none: each job runs once, on the project's own settings)."""
    where = Path(root or os.environ.get(ENV_ROOT) or project_root()).resolve()
    project = MeltanoProject.load(where)
    chosen = Tenant.all(where) if tenants is None else tenants
    limit = max_concurrent or int(os.environ.get(ENV_MAX_CONCURRENT) or DEFAULT_MAX_CONCURRENT)
    descriptions = _descriptions(where)
    jobs: dict[str, dg.JobDefinition] = {}
    for job in project.jobs:
        ops = [_make_op(where, job, t) for t in chosen] if chosen else [_make_op(where, job, None)]
        jobs[job] = _make_job(job, ops, limit, descriptions.get(job, f"hrsync run {job}"))
    schedules = [
        dg.ScheduleDefinition(
            name=dagster_name(name),
            job=jobs[job],
            cron_schedule=cron,
            execution_timezone="UTC",
            description=f"meltano.yml schedule {name}",
        )
        for name, job, cron in _meltano_schedules(where)
        if job in jobs
    ]
    return dg.Definitions(jobs=list(jobs.values()), schedules=schedules)


def _descriptions(root: Path) -> dict[str, str]:
    data = yaml.safe_load((root / "meltano.yml").read_text(encoding="utf-8")) or {}
    found = {}
    for job in data.get("jobs") or []:
        note = ((job.get("annotations") or {}).get("hrsync") or {}).get("description")
        if note:
            found[str(job["name"])] = str(note)
    return found


def _load() -> dg.Definitions:
    try:
        return build_definitions()
    except ConfigError as exc:  # a clear line in `dagster definitions validate`, not a trace
        raise SystemExit(f"hrsync_dagster: {exc}") from None


defs = _load()
