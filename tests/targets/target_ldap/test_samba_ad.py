"""Active Directory mode against a real Samba AD domain controller (see samba_dc.py): joiner,
mover, leaver and rehire over LDAPS, an initial password, AD's limits and its error codes.
Everything is read back with ldapsearch / samba-tool, not with the target's own code."""

from __future__ import annotations

from typing import Any

import pytest
from ldap_testkit import RunTarget, person
from samba_dc import ADMIN, LEAVERS, PASSWORD, PEOPLE, SUFFIX, SambaDC

from hrsync.deadletter import DeadLetterStore
from target_ldap.ad_errors import ADError, ad_code, explain
from target_ldap.config import ConfigError, parse_settings
from target_ldap.directory import DirectoryError

INITIAL = "Welcome-2026-Hrsync"  # meets Samba's default policy (7+ characters, 3 classes)


def ad_config(dc: SambaDC, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": dc.url,
        "ca_file": str(dc.ca_file),
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "mode": "ad",
        "upn_domain": "hrsync.test",
        "dn_template": f"CN={{uid}},OU={{department}},{PEOPLE}",
        "disabled_ou": LEAVERS,
        "initial_password": INITIAL,
        "allow_mass_deactivation": True,
        "max_connections": 2,
    }
    config.update(overrides)
    return config


def test_joiner_mover_leaver_rehire(samba_dc: SambaDC, run_target: RunTarget) -> None:
    config = ad_config(samba_dc)
    long_name = person(
        "AD-1001",
        "Maximilian-Alexander",
        "von Hohenzollern",
        work_email="maximilian-alexander.vonhohenzollern@example.com",
    )
    zoe = person("AD-1002", "Zoë", "Ngũgĩ", work_email="zoe.ngugi@example.com")

    # joiner: created enabled in OU=Engineering (created too), with an initial password
    target = run_target(config, [long_name, zoe])
    assert target.summary.outcomes["created"] == 2 and not target.summary.failures
    dn, attrs = samba_dc.user("AD-1001")
    assert dn.lower() == f"CN=maximilian-alexander,OU=Engineering,{PEOPLE}".lower()
    assert attrs["sAMAccountName"] == ["maximilian-alexander"]  # AD's 20-character limit
    assert attrs["userPrincipalName"] == ["maximilian-alexander@hrsync.test"]
    assert attrs["userAccountControl"] == ["512"]
    assert attrs["department"] == ["Engineering"] and attrs["title"] == ["Engineer"]
    assert attrs["employeeNumber"] == ["NAD-1001"]
    assert attrs["pwdLastSet"] == ["0"]  # must choose a new password at first logon
    zoe_dn, zoe_attrs = samba_dc.user("AD-1002")
    assert zoe_attrs["displayName"] == ["Zoë Ngũgĩ"]
    assert zoe_attrs["sAMAccountName"] == ["zoe.ngugi"]
    # the password was really set: AD accepts it and then asks for a new one (data 773)
    bind = samba_dc.bind_as("zoe.ngugi@hrsync.test", INITIAL)
    assert bind.returncode != 0 and "data 773" in bind.stderr, bind.stderr
    wrong = samba_dc.bind_as("zoe.ngugi@hrsync.test", INITIAL + "x")
    assert wrong.returncode != 0 and "data 52e" in wrong.stderr, wrong.stderr
    shown = samba_dc.tool("user", "show", "zoe.ngugi")
    assert "employeeID: AD-1002" in shown

    # mover: a new department moves the account to its OU (created on the way)
    moved = dict(zoe, department="Sales", title="Account Executive")
    target = run_target(config, [long_name, moved])
    assert target.summary.outcomes["updated"] == 1
    dn, attrs = samba_dc.user("AD-1002")
    assert dn.lower() == f"CN=zoe.ngugi,OU=Sales,{PEOPLE}".lower()
    assert attrs["department"] == ["Sales"] and attrs["title"] == ["Account Executive"]
    assert samba_dc.ldapsearch(zoe_dn, "(objectClass=*)", "dn", scope="base") == {}

    # leaver: disabled (514) and moved to the leavers' OU
    gone = dict(moved, termination_date="2024-05-31", employment_status="Inactive")
    target = run_target(config, [long_name, gone])
    assert target.summary.outcomes["disabled"] == 1
    dn, attrs = samba_dc.user("AD-1002")
    assert dn.lower() == f"CN=zoe.ngugi,{LEAVERS}".lower()
    assert attrs["userAccountControl"] == ["514"]
    assert samba_dc.user("AD-1001")[1]["userAccountControl"] == ["512"]

    # rehire: enabled again, back in the department's OU, same account (same objectGUID)
    guid = attrs["objectGUID"]
    back = dict(moved, hire_date="2025-01-06", employment_status="Active")
    target = run_target(config, [long_name, back])
    assert target.summary.outcomes["enabled"] == 1
    dn, attrs = samba_dc.user("AD-1002")
    assert dn.lower() == f"CN=zoe.ngugi,OU=Sales,{PEOPLE}".lower()
    assert attrs["userAccountControl"] == ["512"] and attrs["objectGUID"] == guid

    # a re-run changes nothing in the directory (no uSNChanged moves)
    before = {eid: samba_dc.user(eid)[1]["uSNChanged"] for eid in ("AD-1001", "AD-1002")}
    target = run_target(config, [long_name, back])
    assert not target.summary.outcomes
    assert {eid: samba_dc.user(eid)[1]["uSNChanged"] for eid in before} == before


def test_password_policy_refusal_is_a_specific_dead_letter(
    samba_dc: SambaDC, run_target: RunTarget
) -> None:
    config = ad_config(samba_dc, initial_password="short")  # under the 7-character minimum
    fine = person("AD-2001", "Pat", "Policy", department="Finance")
    target = run_target(config, [fine])  # the run ends; the employee becomes a dead letter
    assert len(target.summary.failures) == 1
    assert samba_dc.ldapsearch(SUFFIX, "(employeeID=AD-2001)", "dn") == {}  # nothing half-made
    (letter,) = DeadLetterStore().list()
    assert letter.record_key == "AD-2001" and letter.record is not None
    assert letter.record["employee_id"] == "AD-2001"
    assert "failed on unicodePwd" in letter.error
    assert "password policy" in letter.error
    assert letter.error_class == "ldap_19_constraintViolation_ad_0000052D"
    assert "short" not in letter.error.replace("too short", "")  # the password is not echoed
    # the same employee with a good password: created, and the letter resolves
    run_target(ad_config(samba_dc), [fine])
    assert samba_dc.user("AD-2001")[1]["userAccountControl"] == ["512"]
    assert DeadLetterStore().list() == []


def test_an_account_name_taken_outside_base_dn_is_a_specific_dead_letter(
    samba_dc: SambaDC, run_target: RunTarget
) -> None:
    # someone created this account by hand in CN=Users, where target-ldap does not look
    samba_dc.add(
        f"CN=dup.person,CN=Users,{SUFFIX}",
        objectClass="user",
        sAMAccountName="dup.person",
    )
    target = run_target(ad_config(samba_dc), [person("AD-3001", "Dup", "Person")])
    assert len(target.summary.failures) == 1
    (letter,) = DeadLetterStore().list()
    assert letter.record_key == "AD-3001"
    assert "failed on sAMAccountName" in letter.error
    assert "already" in letter.error and "entryAlreadyExists" in letter.error
    assert letter.error_class == "ldap_68_entryAlreadyExists_ad_00002071"
    assert samba_dc.ldapsearch(PEOPLE, "(employeeID=AD-3001)", "dn") == {}


def test_clear_text_is_refused_by_ad_and_by_the_settings(
    samba_dc: SambaDC, run_target: RunTarget
) -> None:
    # a simple bind without TLS: the DC refuses it (strongerAuthRequired), the run stops
    plain = ad_config(samba_dc, url="ldap://127.0.0.1:389", initial_password=None)
    with pytest.raises(DirectoryError, match="strongerAuthRequired"):
        run_target(plain, [person("AD-4001", "Clear", "Text")])
    # the certificate must name the host: the DC's names localhost and 127.0.0.1, not ::1,
    # although the same DC answers there and the CA is trusted
    wrong_name = ad_config(samba_dc, url="ldaps://[::1]:636")
    with pytest.raises(DirectoryError, match=r"(?i)hostname|host name|certificate"):
        run_target(wrong_name, [person("AD-4002", "Wrong", "Name")])
    assert samba_dc.ldapsearch(SUFFIX, "(|(employeeID=AD-4001)(employeeID=AD-4002))", "dn") == {}
    # and an initial password is refused before anything runs without TLS
    with pytest.raises(ConfigError, match="initial_password needs a protected connection"):
        parse_settings(dict(plain, initial_password=INITIAL))
    with pytest.raises(ConfigError, match="double quote"):
        parse_settings(ad_config(samba_dc, initial_password='pass"word'))
    with pytest.raises(ConfigError, match="initial_password is for ad mode"):
        parse_settings(ad_config(samba_dc, mode="openldap", initial_password=INITIAL))


@pytest.mark.parametrize(
    ("code", "message", "ad", "field", "words"),
    [
        # Samba's wording
        (
            19,
            "0000052D: Constraint violation - check_password_restrictions: too short",
            "0000052D",
            "unicodePwd",
            "password policy",
        ),
        (
            68,
            "00002071: samldb: samAccountName 'x' already in use!",
            "00002071",
            "sAMAccountName",
            "unique",
        ),
        (
            19,
            "0000202F: samldb: userPrincipalName 'x@y' is already in use",
            "0000202F",
            "userPrincipalName",
            "already used",
        ),
        # Windows' wording: the code first, or after 'data'
        (
            68,
            "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0",
            "00000524",
            "sAMAccountName",
            "already used",
        ),
        (
            10,
            "0000202B: RefErr: DSID-0310082F, data 0, 1 access points",
            "0000202B",
            "dn",
            "referral",
        ),
        (
            50,
            "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0",
            "00002098",
            None,
            "insufficient rights",
        ),
        (
            49,
            "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, "
            "data 52e, v3839",
            "0000052E",
            "bind_password",
            "invalid credentials",
        ),
        (53, "00002035: no AD code we know", "00002035", None, "refuses"),
    ],
)
def test_ad_codes_name_the_field_and_the_reason(
    code: int, message: str, ad: str, field: str | None, words: str
) -> None:
    known = explain(code, message)
    assert known is not None and known.ad_code == ad == ad_code(message)
    assert known.field == field and words in known.reason
    assert explain(68, "Entry CN=x,DC=y already exists") is None  # the DN: the generic path
    assert explain(50, "acl: unable to get access to CN=x,OU=y") == ADError(
        50, None, None, "the bind account has insufficient access rights for this change"
    )


def test_a_bind_account_without_rights_is_a_specific_dead_letter(
    samba_dc: SambaDC, run_target: RunTarget
) -> None:
    # an ordinary domain user: may read the directory, may not create accounts
    samba_dc.tool("user", "create", "hrsync-readonly", "Readonly-2026-Hrsync")
    readonly = f"CN=hrsync-readonly,CN=Users,{SUFFIX}"
    samba_dc.add(f"OU=Support,{PEOPLE}", objectClass="organizationalUnit", ou="Support")
    config = ad_config(samba_dc, bind_dn=readonly, bind_password="Readonly-2026-Hrsync")
    target = run_target(config, [person("AD-5001", "No", "Rights", department="Support")])
    assert len(target.summary.failures) == 1
    (letter,) = DeadLetterStore().list()
    assert letter.record_key == "AD-5001"
    assert letter.error_class.startswith("ldap_50_insufficientAccessRights")
    assert "failed on entry" in letter.error
    assert "insufficient" in letter.error and "rights" in letter.error
    assert samba_dc.ldapsearch(SUFFIX, "(employeeID=AD-5001)", "dn") == {}


def test_group_rules_use_ad_groups(samba_dc: SambaDC, run_target: RunTarget) -> None:
    group = f"CN=hrsync-eng,CN=Users,{SUFFIX}"
    samba_dc.tool("group", "add", "hrsync-eng")  # a global security group
    config = ad_config(samba_dc, group_rules={group: {"department": "Platform"}})
    joiner = person("AD-6001", "Grace", "Group", department="Platform")
    run_target(config, [joiner])
    dn, _ = samba_dc.user("AD-6001")
    members = samba_dc.ldapsearch(group, "(objectClass=group)", "member", scope="base")[group]
    assert [m.lower() for m in members["member"]] == [dn.lower()]
    # AD computes the back-link on the user
    assert samba_dc.user("AD-6001")[1]["memberOf"] == [group]
    # the leaver leaves the group; an AD group may be empty
    run_target(config, [dict(joiner, termination_date="2024-05-31")])
    after = samba_dc.ldapsearch(group, "(objectClass=group)", "member", scope="base")[group]
    assert "member" not in after
    assert samba_dc.user("AD-6001")[1]["userAccountControl"] == ["514"]
