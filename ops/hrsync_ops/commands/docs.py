"""``hrsync docs``: (re)generate the integration catalogue, or check it is current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hrsync_ops.catalogue import MapperError, stale_files, write


def register(sub: Any) -> None:
    docs = sub.add_parser(
        "docs",
        help="generate docs/integrations.md and the data-flow diagram from meltano.yml",
    )
    docs.add_argument("--root", type=Path, default=Path(), help="project root (meltano.yml)")
    docs.add_argument(
        "--check", action="store_true", help="exit 1 if the committed catalogue is out of date"
    )
    docs.add_argument("--no-render", action="store_true", help="skip the graphviz SVG")
    docs.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except MapperError as exc:  # map-hr not installed for the project, or a profile it rejects
        print(f"hrsync docs: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    root = args.root.resolve()
    if args.check:
        stale = stale_files(root)
        for name in stale:
            print(f"docs/{name} is out of date: run `hrsync docs`")
        return 1 if stale else 0
    for path in write(root, render=not args.no_render):
        print(f"wrote {path.relative_to(root)}")
    return 0
