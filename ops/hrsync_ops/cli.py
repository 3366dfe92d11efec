"""``hrsync``: operator commands that know no vendor.

Each subcommand lives in its own module under ``hrsync_ops.commands`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` (``args -> exit code``).
Adding a command is one line in :data:`COMMANDS`. Only the module of the command being run is
imported (``hrsync --help`` and unknown commands import them all), so each start stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def command_name(module: str) -> str:
    """The subcommand a :data:`COMMANDS` module registers (``...webhooks.cli``: webhooks)."""
    parts = module.split(".")
    return parts[-2] if parts[-1] == "cli" else parts[-1]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = {command_name(module): module for module in COMMANDS}
    parser = argparse.ArgumentParser(prog="hrsync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = [names[argv[0]]] if argv and argv[0] in names else COMMANDS
    if len(wanted) < len(COMMANDS):  # usage lines still list every command
        sub.metavar = "{" + ",".join(names) + "}"
    for module in wanted:
        importlib.import_module(module).register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def console() -> None:
    """The ``hrsync`` console script: closed pipes and missing files end quietly."""
    run(main, "hrsync")


if __name__ == "__main__":
    console()
