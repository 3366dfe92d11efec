"""tap-lever against the Lever sandbox over HTTP: data, token paging, incremental, faults."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.taps.tapkit import Messages, final_state, records, sync

from sandbox.lever import LeverApp
from sandbox.server import Sandbox
from tap_lever.tap import TapLever


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("lever",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[LeverApp]:
    app = sb.apps["lever"]
    assert isinstance(app, LeverApp)
    yield app
    app.enforce_rate_limit = False
    sb.faults.reset()
    sb.faults.retry_after = 1


def config_for(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": sb.credentials["lever"]["api_key"],
        "api_url": f"{sb.url('lever')}/v1",
        "backoff_base_seconds": 0.01,
        **extra,
    }


def run_tap(config: dict[str, Any], state: dict[str, Any] | None = None) -> Messages:
    tap = TapLever(config=config, state=state, parse_env_config=False)
    return sync(tap)


def expected_opportunities(app: LeverApp) -> set[str]:
    return {
        app.opportunity_id(slot)
        for slot in range(1, app.lever.slots + 1)
        if app.lever.slot_exists(slot)
    }


def test_full_sync_with_small_pages_is_complete(sb: Sandbox, app: LeverApp) -> None:
    msgs = run_tap(config_for(sb, page_size=4))
    opps = [r["id"] for r in records(msgs, "opportunities")]
    assert len(opps) == len(set(opps))
    assert set(opps) == expected_opportunities(app)
    offers = records(msgs, "offers")
    signed = {o["opportunity_id"] for o in offers if o["status"] == "signed"}
    assert signed == {app.opportunity_id(2 * c.index) for c in app.hires()}
    assert len(records(msgs, "stages")) == 6 and len(records(msgs, "users")) == 5
    assert {r["type"] for r in records(msgs, "archive_reasons")} == {"hired", "non-hired"}
    assert len(records(msgs, "postings")) == len(sb.world.jobs)
    # offers come after the opportunity they belong to (joins downstream rely on it)
    order = [m["stream"] for m in msgs if m["type"] == "RECORD"]
    assert order.index("offers") > max(i for i, s in enumerate(order) if s == "opportunities")


def test_raw_names_arrive_as_lever_sent_them(sb: Sandbox, app: LeverApp) -> None:
    msgs = run_tap(config_for(sb))
    names = {r["name"] for r in records(msgs, "opportunities")}
    assert {"Zoë O'Brien-Łukasiewicz", "秀英 王", "Sukarno", "Giuseppe D\u2019Alessandro"} <= names
    assert "  Rene\u0301e  Zellweger  " in names  # NFD and stray spaces, untouched by the tap
    fields = [{f["identifier"]: f["value"] for f in o["fields"]} for o in records(msgs, "offers")]
    assert any(f["legal_last_name"] == "" for f in fields)  # the mononym


def test_incremental_emits_only_changed_opportunities_and_their_offers(
    sb: Sandbox, app: LeverApp
) -> None:
    state = final_state(run_tap(config_for(sb)))
    hired_slot = 2 * app.hires()[0].index
    app.touch(hired_slot, name="Zoë O'Brien-Łukasiewicz-Smith")
    app.touch(14, stage_index=3)
    second = run_tap(config_for(sb), state=state)
    got = {r["id"] for r in records(second, "opportunities")}
    assert got == {app.opportunity_id(hired_slot), app.opportunity_id(14)}
    assert {o["opportunity_id"] for o in records(second, "offers")} <= got
    assert records(second, "postings") == []
    third = run_tap(config_for(sb), state=final_state(second))
    assert records(third, "opportunities") == [] and records(third, "offers") == []


def test_start_date_skips_older_opportunities(sb: Sandbox, app: LeverApp) -> None:
    everything = records(run_tap(config_for(sb)), "opportunities")
    stamps = sorted(r["updatedAt"] for r in everything)
    cut = stamps[len(stamps) // 2]
    start = datetime.fromtimestamp(cut / 1000, UTC).isoformat()
    later = records(run_tap(config_for(sb, start_date=start)), "opportunities")
    assert sorted(r["updatedAt"] for r in later) == [s for s in stamps if s >= cut]


def test_429_and_5xx_are_retried_and_nothing_is_lost(sb: Sandbox, app: LeverApp) -> None:
    sb.faults.retry_after = 0
    sb.faults.script = ["429", "503", "ok", "500", "429", "ok", "drop", "ok", "502"]
    msgs = run_tap(config_for(sb, page_size=10))
    assert {r["id"] for r in records(msgs, "opportunities")} == expected_opportunities(app)
    assert sb.faults.script == []


def test_persistent_5xx_fails_with_a_specific_error(sb: Sandbox, app: LeverApp) -> None:
    sb.faults.retry_after = 0
    sb.faults.rate_5xx = 1.0
    sb.faults.paths = "^/v1/stages"
    with pytest.raises(Exception, match=r"GET /v1/stages failed after 3 attempts"):
        run_tap(config_for(sb, max_retries=3))


def test_bad_key_names_the_request(sb: Sandbox, app: LeverApp) -> None:
    with pytest.raises(Exception, match=r"401 Unauthorized for GET /v1/stages: Invalid API key"):
        run_tap(config_for(sb, api_key="wrong"))


def test_offers_alone_find_their_opportunities(sb: Sandbox, app: LeverApp) -> None:
    tap = TapLever(config=config_for(sb), parse_env_config=False)
    for name, stream in tap.streams.items():
        stream.selected = name == "offers"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tap.sync_all()
    msgs = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    assert records(msgs, "opportunities") == []
    signed = {o["opportunity_id"] for o in records(msgs, "offers") if o["status"] == "signed"}
    assert signed == {app.opportunity_id(2 * c.index) for c in app.hires()}


def test_a_new_vendor_field_is_reported_once_and_left_out(
    sb: Sandbox, app: LeverApp, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    original = app.opportunity

    def with_extra(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**original(*args, **kwargs), "candidateScore": 7}

    monkeypatch.setattr(app, "opportunity", with_extra)
    msgs = run_tap(config_for(sb))
    assert all("candidateScore" not in r for r in records(msgs, "opportunities"))
    drift = [r for r in caplog.records if "candidateScore" in r.getMessage()]
    assert len(drift) == 1
