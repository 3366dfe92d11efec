"""singer-sdk's standard tap tests for tap-scim, against the real scim2-server (through a
proxy on a fixed port: the suite's class is built from a config at import time)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class
from tests.taps.tap_scim.scimkit import TOKEN, Proxy, Seeder, new_tenant

from sandbox.directories import start_scim_server
from tap_scim.tap import TapSCIM


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _free_port()
TENANT = new_tenant()
CONFIG = {"base_url": f"http://127.0.0.1:{PORT}/{TENANT}/v2", "bearer_token": TOKEN,
          "page_size": 4}  # fmt: skip

_StandardTests = get_tap_test_class(TapSCIM, config=CONFIG, parse_env_config=False)


class TestTapSCIMStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _server(self) -> Iterator[Proxy]:
        server = start_scim_server(token=TOKEN)
        front = Proxy(server.port, port=PORT)
        seed = Seeder(front.url(TENANT))
        users = seed.users(6)
        seed.group("engineering", users[:3])
        seed.group("all-staff", users)
        yield front
        front.close()
        server.stop()
