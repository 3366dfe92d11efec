"""The rules without a server: what we send (strict) and what we accept back (tolerant)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hrsync.errors import RecordError
from target_scim import scim
from target_scim.client import SCIMError, ServerFeatures
from target_scim.provision import Change, Plan, Provisioner, Settings, field_of
from target_scim.users import build_desired, desired_active, display_name

TODAY = dt.date(2026, 6, 15)


@pytest.mark.parametrize(
    ("record", "active"),
    [
        ({}, True),
        ({"employment_status": "Inactive"}, False),
        ({"termination_date": "2026-06-15"}, False),  # today
        ({"termination_date": "2026-06-16"}, True),  # tomorrow: still active
        ({"termination_date": "2026-06-16", "employment_status": "Inactive"}, True),
        ({"termination_date": "2025-01-31"}, False),
        ({"termination_date": dt.date(2025, 1, 31)}, False),
        ({"termination_date": dt.datetime(2026, 6, 15, 0, 0, tzinfo=dt.UTC)}, False),
        ({"hire_date": "2026-03-01", "termination_date": "2025-01-31"}, True),  # rehire
        ({"hire_date": "2020-03-01", "termination_date": "2025-01-31"}, False),
        ({"deleted": True}, False),
        ({"deleted": "true"}, False),
        ({"deleted": False, "employment_status": "Active"}, True),
    ],
)
def test_desired_active(record: dict[str, Any], active: bool) -> None:
    assert desired_active(record, TODAY, stream="s", key="E1") is active


def test_bad_date_names_the_field() -> None:
    with pytest.raises(RecordError) as err:
        desired_active({"hire_date": "June 1st"}, TODAY, stream="iam_users", key="E7")
    assert (err.value.record_key, err.value.field) == ("E7", "hire_date")


def test_display_name_rules() -> None:
    assert display_name({"given_name": "Robert", "family_name": "Smith"}) == "Robert Smith"
    assert display_name(
        {"given_name": "Robert", "family_name": "Smith", "preferred_name": "Bob"}
    ) == ("Bob Smith")
    assert display_name({"given_name": "Suharto", "family_name": "Suharto"}) == "Suharto"
    assert display_name({"display_name": "Dr. Who", "given_name": "x"}) == "Dr. Who"
    assert display_name({"given_name": "  ", "family_name": None}) is None


def test_missing_employee_id() -> None:
    with pytest.raises(RecordError) as err:
        build_desired("iam_users", {"user_name": "a@b"}, today=TODAY)
    assert err.value.field == "employee_id"


def test_build_desired_leaves_unmanaged_what_it_does_not_know() -> None:
    user = build_desired(
        "iam_users",
        {"employee_id": " 42 ", "user_name": None, "work_email": None},
        today=TODAY,
    )
    assert user.employee_id == "42"
    assert scim.USER_NAME not in user.values  # never clear a userName
    assert scim.WORK_EMAIL not in user.values  # contractor without email: emails untouched
    assert scim.ORGANIZATION not in user.values


def test_read_managed_is_tolerant() -> None:
    resource = {
        "id": "1",
        "userName": "zoë@example.com",
        "externalId": "E1",
        "active": "False",
        "name": {"givenName": "Zoë", "familyName": ""},
        "emails": [
            {"value": "home@example.com", "type": "home", "primary": "true"},
            {"value": "zoë@example.com", "type": "Work"},
        ],
        "meta": {"lastModified": "2026-01-01T00:00:00Z", "version": 'W/"9"'},
        scim.ENTERPRISE_USER.upper(): {"Department": "R&D", "manager": "mgr-id"},
    }
    values = scim.read_managed(resource)
    assert values[scim.ACTIVE] is False
    assert values[scim.FAMILY_NAME] is None
    assert values[scim.WORK_EMAIL] == "zoë@example.com"
    assert values[scim.DEPARTMENT] == "R&D"
    assert values[scim.MANAGER] == "mgr-id"
    assert scim.read_managed({"userName": "x"})[scim.ACTIVE] is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("True", True), ("false", False), (0, False), (1, True), (None, None), ("maybe", None)],
)
def test_parse_bool(raw: Any, expected: bool | None) -> None:
    assert scim.parse_bool(raw) is expected


def test_features_from_a_sloppy_service_provider_config() -> None:
    features = ServerFeatures.from_config(
        {
            "Patch": {"supported": "True"},
            "bulk": {"supported": "false", "maxOperations": "50"},
            "filter": {"supported": True, "maxResults": "200"},
        }
    )
    assert features.patch is True
    assert features.bulk is False
    assert features.bulk_max_operations == 50
    assert features.filter_max_results == 200


def test_error_status_as_string_or_int() -> None:
    assert SCIMError.from_body("POST", "u", 400, {"status": "409"}).status == 409
    assert SCIMError.from_body("POST", "u", 400, {"status": 409}).status == 409
    assert SCIMError.from_body("POST", "u", 502, "<html>bad gateway</html>").status == 502


def test_patch_body_is_strict() -> None:
    body = scim.patch_body({scim.ACTIVE: False, scim.TITLE: None, scim.MANAGER: "m1"})
    assert body["schemas"] == [scim.PATCH_OP]
    assert body["Operations"] == [
        {"op": "replace", "path": "active", "value": False},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": f"{scim.ENTERPRISE_USER}:manager", "value": {"value": "m1"}},
    ]


def test_put_body_keeps_unmanaged_attributes_and_drops_meta() -> None:
    existing = {
        "schemas": [scim.CORE_USER],
        "id": "1",
        "meta": {"version": "1"},
        "userName": "a",
        "phoneNumbers": [{"value": "+44 20 7946 0000"}],
        "name": {"givenName": "A", "middleName": "Q"},
    }
    body = scim.user_body({scim.GIVEN_NAME: "Å", scim.DEPARTMENT: "Ops"}, base=existing)
    assert "meta" not in body and "id" not in body
    assert body["schemas"] == [scim.CORE_USER, scim.ENTERPRISE_USER]
    assert body["name"] == {"givenName": "Å", "middleName": "Q"}
    assert body["phoneNumbers"] == existing["phoneNumbers"]
    assert existing["name"]["givenName"] == "A"  # not mutated


def test_filter_string_escapes_quotes() -> None:
    assert scim.filter_string('a"b\\c') == '"a\\"b\\\\c"'
    assert scim.filter_string("o'brien") == '"o\'brien"'


def test_field_of_reads_the_detail() -> None:
    err = SCIMError("POST", "u", 400, "invalidValue", "Field 'userName' is required")
    assert field_of(err, ["title"]) == "userName"
    err = SCIMError("POST", "u", 409, "uniqueness", "One or more values are in use")
    assert field_of(err, ["title"]) == "userName"
    err = SCIMError("PATCH", "u", 400, "invalidValue", "bad")
    assert field_of(err, [scim.DEPARTMENT]) == "department"


def test_guard_boundaries() -> None:
    def plan(deactivations: int, active: int) -> Plan:
        user = build_desired("s", {"employee_id": "x", "user_name": "x"}, today=TODAY)
        changes = [Change("deactivate", user, "id", {}, {}) for _ in range(deactivations)]
        return Plan(changes=changes, active_accounts=active)

    guard = Provisioner.__new__(Provisioner)
    guard.settings = Settings(max_deactivation_share=0.10)
    guard.audit = lambda *_: None
    guard.logger = __import__("logging").getLogger("test")
    guard.check_guard(plan(10, 100))  # exactly 10 %: allowed
    guard.check_guard(plan(1, 3))  # a single leaver in a tiny company: floor
    with pytest.raises(Exception, match="11 of 100"):
        guard.check_guard(plan(11, 100))
    guard.settings = Settings(max_deactivation_share=0.10, allow_mass_deactivation=True)
    guard.check_guard(plan(90, 100))
