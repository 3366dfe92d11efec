"""Shared fixtures: a real sandbox on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox (both vendors) with 60 employees; faults reset after the module."""
    with Sandbox(employees=60) as sb:
        yield sb


@pytest.fixture(autouse=True)
def _isolated_audit_log(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never write the audit log into the repository from a test."""
    monkeypatch.setenv("HRSYNC_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))
