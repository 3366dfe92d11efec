"""singer-sdk's standard tap tests for tap-hibob, against the sandbox on a fixed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_hibob.tap import TapHibob


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The class is built at import time from a config, so the sandbox's port is chosen now and the
# sandbox itself is started by a class fixture before the suite's runner syncs.
PORT = _free_port()
CONFIG = {
    "service_user_id": DEFAULT_CREDENTIALS["hibob"]["service_user_id"],
    "token": DEFAULT_CREDENTIALS["hibob"]["token"],
    "api_url": f"http://127.0.0.1:{PORT}/v1",
    "page_size": 15,
}

_StandardTests = get_tap_test_class(TapHibob, config=CONFIG, parse_env_config=False)


class TestTapHibobStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=40, vendors=("hibob",), ports={"hibob": PORT}) as sb:
            yield sb
