"""The Moodle fake over real HTTP: REST protocol, PHP-array arguments, 200-with-exception errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.moodle import php_args
from sandbox.server import DEFAULT_CREDENTIALS, Sandbox

TOKEN = DEFAULT_CREDENTIALS["moodle"]["token"]


@pytest.fixture
def moodle() -> Iterator[Sandbox]:
    with Sandbox(employees=5, vendors=("moodle",)) as sb:
        yield sb


def call(sb: Sandbox, function: str, token: str = TOKEN, **form: Any) -> Any:
    response = requests.post(
        f"{sb.url('moodle')}/webservice/rest/server.php",
        data={"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **form},
        timeout=10,
    )
    assert response.status_code == 200  # Moodle answers errors with 200 too
    return response.json()


def user_form(i: int, username: str, email: str, **extra: str) -> dict[str, str]:
    fields = {
        "username": username,
        "firstname": "Zoë",
        "lastname": "O'Brien-Łukasiewicz",
        "email": email,
        "createpassword": "1",
        **extra,
    }
    return {f"users[{i}][{k}]": v for k, v in fields.items()}


def test_php_array_arguments_decode_into_lists_and_dicts() -> None:
    args = php_args(
        [
            ("users[1][username]", "b"),
            ("users[0][username]", "a"),
            ("values[0]", "7"),
            ("field", "idnumber"),
        ]
    )
    assert args == {
        "users": [{"username": "a"}, {"username": "b"}],
        "values": ["7"],
        "field": "idnumber",
    }


def test_a_bad_token_and_an_unknown_function_are_exceptions_with_http_200(moodle: Sandbox) -> None:
    assert call(moodle, "core_webservice_get_site_info", token="nope") == {
        "exception": "moodle_exception",
        "errorcode": "invalidtoken",
        "message": "Invalid token - token not found",
    }
    assert call(moodle, "core_no_such_function")["errorcode"] == "invalidrecord"
    # the token may also travel in the query string, as Moodle's docs show
    response = requests.get(
        f"{moodle.url('moodle')}/webservice/rest/server.php",
        params={
            "wstoken": TOKEN,
            "wsfunction": "core_webservice_get_site_info",
            "moodlewsrestformat": "json",
        },
        timeout=10,
    )
    assert "enrol_manual_enrol_users" in {f["name"] for f in response.json()["functions"]}


def test_create_users_and_the_duplicate_errors_moodle_reports(moodle: Sandbox) -> None:
    created = call(
        moodle,
        "core_user_create_users",
        **user_form(0, "zoe@acme.example", "zoe@acme.example", idnumber="1"),
    )
    assert created == [{"id": 3, "username": "zoe@acme.example"}]
    again = call(
        moodle, "core_user_create_users", **user_form(0, "zoe@acme.example", "other@acme.example")
    )
    assert again == {
        "exception": "invalid_parameter_exception",
        "errorcode": "invalidparameter",
        "message": "Invalid parameter value detected",
        "debuginfo": "Username already exists: zoe@acme.example",
    }
    same_mail = call(
        moodle, "core_user_create_users", **user_form(0, "zoe2@acme.example", "ZOE@acme.example")
    )
    assert same_mail["debuginfo"] == "Email address already exists: ZOE@acme.example"
    # one transaction: the bad second user fails the call and the first is not kept either
    both = call(
        moodle,
        "core_user_create_users",
        **user_form(0, "new@acme.example", "new@acme.example"),
        **user_form(1, "Upper@acme.example", "upper@acme.example"),
    )
    assert both["errorcode"] == "invalidparameter" and "username" in both["debuginfo"]
    assert (
        call(
            moodle,
            "core_user_get_users_by_field",
            field="username",
            **{"values[0]": "new@acme.example"},
        )
        == []
    )
    found = call(moodle, "core_user_get_users_by_field", field="idnumber", **{"values[0]": "1"})
    assert [(u["id"], u["firstname"], u["lastname"], u["suspended"]) for u in found] == [
        (3, "Zoë", "O'Brien-Łukasiewicz", False)
    ]


def test_update_users_suspends_and_returns_null(moodle: Sandbox) -> None:
    call(moodle, "core_user_create_users", **user_form(0, "a@acme.example", "a@acme.example"))
    assert (
        call(moodle, "core_user_update_users", **{"users[0][id]": "3", "users[0][suspended]": "1"})
        is None
    )
    user = call(moodle, "core_user_get_users_by_field", field="id", **{"values[0]": "3"})[0]
    assert user["suspended"] is True
    bad = call(moodle, "core_user_update_users", **{"users[0][id]": "999"})
    assert bad["errorcode"] == "invalidparameter"


def test_enrolment_is_one_row_per_user_and_course(moodle: Sandbox) -> None:
    call(moodle, "core_user_create_users", **user_form(0, "a@acme.example", "a@acme.example"))
    enrol = {
        "enrolments[0][roleid]": "5",
        "enrolments[0][userid]": "3",
        "enrolments[0][courseid]": "2",
    }
    assert call(moodle, "enrol_manual_enrol_users", **enrol) is None
    assert call(moodle, "enrol_manual_enrol_users", **enrol) is None  # updates, never doubles
    assert [c["id"] for c in call(moodle, "core_enrol_get_users_courses", userid="3")] == [2]
    # a suspended enrolment is not "active": get_users_courses leaves it out, the course's
    # participants list keeps it
    call(moodle, "enrol_manual_enrol_users", **enrol, **{"enrolments[0][suspend]": "1"})
    assert call(moodle, "core_enrol_get_users_courses", userid="3") == []
    assert [u["id"] for u in call(moodle, "core_enrol_get_enrolled_users", courseid="2")] == [3]
    active_only = {"options[0][name]": "onlyactive", "options[0][value]": "1"}
    assert call(moodle, "core_enrol_get_enrolled_users", courseid="2", **active_only) == []
    state = requests.get(f"{moodle.url('moodle')}/_sandbox/moodle/state", timeout=10).json()
    assert [(e["courseid"], e["userid"], e["status"]) for e in state["enrolments"]] == [(2, 3, 1)]
    assert (
        call(
            moodle,
            "enrol_manual_unenrol_users",
            **{"enrolments[0][userid]": "3", "enrolments[0][courseid]": "2"},
        )
        is None
    )
    assert call(moodle, "core_enrol_get_enrolled_users", courseid="2") == []
    unknown_course = call(
        moodle, "enrol_manual_enrol_users", **{**enrol, "enrolments[0][courseid]": "999"}
    )
    assert unknown_course["errorcode"] == "invalidparameter"


def test_courses_are_seeded(moodle: Sandbox) -> None:
    courses = call(
        moodle,
        "core_course_get_courses",
        **{"options[ids][0]": "2", "options[ids][1]": "5", "options[ids][2]": "999"},
    )
    assert [(c["id"], c["shortname"]) for c in courses] == [(2, "COMP-CODE"), (5, "CA-SHP-SUP")]


def test_enrolled_users_page_by_id_and_onlysuspended_means_not_active(moodle: Sandbox) -> None:
    form: dict[str, str] = {}
    for i in range(5):
        form.update(user_form(i, f"p{i}@acme.example", f"p{i}@acme.example"))
    ids = [u["id"] for u in call(moodle, "core_user_create_users", **form)]
    for n, uid in enumerate(ids):
        extra = {"enrolments[0][timeend]": "1000"} if n == 1 else {}  # ended long ago
        if n == 3:
            extra = {"enrolments[0][suspend]": "1"}
        call(
            moodle,
            "enrol_manual_enrol_users",
            **{"enrolments[0][roleid]": "5", "enrolments[0][userid]": str(uid)},
            **{"enrolments[0][courseid]": "2"},
            **extra,
        )

    def page(start: int, size: int, *more: tuple[str, str]) -> list[int]:
        options = [("limitfrom", str(start)), ("limitnumber", str(size)), *more]
        opts = {}
        for i, (name, value) in enumerate(options):
            opts[f"options[{i}][name]"], opts[f"options[{i}][value]"] = name, value
        return [
            u["id"] for u in call(moodle, "core_enrol_get_enrolled_users", courseid="2", **opts)
        ]

    assert page(0, 2) + page(2, 2) + page(4, 2) == sorted(ids)
    assert page(0, 0) == sorted(ids)  # limitnumber 0: no limit
    assert page(0, 10, ("onlysuspended", "1")) == [ids[1], ids[3]]  # ended, suspended
    assert page(0, 10, ("onlyactive", "1")) == [ids[0], ids[2], ids[4]]
    both = call(
        moodle,
        "core_enrol_get_enrolled_users",
        courseid="2",
        **{"options[0][name]": "onlyactive", "options[0][value]": "1"},
        **{"options[1][name]": "onlysuspended", "options[1][value]": "1"},
    )
    assert both["errorcode"] == "codingerror"
    roles = call(moodle, "core_enrol_get_enrolled_users", courseid="2")[0]["roles"]
    assert roles == [{"roleid": 5, "name": "Student", "shortname": "student", "sortorder": 0}]
