"""The dependency rules of CONTRIBUTING.md, read from the source (AST), not from what imports.

- The core (core/hrsync) and the operations CLI (ops/hrsync_ops) import no plugin package and
  not the sandbox: each installs without any plugin.
- A plugin imports the core and its own package only: plugins meet through Singer messages,
  never through each other's code, and none depends on the sandbox.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_BASES = ("taps", "mappers", "targets")


def plugin_packages() -> dict[str, Path]:
    """Import name -> package folder of every plugin distribution."""
    found = {
        init.parent.name: init.parent
        for base in PLUGIN_BASES
        for init in sorted((ROOT / base).glob("*/*/__init__.py"))
    }
    assert {"tap_greenhouse", "map_hr", "target_scim"} <= set(found), found
    return found


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """Top-level package -> the files (relative to the repo) that import it, under ``folder``."""
    imports: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                imports.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return imports


def test_the_scan_sees_imports() -> None:
    """The scan itself works: it finds what a tap is known to import."""
    imports = imported_packages(ROOT / "taps" / "tap-greenhouse" / "tap_greenhouse")
    assert "hrsync" in imports
    assert "singer_sdk" in imports


@pytest.mark.parametrize("folder", ["core/hrsync", "ops/hrsync_ops"])
def test_core_and_ops_import_no_plugin_and_not_the_sandbox(folder: str) -> None:
    forbidden = {*plugin_packages(), "sandbox"}
    imports = imported_packages(ROOT / folder)
    wrong = {name: sorted(files) for name, files in imports.items() if name in forbidden}
    assert wrong == {}, f"{folder} imports plugin packages or the sandbox: {wrong}"


@pytest.mark.parametrize("package", sorted(plugin_packages()))
def test_a_plugin_imports_no_other_plugin_and_not_the_sandbox(package: str) -> None:
    packages = plugin_packages()
    forbidden = ({*packages, "sandbox", "hrsync_ops"}) - {package}
    imports = imported_packages(packages[package])
    wrong = {name: sorted(files) for name, files in imports.items() if name in forbidden}
    assert wrong == {}, f"{package} imports {wrong}: plugins meet only through Singer messages"
