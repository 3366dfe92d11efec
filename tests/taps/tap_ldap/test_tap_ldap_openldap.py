"""tap-ldap against a real OpenLDAP slapd: what target-ldap wrote read back (enabled as the
target decides it, in both of its ways of disabling), paging past the server's size limit,
incremental runs on modifyTimestamp, LDAPS and StartTLS, and no password ever emitted."""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE
from singer_sdk import Stream
from tests.taps.tap_ldap.ldapkit import leaver, person, run_target, secrets_in, tap
from tests.taps.tapkit import final_state, records, sync

from hrsync.tls import InsecureTransportError
from sandbox.directories import ADMIN, DISABLED, GROUPS, PASSWORD, PEOPLE, Slapd, start_slapd
from tap_ldap.client import LDAPTapError
from tap_ldap.streams import STREAM_TYPES
from tap_ldap.tap import TapLDAP


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("tap-ldap") / "slapd", tls=True)
    yield server
    server.stop()


def tap_config(server: Slapd, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "mode": "openldap",
        "base_dn": PEOPLE,
        "groups_base_dn": GROUPS,
        "disabled_ou": DISABLED,
        "page_size": 3,
    }
    return config | overrides


def target_config(server: Slapd, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "mode": "openldap",
        "dn_template": "uid={uid},ou={department},ou=People,dc=example,dc=com",
        "disabled_ou": DISABLED,
        "group_rules": [
            {"group": f"cn=engineering,{GROUPS}", "match": {"department": "Engineering"}},
            {"group": f"cn=all-staff,{GROUPS}", "match": {}},
        ],
        "allow_mass_deactivation": True,
    }
    return config | overrides


def test_what_target_ldap_wrote_reads_back(slapd: Slapd) -> None:
    ana = person("OL-1", "Ana", "Lima", title="Staff Engineer")
    bo = person("OL-2", "Bo", "Berg", department="Sales", positions=[{"title": "Analyst"}])
    cy = person("OL-3", "Cy", "Ode")
    run_target(target_config(slapd), [ana, bo, cy])
    run_target(target_config(slapd), [ana, bo, leaver(cy)])  # the leaver is moved and disabled
    with slapd.connect() as conn:  # a password hash the directory holds: never read back
        conn.modify(f"uid=ana.lima,ou=Engineering,{PEOPLE}",
                    {"userPassword": [(MODIFY_REPLACE, ["{SSHA}c2VjcmV0aGFzaA=="])]})  # fmt: skip

    messages = sync(tap(tap_config(slapd)))
    people = {r["employee_id"]: r for r in records(messages, "people")}
    assert set(people) >= {"OL-1", "OL-2", "OL-3"}
    first = people["OL-1"]
    assert first["dn"].lower() == f"uid=ana.lima,ou=engineering,{PEOPLE}".lower()
    assert (first["uid"], first["employeeNumber"], first["mail"]) == (
        "ana.lima", "OL-1", "ana.lima@example.com"
    )  # fmt: skip
    assert (first["cn"], first["givenName"], first["sn"]) == ("Ana Lima", "Ana", "Lima")
    assert first["title"] == ["Staff Engineer"] and first["departmentNumber"] == ["Engineering"]
    assert first["l"] == "Lisbon" and first["enabled"] is True
    assert people["OL-2"]["title"] == ["Engineer", "Analyst"]  # every position's title
    assert first["id"] == first["entryUUID"] and len(first["id"]) == 36
    assert first["modified"].endswith("Z") and first["created"] <= first["modified"]
    gone = people["OL-3"]
    assert gone["enabled"] is False and gone["dn"].lower().endswith(DISABLED.lower())
    assert secrets_in(messages) == []

    groups = {g["cn"]: g for g in records(messages, "groups")}
    members = {m.lower() for m in groups["engineering"]["member"]}
    assert first["dn"].lower() in members and gone["dn"].lower() not in members
    assert {m.lower() for m in groups["all-staff"]["member"]} >= {
        first["dn"].lower(), people["OL-2"]["dn"].lower()
    }  # fmt: skip


def test_enabled_follows_a_disabled_attribute(tmp_path: Path) -> None:
    server = start_slapd(tmp_path / "slapd")
    try:
        marker = {"disabled_ou": None, "disabled_attribute": "employeeType: disabled"}
        dee, eli = person("OL-4", "Dee", "Ray"), person("OL-5", "Eli", "Sand")
        run_target(target_config(server, group_rules=[], **marker), [dee, eli])
        run_target(target_config(server, group_rules=[], **marker), [dee, leaver(eli)])
        rows = records(sync(tap(tap_config(server, **marker))), "people")
        assert {r["employee_id"]: r["enabled"] for r in rows} == {"OL-4": True, "OL-5": False}
        # the target's other form of the setting reads the same
        mapping = dict(marker, disabled_attribute={"employeeType": "disabled"})
        rows = records(sync(tap(tap_config(server, **mapping))), "people")
        assert {r["employee_id"]: r["enabled"] for r in rows} == {"OL-4": True, "OL-5": False}
    finally:
        server.stop()


def test_paged_past_the_servers_size_limit(tmp_path: Path) -> None:
    server = start_slapd(tmp_path / "slapd", ppolicy=False)  # sizelimit 500, as Debian's
    try:
        with server.connect() as conn:
            for n in range(510):
                conn.add(f"uid=p{n:04d},{PEOPLE}", ["inetOrgPerson"],
                         {"cn": f"P {n}", "sn": "P", "employeeNumber": f"E{n:04d}"})  # fmt: skip
        expected = [f"E{n:04d}" for n in range(510)]
        for page_size in (200, 1000):  # pages below the limit; one page asking for more
            rows = records(sync(tap(tap_config(server, page_size=page_size))), "people")
            assert sorted(r["employee_id"] for r in rows) == expected
    finally:
        server.stop()


def test_the_next_run_reads_only_what_changed(slapd: Slapd) -> None:
    base = f"ou=Incremental,{PEOPLE}"
    with slapd.connect() as conn:
        conn.add(base, ["organizationalUnit"], {"ou": "Incremental"})
        for n in range(4):
            conn.add(f"uid=inc{n},{base}", ["inetOrgPerson"],
                     {"cn": f"Inc {n}", "sn": "Inc", "employeeNumber": f"INC-{n}"})  # fmt: skip
    time.sleep(1.1)  # stamps are whole seconds: the run's window ends at its start second
    config = tap_config(slapd, base_dn=base, disabled_ou=None)
    first = sync(tap(config))
    assert len(records(first, "people")) == 4
    state = final_state(first)
    bookmark = state["bookmarks"]["people"]["replication_key_value"]
    with slapd.connect() as conn:
        conn.modify(f"uid=inc2,{base}", {"title": [(MODIFY_REPLACE, ["Lead"])]})
    time.sleep(1.1)
    rows = records(sync(tap(config, state=state)), "people")
    assert [(r["employee_id"], r["title"]) for r in rows] == [("INC-2", ["Lead"])]
    assert rows[0]["modified"] > bookmark


def test_ldaps_and_starttls_verify_the_directory(slapd: Slapd) -> None:
    assert slapd.tls_port and slapd.ca_file
    ldaps = tap_config(slapd, url=f"ldaps://127.0.0.1:{slapd.tls_port}", ca_file=str(slapd.ca_file))
    assert records(sync(tap(ldaps)), "people")
    starttls = tap_config(slapd, start_tls=True, ca_file=str(slapd.ca_file))
    assert records(sync(tap(starttls)), "people")
    with pytest.raises(LDAPTapError, match="certificate verify failed"):
        sync(tap(ldaps, ca_file=None))  # not the system's trust store's
    with pytest.raises(InsecureTransportError, match=r"refusing plain LDAP to ldap\.example\.com"):
        sync(tap(tap_config(slapd, url="ldap://ldap.example.com")))


def test_a_wrong_password_fails_naming_the_bind(slapd: Slapd) -> None:
    with pytest.raises(LDAPTapError, match=r"bind as cn=admin,dc=example,dc=com .* failed.*49"):
        sync(tap(tap_config(slapd, bind_password="not-the-password")))


def test_an_entry_under_two_search_bases_is_emitted_once(slapd: Slapd) -> None:
    base = f"ou=Twice,{PEOPLE}"
    with slapd.connect() as conn:
        conn.add(base, ["organizationalUnit"], {"ou": "Twice"})
        conn.add(f"uid=twice,{base}", ["inetOrgPerson"],
                 {"cn": "Twice", "sn": "Twice", "employeeNumber": "TW-1"})  # fmt: skip
    # disabled_ou above base_dn: both are searched, the second one holds the first
    config = tap_config(slapd, base_dn=base, disabled_ou=PEOPLE)
    rows = [r for r in records(sync(tap(config)), "people") if r["employee_id"] == "TW-1"]
    assert len(rows) == 1 and rows[0]["enabled"] is False  # under disabled_ou


def test_records_are_the_bytes_singer_sdks_own_path_writes(slapd: Slapd) -> None:
    """tap-ldap's streams write records through the core's SelectedRecordMessages (a speed-up):
    every RECORD line is byte-for-byte the one singer-sdk's own per-record path writes."""
    zoe = person("OL-20", "Zoë", "Ørsted", title="Ingénieure", positions=[{"title": "Lead"}])
    zoe |= {"user_name": "zoe.orsted@example.com", "work_email": "zoe.orsted@example.com"}
    run_target(target_config(slapd), [zoe, person("OL-21", "Li", "Wei", department="Sales")])

    def sdk_path(stream_type: type[Stream]) -> type[Stream]:
        return type(stream_type.__name__, (stream_type,), {
            "_write_record_message": Stream._write_record_message,
            "generate_child_contexts": Stream.generate_child_contexts,
        })  # fmt: skip

    class SdkTap(TapLDAP):
        stream_types = tuple(sdk_path(s) for s in STREAM_TYPES)  # the same order

        def discover_streams(self) -> list[Stream]:
            return [stream_type(tap=self) for stream_type in self.stream_types]

    def record_lines(tap_: TapLDAP) -> list[str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            tap_.sync_all()
        lines = [ln for ln in out.getvalue().splitlines() if ln.startswith('{"type":"RECORD"')]
        return [re.sub(r'"time_extracted":"[^"]*"', "", ln) for ln in lines]

    config = tap_config(slapd)
    fast = record_lines(tap(config))
    assert any("\\u00d8rsted" in line for line in fast) and len(fast) >= 4
    assert fast == record_lines(SdkTap(config=config, parse_env_config=False))
