"""The Lever fake over HTTP: auth, envelope, token paging, filters, offers, errors, rate limit."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.lever import LeverApp
from sandbox.server import Sandbox


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


def get(sb: Sandbox, path: str, auth: tuple[str, str] | None = None, **params: Any) -> Any:
    key = sb.credentials["lever"]["api_key"]
    return requests.get(
        f"{sb.url('lever')}/v1{path}", params=params, auth=auth or (key, ""), timeout=10
    )


def all_pages(sb: Sandbox, path: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    while True:
        body = get(sb, path, **params, **extra).json()
        out += body["data"]
        if not body["hasNext"]:
            assert "next" not in body
            return out
        extra = {"offset": body["next"]}


def test_basic_auth_with_the_key_and_a_blank_password(sb: Sandbox, app: LeverApp) -> None:
    bad = get(sb, "/opportunities", auth=("wrong", ""))
    assert bad.status_code == 401
    assert set(bad.json()) == {"code", "message"}
    assert get(sb, "/opportunities", limit=1).status_code == 200


def test_token_paging_returns_every_opportunity_once(sb: Sandbox, app: LeverApp) -> None:
    got = all_pages(sb, "/opportunities", limit=7)
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids))
    contacts = app.lever.contacts
    assert len(ids) == contacts + sum(app.lever.contact(j).second for j in range(1, contacts + 1))
    first = get(sb, "/opportunities", limit=7).json()
    assert first["hasNext"] and not first["next"].isdigit()  # an opaque token, not a number


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_outside_1_to_100_is_a_400(sb: Sandbox, app: LeverApp, limit: str) -> None:
    resp = get(sb, "/opportunities", limit=limit)
    assert resp.status_code == 400
    assert resp.json()["code"] == "BadRequestError"


def test_a_token_is_pinned_to_its_filters(sb: Sandbox, app: LeverApp) -> None:
    token = get(sb, "/opportunities", limit=5).json()["next"]
    resp = get(sb, "/opportunities", limit=5, offset=token, archived="true")
    assert resp.status_code == 400
    assert get(sb, "/opportunities", limit=5, offset="garbage").status_code == 400


def test_updated_at_window_in_epoch_ms(sb: Sandbox, app: LeverApp) -> None:
    everything = all_pages(sb, "/opportunities")
    stamps = sorted(r["updatedAt"] for r in everything)
    lo, hi = stamps[10], stamps[40]
    window = all_pages(sb, "/opportunities", updated_at_start=lo, updated_at_end=hi)
    assert sorted(r["updatedAt"] for r in window) == stamps[10:41]


def test_hires_have_a_signed_offer_and_are_archived_as_hired(sb: Sandbox, app: LeverApp) -> None:
    reasons = {r["id"]: r for r in get(sb, "/archive_reasons").json()["data"]}
    for contact in app.hires():
        opp = get(sb, f"/opportunities/{app.opportunity_id(2 * contact.index)}").json()["data"]
        assert reasons[opp["archived"]["reason"]]["type"] == "hired"
        offers = get(sb, f"/opportunities/{opp['id']}/offers").json()["data"]
        assert [o["status"] for o in offers] == ["signed"]
        fields = {f["identifier"]: f["value"] for f in offers[0]["fields"]}
        assert fields["legal_first_name"] == contact.legal_first
        assert isinstance(fields["anticipated_start_date"], int)  # epoch ms


def test_ugly_names_and_two_opportunities(sb: Sandbox, app: LeverApp) -> None:
    got = all_pages(sb, "/opportunities")
    names = {unicodedata.normalize("NFC", r["name"]).strip() for r in got}
    assert {"Zoë O'Brien-Łukasiewicz", "秀英 王", "Sukarno", "Giuseppe D\u2019Alessandro"} <= names
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for r in got:
        by_contact.setdefault(r["contact"], []).append(r)
    twice = [rs for rs in by_contact.values() if len(rs) == 2]
    assert twice
    assert all(sum(r["archived"] is not None for r in rs) >= 1 for rs in twice)


def test_expand_and_include(sb: Sandbox, app: LeverApp) -> None:
    rec = get(sb, "/opportunities", limit=1, expand="stage,owner").json()["data"][0]
    assert set(rec["stage"]) == {"id", "text"} and "email" in rec["owner"]
    slim = get(sb, "/opportunities", limit=1, include="name").json()["data"][0]
    assert set(slim) == {"id", "name"}
    assert get(sb, "/opportunities", expand="nonsense").status_code == 400


def test_rate_limit_answers_429_with_retry_after(sb: Sandbox, app: LeverApp) -> None:
    app.enforce_rate_limit = True
    codes = [get(sb, "/stages").status_code for _ in range(40)]
    assert 429 in codes
    assert codes[:20] == [200] * 20  # the burst
    limited = next(r for r in (get(sb, "/stages") for _ in range(5)) if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["code"] == "TooManyRequests"


def test_unknown_opportunity_is_a_404(sb: Sandbox, app: LeverApp) -> None:
    resp = get(sb, "/opportunities/not-an-id/offers")
    assert resp.status_code == 404
    assert resp.json()["code"] == "ResourceNotFound"


def _main_opportunities(sb: Sandbox) -> list[dict[str, Any]]:
    return [o for o in all_pages(sb, "/opportunities") if "rehire-candidate" not in o["tags"]]


def test_resumes_referrals_and_sources_answer_like_lever(sb: Sandbox, app: LeverApp) -> None:
    opportunities = _main_opportunities(sb)
    with_resume = without = referred = 0
    for opp in opportunities:
        body = get(sb, f"/opportunities/{opp['id']}/resumes").json()
        assert set(body) == {"data", "hasNext"} and body["hasNext"] is False
        for resume in body["data"]:
            assert set(resume) == {"id", "createdAt", "file", "parsedData"}
            assert set(resume["file"]) == {
                "name",
                "ext",
                "downloadUrl",
                "uploadedAt",
                "status",
                "size",
            }
            assert isinstance(resume["createdAt"], int)  # epoch ms, like every Lever timestamp
            assert resume["file"]["downloadUrl"].endswith(f"/resumes/{resume['id']}/download")
            assert set(resume["parsedData"]) == {"positions", "schools"}
            assert set(resume["parsedData"]["positions"][0]) >= {"org", "title", "start", "end"}
            assert set(resume["parsedData"]["schools"][0]) >= {"org", "degree", "field"}
        with_resume += bool(body["data"])
        without += not body["data"]
        refs = get(sb, f"/opportunities/{opp['id']}/referrals").json()
        assert set(refs) == {"data", "hasNext"}
        if refs["data"]:
            (ref,) = refs["data"]
            referred += 1
            assert opp["origin"] == "referred" and opp["sources"] == ["Referral"]
            assert ref["type"] == "referral" and ref["referrer"] == ref["user"]
            assert {f["text"] for f in ref["fields"]} >= {"Name of referrer"}
            assert {"instructions", "baseTemplateId", "stage", "createdAt", "completedAt"} <= set(
                ref
            )
        else:
            assert opp["origin"] != "referred"
    assert with_resume and without and referred  # every case is in the seeded world
    # sources: {text, count}, counting every opportunity, paged like any list
    sources = all_pages(sb, "/sources", limit=1)
    assert all(set(s) == {"text", "count"} for s in sources)
    everything = all_pages(sb, "/opportunities")
    assert {s["text"]: s["count"] for s in sources} == {
        text: sum(o["sources"] == [text] for o in everything)
        for text in {o["sources"][0] for o in everything}
    }
    # sub-lists page with the same opaque token; an unknown opportunity is Lever's 404
    first = get(sb, "/sources", limit=1).json()
    assert first["hasNext"] is True and not first["next"].isdigit()
    missing = get(sb, "/opportunities/00000000-0000-0000-0000-000000000000/resumes")
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFound"
    assert get(sb, "/sources", bogus="1").status_code == 400


def test_offers_carry_signatures(sb: Sandbox, app: LeverApp) -> None:
    seen = set()
    for opp in _main_opportunities(sb):
        for offer in get(sb, f"/opportunities/{opp['id']}/offers").json()["data"]:
            sig = offer["signatures"]["candidate"]
            assert set(sig) == {
                "role",
                "name",
                "email",
                "firstOpenedAt",
                "lastOpenedAt",
                "signedAt",
                "signed",
            }
            assert sig["role"] == "candidate" and sig["name"] == opp["name"]
            assert sig["signed"] is (offer["status"] == "signed")
            assert (sig["signedAt"] is not None) is sig["signed"]
            assert (offer["signedDocument"] is not None) is sig["signed"]
            seen.add(offer["status"])
    assert seen >= {"signed", "sent"}
