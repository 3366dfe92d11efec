"""Fixtures of the packaging tests: the wheels, built once per session, and the ops CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from packkit import build_wheels, make_venv


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def ops_bin(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operations CLI installed from its wheel (not editable) into a fresh virtualenv."""
    return make_venv(tmp_path_factory.mktemp("ops") / "venv", ["hrsync"], wheels)
