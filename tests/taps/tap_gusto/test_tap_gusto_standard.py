"""singer-sdk's standard tap tests for tap-gusto, against the Gusto fake on a fixed port."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from singer_sdk.testing import get_tap_test_class
from tests.taps.tap_gusto.gusto_seed import VERSION, seed

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_gusto.tap import TapGusto


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The class is built at import time from a config, so the port (and the token file, where the
# rotated refresh token goes) are chosen now; a class fixture starts and fills the fake.
PORT = _free_port()
TOKEN_DIR = Path(tempfile.mkdtemp(prefix="tap-gusto-standard-"))
CREDS = DEFAULT_CREDENTIALS["gusto"]
CONFIG = {
    "company_uuid": CREDS["company_uuid"],
    "client_id": CREDS["client_id"],
    "client_secret": CREDS["client_secret"],
    "refresh_token": CREDS["refresh_token"],
    "token_file": str(TOKEN_DIR / "token.json"),
    "api_url": f"http://127.0.0.1:{PORT}",
    "api_version": VERSION,
    "page_size": 3,
}

_StandardTests = get_tap_test_class(TapGusto, config=CONFIG, parse_env_config=False)


class TestTapGustoStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=20, vendors=("gusto",), ports={"gusto": PORT}) as sb:
            seed(sb)
            yield sb
