"""singer-sdk's standard tap tests for tap-ldap, against a real slapd seeded by target-ldap.

The suite's class is built from a config at import time; slapd picks its port when it starts,
so the class fixture fills the URL into that same config before the suite's runner syncs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.testing import get_tap_test_class
from tests.taps.tap_ldap.ldapkit import leaver, person, run_target

from sandbox.directories import ADMIN, DISABLED, GROUPS, PASSWORD, PEOPLE, Slapd, start_slapd
from tap_ldap.tap import TapLDAP

CONFIG: dict[str, Any] = {
    "url": "ldap://127.0.0.1:1",  # replaced by the running slapd's
    "bind_dn": ADMIN,
    "bind_password": PASSWORD,
    "base_dn": PEOPLE,
    "groups_base_dn": GROUPS,
    "disabled_ou": DISABLED,
    "page_size": 2,
}

_StandardTests = get_tap_test_class(TapLDAP, config=CONFIG, parse_env_config=False)


class TestTapLDAPStandard(_StandardTests):
    @pytest.fixture(scope="class", autouse=True)
    def _slapd(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
        server = start_slapd(Path(tmp_path_factory.mktemp("tap-ldap-standard")) / "slapd")
        CONFIG["url"] = server.url
        target = {
            "url": server.url,
            "bind_dn": ADMIN,
            "bind_password": PASSWORD,
            "base_dn": PEOPLE,
            "disabled_ou": DISABLED,
            "group_rules": [{"group": f"cn=all-staff,{GROUPS}", "match": {}}],
            "allow_mass_deactivation": True,
        }
        people = [person(f"S-{n}", f"Given{n}", f"Family{n}") for n in range(5)]
        run_target(target, people)
        run_target(target, [*people[:4], leaver(people[4])])
        yield server
        server.stop()
