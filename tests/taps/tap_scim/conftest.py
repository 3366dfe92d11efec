"""Fixtures for tap-scim: one real scim2-server per module, a proxy and a fresh tenant per
test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.taps.tap_scim.scimkit import TOKEN, Proxy

from sandbox.directories import ScimServer, start_scim_server


@pytest.fixture(scope="module")
def scim_upstream() -> Iterator[ScimServer]:
    server = start_scim_server(token=TOKEN)
    yield server
    server.stop()


@pytest.fixture
def proxy(scim_upstream: ScimServer) -> Iterator[Proxy]:
    front = Proxy(scim_upstream.port)
    yield front
    front.close()
