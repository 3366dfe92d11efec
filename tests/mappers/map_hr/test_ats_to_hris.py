# ruff: noqa: RUF001  (the names are the point)
"""The ats_to_hris profile on the seeded world: joins, edge-case people, incremental runs."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.errors import RecordError
from sandbox.seed import World

Run = Callable[..., list[dict[str, Any]]]
CFG = {"profile": "ats_to_hris"}
REFERENCE = ("departments", "offices", "jobs", "candidates")


def clean(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split())


def full_refresh(gh: dict[str, list[dict[str, Any]]], h: Any) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    for stream in (*REFERENCE, "offers"):
        msgs.append(h.schema_msg(stream, ("id",)))
        msgs.extend(gh[stream])
        msgs.append({"type": "STATE", "value": {"bookmarks": {stream: "done"}}})
    return msgs


def hires(out: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        m["record"]["ats_candidate_id"]: m["record"]
        for m in out
        if m["type"] == "RECORD" and m["stream"] == "bamboohr_new_hires"
    }


def test_accepted_offers_become_new_hires(
    world: World, greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    out = run_inprocess(CFG, full_refresh(greenhouse, h))
    # reference streams are stored, not emitted
    assert {m.get("stream") for m in out if m["type"] != "STATE"} == {"bamboohr_new_hires"}
    got = hires(out)
    accepted = [o["record"] for o in greenhouse["offers"] if o["record"]["status"] == "Accepted"]
    assert len(got) == len(accepted) > 0
    for offer in accepted:
        cand = world.candidate(offer["candidate_id"])
        job = world.job(offer["job_id"])
        rec = got[str(cand.id)]
        first = clean(cand.first_name)
        assert rec["firstName"] == first
        assert rec["lastName"] == (clean(cand.last_name) or first)  # mononyms
        assert rec["hireDate"] == offer["starts_on"]
        assert rec["jobTitle"] == job.title
        assert rec["department"] == world.department(job.department_id).name
        assert rec["location"] == world.office(job.office_id).name
        salaried = offer["custom_fields"]["employment_type"]["value"] == "Full-Time"
        assert (rec["payType"], rec["payPer"]) == (
            ("Salary", "Year") if salaried else ("Hourly", "Hour")
        )
        salary = (offer["custom_fields"].get("salary") or {}).get("value")
        if salary:
            assert rec["payRate"] == f"{salary['amount']:.2f} {salary['unit']}"
        else:
            assert "payRate" not in rec  # missing optional field: left out, not invented
        assert set(rec) <= {
            "ats_candidate_id", "firstName", "lastName", "preferredName",
            "workEmail", "homeEmail", "hireDate", "department", "jobTitle", "location",
            "employmentHistoryStatus", "payRate", "payType", "payPer",
        }  # fmt: skip


def test_edge_case_names_survive(
    world: World, greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    got = hires(run_inprocess(CFG, full_refresh(greenhouse, h)))
    seen = {"nfd": 0, "non_latin": 0, "mononym": 0, "apostrophe": 0, "padded": 0}
    for cand_id, rec in got.items():
        cand = world.candidate(int(cand_id))
        raw = cand.first_name + cand.last_name
        seen["nfd"] += not unicodedata.is_normalized("NFC", raw)
        seen["non_latin"] += any(ord(c) > 0x24F for c in raw)
        seen["mononym"] += not cand.last_name.strip()
        seen["apostrophe"] += "'" in raw or "’" in raw
        seen["padded"] += raw != raw.strip() or "  " in cand.first_name
        first = clean(cand.first_name)
        assert (rec["firstName"], rec["lastName"]) == (first, clean(cand.last_name) or first)
        assert unicodedata.is_normalized("NFC", rec["firstName"] + rec["lastName"])
    # the seeded world puts every kind of hard name among the accepted offers
    assert all(seen.values()), seen


def test_order_independent_and_state_never_overtakes(
    greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    """Offers before their candidates: records wait (on disk), STATE waits behind them."""
    msgs = [h.schema_msg("offers", ("id",)), *greenhouse["offers"]]
    msgs.append({"type": "STATE", "value": {"bookmarks": {"offers": "x"}}})
    for stream in REFERENCE:
        msgs += [h.schema_msg(stream, ("id",)), *greenhouse[stream]]
    msgs.append({"type": "STATE", "value": {"bookmarks": {"all": "y"}}})
    out = run_inprocess(CFG, msgs)
    kinds = [m["type"] for m in out]
    assert kinds[-2:] == ["STATE", "STATE"]
    assert "STATE" not in kinds[:-2]
    assert out[-2]["value"] == {"bookmarks": {"offers": "x"}}
    assert len(hires(out)) == sum(o["record"]["status"] == "Accepted" for o in greenhouse["offers"])


def test_incremental_run_joins_from_the_store(
    world: World, greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    run_inprocess(CFG, full_refresh(greenhouse, h))
    # second run: only one changed offer arrives; its candidate and job come from the store
    offer = next(o for o in greenhouse["offers"] if o["record"]["status"] == "Accepted")
    changed = {**offer["record"], "starts_on": "2026-02-01"}
    out = run_inprocess(CFG, [h.schema_msg("offers", ("id",)), h.record("offers", changed)])
    (rec,) = hires(out).values()
    assert rec["hireDate"] == "2026-02-01"
    assert rec["firstName"] == clean(world.candidate(changed["candidate_id"]).first_name)


def test_missing_reference_names_record_lookup_and_fix(
    greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    offer = next(o for o in greenhouse["offers"] if o["record"]["status"] == "Accepted")
    orphan = {**offer["record"], "candidate_id": 4_999_999_999}
    msgs = [
        *(m for s in REFERENCE for m in [h.schema_msg(s, ("id",)), *greenhouse[s]]),
        h.schema_msg("offers", ("id",)),
        h.record("offers", orphan),
    ]
    with pytest.raises(RecordError) as info:
        run_inprocess({**CFG, "bad_records": "fail"}, msgs)
    text = str(info.value)
    assert f"id={orphan['id']}" in text
    assert "lookup 'candidates'" in text and "4999999999" in text
    assert "full refresh" in text
    # by default the offer is a dead letter with the same error, and the run goes on
    out = run_inprocess(CFG, msgs)
    assert not hires(out)
    (letter,) = DeadLetterStore().list(plugin="map-hr:ats_to_hris")
    assert letter.record_key == f"id={orphan['id']}" and "full refresh" in letter.error


def test_not_accepted_offers_are_filtered(
    greenhouse: dict[str, Any], run_inprocess: Run, h: Any
) -> None:
    out = run_inprocess(CFG, full_refresh(greenhouse, h))
    hired = set(hires(out))
    for o in greenhouse["offers"]:
        accepted = o["record"]["status"] == "Accepted"
        assert (str(o["record"]["candidate_id"]) in hired) == accepted
