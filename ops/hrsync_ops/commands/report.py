"""``hrsync report engagement``: engagement scores by segment from the warehouse."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hrsync_ops.report import (
    DEFAULT_MIN_GROUP,
    ReportError,
    engagement,
    parse_dimensions,
    to_markdown,
    write_outputs,
)

ENV_DATABASE = "HRSYNC_WAREHOUSE"
DEFAULT_DATABASE = ".hrsync/warehouse.duckdb"


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="reports computed from the warehouse")
    kinds = report.add_subparsers(dest="report", required=True)
    eng = kinds.add_parser(
        "engagement",
        help="survey engagement by segment (minimum group size: small segments never shown)",
    )
    eng.add_argument(
        "--database",
        type=Path,
        default=None,
        help=f"DuckDB warehouse file (default: ${ENV_DATABASE} or {DEFAULT_DATABASE})",
    )
    eng.add_argument("--schema", default="main", help="schema of the warehouse tables")
    eng.add_argument(
        "--by",
        action="append",
        metavar="DIMS",
        help="segment by department, tenure_band, location, manager, or a combination "
        "(department,tenure_band); repeat for several tables (default: department)",
    )
    eng.add_argument(
        "--min-group-size",
        type=int,
        default=DEFAULT_MIN_GROUP,
        help=f"smallest group ever shown (default {DEFAULT_MIN_GROUP})",
    )
    eng.add_argument("--survey", help="survey id (default: the one answered most recently)")
    eng.add_argument(
        "--out", type=Path, default=Path("output/reports"), help="directory for .md/.csv/.png"
    )
    eng.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    database = args.database or Path(os.environ.get(ENV_DATABASE) or DEFAULT_DATABASE)
    if not database.exists():
        print(
            f"hrsync report: no warehouse at {database} (run survey-to-analytics)", file=sys.stderr
        )
        return 2
    try:
        cuts = [parse_dimensions(spec) for spec in (args.by or ["department"])]
        reports = engagement(
            database,
            cuts,
            min_group=args.min_group_size,
            survey_id=args.survey,
            schema=args.schema,
        )
    except ReportError as exc:
        print(f"hrsync report: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        print(to_markdown(report))
    for path in write_outputs(reports, args.out):
        print(f"wrote {path}")
    return 0
