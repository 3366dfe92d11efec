"""scripts/new-tap makes a tap package that passes ruff, mypy and its own tests as generated.

The scaffold is rendered into a temporary copy of what a tap needs from the repository (the
workspace pyproject with the ruff, mypy and pytest settings, the core, tests/taps/tapkit.py);
ruff, mypy and pytest then run on it in child processes, the new package on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

GENERATED = {
    "taps/tap-acme-hr/pyproject.toml",
    "taps/tap-acme-hr/README.md",
    "taps/tap-acme-hr/tap_acme_hr/__init__.py",
    "taps/tap-acme-hr/tap_acme_hr/tap.py",
    "taps/tap-acme-hr/tap_acme_hr/client.py",
    "taps/tap-acme-hr/tap_acme_hr/streams.py",
    "taps/tap-acme-hr/tap_acme_hr/py.typed",
    "taps/tap-acme-hr/tap_acme_hr/schemas/employees.json",
    "tests/taps/tap_acme_hr/fake_acme_hr.py",
    "tests/taps/tap_acme_hr/test_tap_acme_hr_standard.py",
    "tests/taps/tap_acme_hr/test_tap_acme_hr_sync.py",
}


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("repo")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "core").symlink_to(ROOT / "core", target_is_directory=True)
    printed = run(
        sys.executable, ROOT / "scripts" / "new-tap", "acme-hr", "--title", "Acme HR",
        "--root", root, cwd=root,
    )  # fmt: skip
    (root / "tests" / "taps").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests" / "taps" / "tapkit.py", root / "tests" / "taps" / "tapkit.py")
    return root, printed


def test_the_files_of_a_tap_package_are_written(rendered: tuple[Path, str]) -> None:
    root, printed = rendered
    written = {line.removeprefix("created ") for line in printed.splitlines() if "created" in line}
    assert written == GENERATED
    pyproject = (root / "taps/tap-acme-hr/pyproject.toml").read_text()
    assert 'name = "hrsync-tap-acme-hr"' in pyproject
    assert '"hrsync-core>=0.1.dev0"' in pyproject
    assert 'tap-acme-hr = "tap_acme_hr.tap:main"' in pyproject
    assert "{{" not in "".join((root / f).read_text() for f in GENERATED)


def test_the_meltano_entry_printed_is_a_plugin_definition(rendered: tuple[Path, str]) -> None:
    _, printed = rendered
    block = printed.split("then `meltano install`:\n\n", 1)[1].split("\n\n", 1)[0]
    (plugin,) = yaml.safe_load(block)
    assert plugin["name"] == plugin["executable"] == "tap-acme-hr"
    assert plugin["pip_url"] == "-e ./core -e ./taps/tap-acme-hr"
    assert plugin["annotations"]["hrsync"]["system"] == "Acme HR"
    assert {s["name"] for s in plugin["settings"]} >= {"api_key", "api_url", "start_date"}


def test_scaffold_refuses_to_overwrite_and_bad_names(rendered: tuple[Path, str]) -> None:
    root, _ = rendered
    for vendor, problem in (("acme-hr", "would overwrite"), ("Acme_HR", "must be lower-case")):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "new-tap"), vendor, "--root", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode != 0 and problem in proc.stderr


def test_the_new_tap_passes_ruff_as_generated(rendered: tuple[Path, str]) -> None:
    root, _ = rendered
    paths = ["taps/tap-acme-hr", "tests/taps/tap_acme_hr"]
    run(sys.executable, "-m", "ruff", "check", *paths, cwd=root)
    run(sys.executable, "-m", "ruff", "format", "--check", *paths, cwd=root)


def test_the_scaffold_script_is_clean() -> None:
    """``ruff check .`` and scripts/test's mypy pass over files without a .py suffix."""
    script = ROOT / "scripts" / "new-tap"
    run(sys.executable, "-m", "ruff", "check", script, cwd=ROOT)
    run(sys.executable, "-m", "ruff", "format", "--check", script, cwd=ROOT)
    run(sys.executable, "-m", "mypy", script, cwd=ROOT)


def test_the_new_tap_passes_mypy_as_generated(rendered: tuple[Path, str]) -> None:
    root, _ = rendered
    out = run(
        sys.executable, "-m", "mypy", "taps/tap-acme-hr/tap_acme_hr", cwd=root,
        env={"MYPYPATH": f"{ROOT / 'core'}:{root / 'taps' / 'tap-acme-hr'}"},
    )  # fmt: skip
    assert "Success: no issues found in 4 source files" in out


def test_the_new_tap_passes_its_tests_as_generated(rendered: tuple[Path, str]) -> None:
    root, _ = rendered
    out = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/taps/tap_acme_hr",
        cwd=root, env={"PYTHONPATH": f"{root / 'taps' / 'tap-acme-hr'}:{root}"},
    )  # fmt: skip
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, out
    assert int(summary.split(" passed")[0].split()[-1]) >= 15, summary
