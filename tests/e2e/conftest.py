"""Real `meltano run` tests: install the project's plugins once per test session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).parent / "meltano")


@pytest.fixture(scope="session", autouse=True)
def _meltano_installed() -> None:
    """`meltano install` takes ~20 s even when nothing changed: once, not per module."""
    proc = subprocess.run([MELTANO, "install"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
