"""Each plugin is a distribution of its own: it installs alone with only its own dependencies
and reports its version; the operations CLI works from its wheel."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packkit import ROOT, installed, make_venv, tree_size

from hrsync_ops.ops import safe_load

PROJECT = safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
PLUGINS = [
    p
    for plugins in PROJECT["plugins"].values()
    for p in plugins
    if str(p.get("pip_url", "")).startswith("-e ./core")
]
#: libraries that belong to one plugin (or to the ops CLI) and to nothing else
HEAVY = {
    "duckdb": {"target-warehouse"},
    "matplotlib": set(),
    "numpy": set(),
    "pillow": set(),
    "pyx12": {"target-benefits-834"},
    "ldap3": {"tap-ldap"},
    "python-ldap": {"target-ldap"},
    "paramiko": {"target-payroll-file", "target-benefits-834"},
    "python-gnupg": {"target-payroll-file", "target-benefits-834"},
    "starlette": set(),
    "uvicorn": set(),
    "hrsync": set(),  # the operations CLI
    "hrsync-sandbox": set(),
    "meltano": set(),
}


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p["name"])
def test_about_reports_the_distributions_version(plugin: dict[str, Any]) -> None:
    exe = Path(sys.executable).parent / plugin["executable"]
    about = subprocess.run(
        [str(exe), "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    version = json.loads(about.stdout)["version"]
    assert version == importlib.metadata.version(f"hrsync-{plugin['name']}")


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p["name"])
def test_plugin_installs_alone_with_only_its_dependencies(
    plugin: dict[str, Any], wheels: Path, tmp_path: Path
) -> None:
    name = plugin["name"]
    venv = tmp_path / "venv"
    bin_dir = make_venv(venv, [f"hrsync-{name}"], wheels)
    have = installed(bin_dir)
    unexpected = sorted(lib for lib, owners in HEAVY.items() if lib in have and name not in owners)
    assert unexpected == [], f"{name} pulls {unexpected}"
    wheel = next(wheels.glob(f"hrsync_{name.replace('-', '_')}-*.whl"))
    version = wheel.name.split("-")[1]
    about = subprocess.run(
        [str(bin_dir / plugin["executable"]), "--about", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(about.stdout)["version"] == version
    # figures for the notes: `pytest -s tests/packaging -k alone`
    print(f"\n{name}: {len(have)} packages, {tree_size(venv) / 1e6:.0f} MB")


#: run by the wheel's own interpreter: `hrsync <words> --help` for every command path, in one
#: process (each `hrsync` start-up imports singer-sdk and paramiko: ~1 CPU s, 22 paths)
_HELP_WALK = r"""
import contextlib, io, json, re, sys, traceback
from hrsync_ops.cli import main

def help_of(words):
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*words, "--help"])
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()

walked = {}
def walk(words):
    code, text, err = help_of(words)
    walked[" ".join(words)] = (code, err[-2000:])
    # argparse's usage line shows a subcommand group as "{a,b,c} ..." (option choices have no "...")
    found = re.search(r"\{([a-z0-9_,-]+)\}\s+\.\.\.", text)
    if code != 0 or not found or len(words) > 3:
        return
    for word in found.group(1).split(","):
        walk([*words, word])

walk([])
print(json.dumps(walked))
"""


def _subcommands(bin_dir: Path) -> list[tuple[str, ...]]:
    """Every command path under ``hrsync``, from the {a,b,c} lists in --help; each path's
    --help must work (exit 0). The console script itself runs once; the walk runs the wheel's
    ``hrsync_ops.cli.main`` for each path in one interpreter."""
    proc = subprocess.run([str(bin_dir / "hrsync"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, f"hrsync --help: {proc.stderr[-2000:]}"
    assert "{" in proc.stdout and "..." in proc.stdout, proc.stdout
    walk = subprocess.run(
        [str(bin_dir / "python"), "-c", _HELP_WALK], capture_output=True, text=True
    )
    assert walk.returncode == 0, walk.stderr[-4000:]
    walked: dict[str, list[Any]] = json.loads(walk.stdout)
    failed = {path: err for path, (code, err) in walked.items() if code != 0}
    assert failed == {}, failed
    return [tuple(path.split()) for path in walked if path]


def test_operations_cli_from_its_wheel(ops_bin: Path) -> None:
    have = installed(ops_bin)
    assert "hrsync" in have and "hrsync-core" in have
    assert not {"hrsync-map-hr", "hrsync-sandbox"} & set(have)
    module = subprocess.run(
        [str(ops_bin / "python"), "-c", "import hrsync_ops, sys; print(hrsync_ops.__file__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "site-packages" in module.stdout  # the wheel, not this checkout
    commands = _subcommands(ops_bin)  # every command's --help works
    assert {("run",), ("status",), ("dlq",), ("webhooks",), ("report",), ("docs",)} <= set(commands)


def test_hub_definitions_match_meltano_yml() -> None:
    """hub/<type>/<plugin>.yml (for `meltano add --from-ref`) are generated from meltano.yml."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin-refs"), "--check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
