"""Helpers of the packaging tests: build the wheels, make throwaway virtualenvs.

Every wheel is built once (scripts/build); each test installs what it needs from them with uv
(Meltano's own installer, in the dev venv) into a fresh virtualenv outside the repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")


def build_wheels(out: Path) -> Path:
    """Every wheel of the repository into ``out`` (scripts/build)."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "build"), str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def make_venv(path: Path, requirements: list[str], wheels: Path) -> Path:
    """A fresh virtualenv at ``path`` with ``requirements`` from the wheels (and the index for
    third-party packages); returns its bin folder."""
    subprocess.run([UV, "venv", "-q", str(path)], check=True, capture_output=True)
    proc = subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(path / "bin" / "python"),
         "--find-links", str(wheels), *requirements],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path / "bin"


def installed(bin_dir: Path) -> dict[str, str]:
    """Distribution name (normalised) -> version of everything in that virtualenv."""
    proc = subprocess.run(
        [UV, "pip", "list", "--python", str(bin_dir / "python"), "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(proc.stdout)}


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
