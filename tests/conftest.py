"""Shared fixtures: a real sandbox on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from sandbox.server import Sandbox

# Property tests: no per-example deadline (shared, noisy machines); in CI the examples are
# derived from the test itself, so a run is reproducible and never flaky by chance.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


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
    # ... nor the dead-letter store
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(tmp_path_factory.mktemp("dlq") / "dl.sqlite"))
    monkeypatch.delenv("HRSYNC_DLQ_KEY", raising=False)
    # ... nor the run ledger of `hrsync run`
    monkeypatch.setenv("HRSYNC_RUNS_PATH", str(tmp_path_factory.mktemp("runs") / "runs.sqlite"))
    # ... nor the file-transfer ledger (hrsync.transfer)
    monkeypatch.setenv(
        "HRSYNC_TRANSFER_LEDGER", str(tmp_path_factory.mktemp("ledger") / "transfers.sqlite")
    )
