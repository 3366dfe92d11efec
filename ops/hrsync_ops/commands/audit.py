"""``hrsync audit``: outcome counts per integration, destination and stream."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from hrsync.audit import AuditLog


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="summarise the audit log (outcomes per destination)")
    audit.add_argument(
        "--path", type=Path, help="default: $HRSYNC_AUDIT_LOG or .hrsync/audit.jsonl"
    )
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return audit_summary(args.path, args.json)


def audit_summary(path: Path | None, as_json: bool) -> int:
    events = AuditLog.read(path)
    counts = Counter(
        (e["integration"], e["destination"], e["stream"], e["outcome"]) for e in events
    )
    if as_json:
        rows = [
            {"integration": i, "destination": d, "stream": s, "outcome": o, "count": n}
            for (i, d, s, o), n in sorted(counts.items())
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not counts:
        print("no audit events")
        return 0
    print(f"{'integration':<20} {'destination':<28} {'stream':<22} {'outcome':<10} count")
    for (i, d, s, o), n in sorted(counts.items()):
        print(f"{i:<20} {d[:28]:<28} {s:<22} {o:<10} {n}")
    return 0
