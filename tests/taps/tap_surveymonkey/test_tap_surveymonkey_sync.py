"""tap-surveymonkey against the SurveyMonkey sandbox: streams, links, incremental, faults."""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from tests.taps.tapkit import Messages, final_state, records, sync

from hrsync.shapes import UnexpectedPage
from sandbox.server import Sandbox
from sandbox.surveymonkey import SURVEYS, SurveyMonkeyApp
from tap_surveymonkey.tap import TapSurveyMonkey

ENGAGEMENT = "500000001"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("surveymonkey",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[SurveyMonkeyApp]:
    app = sb.apps["surveymonkey"]
    assert isinstance(app, SurveyMonkeyApp)
    yield app
    sb.faults.reset()
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": sb.credentials["surveymonkey"]["access_token"],
        "api_url": f"{sb.url('surveymonkey')}/v3",
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run_tap(config: dict[str, Any], state: dict[str, Any] | None = None) -> Messages:
    tap = TapSurveyMonkey(config=config, state=state, parse_env_config=False)
    return sync(tap)


def expected_responses(app: SurveyMonkeyApp) -> int:
    return sum(app.response_count(s) for s in SURVEYS)


def test_every_response_once_with_small_pages(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    msgs = run_tap(config_for(sb, page_size=4))
    ids = [r["id"] for r in records(msgs, "responses")]
    assert len(ids) == len(set(ids)) == expected_responses(app)
    assert len(records(msgs, "surveys")) == 2
    assert len(records(msgs, "questions")) == sum(len(s.questions) for s in SURVEYS)
    schemas = Counter(m["stream"] for m in msgs if m["type"] == "SCHEMA")
    assert schemas["answers"] == 1


def test_unknown_respondents_are_kept_unlinked(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    rows = records(run_tap(config_for(sb)), "responses")
    unlinked = [r for r in rows if r["employee_id"] is None]
    assert unlinked  # no custom variable, or an empty one
    linked = {int(r["employee_id"]) for r in rows if r["employee_id"]}
    assert any(i > sb.world.employees for i in linked)  # kept: an id that is nobody's
    assert all(r["respondent_email"] is None for r in rows)  # e-mail only when asked for
    with_email = records(run_tap(config_for(sb, include_respondent_email=True)), "responses")
    emails = {r["respondent_email"] for r in with_email if r["respondent_email"]}
    people = {p.work_email.lower() for p in sb.world.people() if p.work_email}
    assert emails and emails <= people
    assert {"partial", "completed"} <= {r["response_status"] for r in rows}


def test_answers_carry_position_weight_and_text(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    msgs = run_tap(config_for(sb))
    answers = records(msgs, "answers")
    questions = {q["id"]: q for q in records(msgs, "questions")}
    likert = [a for a in answers if a["question_family"] == "single_choice"]
    assert likert and all(1 <= a["choice_weight"] <= 5 for a in likert)
    assert all(a["choice_position"] == a["choice_weight"] for a in likert)
    nps = [a for a in answers if questions[a["question_id"]]["display_type"] == "nps"]
    assert nps and all(0 <= a["choice_weight"] <= 10 and a["row_id"] for a in nps)
    assert {a["choice_text"] for a in nps} <= {str(i) for i in range(11)}
    comments = [a["text"] for a in answers if a["question_family"] == "open_ended"]
    assert "Plus de télétravail, s'il vous plaît." in comments
    # each answer matches what the API holds, response by response
    survey = app.surveys[ENGAGEMENT]
    by_response: dict[str, list[str]] = {}
    for a in answers:
        if a["survey_id"] == ENGAGEMENT and a["choice_id"]:
            by_response.setdefault(a["response_id"], []).append(a["choice_id"])
    for rid, choices in list(by_response.items())[:10]:
        raw = app.response(survey, int(rid) - 1_110_000_000)
        answered = [a for p in raw["pages"] for q in p["questions"] for a in q["answers"]]
        want = [a["choice_id"] for a in answered if a.get("choice_id")]
        assert choices == want


def test_incremental_only_changed_responses(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    first = run_tap(config_for(sb))
    state = final_state(first)
    slot = int(records(first, "responses")[3]["id"]) - 1_110_000_000
    app.touch(
        ENGAGEMENT,
        slot,
        at=datetime.now(UTC) - timedelta(seconds=2),
        response_status="completed",
    )
    second = run_tap(config_for(sb), state=state)
    assert [r["id"] for r in records(second, "responses")] == [str(1_110_000_000 + slot)]
    assert {a["response_id"] for a in records(second, "answers")} == {str(1_110_000_000 + slot)}
    third = run_tap(config_for(sb), state=final_state(second))
    assert records(third, "responses") == [] and records(third, "answers") == []


def test_faults_are_retried_and_nothing_is_lost(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    sb.faults.retry_after = 0
    sb.faults.script = ["429", "ok", "503", "ok", "500", "drop", "ok", "429", "ok", "502"]
    msgs = run_tap(config_for(sb, page_size=10))
    assert len({r["id"] for r in records(msgs, "responses")}) == expected_responses(app)
    assert sb.faults.script == []


def test_persistent_5xx_names_the_error(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    sb.faults.retry_after = 0
    sb.faults.rate_5xx = 1.0
    sb.faults.paths = "/responses/bulk"
    with pytest.raises(Exception, match=r"failed after 2 attempts.*Internal Server Error \(1050\)"):
        run_tap(config_for(sb, max_retries=2))


def test_answers_without_responses_fail_loudly(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    tap = TapSurveyMonkey(config=config_for(sb), parse_env_config=False)
    tap.streams["responses"].selected = False
    with (
        pytest.raises(Exception, match="select the responses stream too"),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        tap.streams["answers"].sync()


def test_a_new_vendor_field_is_reported_once(
    sb: Sandbox, app: SurveyMonkeyApp, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    original = app.response

    def with_extra(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**original(*args, **kwargs), "quiz_results": {"score": 3}}

    monkeypatch.setattr(app, "response", with_extra)
    run_tap(config_for(sb))
    drift = [r for r in caplog.records if "quiz_results" in r.getMessage()]
    assert len(drift) == 1


@pytest.mark.parametrize(
    ("stream", "path", "body", "problem"),
    [
        ("surveys", "/surveys", b"null", 'expected an object with "data", got null'),
        ("surveys", "/surveys", b'{"data": null, "links": {}}', '"data" (an array'),
        ("responses", "/surveys/1/responses/bulk", b"[1, 2, 3]", "got array"),
        ("responses", "/surveys/1/responses/bulk", b'{"data": ["x"]}', "item 0 is string"),
        ("questions", "/surveys/1/details", b"null", "details object, got null"),
        ("questions", "/surveys/1/details", b'{"id": "1", "pages": {}}', '"pages"'),
        ("surveys", "/surveys", b"<!DOCTYPE html>", "not JSON"),
    ],
)
def test_a_page_of_the_wrong_shape_fails_naming_the_endpoint(
    sb: Sandbox, stream: str, path: str, body: bytes, problem: str
) -> None:
    """Never a silently short extract: a null, a wrong shape or HTML names the endpoint."""
    tap = TapSurveyMonkey(config=config_for(sb), parse_env_config=False)
    url = f"{sb.url('surveymonkey')}/v3{path}"
    response = requests.Response()
    response.status_code, response._content, response.url = 200, body, url
    response.request = requests.Request("GET", url).prepare()
    want = f"SurveyMonkey .* GET /v3{path} .*{re.escape(problem)}"
    with pytest.raises(UnexpectedPage, match=want):
        list(tap.streams[stream].parse_response(response))
