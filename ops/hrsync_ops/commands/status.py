"""``hrsync status [--json]``: each job's health, for people and for cron monitors.

Per job in meltano.yml: the last run (``hrsync run`` ledger), its outcome, records moved, the
dead letters waiting, the bookmark age, and whether the job is **stale** (no success within its
expected interval: ``expected_interval`` in hrsync.yml, else its Meltano schedule's period plus
a quarter). A job that has never succeeded is judged from when hrsync first saw it (its first
``hrsync run`` or ``hrsync status``: the deployment), so a fresh deployment is not an alarm:
its jobs are "not run yet" until their interval has passed. The exit code is 1 when any job is
stale, its last run failed, or it has dead letters waiting (something a person must look at),
else 0.

Bookmark age comes from Meltano's system database (SQLite: ``$MELTANO_DATABASE_URI`` or
``.meltano/meltano.db``, read only) for the state ids of the job's tasks
(``<environment>:<extractor>-to-<loader>``): when the bookmark was saved (``state.updated_at``,
else the end of the state id's last successful run in Meltano's ``runs`` table, else the newest
date-time bookmark value in the state); for a job of several tasks, the oldest. Other system
databases: ``meltano state get <state id>`` shows the same state (see docs/operations.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError
from hrsync_ops.ops import MeltanoProject, load_ops, project_root, under_root
from hrsync_ops.runs import DEFAULT_PATH as RUNS_DEFAULT
from hrsync_ops.runs import ENV_PATH as RUNS_ENV
from hrsync_ops.runs import RunLedger, now


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="each job: last run, dead letters, bookmark, stale")
    status.add_argument("--project-root", type=Path, help="default: nearest dir with meltano.yml")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)


def _system_db(root: Path) -> Path | None:
    uri = os.environ.get("MELTANO_DATABASE_URI")
    if not uri:
        path = root / ".meltano" / "meltano.db"
        return path if path.exists() else None
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    path = path if path.is_absolute() else root / path
    return path if path.exists() else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _newest_bookmark(state: Any) -> datetime | None:
    """The newest date-time among a Singer state's bookmark values."""
    newest: datetime | None = None
    stack = [state]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif (at := _parse_time(node)) is not None and (newest is None or at > newest):
            newest = at
    return newest


def _read_state(db: Path, state_ids: list[str]) -> dict[str, datetime | None]:
    """When each state id's bookmark was saved: ``state.updated_at``; else the end of the
    id's last successful run in Meltano's ``runs`` table (state is written as a run ends);
    else the newest date-time bookmark value in the (partial or completed) state."""
    found: dict[str, datetime | None] = {}
    marks = ",".join("?" * len(state_ids))
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                f"SELECT state_id, updated_at, completed_state, partial_state FROM state "  # noqa: S608
                f"WHERE state_id IN ({marks})",
                state_ids,
            ).fetchall()
            try:
                ended = dict(
                    conn.execute(
                        f"SELECT job_name, MAX(ended_at) FROM runs "  # noqa: S608
                        f"WHERE state='SUCCESS' AND job_name IN ({marks}) GROUP BY job_name",
                        state_ids,
                    ).fetchall()
                )
            except sqlite3.Error:  # an older system database layout
                ended = {}
        finally:
            conn.close()
    except sqlite3.Error:
        return found
    for state_id, updated_at, completed, partial in rows:
        at = _parse_time(updated_at) or _parse_time(ended.get(state_id))
        for blob in (partial, completed):
            if at is None and blob:
                try:
                    at = _newest_bookmark(json.loads(blob))
                except ValueError:
                    at = None
        found[state_id] = at
    return found


def bookmarks(root: Path, state_ids: list[str]) -> dict[str, Any]:
    """When Meltano last saved each state id of a job, and the oldest of them."""
    db = _system_db(root)
    found = _read_state(db, state_ids) if db is not None and state_ids else {}
    times = [found.get(s) for s in state_ids]
    oldest = None if not times or None in times else min(t for t in times if t)
    return {
        "state_ids": state_ids,
        "saved_at": {k: v.isoformat() if v else None for k, v in found.items()},
        "oldest": oldest.isoformat() if oldest else None,
        "age_s": round((now() - oldest).total_seconds()) if oldest else None,
        "source": str(db) if db else "unavailable (no SQLite system database)",
    }


def job_status(
    name: str,
    project: MeltanoProject,
    ledger: RunLedger,
    waiting: dict[str, int],
    expected: tuple[timedelta | None, str],
    owner: str | None,
) -> dict[str, Any]:
    last = ledger.last(name)
    success = ledger.last_success(name)
    interval, source = expected
    problems = []
    stale = False
    stale_at = None
    if interval is not None:
        # a job that never succeeded is judged from when hrsync first saw it (the deployment)
        ended = _parse_time(success.ended_at) if success else None
        since = ended or ledger.first_seen(name)
        stale_at = since + interval
        stale = now() > stale_at
        if stale:
            what = f"since {success.ended_at}" if success else f"since {since.isoformat()}"
            problems.append(f"stale: no success {what}, expected every {interval}")
    if last is not None and last.outcome == "failed":
        problems.append(f"last run failed (exit {last.exit_code})")
    if waiting.get(name):
        problems.append(f"{waiting[name]} dead letter(s) waiting")
    return {
        "job": name,
        "owner": owner,
        "schedule": project.schedules.get(name),
        "expected_interval_s": interval.total_seconds() if interval else None,
        "expected_interval_from": source,
        "last_run": last.as_dict() if last else None,
        "last_outcome": last.outcome if last else None,
        "records_moved": last.records_moved if last else None,
        "last_success_at": success.ended_at if success else None,
        "consecutive_failures": ledger.consecutive_failures(name),
        "dead_letters_waiting": waiting.get(name, 0),
        "bookmark": bookmarks(project.root, project.state_ids(name)),
        "stale": stale,
        "stale_at": stale_at.isoformat() if stale_at else None,
        "never_run": last is None,
        "problems": problems,
        "ok": not problems,
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _state(job: dict[str, Any]) -> str:
    if not job["ok"]:
        return "; ".join(job["problems"])
    if job["never_run"]:
        due = f", stale after {job['stale_at'][:16]} UTC" if job["stale_at"] else ""
        return f"not run yet{due}"
    return "ok"


def cmd_status(args: argparse.Namespace) -> int:
    root = (args.project_root or project_root()).resolve()
    try:
        project = MeltanoProject.load(root)
        ops = load_ops(root=root)
    except ConfigError as exc:
        print(f"hrsync status: {exc}", file=sys.stderr)
        return 2
    ledger = RunLedger(under_root(root, RUNS_ENV, RUNS_DEFAULT))
    waiting = DeadLetterStore(under_root(root, DLQ_ENV, DLQ_DEFAULT)).counts()
    jobs = []
    for name in project.jobs:
        job_ops = project.job_ops(ops, name)
        expected = project.expected_interval(job_ops)
        jobs.append(job_status(name, project, ledger, waiting, expected, job_ops.owner))
    healthy = all(j["ok"] for j in jobs)
    if args.json:
        print(json.dumps({"ok": healthy, "checked_at": now().isoformat(), "jobs": jobs}, indent=2))
        return 0 if healthy else 1
    print(
        f"{'job':<22} {'last run':<20} {'outcome':<8} {'moved':>6} {'dlq':>4} "
        f"{'bookmark':>8} {'every':>7}  state"
    )
    for j in jobs:
        last = j["last_run"]
        interval = j["expected_interval_s"]
        print(
            f"{j['job']:<22} {(last['started_at'][:19] if last else 'never'):<20} "
            f"{(j['last_outcome'] or '-'):<8} {(j['records_moved'] if last else '-')!s:>6} "
            f"{j['dead_letters_waiting']:>4} {_age(j['bookmark']['age_s']):>8} "
            f"{_age(interval):>7}  {_state(j)}"
        )
    return 0 if healthy else 1
