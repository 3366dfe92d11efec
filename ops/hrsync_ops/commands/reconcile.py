"""``hrsync reconcile``: where each destination has drifted from the HRIS.

Reads the reconcile warehouse (loaded by the ``reconcile`` Meltano job: the HRIS through each
destination's map-hr profile, and the destinations read back by tap-scim, tap-ldap, tap-moodle
and tap-gusto) and reports, per destination, orphaned accounts, missing accounts, people paid or
enrolled after their last day and fields that differ from the HRIS. ``--run`` runs the job first
(as ``hrsync run reconcile``: recorded in the run ledger, alerted on failure).

Writes ``reconcile-<date>.md`` and ``.csv`` (counts and record keys, never values) and exits
0 when every destination matches, 3 when drift was found, 2 when it could not run (the job
failed, a table or column is missing): a monitor can tell the three apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from hrsync_ops.ops import project_root
from hrsync_ops.reconcile import (
    DESTINATIONS,
    EXIT_CLEAN,
    EXIT_COULD_NOT_RUN,
    EXIT_DRIFT,
    ReconcileError,
    reconcile,
    to_markdown,
    write_outputs,
)

ENV_DATABASE = "HRSYNC_RECONCILE_DB"
DEFAULT_DATABASE = ".hrsync/reconcile.duckdb"
JOB = "reconcile"


def register(sub: Any) -> None:
    rec = sub.add_parser(
        "reconcile",
        help="report where SCIM, LDAP, Moodle and payroll drifted from the HRIS (exit 0/3/2)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    rec.add_argument(
        "--run",
        action="store_true",
        help=f"run the {JOB!r} Meltano job first (through `hrsync run`), then compare",
    )
    rec.add_argument("--project-root", type=Path, help="default: nearest dir with meltano.yml")
    rec.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"DuckDB warehouse file (default: ${ENV_DATABASE} or {DEFAULT_DATABASE})",
    )
    rec.add_argument("--schema", default="main", help="schema of the warehouse tables")
    rec.add_argument(
        "--destination",
        action="append",
        choices=sorted(DESTINATIONS),
        help="compare only this destination (repeat for several; default: all)",
    )
    rec.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day whose last days have passed (default: today, UTC)",
    )
    rec.add_argument(
        "--out", type=Path, default=Path("output/reconcile"), help="directory for .md/.csv"
    )
    rec.add_argument(
        "--keep-warehouse",
        action="store_true",
        help="with --run: keep the warehouse after comparing (default: removed, it holds names "
        "and work addresses the report does not need)",
    )
    rec.add_argument("--quiet", action="store_true", help="do not print the Markdown report")
    rec.set_defaults(func=run)


def _run_job(args: argparse.Namespace) -> int:
    from hrsync_ops.commands.run import cmd_run

    ns = argparse.Namespace(
        project_root=args.project_root,
        json=False,
        wait=3600.0,
        tenant=None,
        job=JOB,
        meltano_args=["--full-refresh"],  # every run reads everything: a drift report is whole
    )
    return int(cmd_run(ns))


def _database(args: argparse.Namespace) -> Path:
    database = args.database or Path(os.environ.get(ENV_DATABASE) or DEFAULT_DATABASE)
    if not database.is_absolute():  # as the targets see it: relative to the project root
        database = (args.project_root or project_root()).resolve() / database
    return database


def _remove(database: Path) -> None:
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    database = _database(args)
    if args.run:
        # a snapshot, rebuilt each time: rows an earlier run loaded (an account deleted since)
        # must not count
        _remove(database)
        code = _run_job(args)
        if code != 0:
            print(
                f"hrsync reconcile: the {JOB!r} job failed (exit {code}): nothing compared",
                file=sys.stderr,
            )
            return EXIT_COULD_NOT_RUN
    try:
        result = reconcile(
            database, destinations=args.destination, today=args.as_of, schema=args.schema
        )
    except ReconcileError as exc:
        print(f"hrsync reconcile: {exc}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    finally:
        if args.run and not args.keep_warehouse:
            _remove(database)
    if not args.quiet:
        print(to_markdown(result, limit=50), end="")
    for path in write_outputs(result, args.out):
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_DRIFT if result.drift else EXIT_CLEAN
