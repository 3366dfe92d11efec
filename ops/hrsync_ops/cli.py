"""``hrsync``: operator commands that know no vendor.

Each subcommand lives in its own module under ``hrsync_ops.commands`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``).
Adding a command is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib

from hrsync.cli import run

#: subcommand modules, in the order ``hrsync --help`` lists them
COMMANDS: tuple[str, ...] = (
    "hrsync_ops.commands.audit",
    "hrsync_ops.commands.dlq",
    "hrsync_ops.commands.run",
    "hrsync_ops.commands.status",
    "hrsync_ops.commands.schedule",
    "hrsync_ops.commands.docs",
    "hrsync_ops.commands.report",
    "hrsync_ops.commands.reconcile",
    "hrsync_ops.commands.retention",
    "hrsync_ops.webhooks.cli",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hrsync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def console() -> None:
    """The ``hrsync`` console script: closed pipes and missing files end quietly."""
    run(main, "hrsync")


if __name__ == "__main__":
    console()
