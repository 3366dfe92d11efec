"""singer-sdk's standard tap tests for tap-surveymonkey, against the sandbox on a fixed port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class

from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from tap_surveymonkey.tap import TapSurveyMonkey


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _free_port()
CONFIG = {
    "access_token": DEFAULT_CREDENTIALS["surveymonkey"]["access_token"],
    "api_url": f"http://127.0.0.1:{PORT}/v3",
    "page_size": 25,
}

_StandardTests = get_tap_test_class(TapSurveyMonkey, config=CONFIG, parse_env_config=False)


class TestTapSurveyMonkeyStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=30, vendors=("surveymonkey",), ports={"surveymonkey": PORT}) as sb:
            yield sb
