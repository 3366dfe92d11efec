"""tap-hibob against the HiBob sandbox fake over HTTP: every employee (leavers too) with the
fields asked for, history tables paged once each, rate limits, errors, drift, secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from tests.taps.tapkit import records, sync

from sandbox.hibob import HiBob
from sandbox.server import Sandbox
from tap_hibob.streams import EMPLOYEE_FIELDS
from tap_hibob.tap import TapHibob


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=45, vendors=("hibob",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[HiBob]:
    app = sb.apps["hibob"]
    assert isinstance(app, HiBob)
    yield app
    sb.faults.reset()


def tap(sb: Sandbox, **config: Any) -> TapHibob:
    info = sb.info()["hibob"]
    settings = {
        "service_user_id": info["service_user_id"],
        "token": info["token"],
        "api_url": info["api_url"],
        "page_size": 20,
        "max_retry_wait": 2,
        **config,
    }
    return TapHibob(config=settings, parse_env_config=False)


@pytest.fixture(scope="module")
def messages(sb: Sandbox) -> list[dict[str, Any]]:
    return sync(tap(sb))


def test_every_employee_with_the_fields_asked_for(
    sb: Sandbox, messages: list[dict[str, Any]]
) -> None:
    rows = records(messages, "employees")
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 46)]  # leavers included
    app = sb.apps["hibob"]
    assert isinstance(app, HiBob)
    call = app.search_calls[0]
    assert call["showInactive"] is True and call["fields"] == list(EMPLOYEE_FIELDS)
    by_id = {r["id"]: r for r in rows}
    for p in sb.world.people():
        row = by_id[str(p.employee_id)]
        pos = p.positions[0]
        assert (row["firstName"], row["surname"], row["email"]) == (
            p.first_name, p.last_name, p.work_email)  # fmt: skip
        assert row["humanReadable"]["work"]["department"] == pos.department
        assert row["work"]["department"] != pos.department  # machine form: a list item id
        assert row["internal"]["lifecycleStatus"] == (
            "terminated" if p.status == "Inactive" else "employed")  # fmt: skip
        assert row["internal"]["terminationDate"] == (
            p.termination_date.isoformat() if p.termination_date else None)  # fmt: skip


def test_history_tables_page_through_every_employee_once(
    sb: Sandbox, messages: list[dict[str, Any]]
) -> None:
    life = records(messages, "lifecycle_history")
    keys = [(r["employeeId"], r["id"]) for r in life]
    assert len(keys) == len(set(keys))
    expected = sum(len(p.employments) + sum(e.termination_date is not None
                                            for e in p.employments)
                   for p in sb.world.people())  # fmt: skip
    assert len(life) == expected
    terminated = {r["employeeId"] for r in life if r["status"] == "terminated"}
    assert terminated == {str(p.employee_id) for p in sb.world.people()
                          if any(e.termination_date for e in p.employments)}  # fmt: skip
    work = records(messages, "work_history")
    assert {r["employeeId"] for r in work} == {str(i) for i in range(1, 46)}
    assert len(records(messages, "employment_history")) == sum(
        len(p.employments) for p in sb.world.people()
    )


def test_a_429_waits_for_the_reset_and_a_5xx_is_retried(sb: Sandbox, app: HiBob) -> None:
    sb.faults.paths = r"/people/search"
    sb.faults.retry_after = 1
    sb.faults.script = ["429", "503"]
    rows = records(sync(tap(sb)), "employees")
    assert len(rows) == 45
    assert sb.faults.injected.get("429", 0) >= 1


def test_a_wrong_token_fails_naming_the_endpoint_and_never_logs_it(
    sb: Sandbox, app: HiBob, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception, match=r"401") as err:
        sync(tap(sb, token="wrong-token-value"))
    assert "/v1/people/search" in str(err.value)
    assert "invalid service user credentials" in str(err.value)
    assert "wrong-token-value" not in caplog.text + str(err.value)


def test_a_page_of_the_wrong_shape_is_named(sb: Sandbox, app: HiBob) -> None:
    sb.faults.paths = r"/bulk/people/work"
    sb.faults.script = ["malformed"] * 8
    with pytest.raises(Exception, match=r"/bulk/people/work"):
        sync(tap(sb, max_retries=1))
