"""``hrsync retention apply``: remove or seal what is past its retention in every store."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hrsync_ops.retention import apply, load_policy


def register(sub: Any) -> None:
    retention = sub.add_parser(
        "retention", help="enforce hrsync.yml's retention on hrsync's own stores"
    )
    actions = retention.add_subparsers(dest="retention_action", required=True)
    run_it = actions.add_parser("apply", help="remove or seal what is past its retention")
    run_it.add_argument("--root", type=Path, default=Path(), help="project root (hrsync.yml)")
    run_it.add_argument("--ops-file", type=Path, help="default: $HRSYNC_OPS_FILE or hrsync.yml")
    run_it.add_argument(
        "--now", help="ISO date-time to apply as of (default: the clock; for tests and catch-up)"
    )
    run_it.add_argument("--json", action="store_true", help="machine-readable output")
    run_it.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = load_policy(args.ops_file, root=args.root)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    results = apply(policy, now=now)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return 0
    if not results:
        print("no retention configured (hrsync.yml `retention:`): nothing removed")
    for r in results:
        counts = ", ".join(
            [f"{n} {k} removed" for k, n in r.removed.items()]
            + [f"{n} {k} sealed" for k, n in r.sealed.items()]
        )
        print(f"{r.store}: {counts or r.note or 'nothing'} (before {r.cutoff})")
    return 0
