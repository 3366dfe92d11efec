"""tap-moodle against the Moodle fake over HTTP: every account and enrolment read back once,
status as Moodle reports it, offset paging over a list that changes, errors, faults."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.taps.tap_moodle.moodle_seed import PEOPLE, fake_state, seed
from tests.taps.tapkit import Messages, records, sync

from sandbox.moodle import Moodle
from sandbox.server import Sandbox
from tap_moodle.tap import TapMoodle


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=5, vendors=("moodle",)) as sandbox:
        seed(sandbox)
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[Moodle]:
    app = sb.apps["moodle"]
    assert isinstance(app, Moodle)
    yield app
    sb.faults.reset()
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sb.url("moodle"),
        "token": sb.credentials["moodle"]["token"],
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run_tap(config: dict[str, Any]) -> Messages:
    return sync(TapMoodle(config=config, parse_env_config=False))


def expected_enrolments(sb: Sandbox) -> dict[tuple[int, int], str]:
    now = int(time.time())
    out = {}
    for e in fake_state(sb)["enrolments"]:
        active = (
            e["status"] == 0 and e["timestart"] <= now and (e["timeend"] == 0 or e["timeend"] > now)
        )
        out[(e["userid"], e["courseid"])] = "active" if active else "suspended"
    return out


def test_every_account_is_read_back_with_its_key_and_flags(sb: Sandbox, app: Moodle) -> None:
    users = {u["username"]: u for u in records(run_tap(config_for(sb)), "users")}
    assert set(users) == {p[0] for p in PEOPLE} | {"admin", "handmade"}
    assert {u["idnumber"] for u in users.values() if u.get("idnumber")} == {p[1] for p in PEOPLE}
    assert "idnumber" not in users["handmade"]  # the hand-made account has no HRIS key
    assert users[PEOPLE[2][0]]["suspended"] is True
    assert users[PEOPLE[0][0]]["suspended"] is False
    assert (users[PEOPLE[0][0]]["firstname"], users[PEOPLE[0][0]]["lastname"]) == (
        "Zoë",
        "O'Brien-Łukasiewicz",
    )
    assert users[PEOPLE[1][0]]["department"] == "Engineering"
    assert users[PEOPLE[1][0]]["auth"] == "oauth2"


def test_enrolments_are_one_record_per_user_and_course_across_pages(
    sb: Sandbox, app: Moodle
) -> None:
    msgs = run_tap(config_for(sb, page_size=2))
    got = records(msgs, "enrolments")
    keys = [(e["userid"], e["courseid"]) for e in got]
    assert len(keys) == len(set(keys))
    assert {k: e["status"] for k, e in zip(keys, got, strict=True)} == expected_enrolments(sb)
    statuses = {e["status"] for e in got}
    assert statuses == {"active", "suspended"}
    by_key = {(e["userid"], e["courseid"]): e for e in got}
    ids = {u["username"]: u["id"] for u in records(msgs, "users")}
    # suspended, ended and not yet started all read back as "suspended" (not active now)
    for person, course in ((PEOPLE[3], 3), (PEOPLE[4], 2), (PEOPLE[5], 2)):
        assert by_key[(ids[person[0]], course)]["status"] == "suspended"
    teacher = by_key[(ids[PEOPLE[0][0]], 10)]
    assert teacher["course_shortname"] == "MGR-ESSENTIALS"
    assert teacher["roles"] == [
        {"roleid": 4, "shortname": "teacher", "name": "Non-editing teacher"}
    ]
    assert by_key[(ids["handmade"], 2)]["course_shortname"] == "COMP-CODE"
    assert all(e["timestart"] is None and e["timeend"] is None for e in got)
    # users come before the enrolments that refer to them
    order = [m["stream"] for m in msgs if m["type"] == "RECORD"]
    assert order.index("enrolments") > max(i for i, s in enumerate(order) if s == "users")


def test_an_unenrolment_between_pages_loses_and_doubles_nothing(
    sb: Sandbox, app: Moodle, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = expected_enrolments(sb)
    lowest = sorted(u for u, c in before if c == 2)[:2]
    original = app.functions["core_enrol_get_enrolled_users"]
    calls: list[dict[str, Any]] = []
    removed: dict[int, dict[str, Any]] = {}

    def listing(args: dict[str, Any]) -> Any:
        out = original(args)
        options = {o["name"]: o["value"] for o in args.get("options") or []}
        if args.get("courseid") == "2" and "onlysuspended" not in options:
            calls.append(options)
            if len(calls) == 1:  # someone unenrols the first two while the tap pages on
                for userid in lowest:
                    removed[userid] = app.enrolments.pop((2, userid))
        return out

    monkeypatch.setitem(app.functions, "core_enrol_get_enrolled_users", listing)
    try:
        got = records(run_tap(config_for(sb, page_size=3)), "enrolments")
    finally:
        for userid, row in removed.items():
            app.enrolments[(2, userid)] = row
    keys = [(e["userid"], e["courseid"]) for e in got]
    assert len(keys) == len(set(keys))
    # everything that was enrolled for the whole run is there (the two unenrolled were read
    # on the first page, before they went); the rest moved back two places meanwhile
    assert set(keys) == set(before)
    assert len(calls) > 3  # the list was paged, and read back once after the shift


def test_a_bad_token_names_the_function_and_moodles_error(sb: Sandbox, app: Moodle) -> None:
    with pytest.raises(Exception, match=r"Moodle refused core_user_get_users: .*invalidtoken"):
        run_tap(config_for(sb, token="wrong"))


def test_429_and_5xx_are_retried_and_nothing_is_lost(
    sb: Sandbox, app: Moodle, caplog: pytest.LogCaptureFixture
) -> None:
    expected = expected_enrolments(sb)
    sb.faults.retry_after = 0
    sb.faults.script = ["429", "503", "ok", "500", "ok", "drop", "ok", "502"]
    with caplog.at_level(logging.INFO):
        got = records(run_tap(config_for(sb, page_size=4)), "enrolments")
    assert {(e["userid"], e["courseid"]) for e in got} == set(expected)
    assert len(got) == len(expected)
    assert sb.faults.script == []
    assert sb.credentials["moodle"]["token"] not in caplog.text  # the token stays in the body
