"""Active Directory mode against slapd with an AD-like test schema (fast, parallel-safe; the
same lifecycle against a real Samba AD domain controller is in test_samba_ad.py) and the
transport policy (LDAPS / StartTLS with verified certificates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ldap_testkit import (
    ADMIN,
    GROUPS,
    PASSWORD,
    PEOPLE,
    RunTarget,
    Slapd,
    openldap_config,
    person,
    start_slapd,
)

from target_ldap.config import ConfigError, parse_settings
from target_ldap.directory import DirectoryError

ENG = f"cn=engineering,{GROUPS}"
ALL = f"cn=all-staff,{GROUPS}"


def ad_config(server: Slapd, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "mode": "ad",
        "upn_domain": "corp.example.com",
        "dn_template": "CN={uid},OU={department},OU=People,DC=example,DC=com",
        "group_rules": {ENG: {"department": "Engineering"}, ALL: {}},
        "allow_mass_deactivation": True,
    }
    config.update(overrides)
    return config


def test_ad_mode_lifecycle(ad_slapd: Slapd, tmp_path: Path, run_target: RunTarget) -> None:
    config = ad_config(ad_slapd, tmp_path)
    long_name = person(
        "A-1001",
        "Maximilian-Alexander",
        "von Hohenzollern-Sigmaringen",
        work_email="maximilian-alexander.vonhohenzollern@example.com",
        positions=[{"title": "Mentor", "department": "People"}],
    )
    peer = person("A-1002", "Zoë", "Ngũgĩ", work_email="zoe.ngugi@example.com")
    run_target(config, [long_name, peer])
    dn, attrs = ad_slapd.by_eid("A-1001", "employeeID")
    assert attrs["sAMAccountName"] == ["maximilian-alexander"]  # cut to 20
    assert attrs["userPrincipalName"] == ["maximilian-alexander@corp.example.com"]
    assert attrs["userAccountControl"] == ["512"]
    assert attrs["objectClass"] == ["top", "person", "organizationalPerson", "user"]
    assert attrs["employeeNumber"] == ["NA-1001"] and attrs["department"] == ["Engineering"]
    assert attrs["title"] == ["Engineer"]  # AD's title is single-valued: the primary one
    assert dn == "cn=maximilian-alexander,ou=engineering,ou=people,dc=example,dc=com"
    assert attrs["cn"] == ["maximilian-alexander"]
    _, zoe = ad_slapd.by_eid("A-1002", "employeeID")
    assert zoe["displayName"] == ["Zoë Ngũgĩ"] and zoe["sAMAccountName"] == ["zoe.ngugi"]
    assert len(ad_slapd.members(ENG)) == 2

    # leaver: 514, out of the groups (an AD group may be empty: no placeholder)
    gone = dict(peer, termination_date="2024-05-31", employment_status="Inactive")
    leaver_long = dict(long_name, termination_date="2024-05-31")
    before = ad_slapd.write_count()
    target = run_target(config, [leaver_long, gone])
    assert target.summary.outcomes["disabled"] == 2
    assert ad_slapd.by_eid("A-1002", "employeeID")[1]["userAccountControl"] == ["514"]
    assert ad_slapd.members(ENG) == set() and ad_slapd.members(ALL) == set()
    assert ad_slapd.write_count() - before == 4  # 2 accounts + 2 groups
    # a flag the admin set (DONT_EXPIRE_PASSWORD) survives disable/enable
    with ad_slapd.connect() as conn:
        from ldap3 import MODIFY_REPLACE

        conn.modify(
            ad_slapd.by_eid("A-1002", "employeeID")[0],
            {"userAccountControl": [(MODIFY_REPLACE, ["66050"])]},
        )
    back = dict(gone, hire_date="2025-01-06", employment_status="Active")
    target = run_target(config, [leaver_long, back])
    assert target.summary.outcomes["enabled"] == 1
    assert ad_slapd.by_eid("A-1002", "employeeID")[1]["userAccountControl"] == ["66048"]
    assert ad_slapd.by_eid("A-1001", "employeeID")[1]["userAccountControl"] == ["514"]
    assert len(ad_slapd.members(ENG)) == 1
    # and a re-run writes nothing
    before = ad_slapd.write_count()
    run_target(config, [leaver_long, back])
    assert ad_slapd.write_count() == before


def test_settings_are_checked_before_anything_runs() -> None:
    base = {"url": "ldap://127.0.0.1:389", "base_dn": PEOPLE, "disabled_ou": "ou=Disabled,dc=x"}
    with pytest.raises(ConfigError, match=r"refusing plain ldap:// to '10\.1\.2\.3'"):
        parse_settings(dict(base, url="ldap://10.1.2.3"))
    parse_settings(dict(base, url="ldap://ldap.example.com", start_tls=True))
    parse_settings(dict(base, url="ldaps://ldap.example.com"))
    parse_settings(dict(base, url="ldap://[::1]:1389"))
    with pytest.raises(ConfigError, match=r"ldaps://host"):
        parse_settings(dict(base, url="http://127.0.0.1"))
    with pytest.raises(ConfigError, match="needs a way to disable"):
        parse_settings(dict(base, disabled_ou=None))
    with pytest.raises(ConfigError, match="upn_domain"):
        parse_settings(dict(base, mode="ad"))
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_settings(dict(base, dn_template="uid={login},{base_dn}"))
    with pytest.raises(ConfigError, match="unknown field"):
        parse_settings(dict(base, group_rules=[{"group": "cn=g,dc=x", "match": {"team": "A"}}]))
    with pytest.raises(ConfigError, match="at most 20"):
        parse_settings(dict(base, mode="ad", upn_domain="x.com", login_max_length=25))
    rules = parse_settings(dict(base, group_rules='{"cn=g,dc=x": {"department": ["A", "B"]}}'))
    assert rules.group_rules[0].match == {"department": frozenset({"a", "b"})}


def test_ldaps_and_starttls_verify_certificates(tmp_path: Path, run_target: RunTarget) -> None:
    server = start_slapd(tmp_path / "tls", tls=True)
    try:
        assert server.ca_file is not None and server.tls_port is not None
        plain = openldap_config(server, tmp_path)
        ldaps = dict(plain, url=f"ldaps://127.0.0.1:{server.tls_port}", ca_file=str(server.ca_file))
        run_target(ldaps, [person("T1", "Tls", "User")])
        assert server.by_eid("T1")[1]["uid"] == ["tls.user"]
        starttls = dict(
            plain,
            url=f"ldap://127.0.0.1:{server.port}",
            start_tls=True,
            ca_file=str(server.ca_file),
        )
        run_target(starttls, [person("T2", "Start", "Tls")])
        assert server.by_eid("T2")[1]["uid"] == ["start.tls"]
        # a certificate nobody vouches for is refused (ldap3 alone would not check it)
        unverified = dict(ldaps, ca_file=None)
        with pytest.raises(DirectoryError, match="cannot connect"):
            run_target(unverified, [person("T3", "Not", "Written")])
        assert len(server.entries()) == 2
    finally:
        server.stop()
