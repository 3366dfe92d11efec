# ruff: noqa: RUF001  (typographic apostrophes in names are the point)
"""target-moodle over real HTTP against the Moodle fake: users, rules, faults, dead letters."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError
from sandbox.moodle import Moodle
from sandbox.server import DEFAULT_CREDENTIALS, Sandbox
from target_moodle.client import MoodleError
from target_moodle.rules import load_rules, parse_rules
from target_moodle.sinks import MoodleUnavailable
from target_moodle.target import TargetMoodle

TODAY = dt.datetime.now(dt.UTC).date()
RULES = """
version: 1
defaults: {due_days: 30}
rules:
  - {name: everyone, courses: [2]}
  - name: ca-employees
    when: {country: US, state: CA}
    unless: {is_manager: true}
    courses: [4]
    due_days: 180
  - {name: ca-supervisors, when: {country: US, state: CA, is_manager: true}, courses: [5],
     due_days: 180}
  - {name: germany, when: {country: [DE, AT]}, courses: [7, 8]}
  - {name: managers, when: {is_manager: true}, courses: [10], due_days: 90}
  - {name: engineers, when: {role: "*engineer*"}, courses: [9]}
"""
SCHEMA = {
    "type": "SCHEMA",
    "stream": "lms_users",
    "key_properties": ["worker_id"],
    "schema": {
        "type": "object",
        "properties": {
            name: {"type": ["string", "null"]}
            for name in (
                "worker_id",
                "first_name",
                "last_name",
                "email",
                "department",
                "role",
                "location",
                "country",
                "state",
                "manager_id",
                "employment_status",
            )
        }
        | {
            "is_manager": {"type": ["boolean", "null"]},
            "hire_date": {"type": ["string", "null"], "format": "date"},
            "termination_date": {"type": ["string", "null"], "format": "date"},
            "positions": {"type": ["array", "null"], "items": {"type": "object"}},
        },
    },
}


def worker(wid: str, **fields: Any) -> dict[str, Any]:
    base = {
        "worker_id": wid,
        "first_name": "Ana",
        "last_name": f"Person{wid}",
        "email": f"ana.person{wid}@acme.example",
        "department": "Finance",
        "role": "Accountant",
        "location": "San Francisco",
        "country": "US",
        "state": "CA",
        "is_manager": False,
        "hire_date": (TODAY - dt.timedelta(days=400)).isoformat(),
        "employment_status": "active",
    }
    return base | fields


class Env:
    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        self.sb, self.tmp = sb, tmp
        self.rules = tmp / "rules.yml"
        self.rules.write_text(RULES)
        self.audit = tmp / "audit.jsonl"
        self.dlq = tmp / "dlq.sqlite"

    @property
    def app(self) -> Moodle:
        app = self.sb.apps["moodle"]
        assert isinstance(app, Moodle)
        return app

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "base_url": self.sb.url("moodle"),
            "token": DEFAULT_CREDENTIALS["moodle"]["token"],
            "rules_path": str(self.rules),
            "state_path": str(self.tmp / "state.sqlite"),
            "audit_log_path": str(self.audit),
            "backoff_base_seconds": 0.01,
            "batch_size": 3,
            **extra,
        }

    def run(self, *records: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
        """Run the target on these records; return the audit events it wrote."""
        mark = len(AuditLog.read(self.audit))
        lines = [json.dumps(SCHEMA)] + [
            json.dumps({"type": "RECORD", "stream": "lms_users", "record": r}) for r in records
        ]
        TargetMoodle(config=self.config(**extra)).listen(io.StringIO("\n".join(lines) + "\n"))
        return AuditLog.read(self.audit)[mark:]

    def user(self, wid: str) -> dict[str, Any]:
        users = [u for u in self.app.users.values() if u["idnumber"] == wid]
        assert len(users) == 1, users
        return users[0]

    def courses(self, wid: str, status: int | None = 0) -> dict[int, dict[str, Any]]:
        uid = self.user(wid)["id"]
        return {
            c: row
            for (c, u), row in self.app.enrolments.items()
            if u == uid and (status is None or row["status"] == status)
        }

    def enrol_writes(self) -> Counter[tuple[int, int, int]]:
        return Counter(
            (item["courseid"], item["userid"], item["status"])
            for fn, item in self.app.writes
            if fn == "enrol_manual_enrol_users"
        )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("HRSYNC_DLQ_PATH", str(tmp_path / "dlq.sqlite"))
    monkeypatch.setenv("HRSYNC_INTEGRATION", "hris-to-lms")
    with Sandbox(employees=5, vendors=("moodle",)) as sb:
        sb.faults.retry_after = 0
        yield Env(sb, tmp_path)


def writes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["outcome"] not in ("unchanged", "skipped")]


def end_of(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=dt.UTC).timestamp())


def test_joiners_get_accounts_and_their_courses_and_a_rerun_writes_nothing(env: Env) -> None:
    new_hire = (TODAY + dt.timedelta(days=10)).isoformat()
    people = [
        worker(
            "1", first_name="Zoë", last_name="O'Brien-Łukasiewicz", email="Zoe.OBrien1@acme.example"
        ),
        worker(
            "2",
            first_name="D’Arcy",
            last_name="D'Angelo",
            hire_date=new_hire,
            location="Berlin",
            country="DE",
            state="BE",
            role="Software Engineer",
        ),
        worker("3", first_name="秀英", last_name="王", state="NY"),
        worker("4", first_name="Sukarno", last_name="Sukarno", is_manager=True),
    ]
    events = env.run(*people)
    assert Counter(e["outcome"] for e in events)["created"] == 4
    zoe = env.user("1")
    assert (zoe["firstname"], zoe["lastname"]) == ("Zoë", "O'Brien-Łukasiewicz")
    assert (zoe["username"], zoe["email"]) == (
        "zoe.obrien1@acme.example",
        "Zoe.OBrien1@acme.example",
    )
    assert (zoe["department"], zoe["city"], zoe["country"]) == ("Finance", "San Francisco", "US")
    assert env.user("2")["firstname"] == "D’Arcy" and env.user("3")["lastname"] == "王"
    # everyone: course 2; California employees 4, supervisors 5 and 10; Germany 7 and 8
    assert set(env.courses("1")) == {2, 4}
    assert set(env.courses("2")) == {2, 7, 8, 9}
    assert set(env.courses("3")) == {2}
    assert set(env.courses("4")) == {2, 5, 10}
    # due dates: relative to the hire date, or to today for people hired long ago
    assert env.courses("1")[2]["timeend"] == end_of(TODAY + dt.timedelta(days=30))
    assert env.courses("1")[4]["timeend"] == end_of(TODAY + dt.timedelta(days=180))
    hire = dt.date.fromisoformat(new_hire)
    d_arcy = env.courses("2", status=None)[2]
    assert d_arcy["timeend"] == end_of(hire + dt.timedelta(days=30))
    assert d_arcy["timestart"] == int(
        dt.datetime(hire.year, hire.month, hire.day, tzinfo=dt.UTC).timestamp()
    )
    # audit: field names, never values
    assert all("Zoë" not in json.dumps(e) for e in events)
    before = len(env.app.writes)
    again = env.run(*people)
    assert writes(again) == [] and len(env.app.writes) == before


def test_transfer_from_california_to_berlin_swaps_jurisdiction_courses(env: Env) -> None:
    env.run(worker("1"))
    code_of_conduct = dict(env.courses("1")[2])
    env.run(worker("1", location="Berlin", country="DE", state="BE"))
    assert set(env.courses("1")) == {2, 7, 8}
    assert env.courses("1", status=1).keys() == {4}  # suspended, not deleted: history kept
    assert env.courses("1")[2] == code_of_conduct  # untouched
    # and back again: the suspended enrolment is reactivated, never doubled
    env.run(worker("1"))
    assert set(env.courses("1")) == {2, 4}
    assert env.courses("1", status=1).keys() == {7, 8}
    assert len([k for k in env.app.enrolments if k[1] == env.user("1")["id"]]) == 4


def test_a_second_position_brings_its_roles_courses(env: Env) -> None:
    # an accountant who is also a part-time software engineer: both roles' courses
    second = {"role": "Software Engineer", "department": "Engineering", "location": None}
    env.run(worker("1", positions=[second]), worker("2"))
    assert set(env.courses("1")) == {2, 4, 9}
    assert set(env.courses("2")) == {2, 4}  # one position: no engineering course
    # the second position ends: its course is no longer required (suspended, history kept)
    env.run(worker("1", positions=[]))
    assert set(env.courses("1")) == {2, 4} and 9 in env.courses("1", status=1)
    # positions that are not a list of objects: that worker's dead letter, the rest goes on
    env.run(worker("3", positions="Trainer"), worker("4"))
    [letter] = DeadLetterStore(env.dlq).list()
    assert letter.record_key == "3" and "field positions" in letter.error
    assert set(env.courses("4")) == {2, 4}


def test_promotion_to_manager_when_someone_starts_reporting(env: Env) -> None:
    env.run(worker("1"), worker("2", state="NY"))
    assert set(env.courses("1")) == {2, 4}
    # only the report's record changes: the manager is re-evaluated all the same
    events = env.run(worker("2", state="NY", manager_id="1"))
    assert set(env.courses("1")) == {2, 5, 10}
    assert env.courses("1", status=1).keys() == {4}
    assert {e["detail"].split(" (")[0] for e in events if e["outcome"] == "enrolled"} == {
        "course 5",
        "course 10",
    }
    # the report leaves: the manager is no longer one
    gone = (TODAY - dt.timedelta(days=1)).isoformat()
    env.run(
        worker("2", state="NY", manager_id="1", termination_date=gone, employment_status="inactive")
    )
    assert set(env.courses("1")) == {2, 4}


def test_termination_suspends_and_rehire_reactivates_without_new_enrolments(env: Env) -> None:
    env.run(worker("1"))
    enrolled = env.enrol_writes()
    left = (TODAY - dt.timedelta(days=3)).isoformat()
    events = env.run(worker("1", termination_date=left, employment_status="inactive"))
    assert [e["outcome"] for e in writes(events)] == ["suspended"]
    assert env.user("1")["suspended"] == 1
    assert set(env.courses("1")) == {2, 4}  # the leaver's courses and history stay
    # a termination in the future keeps the account active until that day
    env.run(worker("5", termination_date=(TODAY + dt.timedelta(days=5)).isoformat()))
    assert env.user("5")["suspended"] == 0
    rehired = (TODAY - dt.timedelta(days=1)).isoformat()
    events = env.run(worker("1", hire_date=rehired, termination_date=left))
    assert [e["outcome"] for e in writes(events)] == ["reactivated"]
    assert env.user("1")["suspended"] == 0
    uid = env.user("1")["id"]
    assert {k: n for k, n in env.enrol_writes().items() if k[1] == uid} == enrolled  # none again
    assert all(n == 1 for n in env.enrol_writes().values())
    # a leaver who never had an account gets none
    env.run(worker("9", termination_date=left, employment_status="inactive"))
    assert not [u for u in env.app.users.values() if u["idnumber"] == "9"]


def test_a_rule_change_reevaluates_everyone_without_enrolling_twice(env: Env) -> None:
    env.run(worker("1"), worker("2", country="DE", state="BE"), worker("3", state="NY"))
    env.rules.write_text(
        RULES.replace("courses: [2]}", "courses: [2, 3]}").replace(
            "  - {name: germany, when: {country: [DE, AT]}, courses: [7, 8]}\n", ""
        )
    )
    events = env.run()  # an incremental run with no records at all
    for wid in ("1", "2", "3"):
        assert 3 in env.courses(wid)
    assert env.courses("2", status=1).keys() == {7, 8}
    assert Counter(e["outcome"] for e in events) == {"enrolled": 3, "enrolment-suspended": 2}
    assert all(n == 1 for n in env.enrol_writes().values())
    assert writes(env.run()) == []  # the same rules again: nothing to do


def test_moodle_exceptions_with_http_200_become_specific_dead_letters(env: Env) -> None:
    # someone else's account already has worker 2's e-mail address
    env.app.create_users(
        {
            "users": [
                {
                    "username": "taken@acme.example",
                    "firstname": "X",
                    "lastname": "Y",
                    "email": "ana.person2@acme.example",
                    "idnumber": "77",
                    "createpassword": "1",
                }
            ]
        }
    )
    env.run(worker("1"), worker("2"), worker("3", email=None), worker("4"))
    assert {env.user("1")["id"], env.user("4")["id"]}
    letters = {dl.record_key: dl for dl in DeadLetterStore(env.dlq).list()}
    assert set(letters) == {"2", "3"}
    assert "field email" in letters["2"].error and "worker 77" in letters["2"].error
    assert letters["3"].error_class == "missing_email"
    # the e-mail is fixed in the HRIS: the letter resolves itself on the next delivery
    env.run(worker("3"))
    assert {dl.record_key for dl in DeadLetterStore(env.dlq).list()} == {"2"}


def test_a_future_hire_without_a_work_email_waits_without_a_dead_letter(env: Env) -> None:
    """Two weeks before the start IT has not made the address yet: nothing to fix, no letter,
    no alert; the record returns with the address and the user is made then. Someone who has
    started without one is a dead letter (worker 3 in the test above)."""
    start = (TODAY + dt.timedelta(days=14)).isoformat()
    events = env.run(worker("9", email=None, hire_date=start))
    assert DeadLetterStore(env.dlq).list() == []
    (event,) = [e for e in events if e["record_key"] == "9"]
    assert event["outcome"] == "skipped" and f"starts {start}" in event["detail"]
    assert not [u for u in env.app.users.values() if u["idnumber"] == "9"]
    env.run(worker("9", hire_date=start))
    assert env.user("9")["email"] == "ana.person9@acme.example"
    assert DeadLetterStore(env.dlq).list() == []


def test_a_refused_enrolment_names_the_course_and_keeps_the_rest(env: Env) -> None:
    env.run(worker("1"))
    env.app.courses[4]["manual"] = False  # someone disabled manual enrolment in course 4
    env.run(worker("2"), worker("3", state="NY"))
    letters = DeadLetterStore(env.dlq).list()
    assert [dl.record_key for dl in letters] == ["2"]
    assert "course 4 (rule ca-employees)" in letters[0].error
    assert letters[0].error_class == "wsnoinstance"
    assert set(env.courses("3")) == {2} and set(env.courses("2")) == {2}


def test_a_hand_made_account_is_adopted_not_duplicated(env: Env) -> None:
    env.app.create_users(
        {
            "users": [
                {
                    "username": "ana.person1@acme.example",
                    "firstname": "Ana",
                    "lastname": "Old",
                    "email": "ana.person1@acme.example",
                    "createpassword": "1",
                }
            ]
        }
    )
    env.run(worker("1"))
    assert env.user("1")["lastname"] == "Person1"
    assert len(env.app.users) == 3  # guest, admin and Ana


def test_429_5xx_dropped_and_truncated_answers_are_retried(env: Env) -> None:
    env.sb.faults.script = ["429", "503", "drop", "ok", "malformed", "500", "429"]
    env.run(*(worker(str(i)) for i in range(1, 8)))
    assert sum(1 for u in env.app.users.values() if u["idnumber"]) == 7
    assert all(n == 1 for n in env.enrol_writes().values())
    assert sum(env.sb.faults.injected.values()) >= 6


def test_bad_token_and_unknown_courses_stop_the_run_with_a_clear_error(env: Env) -> None:
    with pytest.raises(MoodleError, match="invalidtoken"):
        env.run(worker("1"), token="wrong")
    env.rules.write_text(RULES.replace("courses: [2]}", "courses: [2, 99]}"))
    with pytest.raises(ConfigError, match=r"no course 99 \(rule everyone\)"):
        env.run(worker("1"))


def test_rules_files_are_validated_with_their_location(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rules\[1\] \(bad\)\.when.*is_manager"):
        parse_rules(
            {
                "version": 1,
                "rules": [
                    {"name": "ok", "courses": [2]},
                    {"name": "bad", "when": {"is_manager": "yes"}, "courses": [3]},
                ],
            },
            source="rules.yml",
        )
    broken = tmp_path / "r.yml"
    broken.write_text("version: 1\nrules: [\n")
    with pytest.raises(ConfigError, match=r"r\.yml"):
        load_rules(broken)
    shipped = load_rules(None)  # the example in the package is valid
    assert {2, 5, 10} <= set(shipped.course_ids)
    # comments and formatting do not change the fingerprint; a rule does
    same = parse_rules({"version": 1, "rules": [{"name": "ok", "courses": [2]}]}, source="a")
    again = parse_rules({"rules": [{"courses": [2], "name": "ok"}], "version": 1}, source="b")
    other = parse_rules({"version": 1, "rules": [{"name": "ok", "courses": [3]}]}, source="c")
    assert same.fingerprint == again.fingerprint != other.fingerprint


def test_state_can_be_read_back_through_the_admin_route(env: Env) -> None:
    env.run(worker("1"))
    state = requests.get(f"{env.sb.url('moodle')}/_sandbox/moodle/state", timeout=10).json()
    assert [u["idnumber"] for u in state["users"]] == ["1"]


def test_a_state_file_older_than_the_moodle_site_does_not_hide_enrolments(env: Env) -> None:
    env.run(worker("1"))
    with Sandbox(employees=5, vendors=("moodle",)) as fresh:  # Moodle rebuilt, state kept
        env.sb = fresh
        env.run(worker("1"))
        assert set(env.courses("1")) == {2, 4}


def test_dry_run_writes_nothing_and_audits_the_plan(env: Env) -> None:
    events = env.run(worker("1"), dry_run=True)
    assert env.app.writes == []
    assert Counter(e["outcome"] for e in events) == {"planned-created": 1}
    env.run(worker("1"))
    events = env.run(worker("1", country="DE", state="BE"), dry_run=True)
    assert [e["outcome"] for e in events] == [
        "planned-updated",
        "planned-enrolled",
        "planned-enrolled",
        "planned-enrolment-suspended",
    ]
    assert set(env.courses("1")) == {2, 4}


def test_unenrol_policy_never_removes_completed_training(env: Env) -> None:
    env.run(worker("1"), worker("2"))
    done = {"userid": env.user("1")["id"], "courseid": 4}
    requests.post(f"{env.sb.url('moodle')}/_sandbox/moodle/completions", json=done, timeout=10)
    moved = [worker(w, location="Berlin", country="DE", state="BE") for w in ("1", "2")]
    events = env.run(*moved, when_no_longer_required="unenrol")
    assert 4 in env.courses("1", status=1)  # completed: suspended, history kept
    assert 4 not in env.courses("2", status=None)  # never completed: unenrolled
    assert Counter(e["outcome"] for e in events)["unenrolled"] == 1


def test_keep_policy_leaves_courses_no_longer_required_alone(env: Env) -> None:
    env.run(worker("1"))
    env.run(worker("1", state="NY"), when_no_longer_required="keep")
    assert set(env.courses("1")) == {2, 4}
    sent = len(env.app.writes)
    env.run(worker("1"), when_no_longer_required="keep")  # back in California: nothing to send
    assert len(env.app.writes) == sent


def test_moodle_down_after_every_retry_stops_the_run_and_keeps_the_batch(env: Env) -> None:
    # site info, courses, idnumber/username/e-mail lookups pass; the create fails every retry
    env.sb.faults.script = ["ok"] * 5 + ["503", "503"]
    with pytest.raises(MoodleUnavailable, match="after every retry"):
        env.run(worker("1"), worker("2"), max_retries=2)
    letters = DeadLetterStore(env.dlq).list()
    assert {dl.record_key for dl in letters} == {"1", "2"}
    assert {dl.error_class for dl in letters} == {"RetryBudgetExhausted"}
    env.run(worker("1"), worker("2"))  # Moodle is back: delivered, the letters resolve
    assert DeadLetterStore(env.dlq).list() == []
    assert set(env.courses("2")) == {2, 4}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"first_name": "A\ud800"}, "first_name"),
        ({"positions": [{"role": "Trainer", "department": "R\udfffD"}]}, "positions[0].department"),
    ],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    env: Env, bad: dict[str, Any], field: str
) -> None:
    broken = worker("2", **bad)
    env.run(worker("1"), broken, worker("3"))  # before: UnicodeEncodeError
    assert set(env.courses("1")) == {2, 4} and set(env.courses("3")) == {2, 4}
    assert [u for u in env.app.users.values() if u["idnumber"] == "2"] == []
    [letter] = DeadLetterStore(env.dlq).list()
    assert (letter.plugin, letter.stream, letter.record_key)[::2] == ("target-moodle", "2")
    assert f"record 2: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.record == broken and letter.error_class == "unpaired_surrogate"
