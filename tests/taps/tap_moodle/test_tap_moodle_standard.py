"""singer-sdk's standard tap tests for tap-moodle, against the Moodle fake on a fixed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class
from tests.taps.tap_moodle.moodle_seed import seed

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_moodle.tap import TapMoodle


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The class is built at import time from a config, so the port is chosen now and the fake is
# started (and given accounts and enrolments) by a class fixture before the suite syncs.
PORT = _free_port()
CONFIG = {
    "base_url": f"http://127.0.0.1:{PORT}",
    "token": DEFAULT_CREDENTIALS["moodle"]["token"],
    "page_size": 5,
}

_StandardTests = get_tap_test_class(TapMoodle, config=CONFIG, parse_env_config=False)


class TestTapMoodleStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=5, vendors=("moodle",), ports={"moodle": PORT}) as sb:
            seed(sb)
            yield sb
