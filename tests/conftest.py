"""Shared fixtures: a real sandbox on free loopback ports."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from tests.projectkit import run_folder

from sandbox.server import Sandbox

# Property tests: no per-example deadline (shared, noisy machines); in CI the examples are
# derived from the test itself, so a run is reproducible and never flaky by chance.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

TESTS = Path(__file__).resolve().parent

# Every real pipeline starts five or six Python processes (Meltano, the tap's discovery, the
# tap, the mappers, the target), and the plugin venvs `meltano install` makes hold no bytecode.
# With PYTHONDONTWRITEBYTECODE set (some shells and CI images do) each of them compiled
# singer-sdk and hrsync from source again: ~1 CPU s more per start-up (1.4 s instead of 0.4 s
# for `tap-greenhouse --about`). The test run lets Python cache what it compiles (__pycache__
# is git-ignored), in this process and in every process it starts.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
# Samba AD listens on fixed ports: its tests run on one pytest-xdist worker, one after the other.
# Every other test file is a group of its own, so its module- and session-scoped set-up is paid
# once. (Tests that run Meltano get a project of their own per worker: tests/projectkit.py.)
SHARED_GROUPS = {
    "samba-ad": ("targets/target_ldap/test_samba_ad.py", "taps/tap_ldap/"),
}
#: the slowest files (real `meltano run`s, wheels built and installed) start first
SLOW_FIRST = ("e2e/", "orchestration/", "packaging/")
#: ... the longest of them first of all (a long group handed out last leaves the other worker
#: idle at the end). The first two go to the two workers at once: the first worker runs
#: `meltano install` (tests/projectkit.py) while the second builds the wheels, which needs none.
LONGEST_FIRST = (
    "orchestration/test_every_job.py",
    "packaging/test_distributions.py",
    "e2e/test_crash_safety.py",
    "e2e/test_reconcile.py",
    "e2e/test_rehearsal.py",
    "e2e/test_hibob_swap.py",
    "e2e/test_webhook_fast_path.py",
    "packaging/test_user_project.py",
    "e2e/test_audit_subject.py",
    "orchestration/test_dagster.py",
)


def test_group(path: str) -> str:
    """The group of a test file (a path relative to tests/, or a node id starting tests/)."""
    rel = path.split("::", 1)[0].removeprefix("tests/")
    for group, prefixes in SHARED_GROUPS.items():
        if rel.startswith(prefixes):
            return group
    return rel


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n 2` (scripts/test): whole groups go to a worker. (pytest-xdist's own
    `--dist loadgroup` marks do not group under pytest 9.2, whose node ids are read-only.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

    # hand the groups out in the collection's order (pytest_collection_modifyitems), not
    # xdist's default of the groups with the most tests first, which put the e2e files last
    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller names the test run, so that it can remove the folder its workers
    share (tests/projectkit.py) when the run ends."""
    controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if controller and not getattr(config.option, "testrunuid", None):
        config.option.testrunuid = uuid.uuid4().hex


def pytest_unconfigure(config: pytest.Config) -> None:
    run = getattr(config.option, "testrunuid", None)
    if run and not hasattr(config, "workerinput"):
        shutil.rmtree(run_folder(run), ignore_errors=True)


def group_rank(group: str) -> tuple[int, int]:
    """Where a group starts: the longest first, then the other slow ones, then Samba AD (a
    server start and 60-odd tests), then the rest (a stable sort keeps their own order)."""
    if group in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(group))
    if group.startswith(SLOW_FIRST):
        return (1, 0)
    return (2, 0) if group in SHARED_GROUPS else (3, 0)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest groups first, so that they start at once rather than last."""
    items.sort(key=lambda item: group_rank(test_group(item.nodeid)))


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Samba AD domain controller (tests/targets/target_ldap/samba_dc.py), one for the
    whole session: its LDAP ports are fixed, and target-ldap's and tap-ldap's tests share it."""
    from tests.targets.target_ldap.samba_dc import PEOPLE, missing_tools, start_samba_dc

    missing = missing_tools()
    if missing:
        pytest.skip(
            f"Samba AD DC not installed ({', '.join(missing)} missing): install the Debian "
            "packages samba-ad-dc samba-ad-provision ldap-utils (scripts/bootstrap does)"
        )
    server = start_samba_dc(tmp_path_factory.mktemp("samba-ad"))
    try:
        server.add(PEOPLE, objectClass="organizationalUnit", ou="People")
        yield server
    finally:
        server.stop()


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
