"""Real `meltano run` tests: the project's plugins are installed once per test run."""

from __future__ import annotations

import pytest
from tests import projectkit


@pytest.fixture(scope="session", autouse=True)
def _meltano_installed() -> None:
    projectkit.install_plugins()
