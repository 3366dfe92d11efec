"""The SurveyMonkey fake over HTTP: auth, details, responses paging and window, errors, limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import Sandbox
from sandbox.surveymonkey import SurveyMonkeyApp

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
    app.enforce_rate_limit = False
    sb.faults.reset()


def get(sb: Sandbox, path: str, token: str | None = None, **params: Any) -> requests.Response:
    token = token or sb.credentials["surveymonkey"]["access_token"]
    return requests.get(
        f"{sb.url('surveymonkey')}/v3{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def all_responses(sb: Sandbox, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    body = get(sb, f"/surveys/{ENGAGEMENT}/responses/bulk", **params).json()
    while True:
        out += body["data"]
        nxt = body["links"].get("next")
        if not nxt:
            return out
        body = requests.get(
            nxt,
            headers={"Authorization": f"Bearer {sb.credentials['surveymonkey']['access_token']}"},
            timeout=10,
        ).json()


def test_bearer_token_and_error_shape(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    resp = get(sb, "/surveys", token="wrong")
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert set(error) == {"id", "name", "docs", "message", "http_status_code"}
    assert error["http_status_code"] == 401
    assert get(sb, "/surveys/999/details").json()["error"]["http_status_code"] == 404


def test_rate_limit_headers_on_every_answer(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    resp = get(sb, "/surveys")
    for name in (
        "X-Ratelimit-App-Global-Minute-Remaining",
        "X-Ratelimit-App-Global-Minute-Reset",
        "X-Ratelimit-App-Global-Day-Remaining",
    ):
        assert resp.headers[name].isdigit()


def test_details_describe_likert_enps_and_comment(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    details = get(sb, f"/surveys/{ENGAGEMENT}/details").json()
    questions = [q for p in details["pages"] for q in p["questions"]]
    families = [(q["family"], q["subtype"]) for q in questions]
    assert families.count(("single_choice", "vertical")) == 5
    assert ("matrix", "rating") in families and ("open_ended", "essay") in families
    likert = questions[0]["answers"]["choices"]
    assert [(c["position"], c["weight"]) for c in likert] == [(i, i) for i in range(1, 6)]
    nps = next(q for q in questions if q["family"] == "matrix")
    assert [c["weight"] for c in nps["answers"]["choices"]] == list(range(11))
    assert details["custom_variables"] == {"employee_id": "Employee ID"}


def test_responses_page_with_links_next(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    got = all_responses(sb, per_page=7, sort_by="date_modified", sort_order="ASC")
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == app.response_count(app.surveys[ENGAGEMENT])
    stamps = [r["date_modified"] for r in got]
    assert stamps == sorted(stamps)
    body = get(sb, f"/surveys/{ENGAGEMENT}/responses/bulk", per_page=7).json()
    assert body["total"] == len(ids) and body["per_page"] == 7 and body["page"] == 1
    assert get(sb, f"/surveys/{ENGAGEMENT}/responses/bulk", per_page=101).status_code == 400


def test_window_on_date_modified(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    every = all_responses(sb, per_page=100, sort_order="ASC")
    lo, hi = every[5]["date_modified"][:19], every[20]["date_modified"][:19]
    window = all_responses(sb, start_modified_at=lo, end_modified_at=hi, sort_order="ASC")
    assert [r["id"] for r in window] == [r["id"] for r in every[5:21]]


def test_respondents_linked_unlinked_and_partial(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    got = all_responses(sb, per_page=100)
    by_var = [r for r in got if r["custom_variables"].get("employee_id")]
    by_email = [r for r in got if r["email_address"]]
    unknown = [r for r in got if not r["custom_variables"].get("employee_id")]
    unknown = [r for r in unknown if not r["email_address"]]
    assert by_var and by_email and unknown
    ids = {int(r["custom_variables"]["employee_id"]) for r in by_var}
    assert any(i > sb.world.employees for i in ids)  # an id that is nobody's
    partial = [r for r in got if r["response_status"] == "partial"]
    assert partial and all(not p["questions"] for r in partial for p in r["pages"][1:])
    simple = get(sb, f"/surveys/{ENGAGEMENT}/responses/bulk", simple="true").json()["data"]
    answered = [a for r in simple for p in r["pages"] for q in p["questions"] for a in q["answers"]]
    assert all("simple_text" in a for a in answered)


def test_rate_limit_is_enforced_per_minute(sb: Sandbox, app: SurveyMonkeyApp) -> None:
    app.enforce_rate_limit = True
    app.minute_limit = 5
    app._calls.clear()  # earlier tests' calls in this minute
    try:
        codes = [get(sb, "/surveys").status_code for _ in range(8)]
    finally:
        app.minute_limit = 120
    assert codes[:5] == [200] * 5 and codes[-1] == 429
