"""``hrsync audit``: outcome counts; ``verify`` the chain; a person's transfers (``subject``)."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from hrsync.audit import AuditLog, verify


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="summarise, verify or search the audit log")
    audit.add_argument(
        "--path", type=Path, help="default: $HRSYNC_AUDIT_LOG or .hrsync/audit.jsonl"
    )
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(func=run)
    actions = audit.add_subparsers(dest="audit_action")
    check = actions.add_parser(
        "verify", help="check the hash chain and keyed checkpoints; name any tampered line"
    )
    check.add_argument("--path", type=Path, dest="sub_path")
    check.add_argument("--json", action="store_true", dest="sub_json")
    check.set_defaults(func=run_verify)
    rotate = actions.add_parser("rotate", help="start a new audit file (the chain continues)")
    rotate.add_argument("--path", type=Path, dest="sub_path")
    rotate.set_defaults(func=run_rotate)
    who = actions.add_parser(
        "subject", help="every transfer of one person's data, and where it rests in hrsync"
    )
    who.add_argument("id", help="HRIS employee id (or the ATS candidate id with --candidate)")
    who.add_argument("--candidate", action="store_true", help="the id is an ATS candidate id")
    who.add_argument("--path", type=Path, dest="sub_path")
    who.add_argument("--json", action="store_true", dest="sub_json")
    who.add_argument("--root", type=Path, default=Path(), help="project root (hrsync.yml)")
    who.set_defaults(func=run_subject)


def _path(args: argparse.Namespace) -> Path | None:
    return getattr(args, "sub_path", None) or args.path


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "sub_json", False) or args.json)


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


def run_verify(args: argparse.Namespace) -> int:
    result = verify(_path(args))
    if _json(args):
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "files": result.files,
                    "lines": result.lines,
                    "checkpoints": result.checkpoints,
                    "keyed": result.keyed,
                    "problems": [str(p) for p in result.problems],
                    "warnings": result.warnings,
                },
                indent=2,
            )
        )
    else:
        for problem in result.problems:
            print(f"TAMPERED {problem}")
        for warning in result.warnings:
            print(f"warning: {warning}")
        state = "intact" if result.ok else "NOT intact"
        print(
            f"audit log {state}: {result.lines} line(s) in {len(result.files)} file(s), "
            f"{result.checkpoints} checkpoint(s){' (keyed)' if result.keyed else ''}"
        )
    return 0 if result.ok else 1


def run_rotate(args: argparse.Namespace) -> int:
    rotated = AuditLog(_path(args), integration="hrsync-audit").rotate()
    print(f"rotated to {rotated}" if rotated else "nothing to rotate")
    return 0


def run_subject(args: argparse.Namespace) -> int:
    from hrsync_ops import subject_report
    from hrsync_ops.retention import load_policy

    policy = load_policy(root=args.root)
    if _path(args):
        policy.paths["audit"] = _path(args)  # type: ignore[assignment]
    moodle = Path(
        os.environ.get("TARGET_MOODLE_STATE_PATH") or ".hrsync/target-moodle-state.sqlite"
    )
    try:
        report = subject_report.find(
            policy,
            employee_id=None if args.candidate else args.id,
            candidate_id=args.id if args.candidate else None,
            moodle_state=moodle,
        )
    except ValueError as exc:
        print(f"hrsync audit subject: {exc}")
        return 2
    if _json(args):
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(subject_report.render_markdown(report), end="")
    return 0
