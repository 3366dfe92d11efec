"""tap-ldap against a real Active Directory (the session's Samba AD DC, tests/conftest.py):
what target-ldap's AD mode wrote - joiner, leaver (ACCOUNTDISABLE, moved to the leavers' OU),
an initial password over LDAPS - read back, checked against samba-tool's own view."""

from __future__ import annotations

import re
from typing import Any

from tests.taps.tap_ldap.ldapkit import leaver, person, run_target, secrets_in, tap
from tests.taps.tapkit import records, sync
from tests.targets.target_ldap.samba_dc import ADMIN, PASSWORD, SUFFIX, SambaDC

BASE = f"OU=ReadBack,{SUFFIX}"
LEAVERS = f"OU=ReadBackLeavers,{SUFFIX}"
GROUPS = f"OU=ReadBackGroups,{SUFFIX}"


def ad_config(dc: SambaDC, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": dc.url,
        "ca_file": str(dc.ca_file),
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "mode": "ad",
        "base_dn": BASE,
        "disabled_ou": LEAVERS,
    }
    return config | overrides


def test_what_target_ldap_wrote_in_active_directory_reads_back(samba_dc: SambaDC) -> None:
    target = ad_config(
        samba_dc,
        upn_domain="hrsync.test",
        dn_template=f"CN={{uid}},OU={{department}},{BASE}",
        initial_password="Welcome-2026-ReadBack",
        allow_mass_deactivation=True,
        max_connections=1,
    )
    joiner = person("RB-1", "Rita", "Bauer", work_email="rita.bauer@example.com")
    gone = person("RB-2", "Rui", "Brandão", work_email="rui.brandao@example.com", title="Analyst")
    samba_dc.add(BASE, objectClass="organizationalUnit", ou="ReadBack")
    run_target(target, [joiner, gone])
    run_target(target, [joiner, leaver(gone)])
    rita_dn, _ = samba_dc.user("RB-1")
    samba_dc.add(GROUPS, objectClass="organizationalUnit", ou="ReadBackGroups")
    samba_dc.add(f"CN=rb-readers,{GROUPS}", objectClass="group", member=rita_dn)

    messages = sync(tap(ad_config(samba_dc, groups_base_dn=GROUPS, page_size=1)))
    people = {r["employee_id"]: r for r in records(messages, "people")}
    assert set(people) == {"RB-1", "RB-2"}
    rita, rui = people["RB-1"], people["RB-2"]
    assert rita["dn"].lower() == rita_dn.lower() == f"CN=rita.bauer,OU=Engineering,{BASE}".lower()
    assert (rita["sAMAccountName"], rita["userPrincipalName"]) == (
        "rita.bauer", "rita.bauer@hrsync.test"
    )  # fmt: skip
    assert (rita["employeeID"], rita["employeeNumber"]) == ("RB-1", "NRB-1")
    assert (rita["givenName"], rita["sn"], rita["displayName"]) == ("Rita", "Bauer", "Rita Bauer")
    assert rita["title"] == ["Engineer"] and rita["department"] == "Engineering"
    assert rita["division"] == "Product" and rita["physicalDeliveryOfficeName"] == "Lisbon"
    assert rita["userAccountControl"] == 512 and rita["enabled"] is True
    assert [g.lower() for g in rita["memberOf"]] == [f"CN=rb-readers,{GROUPS}".lower()]
    assert rui["userAccountControl"] & 2 and rui["enabled"] is False
    assert rui["dn"].lower().endswith(LEAVERS.lower()) and rui["displayName"] == "Rui Brandão"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rita["modified"])

    # the binary identifiers as AD's own tools print them
    shown = samba_dc.tool("user", "show", "rita.bauer", "--attributes=objectGUID,objectSid")
    assert f"objectGUID: {rita['objectGUID']}" in shown
    assert f"objectSid: {rita['objectSid']}" in shown
    assert rita["id"] == rita["objectGUID"] and rita["objectSid"].startswith("S-1-5-21-")
    assert secrets_in(messages) == []  # the initial password was set: never read

    (readers,) = records(messages, "groups")
    assert readers["cn"] == "rb-readers" and [m.lower() for m in readers["member"]] == [
        rita_dn.lower()
    ]
    assert readers["id"] == readers["objectGUID"]
