"""Fixtures for target-ldap: a real slapd per test; the package is found under targets/.
The Samba AD domain controller (``samba_dc``) is a session fixture in tests/conftest.py: its
ports are fixed, so the target's and the read-back tap's tests share one."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))

from ldap_testkit import RunTarget, Slapd, messages, start_slapd  # noqa: E402


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "slapd")
    yield server
    server.stop()


@pytest.fixture
def ad_slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "slapd-ad", ad=True, ppolicy=False)
    yield server
    server.stop()


@pytest.fixture
def run_target() -> RunTarget:
    """Run TargetLDAP in-process on records; returns the target (its summary is set)."""

    def run(
        config: dict[str, Any], records: list[dict[str, Any]], stream: str = "iam_users"
    ) -> Any:
        from target_ldap.target import TargetLDAP

        target = TargetLDAP(config=config, validate_config=True)
        target.listen(io.StringIO(messages(records, stream)))
        return target

    return run
