"""singer-sdk's standard tap tests for tap-bamboohr, against the sandbox on a fixed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_bamboohr.tap import TapBambooHR


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The class is built at import time from a config, so the sandbox's port is chosen now and the
# sandbox itself is started by a class fixture before the suite's runner syncs.
PORT = _free_port()
CONFIG = {
    "api_key": DEFAULT_CREDENTIALS["bamboohr"]["api_key"],
    "api_url": f"http://127.0.0.1:{PORT}/api/v1",
}

# The sandbox deletes no one by default, so the deletions stream may be empty.
_StandardTests = get_tap_test_class(
    TapBambooHR,
    config=CONFIG,
    parse_env_config=False,
    suite_config=SuiteConfig(ignore_no_records_for_streams=["employee_deletions"]),
)


class TestTapBambooHRStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=40, vendors=("bamboohr",), ports={"bamboohr": PORT}) as sb:
            yield sb
