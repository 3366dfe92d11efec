"""singer-sdk's standard tap tests for tap-greenhouse, against the sandbox on a fixed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_greenhouse.tap import TapGreenhouse


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The class is built at import time from a config, so the sandbox's port is chosen now and the
# sandbox itself is started by a class fixture before the suite's runner syncs.
PORT = _free_port()
CREDS = DEFAULT_CREDENTIALS["greenhouse"]
CONFIG = {
    "client_id": CREDS["client_id"],
    "client_secret": CREDS["client_secret"],
    "user_id": CREDS["user_id"],
    "api_url": f"http://127.0.0.1:{PORT}/v3",
    "token_url": f"http://127.0.0.1:{PORT}/token",
    "page_size": 25,
}

_StandardTests = get_tap_test_class(TapGreenhouse, config=CONFIG, parse_env_config=False)


class TestTapGreenhouseStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=40, vendors=("greenhouse",), ports={"greenhouse": PORT}) as sb:
            yield sb
