"""target-ldap against a real OpenLDAP slapd: joiners, movers, leavers, rehires, groups,
the mass-deprovisioning guard, dry runs, re-runs and rejected entries."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE
from ldap_testkit import (
    DISABLED,
    GROUPS,
    PEOPLE,
    ROOT,
    SUFFIX,
    RunTarget,
    Slapd,
    audit_lines,
    messages,
    openldap_config,
    person,
    today,
)

from hrsync.deadletter import DeadLetterStore
from target_ldap.provision import MassDeactivationRefused

ENG = f"cn=engineering,{GROUPS}"
SALES = f"cn=sales,{GROUPS}"
ALL = f"cn=all-staff,{GROUPS}"
MANAGERS = f"cn=managers,{GROUPS}"


def dn(uid: str, ou: str) -> str:
    return f"uid={uid},ou={ou},{PEOPLE}".lower()


def raw(server: Slapd, entry_dn: str, attr: str) -> list[bytes]:
    with server.connect() as conn:
        conn.search(entry_dn, "(objectClass=*)", BASE, attributes=[attr])
        return list(conn.response[0]["raw_attributes"].get(attr, []))


def test_joiners_non_ascii_and_escaped_dns(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    records = [
        person("1001", "Zoë", "O'Brien", work_email="zoe.obrien@example.com"),
        person(
            "1002",
            "Łukasz",
            "Groß-Żółć",
            work_email="Łukasz.Groß@example.com",  # a non-ASCII local part: folded for uid
            department="R&D, Lab + Ops",
            manager_employee_id="1001",
        ),
        person("1003", "小龙", "李", work_email=None, user_name=None, department="#1 Team "),
        person("1004", "محمد", "العلي", work_email="m.alali@example.com", department=" Support"),
        person("1005", "Madonna", "Madonna", work_email="madonna@example.com"),
    ]
    # the directory rejects a non-ASCII mail (IA5String): keep 1002's mail out of it here
    records[1]["work_email"] = None
    records[1]["user_name"] = "Łukasz.Groß@example.com"
    target = run_target(openldap_config(slapd, tmp_path), records)
    assert target.summary.failures == []
    assert target.summary.outcomes["created"] == 5
    entries = slapd.entries()
    assert set(entries) == {
        dn("zoe.obrien", "Engineering"),
        "uid=lukasz.gross,ou=r&d\\2c lab \\2b ops,ou=people,dc=example,dc=com",
        # stray spaces are trimmed; a leading '#' is escaped
        "uid=u1003,ou=\\231 team,ou=people,dc=example,dc=com",
        "uid=m.alali,ou=support,ou=people,dc=example,dc=com",
        dn("madonna", "Engineering"),
    }
    zoe = entries[dn("zoe.obrien", "Engineering")]
    assert zoe["cn"] == ["Zoë O'Brien"] and zoe["sn"] == ["O'Brien"]
    assert zoe["employeeNumber"] == ["1001"] and zoe["mail"] == ["zoe.obrien@example.com"]
    # byte for byte: what the HRIS sent is what the directory holds
    lukasz_dn = next(d for d in entries if d.startswith("uid=lukasz.gross"))
    assert raw(slapd, lukasz_dn, "sn") == ["Groß-Żółć".encode()]
    assert raw(slapd, lukasz_dn, "departmentNumber") == [b"R&D, Lab + Ops"]
    assert entries[lukasz_dn]["manager"][0].lower() == dn("zoe.obrien", "Engineering")
    xiaolong = next(d for d in entries if d.startswith("uid=u1003"))
    assert raw(slapd, xiaolong, "cn") == ["小龙 李".encode()]
    assert raw(slapd, xiaolong, "givenName") == ["小龙".encode()]
    assert raw(slapd, next(d for d in entries if "m.alali" in d), "sn") == ["العلي".encode()]
    assert entries[dn("madonna", "Engineering")]["cn"] == ["Madonna"]  # a mononym
    # groups: rules by department; all-staff lost its placeholder once it had real members
    assert slapd.members(ENG) == {dn("zoe.obrien", "Engineering"), dn("madonna", "Engineering")}
    assert len(slapd.members(ALL)) == 5 and ALL.lower() not in slapd.members(ALL)
    assert slapd.members(SALES) == {SALES.lower()}  # untouched placeholder
    # audit: one line per change, attribute names only, never values
    lines = audit_lines()
    created = [a for a in lines if a["outcome"] == "created"]
    assert sorted(a["record_key"] for a in created) == ["1001", "1002", "1003", "1004", "1005"]
    assert "mail" in next(a for a in created if a["record_key"] == "1001")["fields"]
    blob = json.dumps(lines, ensure_ascii=False)
    for value in ("Zoë", "O'Brien", "zoe.obrien@example.com", "小龙", "Lisbon"):
        assert value not in blob
    assert sum(a["outcome"] == "group_added" for a in lines) == 7


def test_mover_title_department_manager(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    config = openldap_config(slapd, tmp_path)
    boss = person("2001", "Ada", "Lovelace", title="Engineering Manager")
    other_boss = person("2002", "Grace", "Hopper", department="Sales", title="VP Sales")
    mover = person("2003", "Alan", "Turing", manager_employee_id="2001")
    run_target(config, [boss, other_boss, mover])
    assert slapd.members(MANAGERS) == {dn("ada.lovelace", "Engineering")}
    writes_before = slapd.write_count()

    moved = dict(mover, title="Account Executive", department="Sales", manager_employee_id="2002")
    target = run_target(config, [boss, other_boss, moved])
    assert target.summary.outcomes["updated"] == 1
    entries = slapd.entries()
    assert dn("alan.turing", "Engineering") not in entries
    alan = entries[dn("alan.turing", "Sales")]
    assert alan["title"] == ["Account Executive"] and alan["departmentNumber"] == ["Sales"]
    assert alan["manager"][0].lower() == dn("grace.hopper", "Sales")
    assert alan["uid"] == ["alan.turing"] and alan["employeeNumber"] == ["2003"]
    # memberships follow the move: out of engineering, into sales (under the new DN)
    assert dn("alan.turing", "Sales") in slapd.members(SALES)
    assert not any("alan.turing" in m for m in slapd.members(ENG))
    all_staff = slapd.members(ALL)
    assert (
        dn("alan.turing", "Sales") in all_staff
        and dn("alan.turing", "Engineering") not in all_staff
    )
    # one modify_dn, one modify of the entry, three group modifies (sales, eng, all-staff)
    assert slapd.write_count() - writes_before == 5
    update = [a for a in audit_lines() if a["outcome"] == "updated"][-1]
    assert update["record_key"] == "2003"
    assert set(update["fields"]) == {"dn", "departmentNumber", "manager", "title"}


@pytest.mark.parametrize("marker", ["disabled_ou", "pwdAccountLockedTime", "employeeType"])
def test_leavers_today_past_future(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, marker: str
) -> None:
    overrides: dict[str, Any] = {"allow_mass_deactivation": True}
    if marker == "pwdAccountLockedTime":
        overrides |= {
            "disabled_ou": None,
            "disabled_attribute": "pwdAccountLockedTime: 000001010000Z",
        }
    elif marker == "employeeType":
        overrides |= {"disabled_ou": None, "disabled_attribute": {"employeeType": "disabled"}}
    config = openldap_config(slapd, tmp_path, **overrides)
    staff = [person(f"30{i:02d}", "Person", f"Number{i}") for i in range(6)]
    run_target(config, staff)
    day = dt.timedelta(days=1)
    staff[0]["termination_date"] = today().isoformat()
    staff[0]["employment_status"] = "Inactive"
    staff[1]["termination_date"] = (today() - 30 * day).isoformat()
    staff[2]["termination_date"] = (today() + 14 * day).isoformat()  # notice period: still on
    staff[3]["deleted"] = True
    target = run_target(config, staff)
    assert target.summary.outcomes["disabled"] == 3
    entries = slapd.entries(SUFFIX)
    for i, disabled in ((0, True), (1, True), (2, False), (3, True), (4, False)):
        uid = f"person.number{i}"
        (entry_dn, attrs) = next((d, a) for d, a in entries.items() if d.startswith(f"uid={uid},"))
        if marker == "disabled_ou":
            assert entry_dn.endswith(DISABLED.lower()) is disabled
        elif marker == "pwdAccountLockedTime":
            assert (attrs.get("pwdAccountLockedTime") == ["000001010000Z"]) is disabled
        else:
            assert ("disabled" in attrs.get("employeeType", [])) is disabled
        in_groups = any(uid in m for m in slapd.members(ALL))
        assert in_groups is not disabled  # leavers leave their rule-managed groups
    # a leaver with no account is not created
    ghost = person("3099", "Never", "Here", hire_date="2000-01-01", termination_date="2001-01-01")
    target = run_target(config, [*staff, ghost])
    assert target.summary.plan.skipped == [
        ("3099", "no account, and not active: nothing to create")
    ]
    assert target.summary.outcomes == {}


def test_rehire_reenables_and_rejoins(slapd: Slapd, tmp_path: Path, run_target: RunTarget) -> None:
    config = openldap_config(
        slapd, tmp_path, disabled_attribute="employeeType: disabled", allow_mass_deactivation=True
    )
    rec = person("4001", "Seán", "Ó Briain", work_email="sean.obriain@example.com")
    run_target(config, [rec])
    left = dict(rec, termination_date="2023-03-31", employment_status="Inactive")
    run_target(config, [left])
    entry_dn, attrs = slapd.by_eid("4001")
    assert entry_dn.endswith(DISABLED.lower()) and attrs["employeeType"] == ["disabled"]
    assert slapd.members(ENG) == {ENG.lower()}  # last member left: placeholder keeps it valid

    back = dict(left, hire_date="2024-09-01", employment_status="Active", department="Sales")
    target = run_target(config, [back])
    assert target.summary.outcomes["enabled"] == 1
    entry_dn, attrs = slapd.by_eid("4001")
    assert entry_dn == dn("sean.obriain", "Sales")
    assert "employeeType" not in attrs
    assert entry_dn in slapd.members(SALES) and SALES.lower() not in slapd.members(SALES)
    assert len(slapd.entries(SUFFIX, "(employeeNumber=4001)")) == 1  # never a second account


def test_rehire_under_a_new_employee_id_keeps_the_one_account(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    config = openldap_config(slapd, tmp_path, allow_mass_deactivation=True)
    old = person("4101", "Aoife", "Ní Bhriain", work_email="aoife.nibhriain@example.com")
    keep = person("4102", "Tomás", "Ó Sé")
    run_target(config, [old, keep])
    first_dn, _ = slapd.by_eid("4101")
    left = dict(old, termination_date="2023-03-31", employment_status="Inactive")
    run_target(config, [left, keep])
    assert slapd.by_eid("4101")[0].endswith(DISABLED.lower())

    # rehired under a new id, same work e-mail; the full feed still carries the old employment
    new = dict(old, employee_id="4999", employee_number="N4999", hire_date="2024-09-01",
               department="Sales")  # fmt: skip
    target = run_target(config, [left, new, keep])
    assert target.summary.failures == []
    assert target.summary.outcomes == {"enabled": 1, "group_added": 2}  # sales, all-staff
    entry_dn, attrs = slapd.by_eid("4999")
    assert entry_dn == dn("aoife.nibhriain", "Sales")  # the same login, back from disabled
    assert attrs["employeeNumber"] == ["4999"] and attrs["uid"] == ["aoife.nibhriain"]
    assert slapd.entries(SUFFIX, "(employeeNumber=4101)") == {}  # no second entry
    assert len(slapd.entries(SUFFIX, "(uid=aoife.nibhriain*)")) == 1
    assert entry_dn in slapd.members(SALES) and first_dn not in slapd.members(ENG)
    assert run_target(config, [left, new, keep]).summary.outcomes == {}  # converged


def test_a_new_id_with_the_login_of_someone_still_employed_is_another_person(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    config = openldap_config(slapd, tmp_path)
    active = person("4201", "Ana", "Lima", work_email="ana.lima@example.com")
    run_target(config, [active])
    # a different Ana Lima joins; the first one is still employed: never the same account
    other = dict(active, employee_id="4202", employee_number="N4202")
    run_target(config, [active, other])
    assert slapd.by_eid("4201")[1]["uid"] == ["ana.lima"]
    assert slapd.by_eid("4202")[1]["uid"] == ["ana.lima4202"]
    # a login shared by a leaver, but another work e-mail (another domain): not a rehire
    gone = person("4301", "Rui", "Costa", work_email="rui.costa@example.pt")
    run_target(config, [gone])
    newcomer = person("4302", "Rui", "Costa", work_email="rui.costa@example.com")
    left = dict(gone, termination_date="2023-03-31", employment_status="Inactive")
    run_target(config, [left, newcomer])
    assert slapd.by_eid("4301")[0].endswith(DISABLED.lower())
    assert slapd.by_eid("4302")[1]["uid"] == ["rui.costa4302"]


def test_two_positions(slapd: Slapd, tmp_path: Path, run_target: RunTarget) -> None:
    rec = person(
        "5001",
        "Chiara",
        "D'Angelo",
        positions=[{"title": "Sales Engineer", "department": "Sales Ops"}],
    )
    run_target(openldap_config(slapd, tmp_path), [rec])
    entry_dn, attrs = slapd.by_eid("5001")
    assert entry_dn == dn("chiara.dangelo", "Engineering")  # primary position names the DN
    assert sorted(attrs["title"]) == ["Engineer", "Sales Engineer"]
    assert sorted(attrs["departmentNumber"]) == ["Engineering", "Sales Ops"]
    assert entry_dn in slapd.members(ENG) and entry_dn in slapd.members(SALES)
    # the second position ends: sales membership goes, engineering stays
    run_target(openldap_config(slapd, tmp_path), [dict(rec, positions=[])])
    assert entry_dn not in slapd.members(SALES) and entry_dn in slapd.members(ENG)
    assert slapd.by_eid("5001")[1]["title"] == ["Engineer"]


def test_rerun_writes_nothing(slapd: Slapd, tmp_path: Path, run_target: RunTarget) -> None:
    config = openldap_config(slapd, tmp_path)
    records = [
        person("6001", "Zoë", "Ångström", manager_employee_id="6002"),
        person("6002", "Ngozi", "Okonkwo-Iweala", title="Engineering Manager"),
        person(
            "6003",
            "Renée",
            "Lefèvre",
            department="Sales",
            positions=[{"title": "Trainer", "department": "Engineering"}],
        ),
        person("6004", "Old", "Leaver", hire_date="2015-01-01", termination_date="2020-01-01"),
    ]
    run_target(config, records)
    before, audit_before = slapd.write_count(), len(audit_lines())
    target = run_target(config, list(reversed(records)))
    assert slapd.write_count() == before
    assert len(audit_lines()) == audit_before
    assert target.summary.outcomes == {} and target.summary.plan.unchanged == 3


def test_dry_run_prints_plan_and_writes_nothing(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    config = openldap_config(slapd, tmp_path)
    run_target(config, [person("7001", "Ana", "Silva")])
    before = slapd.write_count()
    records = [
        person("7001", "Ana", "Silva", department="Sales"),
        person("7002", "Bruno", "Costa"),
    ]
    capsys.readouterr()
    target = run_target(dict(config, dry_run=True), records)
    err = capsys.readouterr().err
    assert slapd.write_count() == before
    assert DeadLetterStore().list() == []
    assert "DRY RUN" in err
    assert "create   employee 7002: uid=bruno.costa,ou=Engineering" in err
    assert "update   employee 7001: uid=ana.silva,ou=Engineering" in err
    assert "-> uid=ana.silva,ou=Sales" in err
    assert f"join     employee 7001: {SALES}" in err
    assert f"leave    employee 7001: {ENG}" in err
    assert "Silva" not in err.replace("ana.silva", "")  # names appear only inside DNs
    assert target.summary.plan.count("create") == 1


def test_guard_stops_truncated_feed(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    config = openldap_config(slapd, tmp_path, deactivate_missing_users=True)
    staff = [person(f"80{i:02d}", "Worker", f"No{i}") for i in range(30)]
    run_target(config, staff)
    before, audit_before = slapd.write_count(), len(audit_lines())
    truncated = staff[:5]  # the feed broke off: 25 of 30 would be locked out
    with pytest.raises(MassDeactivationRefused, match=r"disable 25 of the 30 enabled accounts"):
        run_target(config, truncated)
    assert slapd.write_count() == before  # nothing at all was written
    assert len(audit_lines()) == audit_before
    # an empty feed: same verdict
    with pytest.raises(MassDeactivationRefused, match="disable 30 of the 30"):
        run_target(config, [])
    # a mis-mapped feed (everyone Inactive) without full-feed mode: same
    everyone_gone = [dict(r, employment_status="Inactive") for r in staff]
    with pytest.raises(MassDeactivationRefused, match="allow_mass_deactivation"):
        run_target(dict(config, deactivate_missing_users=False), everyone_gone)
    assert slapd.write_count() == before
    # a dry run shows the verdict too
    capsys.readouterr()
    with pytest.raises(Exception, match="mass-deprovisioning guard"):
        run_target(dict(config, dry_run=True), truncated)
    assert "the real run would STOP" in capsys.readouterr().err
    # 3 leavers of 30 (10%) is within the share; the override lets the big one through
    run_target(config, staff[3:])
    assert len(slapd.entries(DISABLED)) == 3
    target = run_target(dict(config, allow_mass_deactivation=True), truncated)
    assert target.summary.outcomes["disabled"] == 25
    assert target.summary.outcomes["enabled"] == 3  # in the feed again, and active
    assert len(slapd.entries(DISABLED)) == 25


def test_directory_rejections_become_dead_letters(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    config = openldap_config(
        slapd, tmp_path, dn_template="cn={display_name},ou={department},ou=People,dc=example,dc=com"
    )
    with slapd.connect() as conn:  # an account someone made by hand (no employeeNumber)
        conn.add(f"ou=Engineering,{PEOPLE}", ["organizationalUnit"], {"ou": "Engineering"})
        conn.add(
            f"cn=Kim Lee,ou=Engineering,{PEOPLE}",
            ["inetOrgPerson"],
            {"cn": "Kim Lee", "sn": "Lee", "description": "contractor, added by hand"},
        )
    records = [
        person("9001", "José", "García", work_email="josé.garcía@example.com"),  # not IA5
        person("9003", "John", "Smith", work_email="john.smith2@example.com"),  # same DN...
        person("9002", "John", "Smith"),  # ...as this one: the lower id keeps it
        person("9008", "Kim", "Lee"),  # the DN is taken by the hand-made entry
        person("9004", "Fine", "Person"),
        person("", "No", "Key"),
        person("9006", "Bad", "Date", termination_date="next tuesday"),
        person("9007", "No", "Department", department=None),
    ]
    target = run_target(config, records)  # the run succeeds: the failures are dead letters
    assert len(target.summary.failures) == 6
    # the rest was provisioned
    managed = {a["employeeNumber"][0] for a in slapd.entries().values() if "employeeNumber" in a}
    assert managed == {"9002", "9004"}
    by_key = {x.record_key: x for x in DeadLetterStore().list()}
    keyless = [k for k in by_key if k.startswith("<missing:")]  # its own letter, by content
    assert set(by_key) == {"9001", "9003", "9008", *keyless, "9006", "9007"}
    assert len(keyless) == 1
    assert {x.plugin for x in by_key.values()} == {"target-ldap"}
    assert "failed on mail" in by_key["9001"].error
    assert "invalidAttributeSyntax" in by_key["9001"].error
    assert by_key["9001"].error_class == "ldap_21_invalidAttributeSyntax"
    assert by_key["9001"].record["employee_id"] == "9001"  # the record, for a replay
    assert by_key["9001"].key_properties == ["employee_id"]
    assert "failed on cn" in by_key["9003"].error
    assert "is also the DN of employee 9002" in by_key["9003"].error
    assert "failed on cn" in by_key["9008"].error
    assert "already exists and belongs to an entry without employeeNumber" in by_key["9008"].error
    assert by_key["9008"].error_class == "ldap_68_entryAlreadyExists"
    assert "failed on employee_id" in by_key[keyless[0]].error
    assert "failed on termination_date" in by_key["9006"].error
    assert "next tuesday" in by_key["9006"].error
    assert by_key["9006"].error_class == "invalid_record"
    assert "failed on department" in by_key["9007"].error
    assert "dn_template" in by_key["9007"].error
    # fixed at the source and sent again: delivered, and the letter resolves itself
    run_target(config, [person("9007", "No", "Department")])
    assert "9007" not in {x.record_key for x in DeadLetterStore().list()}
    failed = [a for a in audit_lines() if a["outcome"] == "failed"]
    assert {a["record_key"] for a in failed} == {"9001", "9008"}
    # the hand-made entry was not touched
    kim = slapd.entries(f"cn=Kim Lee,ou=Engineering,{PEOPLE}")
    assert next(iter(kim.values()))["description"] == ["contractor, added by hand"]


def test_logins_deterministic_and_stable(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from ldap_testkit import start_slapd

    a = person("1200", "Maria", "Silva", work_email="maria.silva@example.com")
    b = person("1100", "María", "Silva", work_email="maría.silva@example.pt")
    b["work_email"] = "maria.silva@example.pt"
    c = person("1300", "Mária", "Silva", work_email=None, user_name=None)  # from the names
    run_target(openldap_config(slapd, tmp_path), [a, b, c])
    other = start_slapd(tmp_path_factory.mktemp("other"))
    try:
        run_target(openldap_config(other, tmp_path), [c, b, a])  # another order
        uids = {e["employeeNumber"][0]: e["uid"][0] for e in slapd.entries().values()}
        assert uids == {e["employeeNumber"][0]: e["uid"][0] for e in other.entries().values()}
    finally:
        other.stop()
    # the lowest employee id wins the bare name; the others get their id as suffix
    assert uids == {"1100": "maria.silva", "1200": "maria.silva1200", "1300": "maria.silva1300"}
    # a rename (new email, new family name) keeps the account and the uid
    renamed = dict(a, family_name="Silva-Costa", work_email="maria.costa@example.com")
    run_target(openldap_config(slapd, tmp_path), [renamed])
    _, attrs = slapd.by_eid("1200")
    assert attrs["uid"] == ["maria.silva1200"] and attrs["sn"] == ["Silva-Costa"]
    assert len(slapd.entries()) == 3


def test_subprocess_cli_exit_codes(slapd: Slapd, tmp_path: Path) -> None:
    config = openldap_config(slapd, tmp_path)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    feed = tmp_path / "feed.jsonl"
    feed.write_text(messages([person("1401", "Kofi", "Mensah")]), encoding="utf-8")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = [sys.executable, "-m", "target_ldap", "--config", str(config_path), "--input", str(feed)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "bookmarks": {"iam_users": {"n": 1}}
    }
    assert slapd.by_eid("1401")[1]["uid"] == ["kofi.mensah"]
    # refusing plain LDAP to a remote host: a clear message, exit status 1, no traceback
    config_path.write_text(json.dumps(dict(config, url="ldap://ldap.example.com")))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "refusing plain ldap:// to 'ldap.example.com'" in done.stderr
    assert "Traceback" not in done.stderr


def test_new_managers_first_and_reporting_cycles(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget
) -> None:
    chain = [person("C0", "Chief", "Exec")]
    chain += [
        person(f"C{i}", "Level", f"No{i}", manager_employee_id=f"C{i - 1}") for i in range(1, 6)
    ]
    loop = [
        person("L1", "Loop", "One", manager_employee_id="L2"),
        person("L2", "Loop", "Two", manager_employee_id="L1"),
    ]
    target = run_target(openldap_config(slapd, tmp_path), list(reversed(chain)) + loop)
    assert target.summary.failures == []
    writes = slapd.writes()
    # seed 8 + ou=Engineering + 8 people; 2 group modifies + the one late manager link
    assert writes.count("changetype: add") == 17
    assert writes.count("changetype: modify") == 3
    assert slapd.by_eid("C1")[1]["manager"][0].lower().startswith("uid=chief.exec,")
    for i in range(2, 6):
        assert slapd.by_eid(f"C{i}")[1]["manager"][0].lower().startswith(f"uid=level.no{i - 1},")
    assert slapd.by_eid("L1")[1]["manager"][0].lower().startswith("uid=loop.two,")
    assert slapd.by_eid("L2")[1]["manager"][0].lower().startswith("uid=loop.one,")


def test_a_dead_letter_replay_never_disables_the_accounts_it_does_not_carry(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = openldap_config(slapd, tmp_path, allow_mass_deactivation=True)
    staff = [person(f"80{i:02d}", "Given", f"Family{i}") for i in range(5)]
    run_target(config, staff)
    monkeypatch.setenv("HRSYNC_REPLAY", "1")  # what `hrsync dlq replay` sets
    target = run_target(dict(config, deactivate_missing_users=True), staff[:1])
    assert target.settings.deactivate_missing_users is False
    assert target.summary.outcomes.get("disabled", 0) == 0
    assert slapd.entries(DISABLED) == {}
