"""A small Moodle site for tap-moodle's tests, made through the fake's own web services (as
target-moodle, or an administrator, would make it)."""

from __future__ import annotations

import time
from typing import Any

import requests

from sandbox.server import Sandbox

#: (username, idnumber, firstname, lastname) of the employees' accounts
PEOPLE = [
    (f"w{i}@acme.example", f"E10{i}", first, last)
    for i, (first, last) in enumerate(
        [
            ("Zoë", "O'Brien-Łukasiewicz"),
            ("秀英", "王"),
            ("Sukarno", "Sukarno"),
            ("Giuseppe", "D\u2019Alessandro"),
            ("Renée", "Zellweger"),
            ("Ana", "Núñez"),
            ("Lars", "Øvergård"),
            ("Amara", "Okafor"),
            ("Jean-Luc", "Picard"),
        ]
    )
]
COURSES = (2, 3)


def ws(sb: Sandbox, function: str, **form: Any) -> Any:
    response = requests.post(
        f"{sb.url('moodle')}/webservice/rest/server.php",
        data={
            "wstoken": sb.credentials["moodle"]["token"],
            "wsfunction": function,
            "moodlewsrestformat": "json",
            **{k: str(v) for k, v in form.items()},
        },
        timeout=10,
    )
    response.raise_for_status()
    body = response.json()
    assert not (isinstance(body, dict) and "exception" in body), body
    return body


def enrol(sb: Sandbox, userid: int, courseid: int, roleid: int = 5, **extra: int) -> None:
    form = {
        "enrolments[0][roleid]": roleid,
        "enrolments[0][userid]": userid,
        "enrolments[0][courseid]": courseid,
    }
    form.update({f"enrolments[0][{k}]": v for k, v in extra.items()})
    ws(sb, "enrol_manual_enrol_users", **form)


def seed(sb: Sandbox) -> dict[str, int]:
    """Accounts for PEOPLE (one suspended) and one made by hand (no idnumber); every employee
    in COURSES, two teachers in course 10, and enrolments that are not active: one suspended,
    one ended, one not started yet. Returns username -> Moodle id."""
    form: dict[str, Any] = {}
    for i, (username, idnumber, first, last) in enumerate(PEOPLE):
        form.update(
            {
                f"users[{i}][username]": username,
                f"users[{i}][email]": username,
                f"users[{i}][firstname]": first,
                f"users[{i}][lastname]": last,
                f"users[{i}][idnumber]": idnumber,
                f"users[{i}][department]": "Engineering" if i % 2 else "Sales",
                f"users[{i}][auth]": "oauth2",
            }
        )
    n = len(PEOPLE)
    form.update(
        {
            f"users[{n}][username]": "handmade",
            f"users[{n}][email]": "handmade@acme.example",
            f"users[{n}][firstname]": "Hand",
            f"users[{n}][lastname]": "Made",
            f"users[{n}][createpassword]": "1",
        }
    )
    ids = {u["username"]: int(u["id"]) for u in ws(sb, "core_user_create_users", **form)}
    ws(
        sb,
        "core_user_update_users",
        **{"users[0][id]": ids[PEOPLE[2][0]], "users[0][suspended]": 1},
    )
    now = int(time.time())
    for username, *_ in PEOPLE:
        for course in COURSES:
            enrol(sb, ids[username], course)
    enrol(sb, ids[PEOPLE[0][0]], 10, roleid=4)
    enrol(sb, ids[PEOPLE[1][0]], 10, roleid=3)
    enrol(sb, ids["handmade"], 2)
    enrol(sb, ids[PEOPLE[3][0]], 3, suspend=1)
    enrol(sb, ids[PEOPLE[4][0]], 2, timestart=now - 86400 * 30, timeend=now - 86400)
    enrol(sb, ids[PEOPLE[5][0]], 2, timestart=now + 86400 * 30)
    return ids


def fake_state(sb: Sandbox) -> dict[str, Any]:
    response = requests.get(f"{sb.url('moodle')}/_sandbox/moodle/state", timeout=10)
    response.raise_for_status()
    return dict(response.json())
