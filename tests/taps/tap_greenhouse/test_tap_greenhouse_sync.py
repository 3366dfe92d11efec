"""tap-greenhouse against the Harvest v3 sandbox over HTTP: data, paging, state, auth, faults."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.taps.tapkit import Messages, final_state, records, sync

from hrsync.shapes import UnexpectedPage
from sandbox.greenhouse import GreenhouseApp, iso_ms, opening_id
from sandbox.seed import CANDIDATE_BASE
from sandbox.server import Sandbox
from tap_greenhouse.tap import TapGreenhouse

TAP = str(Path(sys.executable).parent / "tap-greenhouse")


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("greenhouse",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[GreenhouseApp]:
    app = sb.apps["greenhouse"]
    assert isinstance(app, GreenhouseApp)
    yield app
    app.token_ttl, app.token_max_uses = 3600, None
    sb.faults.reset()
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    creds = sb.credentials["greenhouse"]
    return {
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "user_id": creds["user_id"],
        "api_url": f"{sb.greenhouse_url}/v3",
        "token_url": f"{sb.greenhouse_url}/token",
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    before: Callable[[TapGreenhouse], None] | None = None,
) -> Messages:
    """Sync every stream in this process; return the Singer messages written."""
    tap = TapGreenhouse(config=config, state=state, parse_env_config=False)
    if before is not None:
        before(tap)
    return sync(tap)


def assert_complete(sb: Sandbox, messages: Messages) -> None:
    """Every candidate and offer of the world exactly once."""
    cands = [r["id"] for r in records(messages, "candidates")]
    assert sorted(cands) == [CANDIDATE_BASE + k for k in range(1, sb.world.candidates + 1)]
    offers = [r["id"] for r in records(messages, "offers")]
    assert len(offers) == len(set(offers))
    assert sorted(offers) == sorted(o.id for c in cands for o in sb.world.offers_for_candidate(c))


# --- data ---------------------------------------------------------------------------------


def test_records_match_the_world_byte_for_byte(sb: Sandbox, app: GreenhouseApp) -> None:
    msgs = run_tap(config_for(sb))
    world = sb.world
    assert_complete(sb, msgs)
    by_id = {r["id"]: r for r in records(msgs, "candidates")}
    for cid, rec in by_id.items():
        cand = world.candidate(cid)
        # raw ATS values: stray spaces, NFD accents, empty mononym last names, all kept as sent
        assert rec["first_name"] == cand.first_name
        assert rec["last_name"] == cand.last_name
        emails = {e["type"]: e["value"] for e in rec["email_addresses"]}
        assert emails.get("personal") == cand.email
        assert emails.get("work") == cand.work_email
    names = {(r["first_name"], r["last_name"]) for r in by_id.values()}
    for expected in [
        ("Zoë", "O'Brien-Łukasiewicz"),
        ("秀英", "王"),
        ("Αλέξανδρος", "Παπαδόπουλος"),
        ("محمد", "العلي"),
        ("D'Arcy", "D'Angelo"),
        ("Sukarno", ""),  # mononym: empty last name in the ATS
        ("Franc\u0327ois", "L'E\u0301cuyer"),  # decomposed (NFD) accents, as the ATS has them
        ("Mary  Ann", "van der Berg"),
        ("Seo-yeon", "김"),
    ]:
        assert expected in names
    for rec in records(msgs, "offers"):
        offer = world.offer(rec["id"])
        assert rec["status"] == offer.status
        assert rec["starts_on"] == (offer.starts_on.isoformat() if offer.starts_on else None)
        assert rec["opening_id"] == opening_id(offer.opening_id)
        assert rec["updated_at"] == iso_ms(offer.updated_at)
        salary = rec["custom_fields"].get("salary")
        assert (salary is None) == (offer.salary is None)
        if salary:
            assert float(salary["value"]["amount"]) == float(offer.salary or 0)
            assert salary["value"]["unit"] == offer.currency
    assert {r["name"] for r in records(msgs, "offices")} == {o.name for o in world.offices}
    assert len(records(msgs, "jobs")) == len(world.jobs)
    assert len(records(msgs, "applications")) == world.candidates


def test_reference_streams_come_before_offers(sb: Sandbox, app: GreenhouseApp) -> None:
    msgs = run_tap(config_for(sb))
    order: list[str] = []
    for m in msgs:
        if m["type"] == "RECORD" and (not order or order[-1] != m["stream"]):
            order.append(m["stream"])
    assert order == [
        "departments",
        "offices",
        "users",
        "jobs",
        "candidates",
        "applications",
        "offers",
    ]


def test_many_pages_follow_the_cursor_alone(sb: Sandbox, app: GreenhouseApp) -> None:
    before = app.requests
    msgs = run_tap(config_for(sb, page_size=4))
    assert_complete(sb, msgs)
    # ceil(93 / 4) = 24 candidate pages alone; the sandbox answers 422 to any request that
    # combines the cursor with another parameter, so a complete sync proves the tap never did
    assert app.requests - before > 24 * 3


# --- incremental --------------------------------------------------------------------------


def test_second_run_emits_exactly_the_updated_candidates(sb: Sandbox, app: GreenhouseApp) -> None:
    first = run_tap(config_for(sb))
    state = final_state(first)
    changed = [CANDIDATE_BASE + k for k in (2, 17, 61)]
    for cid in changed:
        sb.world.update_candidate(cid, title="Principal Engineer")
    second = run_tap(config_for(sb), state=state)
    got = records(second, "candidates")
    assert sorted(r["id"] for r in got) == changed
    assert all(r["title"] == "Principal Engineer" for r in got)
    for stream in ("departments", "offices", "users", "jobs", "applications", "offers"):
        assert records(second, stream) == [], stream
    # a third run from the second's state: nothing at or below the bookmark comes back
    third = run_tap(config_for(sb), state=final_state(second))
    assert records(third, "candidates") == []


def test_update_during_a_run_is_not_lost(sb: Sandbox, app: GreenhouseApp) -> None:
    """A record changed after its page was read lands in the next run, not in a gap."""
    state = final_state(run_tap(config_for(sb)))
    first_id = CANDIDATE_BASE + 1
    original_page = app._page
    done = []

    def page_then_touch(query: Any) -> Any:
        result = original_page(query)
        if query.resource == "candidates" and not done:
            done.append(True)
            sb.world.update_candidate(first_id, company="Changed mid-run")  # already served
            sb.world.update_candidate(CANDIDATE_BASE + 90, company="Changed mid-run")
        return result

    app._page = page_then_touch  # type: ignore[method-assign]
    try:
        during = run_tap(config_for(sb, page_size=10), state=state)
    finally:
        del app._page
    after = run_tap(config_for(sb), state=final_state(during))
    seen_later = {r["id"] for r in records(after, "candidates")}
    assert first_id in seen_later
    assert CANDIDATE_BASE + 90 in seen_later
    emitted = [r["id"] for r in records(during, "candidates") + records(after, "candidates")]
    assert len(emitted) == len(set(emitted))  # and never twice


def test_start_date_limits_the_first_run(sb: Sandbox, app: GreenhouseApp) -> None:
    cutoff = sb.world.base_updated_at("candidates", 50)
    msgs = run_tap(config_for(sb, start_date=cutoff.isoformat()))
    got = sorted(r["id"] for r in records(msgs, "candidates"))
    world = sb.world
    want = [
        CANDIDATE_BASE + k
        for k in range(1, world.candidates + 1)
        if world.candidate(CANDIDATE_BASE + k).updated_at >= cutoff
    ]
    assert got == want
    assert CANDIDATE_BASE + 50 in got and CANDIDATE_BASE + 49 not in got
    assert records(msgs, "departments") == []  # reference data is older than the cutoff


# --- auth -----------------------------------------------------------------------------------


def test_token_expiring_mid_run_is_refreshed(sb: Sandbox, app: GreenhouseApp) -> None:
    issued = app.tokens_issued
    app.token_max_uses = 5
    msgs = run_tap(config_for(sb, page_size=10))
    assert_complete(sb, msgs)
    assert app.tokens_issued - issued >= 4


def test_lifetime_comes_from_expires_at(sb: Sandbox, app: GreenhouseApp) -> None:
    app.token_ttl = 120
    holder: list[TapGreenhouse] = []
    run_tap(config_for(sb), before=holder.append)
    auth = holder[0]._greenhouse_auth  # type: ignore[attr-defined]
    assert auth.expires_in is not None and 115 <= auth.expires_in <= 120


# --- faults -------------------------------------------------------------------------------


def test_429_and_5xx_are_retried_and_nothing_is_lost_or_doubled(
    sb: Sandbox, app: GreenhouseApp
) -> None:
    sb.faults.retry_after = 1
    sb.faults.paths = r"^/v3/(candidates|offers)"
    sb.faults.script[:] = ["ok", "429", "503", "ok", "500", "ok", "ok", "503", "429", "ok"]
    sb.faults.injected.clear()
    msgs = run_tap(config_for(sb, page_size=10))
    assert_complete(sb, msgs)
    assert sb.faults.injected == {"429": 2, "503": 2, "500": 1}
    assert sb.faults.script == []


def test_faults_past_the_retry_budget_fail_loudly(
    sb: Sandbox, app: GreenhouseApp, tmp_path: Path
) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config_for(sb, max_retries=3)))
    sb.faults.paths = r"^/v3/users"
    sb.faults.script[:] = ["503"] * 3
    proc = subprocess.run(
        [TAP, "--config", str(cfg)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode != 0
    assert "GET /v3/users failed after 3 attempts" in proc.stderr
    assert "503" in proc.stderr
    assert "sandbox-greenhouse-secret" not in proc.stderr + proc.stdout


def test_wrong_secret_fails_without_echoing_it(sb: Sandbox, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config_for(sb, client_secret="wrong-secret-value")))
    proc = subprocess.run(
        [TAP, "--config", str(cfg)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode != 0
    assert "OAuth token request failed with status 401" in proc.stderr
    assert "wrong-secret-value" not in proc.stderr


# --- schema drift -------------------------------------------------------------------------


def test_unknown_fields_are_reported_once_per_stream_and_field(
    sb: Sandbox, app: GreenhouseApp
) -> None:
    original = app.candidate

    def with_new_fields(c: Any) -> dict[str, Any]:
        rec = original(c)
        rec["pronouns"] = "they/them"
        rec["email_addresses"] = [{**e, "verified": True} for e in rec["email_addresses"]]
        rec["company"] = 42 if c.id % 2 else rec["company"]
        return rec

    logs = io.StringIO()
    handler = logging.StreamHandler(logs)

    def attach(tap: TapGreenhouse) -> None:
        tap.streams["candidates"].logger.addHandler(handler)

    app.candidate = with_new_fields  # type: ignore[method-assign]
    try:
        msgs = run_tap(config_for(sb, page_size=20), before=attach)
    finally:
        del app.candidate
    text = logs.getvalue()
    assert text.count("field 'pronouns'") == 1
    assert "Schema drift in stream 'candidates'" in text
    assert text.count("field 'email_addresses.verified'") == 1
    assert text.count("field 'company' arrived as int") == 1
    assert all("pronouns" not in r for r in records(msgs, "candidates"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"null", "expected records (an array of objects), got null"),
        (b'{"unexpected": true}', "got object"),
        (b"[1, 2, 3]", "item 0 is number"),
        (b"<!DOCTYPE html>", "not JSON"),
        (b"", "an empty body"),
    ],
)
def test_a_page_of_the_wrong_shape_fails_naming_the_endpoint(
    sb: Sandbox, body: bytes, problem: str
) -> None:
    """Never a silently short extract: a null, a wrong shape or HTML names the endpoint."""
    tap = TapGreenhouse(config=config_for(sb), parse_env_config=False)
    url = f"{sb.greenhouse_url}/v3/offers?cursor=abc"
    response = requests.Response()
    response.status_code, response._content, response.url = 200, body, url
    response.request = requests.Request("GET", url).prepare()
    want = f"Greenhouse .* GET /v3/offers .*{re.escape(problem)}"
    with pytest.raises(UnexpectedPage, match=want) as info:
        list(tap.streams["offers"].parse_response(response))
    assert "cursor=abc" not in str(info.value)  # no query string (cursors, filters) in logs
