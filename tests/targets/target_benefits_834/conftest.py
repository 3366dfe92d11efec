"""Real things for target-benefits-834: the BambooHR sandbox, tap-bamboohr | map-hr, a real
OpenSSH sshd (the carrier's SFTP drop) and a GnuPG recipient (the carrier's key)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from x12kit import Carrier

from sandbox.pgp import Recipient
from sandbox.server import Sandbox
from sandbox.sftp import start_sshd


@pytest.fixture(scope="module")
def carrier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Carrier]:
    workdir = tmp_path_factory.mktemp("benefits")
    sshd = start_sshd(workdir / "sshd")
    recipient = Recipient.create("enrolments@carrier.example")
    try:
        with Sandbox(employees=60, vendors=("bamboohr",)) as sb:
            yield Carrier(sb, sshd, recipient, workdir)
    finally:
        sshd.stop()
        recipient.close()
