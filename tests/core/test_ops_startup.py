"""``hrsync <command>`` imports only that command's module: the suite starts hrsync hundreds of
times, and singer-sdk / paramiko cost most of a start. ``hrsync --help`` still lists them all."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from hrsync_ops.cli import COMMANDS, command_name

PROBE = """
import json, sys
from hrsync_ops.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("singer_sdk", "paramiko", "hrsync.transfer", "hrsync.http")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def test_command_names_are_what_the_modules_register() -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    for module in COMMANDS:
        before = set(sub.choices)
        importlib.import_module(module).register(sub)
        assert set(sub.choices) - before == {command_name(module)}


@pytest.mark.parametrize(
    "argv", [["status", "--help"], ["run", "--help"], ["dlq", "--help"], ["retention", "--help"]]
)
def test_a_command_does_not_import_singer_sdk(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []
    assert out.stdout.startswith(f"usage: hrsync {argv[0]} ")
