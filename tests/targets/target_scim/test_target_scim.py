"""target-scim against a real SCIM 2.0 server (scim2-server), read back with scim2-client."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scim2_models import EnterpriseUser

from target_scim.client import SCIMAuthError
from target_scim.provision import MassDeactivationRefused, ProvisioningIncomplete

ROOT = Path(__file__).resolve().parents[3]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _days(n: int) -> str:
    return (_today() + dt.timedelta(days=n)).isoformat()


def _writes(scim: Any) -> list[tuple[str, str, Any]]:
    """(method, path, body) of every write that reached the server, Bulk ops unpacked."""
    out: list[tuple[str, str, Any]] = []
    for seen in scim.proxy.writes():
        body = json.loads(seen.body) if seen.body else None
        if seen.path.endswith("/Bulk"):
            out += [(op["method"], op["path"], op.get("data")) for op in body["Operations"]]
        else:
            out.append((seen.method, seen.path.split("/v2", 1)[1], body))
    return out


def _seed(scim: Any, make_person: Any, n: int, **fields: Any) -> list[dict[str, Any]]:
    people = [make_person(f"E{i:03d}", **fields) for i in range(1, n + 1)]
    scim.run(people)
    return people


# -- joiner / mover / leaver / rehire ---------------------------------------------------------


def test_joiner_creates_user_with_enterprise_attributes_and_manager(scim, make_person, audit):
    boss = make_person("M1", title="CTO", given_name="Ada", family_name="Lovelace")
    # the report comes first in the feed: the manager must still be created first
    report = make_person(
        "E1",
        manager_employee_id="M1",
        preferred_name="Bob",
        given_name="Robert",
        family_name="Smith",
        cost_center="CC-7",
    )
    target = scim.run([report, boss])

    assert target.summary.outcomes == {"created": 2}
    users = scim.users()
    bob, ada = users["E1"], users["M1"]
    assert bob.user_name == "e1@example.com"
    assert bob.name.given_name == "Robert"
    assert bob.name.family_name == "Smith"
    assert bob.display_name == "Bob Smith"
    assert bob.nick_name == "Bob"
    assert bob.title == "Engineer"
    assert bob.active is True
    assert [(e.value, e.type, e.primary) for e in bob.emails] == [("e1@example.com", "work", True)]
    ent = bob[EnterpriseUser]
    assert ent.employee_number == "N-E1"
    assert ent.department == "Engineering"
    assert ent.division == "Product"
    assert ent.cost_center == "CC-7"
    assert ent.organization == "Acme Corp"
    assert ent.manager.value == ada.id
    assert ada[EnterpriseUser].manager is None

    lines = audit()
    assert {(a["record_key"], a["outcome"]) for a in lines} == {
        ("E1", "created"),
        ("M1", "created"),
    }
    text = json.dumps(lines, ensure_ascii=False)
    assert "Robert" not in text and "e1@example.com" not in text  # names, never values
    assert "title" in json.dumps([a for a in lines if a["record_key"] == "M1"])


def test_mover_patches_title_department_and_manager(scim, make_person):
    _seed(scim, make_person, 3)
    scim.proxy.clear()
    moved = make_person(
        "E002", title="Staff Engineer", department="Platform", manager_employee_id="E003"
    )
    target = scim.run([moved])

    assert target.summary.outcomes == {"updated": 1}
    writes = scim.proxy.writes()
    assert [w.method for w in writes] == ["PATCH"]
    ops = json.loads(writes[0].body)["Operations"]
    assert {op["op"] for op in ops} == {"replace"}
    assert {op["path"].rsplit(":", 1)[-1] for op in ops} == {"title", "department", "manager"}
    users = scim.users()
    assert users["E002"].title == "Staff Engineer"
    assert users["E002"][EnterpriseUser].department == "Platform"
    assert users["E002"][EnterpriseUser].manager.value == users["E003"].id
    assert users["E001"].title == "Engineer"


def test_mover_clears_a_value_the_hris_removed(scim, make_person):
    _seed(scim, make_person, 2)
    target = scim.run([make_person("E001", cost_center=None, title=None)])
    assert target.summary.outcomes == {"updated": 1}
    user = scim.users()["E001"]
    assert user.title is None
    assert user[EnterpriseUser].cost_center is None


def test_leaver_today_future_and_past(scim, make_person, audit):
    people = _seed(scim, make_person, 40)
    scim.proxy.clear()
    people[0]["termination_date"] = _days(0)
    people[1]["termination_date"] = _days(14)  # notice period: still active
    people[2]["termination_date"] = _days(-30)
    people[2]["employment_status"] = "Inactive"
    never_provisioned = make_person("X1", termination_date=_days(-5), employment_status="Inactive")
    target = scim.run([*people, never_provisioned])

    assert target.summary.outcomes == {"deactivated": 2}
    users = scim.users()
    assert users["E001"].active is False
    assert users["E002"].active is True
    assert users["E003"].active is False
    assert "X1" not in users  # a leaver without an account is not created
    writes = _writes(scim)
    assert [m for m, _, _ in writes] == ["PATCH", "PATCH"]
    assert all(
        body["Operations"] == [{"op": "replace", "path": "active", "value": False}]
        for _, _, body in writes
    )
    assert {a["record_key"] for a in audit() if a["outcome"] == "deactivated"} == {
        "E001",
        "E003",
    }


def test_deleted_employee_is_deactivated(scim, make_person):
    people = _seed(scim, make_person, 20)
    people[4]["deleted"] = True
    scim.run(people)
    assert scim.users()["E005"].active is False


def test_rehire_reactivates_the_same_account(scim, make_person):
    people = _seed(scim, make_person, 20)
    first_id = scim.users()["E007"].id
    people[6].update(termination_date=_days(-200), employment_status="Inactive")
    scim.run(people)
    assert scim.users()["E007"].active is False

    people[6].update(hire_date=_days(-1), termination_date=_days(-200), employment_status="Active")
    target = scim.run(people)
    assert target.summary.outcomes == {"reactivated": 1}
    rehired = scim.users()["E007"]
    assert rehired.active is True
    assert rehired.id == first_id


@pytest.mark.parametrize("listing", [True, False], ids=["listing", "filters"])
def test_rehire_under_a_new_employee_id_reactivates_the_one_account(scim, make_person, listing):
    people = _seed(scim, make_person, 20)
    first_id = scim.users()["E007"].id
    left = dict(people[6], termination_date=_days(-200), employment_status="Inactive")
    people[6] = left
    scim.run(people)
    assert scim.users()["E007"].active is False

    # rehired under a new employee id with the same work e-mail; the feed still has the old one
    new = dict(left, employee_id="E907", employee_number="N-E907", hire_date=_days(-1),
               termination_date=None, employment_status="Active", title="Lead")  # fmt: skip
    # a full feed: the target lists every user; one change: it looks it up with a filter
    target = scim.run([*people, new] if listing else [new])
    assert target.summary.failures == [] and scim.dead_letters() == []
    assert target.summary.outcomes == {"reactivated": 1}
    users = scim.users()
    assert "E007" not in users  # re-keyed, not duplicated
    rehired = users["E907"]
    assert (rehired.id, rehired.active, rehired.title) == (first_id, True, "Lead")
    assert rehired.user_name == "e007@example.com"
    assert len([u for u in users.values() if u.user_name == "e007@example.com"]) == 1
    assert scim.run([*people, new]).summary.outcomes == {}  # converged: nothing more to do


def test_rehire_and_leaving_in_one_run_never_leaves_the_person_without_an_account(
    scim, make_person
):
    old = make_person("R1", user_name="kai@example.com", work_email="kai@example.com")
    scim.run([old, make_person("R2")])
    left = dict(old, termination_date=_days(-3), employment_status="Inactive")
    new = dict(old, employee_id="R9", hire_date=_days(-1))
    target = scim.run([left, new, make_person("R2")])
    assert target.summary.failures == []
    users = scim.users()
    assert set(users) == {"R9", "R2"} and users["R9"].active is True


def test_two_new_ids_never_share_the_account_of_one_leaver(scim, make_person):
    old = make_person("L1", user_name="sam@example.com", work_email="sam@example.com")
    scim.run([old, make_person("L2")])
    left = dict(old, termination_date=_days(-3), employment_status="Inactive")
    first, second = dict(old, employee_id="L8"), dict(old, employee_id="L9")
    target = scim.run([left, first, second, make_person("L2")])
    [failure] = target.summary.failures
    assert failure.employee_id == "L9" and "already used" in failure.reason
    users = scim.users()
    assert users["L8"].active is True and "L9" not in users and "L1" not in users


def test_rehire_linked_by_the_prior_employee_id_even_with_a_new_address(scim, make_person):
    scim.run([make_person("P1", user_name="old@example.com", work_email="old@example.com")])
    first_id = scim.users()["P1"].id
    new = make_person("P9", user_name="new@example.com", work_email="new@example.com",
                      prior_employee_id="P1")  # fmt: skip
    target = scim.run([new])
    assert target.summary.outcomes == {"updated": 1}
    users = scim.users()
    assert list(users) == ["P9"] and users["P9"].id == first_id
    assert users["P9"].user_name == "new@example.com"


def test_two_positions_make_one_account_with_the_primary_position(scim, make_person):
    record = make_person(
        "E1",
        title="Nurse",
        department="Ward 3",
        positions=[{"title": "Trainer", "department": "Education"}],
    )
    # the same employee twice in one feed (an update event): still one account, last wins
    earlier = make_person("E1", title="Student Nurse", department="Ward 1")
    target = scim.run([earlier, record])
    assert target.summary.outcomes == {"created": 1}
    users = scim.users()
    assert list(users) == ["E1"]
    assert users["E1"].title == "Nurse"
    assert users["E1"][EnterpriseUser].department == "Ward 3"


NAMES = [
    ("U1", "Zoë", "O'Brien-Núñez", "zoe.obrien@example.com"),
    ("U2", "Seán", "D'Arcy", "sean.o'darcy@example.com"),
    ("U3", "小龙", "李", "li.xiaolong@example.com"),
    ("U4", "محمد", "العلي", "m.alali@example.com"),
    ("U5", "Ærøskøbing", "Ærøskøbing", "aero@example.com"),  # mononym
    ("U6", "François", "Lefèvre", "françois.lefèvre@example.com"),
]


def test_non_ascii_names_arrive_byte_for_byte_and_rerun_finds_them(scim, make_person):
    records = [
        make_person(eid, given_name=g, family_name=f, user_name=u, work_email=u)
        for eid, g, f, u in NAMES
    ]
    scim.run(records)
    users = scim.users()
    for eid, given, family, user_name in NAMES:
        user = users[eid]
        assert user.name.given_name.encode() == given.encode()
        assert user.name.family_name.encode() == family.encode()
        assert user.user_name.encode() == user_name.encode()
    assert users["U5"].display_name == "Ærøskøbing"
    assert users["U1"].display_name == "Zoë O'Brien-Núñez"

    scim.proxy.clear()
    for record in records:  # one at a time: each is looked up with a userName filter
        again = scim.run([record])
        assert again.summary.plan.unchanged == 1
    assert scim.proxy.writes() == []
    filters = [s.path for s in scim.proxy.seen if "filter=" in s.path]
    assert len(filters) == len(NAMES)


def test_unmanaged_account_with_the_same_user_name_is_adopted(scim, make_person):
    from scim2_models import User

    legacy = scim.reader().create(User(user_name="legacy@example.com", display_name="Legacy"))
    target = scim.run([make_person("E1", user_name="legacy@example.com")])
    assert target.summary.outcomes == {"updated": 1}
    users = scim.users()
    assert list(users) == ["E1"]
    assert users["E1"].id == legacy.id
    assert users["E1"].external_id == "E1"


# -- safety -----------------------------------------------------------------------------------


def test_rerun_writes_nothing(scim, make_person, audit):
    people = _seed(scim, make_person, 30)
    people[3]["manager_employee_id"] = "E001"
    people[0]["manager_employee_id"] = "E001"  # the CEO as their own manager: no manager
    people[5]["manager_employee_id"] = "GONE"  # a manager who has no account
    scim.run(people)
    before = len(audit())
    scim.proxy.clear()

    target = scim.run(people)
    assert scim.proxy.writes() == []
    assert target.summary.outcomes == {}
    assert target.summary.plan.unchanged == 30
    assert len(audit()) == before


def test_guard_refuses_a_truncated_feed_and_writes_nothing(scim, make_person, audit):
    people = _seed(scim, make_person, 30)
    scim.proxy.clear()
    truncated = people[:10]

    with pytest.raises(MassDeactivationRefused) as refused:
        scim.run(truncated, deactivate_missing_users=True)
    assert "20 of 30 active accounts" in str(refused.value)
    assert "Nothing was written" in str(refused.value)
    assert scim.proxy.writes() == []
    assert all(u.active for u in scim.users().values())
    refused = [a for a in audit() if a["outcome"] == "refused"]
    assert len(refused) == 20
    assert refused[0]["detail"] == "mass-deprovisioning guard"

    target = scim.run(truncated, deactivate_missing_users=True, allow_mass_deactivation=True)
    assert target.summary.outcomes == {"deactivated": 20}
    assert sum(1 for u in scim.users().values() if u.active) == 10


def test_guard_refuses_an_empty_feed(scim, make_person):
    _seed(scim, make_person, 10)
    scim.proxy.clear()
    with pytest.raises(MassDeactivationRefused):
        scim.run([], deactivate_missing_users=True)
    assert scim.proxy.writes() == []


def test_guard_counts_terminations_too(scim, make_person):
    people = _seed(scim, make_person, 10)
    for p in people[:5]:
        p["termination_date"] = _days(-1)
    with pytest.raises(MassDeactivationRefused):
        scim.run(people)
    assert all(u.active for u in scim.users().values())


def test_a_missing_account_that_cannot_be_deactivated_fails_the_run(scim, make_person):
    people = _seed(scim, make_person, 30)
    scim.fault(**_error_fault(400, "invalidValue", "refused", '"active"'))
    with pytest.raises(ProvisioningIncomplete, match="E029, E030"):
        scim.run(people[:-2], deactivate_missing_users=True)
    assert scim.dead_letters() == []  # no record to replay: the next full feed retries


def test_full_feed_deactivates_missing_within_the_guard(scim, make_person):
    people = _seed(scim, make_person, 30)
    preview = scim.run(people[:-2], deactivate_missing_users=True, dry_run=True)
    assert "deactivate E029: active (absent from the HRIS feed)" in preview.plan_text
    target = scim.run(people[:-2], deactivate_missing_users=True)
    assert target.summary.outcomes == {"deactivated": 2}
    users = scim.users()
    assert users["E029"].active is False and users["E030"].active is False


def test_dry_run_prints_the_plan_and_writes_nothing(scim, make_person):
    people = _seed(scim, make_person, 20)
    scim.proxy.clear()
    people[0]["title"] = "Director"
    people[1]["termination_date"] = _days(-1)
    target = scim.run([*people, make_person("NEW1")], dry_run=True)

    assert scim.proxy.writes() == []
    assert target.summary.outcomes == {}
    plan = target.plan_text
    assert "DRY RUN" in plan
    assert "1 create, 1 update, 1 deactivate, 0 reactivate" in plan
    assert "create     NEW1" in plan
    assert "update     E001: title" in plan
    assert "deactivate E002: active" in plan
    assert "NEW1" not in scim.users()


# -- errors -----------------------------------------------------------------------------------


def test_conflict_409_is_a_dead_letter_and_the_rest_goes_on(scim, make_person, audit):
    # two employees claim the same userName: the server answers 409 uniqueness for one
    a = make_person("E1", user_name="shared@example.com")
    b = make_person("E2", user_name="shared@example.com")
    others = [make_person(f"E{i}") for i in range(3, 8)]
    target = scim.run([a, b, *others])
    assert len(target.summary.failures) == 1
    users = scim.users()
    assert {"E3", "E4", "E5", "E6", "E7"} <= set(users)
    assert len([u for u in users.values() if u.user_name == "shared@example.com"]) == 1

    [letter] = scim.dead_letters()
    assert letter.record_key in {"E1", "E2"}
    assert letter.plugin == "target-scim" and letter.stream == "iam_users"
    assert "failed on userName" in letter.error and "scimType=uniqueness" in letter.error
    assert letter.error_class == "http_409_uniqueness"
    assert letter.record is not None and letter.record["employee_id"] == letter.record_key
    assert letter.schema is not None and "employee_id" in letter.schema["properties"]
    assert letter.key_properties == ["employee_id"]
    [failed] = [a for a in audit() if a["outcome"] == "failed"]
    assert (failed["record_key"], failed["fields"], failed["detail"]) == (
        letter.record_key,
        ["userName"],
        "409 uniqueness",
    )


def test_a_dead_letter_resolves_when_the_user_is_delivered(scim, make_person):
    scim.fault(**_error_fault(400, "invalidValue", "Attribute 'title' is bad", "E1"))
    scim.run([make_person("E1"), make_person("E2")])
    assert [letter.record_key for letter in scim.dead_letters()] == ["E1"]
    scim.proxy.faults.clear()
    scim.run([make_person("E1")])  # the cause is gone: delivered now, the letter resolved
    assert scim.dead_letters() == []
    assert set(scim.users()) == {"E1", "E2"}


def test_existing_account_of_another_employee_is_not_hijacked(scim, make_person):
    scim.run([make_person("OTHER", user_name="taken@example.com")])
    scim.run([make_person("E1", user_name="taken@example.com"), make_person("E2")])
    [letter] = scim.dead_letters()
    assert letter.record_key == "E1" and "failed on userName" in letter.error
    assert "OTHER" in letter.error
    assert scim.users()["OTHER"].user_name == "taken@example.com"
    assert "E2" in scim.users()


def test_schema_violation_400_names_employee_field_and_detail(scim, make_person):
    detail = "Attribute 'title' exceeds 64 characters"
    scim.fault(**_error_fault(400, "invalidValue", detail, "E400"))
    scim.run([make_person("E400", title="x" * 70), make_person("E401")])
    [letter] = scim.dead_letters()
    assert letter.record_key == "E400" and letter.error_class == "http_400_invalidValue"
    assert "failed on title: Attribute 'title' exceeds 64 characters" in letter.error
    assert "E401" in scim.users()


def test_5xx_and_429_are_retried_with_retry_after(scim, make_person):
    scim.fault(**_error_fault(503, None, "maintenance", None, retry_after="0", times=2))
    scim.fault(**_error_fault(429, None, "slow down", None, retry_after="0", times=1))
    target = scim.run([make_person(f"E{i}") for i in range(5)], use_bulk=False)
    assert target.summary.outcomes == {"created": 5}
    assert [s.status for s in scim.proxy.seen].count(503) == 2
    assert [s.status for s in scim.proxy.seen].count(429) == 1
    assert len(scim.users()) == 5


def test_401_with_bearer_token_is_a_clear_auth_error(scim, make_person):
    with pytest.raises(SCIMAuthError) as refused:
        scim.run([make_person("E1")], bearer_token="wrong")
    assert "refused the credentials" in str(refused.value)
    assert "401" in str(refused.value)
    assert scim.users() == {}


def test_oauth_refreshes_the_token_once_after_401(scim, make_person):
    scim.proxy.tokens = ["stale-token", scim.token]  # the first token is refused upstream
    config = scim.config(
        bearer_token=None,
        oauth_client_id="hrsync",
        oauth_client_secret="s3cret",
        oauth_token_url=scim.token_url,
    )
    from target_scim.target import TargetSCIM

    assert "bearer_token" not in config
    target = scim.run(
        [make_person("E1")],
        bearer_token=None,
        oauth_client_id="hrsync",
        oauth_client_secret="s3cret",
        oauth_token_url=scim.token_url,
    )
    assert isinstance(target, TargetSCIM)
    assert target.summary.outcomes == {"created": 1}
    assert scim.proxy.token_requests == 2
    assert [s.status for s in scim.proxy.seen].count(401) == 1


def test_oauth_gives_up_after_one_refresh(scim, make_person):
    scim.proxy.tokens = ["stale-token"]
    with pytest.raises(SCIMAuthError):
        scim.run(
            [make_person("E1")],
            bearer_token=None,
            oauth_client_id="hrsync",
            oauth_client_secret="s3cret",
            oauth_token_url=scim.token_url,
        )
    assert scim.proxy.token_requests == 2


def _error_fault(
    status: int,
    scim_type: str | None,
    detail: str,
    body_contains: str | None,
    *,
    retry_after: str | None = None,
    times: int = 100,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    if scim_type:
        body["scimType"] = scim_type
    return {
        "status": status,
        "body": body,
        "body_contains": body_contains,
        "headers": {"Retry-After": retry_after} if retry_after is not None else {},
        "times": times,
    }


# -- servers without PATCH / Bulk -------------------------------------------------------------


def test_put_when_the_server_has_no_patch(put_only_scim, make_person):
    scim = put_only_scim
    proxy = scim.proxy
    people = [make_person(f"E{i}", manager_employee_id="E0" if i else None) for i in range(4)]
    scim.run(people)
    proxy.clear()
    people[2].update(title="Head of Nursing", department="Nursing")
    people[3]["termination_date"] = _days(-1)
    target = scim.run(people, max_deactivation_share=0.5)

    assert target.summary.outcomes == {"updated": 1, "deactivated": 1}
    methods = sorted(w.method for w in proxy.writes())
    assert methods == ["PUT", "PUT"]
    users = scim.users()
    assert users["E2"].title == "Head of Nursing"
    assert users["E2"][EnterpriseUser].department == "Nursing"
    assert users["E2"][EnterpriseUser].manager.value == users["E0"].id  # kept by the PUT
    assert users["E2"].emails[0].value == "e2@example.com"
    assert users["E3"].active is False


# -- bad input --------------------------------------------------------------------------------


def test_bad_records_get_specific_errors_and_the_rest_goes_on(scim, make_person):
    no_user_name = make_person("E1", user_name=None)
    bad_date = make_person("E2", termination_date="31/12/2024")
    fine = make_person("E3")
    scim.run([no_user_name, bad_date, fine])
    letters = {letter.record_key: letter for letter in scim.dead_letters()}
    assert "failed on user_name: required" in letters["E1"].error
    assert "failed on termination_date" in letters["E2"].error
    assert letters["E2"].error_class == "invalid_record"
    assert letters["E2"].record["termination_date"] == "31/12/2024"
    assert list(scim.users()) == ["E3"]


def test_user_name_from_work_email_and_contractor_without_email(scim, make_person):
    contractor = make_person("C1", work_email=None, user_name="c1@contractors.example")
    target = scim.run([contractor], user_name_attribute="user_name")
    assert target.summary.outcomes == {"created": 1}
    user = scim.users()["C1"]
    assert user.emails is None or user.emails == []
    target = scim.run([make_person("E9", user_name="ignored")], user_name_attribute="work_email")
    assert scim.users()["E9"].user_name == "e9@example.com"


# -- the console script -----------------------------------------------------------------------


def _cli(config: dict[str, Any], stdin: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import os

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "target_scim", "--config", str(cfg)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_runs_and_emits_state(scim, make_person, tmp_path):
    done = _cli(scim.config(), scim.lines([make_person("E1")]), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "bookmarks": {"iam_users": {"n": 1}}
    }
    assert "E1" in scim.users()


def test_cli_dry_run_prints_the_plan_and_emits_no_state(scim, make_person, tmp_path):
    done = _cli(scim.config(dry_run=True), scim.lines([make_person("E1")]), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DRY RUN" in done.stderr
    assert "create     E1: userName" in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip() == ""
    assert scim.users() == {}


def test_cli_guard_exits_non_zero_with_the_reason(scim, make_person, tmp_path):
    _seed(scim, make_person, 10)
    done = _cli(scim.config(deactivate_missing_users=True), scim.lines([]), tmp_path)
    assert done.returncode == 1
    assert "mass-deprovisioning guard" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() == ""  # no state: nothing was done


def test_cli_conflict_is_a_dead_letter_and_the_run_succeeds(scim, make_person, tmp_path):
    records = [
        make_person("E1", user_name="dup@example.com"),
        make_person("E2", user_name="dup@example.com"),
        make_person("E3"),
    ]
    done = _cli(scim.config(), scim.lines(records), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kept as dead letters" in done.stderr
    assert "uniqueness" in done.stderr
    assert set(scim.users()) >= {"E3"}
    assert len(scim.dead_letters()) == 1
    assert json.loads(done.stdout.strip().splitlines()[-1])["bookmarks"]  # state emitted


def test_cli_about_marks_secrets(tmp_path):
    import os

    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "target_scim", "--about", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    about = json.loads(done.stdout)
    props = about["settings"]["properties"]
    assert props["bearer_token"].get("secret") is True
    assert props["oauth_client_secret"].get("secret") is True
    assert props["max_deactivation_share"]["default"] == 0.1


def test_dlq_replay_through_the_real_target_delivers_once_and_never_deprovisions(
    scim, make_person, tmp_path, monkeypatch
):
    """`hrsync dlq replay --command` pipes the letter into target-scim itself (no Meltano):
    delivered once, and a full-feed config does not deactivate everyone absent from the
    replay (HRSYNC_REPLAY keeps full-feed mode off)."""
    from hrsync_ops.cli import main

    people = [make_person(f"E{i}") for i in range(1, 6)]
    scim.fault(**_error_fault(400, "invalidValue", "Attribute 'title' is bad", "E5"))
    scim.run(people)
    [letter] = scim.dead_letters()
    assert letter.record_key == "E5"
    scim.proxy.faults.clear()

    cfg = tmp_path / "scim.json"
    cfg.write_text(
        json.dumps(scim.config(deactivate_missing_users=True, allow_mass_deactivation=True))
    )
    monkeypatch.setenv("HRSYNC_INTEGRATION", "ignored-by-replay")
    command = f"{sys.executable} -m target_scim --config {cfg}"
    assert main(["dlq", "replay", "--command", command]) == 0
    assert scim.dead_letters() == []
    users = scim.users()
    assert set(users) == {"E1", "E2", "E3", "E4", "E5"}
    assert all(u.active for u in users.values())  # nobody deactivated by the 1-user replay
    assert main(["dlq", "replay", "--command", command]) == 0  # nothing left: no-op
    assert len(scim.users()) == 5
