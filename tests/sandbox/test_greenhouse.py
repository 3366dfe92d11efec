"""The Greenhouse Harvest v3 fake over real HTTP: OAuth, cursor paging, filters, limits, shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.greenhouse import GreenhouseApp, iso_ms, opening_id
from sandbox.httpbase import Faults, serve
from sandbox.seed import CANDIDATE_BASE, World
from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=60, vendors=("greenhouse",)) as sandbox:
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[GreenhouseApp]:
    app = sb.apps["greenhouse"]
    assert isinstance(app, GreenhouseApp)
    yield app
    app.token_ttl, app.token_max_uses, app.enforce_rate_limit = 3600, None, False
    sb.faults.reset()


def get_token(sb: Sandbox, **form: str) -> requests.Response:
    creds = sb.credentials["greenhouse"]
    secret = form.pop("secret", creds["client_secret"])
    data = {"grant_type": "client_credentials", "sub": creds["user_id"], **form}
    return requests.post(
        f"{sb.greenhouse_url}/token",
        auth=(creds["client_id"], secret),
        data=data,
        timeout=10,
    )


@pytest.fixture
def auth(sb: Sandbox, app: GreenhouseApp) -> dict[str, str]:
    return {"Authorization": "Bearer " + get_token(sb).json()["access_token"]}


def get(sb: Sandbox, path: str, auth: dict[str, str], **params: Any) -> requests.Response:
    return requests.get(f"{sb.greenhouse_url}{path}", params=params, headers=auth, timeout=10)


def walk(sb: Sandbox, resource: str, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every record of a listing, following Link rel=next exactly as given."""
    resp = get(sb, f"/v3/{resource}", auth, **params)
    records: list[dict[str, Any]] = []
    while True:
        assert resp.status_code == 200, resp.text
        records.extend(resp.json())
        nxt = resp.links.get("next", {}).get("url")
        if not nxt:
            return records
        resp = requests.get(nxt, headers=auth, timeout=10)


# --- OAuth --------------------------------------------------------------------------------


def test_token_is_a_short_lived_bearer_jwt(sb: Sandbox, app: GreenhouseApp) -> None:
    resp = get_token(sb)
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    header, payload, _ = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == sb.credentials["greenhouse"]["user_id"]
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"sub": ""}, 400, "invalid_request"),
        ({"sub": "999999"}, 400, "invalid_request"),
    ],
)
def test_token_errors(
    sb: Sandbox, app: GreenhouseApp, form: dict[str, str], status: int, error: str
) -> None:
    resp = get_token(sb, **form)
    assert (resp.status_code, resp.json()["error"]) == (status, error)
    assert "access_token" not in resp.json()


def test_missing_invalid_and_expired_tokens_get_401(sb: Sandbox, app: GreenhouseApp) -> None:
    assert get(sb, "/v3/candidates", {}).status_code == 401
    bad = get(sb, "/v3/candidates", {"Authorization": "Bearer nope"})
    assert (bad.status_code, bad.json()) == (401, {"message": "Invalid access token"})
    app.token_ttl = 0
    stale = {"Authorization": "Bearer " + get_token(sb).json()["access_token"]}
    expired = get(sb, "/v3/candidates", stale)
    assert (expired.status_code, expired.json()) == (401, {"message": "Access token expired"})


def test_token_max_uses_expires_a_token_mid_listing(
    sb: Sandbox, app: GreenhouseApp, auth: dict[str, str]
) -> None:
    app.token_max_uses = 2
    assert get(sb, "/v3/users", auth).status_code == 200
    assert get(sb, "/v3/users", auth).status_code == 200
    assert get(sb, "/v3/users", auth).json() == {"message": "Access token expired"}


# --- paging ---------------------------------------------------------------------------------


def test_cursor_paging_returns_every_record_once_in_id_order(
    sb: Sandbox, auth: dict[str, str]
) -> None:
    records = walk(sb, "candidates", auth, per_page=7)
    ids = [r["id"] for r in records]
    assert ids == sorted(set(ids))
    assert len(ids) == sb.world.candidates
    assert ids[0] == CANDIDATE_BASE + 1


def test_default_page_size_and_last_page_has_no_link(sb: Sandbox, auth: dict[str, str]) -> None:
    first = get(sb, "/v3/candidates", auth)
    assert len(first.json()) == min(100, sb.world.candidates)
    small = get(sb, "/v3/departments", auth)
    assert "Link" not in small.headers
    assert len(small.json()) == len(sb.world.departments)


@pytest.mark.parametrize("per_page", ["0", "501", "ten"])
def test_per_page_out_of_range_is_422(sb: Sandbox, auth: dict[str, str], per_page: str) -> None:
    resp = get(sb, "/v3/candidates", auth, per_page=per_page)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "per_page"


def test_cursor_must_be_the_only_query_parameter(sb: Sandbox, auth: dict[str, str]) -> None:
    first = get(sb, "/v3/candidates", auth, per_page=5, updated_at="gte|2000-01-01T00:00:00Z")
    nxt = first.links["next"]["url"]
    assert set(requests.utils.urlparse(nxt).query.split("=")[0:1]) == {"cursor"}
    for extra in ("&per_page=5", "&updated_at=gte|2000-01-01T00:00:00Z"):
        resp = requests.get(nxt + extra, headers=auth, timeout=10)
        assert resp.status_code == 422
        assert "cursor must be the only query parameter" in resp.json()["errors"][0]["message"]
    # the cursor alone carries per_page and the filter
    assert len(requests.get(nxt, headers=auth, timeout=10).json()) == 5


def test_bad_cursors_are_422(sb: Sandbox, auth: dict[str, str]) -> None:
    nxt = get(sb, "/v3/offers", auth, per_page=2).links["next"]["url"]
    cursor = nxt.split("cursor=")[1]
    assert get(sb, "/v3/offers", auth, cursor="garbage!").status_code == 422
    wrong = get(sb, "/v3/candidates", auth, cursor=cursor)
    assert wrong.status_code == 422
    assert "belongs to /v3/offers" in wrong.json()["errors"][0]["message"]


def test_unknown_parameters_are_422(sb: Sandbox, auth: dict[str, str]) -> None:
    resp = get(sb, "/v3/candidates", auth, updated_after="2024-01-01T00:00:00Z")
    assert resp.status_code == 422
    assert resp.json() == {
        "message": "Validation error",
        "errors": [
            {"message": "unknown query parameter for /v3/candidates", "field": "updated_after"}
        ],
    }


# --- filters ------------------------------------------------------------------------------


def test_updated_at_operators_compare_on_the_shown_millisecond(
    sb: Sandbox, app: GreenhouseApp, auth: dict[str, str]
) -> None:
    cand = sb.world.update_candidate(CANDIDATE_BASE + 5, title="Staff Engineer")
    shown = iso_ms(cand.updated_at)  # the stamp may carry microseconds the API doesn't show

    def ids(filt: str) -> set[int]:
        return {r["id"] for r in walk(sb, "candidates", auth, updated_at=filt, per_page=500)}

    assert cand.id in ids(f"gte|{shown}")
    assert cand.id not in ids(f"gt|{shown}")
    assert cand.id in ids(f"lte|{shown}")
    assert cand.id not in ids(f"lt|{shown}")
    assert ids(f"gte|{shown}|lte|{shown}") == {cand.id}
    everything = ids("gte|2000-01-01T00:00:00Z")
    assert len(everything) == sb.world.candidates


def test_bad_filters_name_the_field(sb: Sandbox, auth: dict[str, str]) -> None:
    for filt, text in (
        ("after|2024-01-01T00:00:00Z", "unknown operator"),
        ("gte|yesterday", "not an ISO 8601 timestamp"),
        ("gte", "operator|timestamp pairs"),
    ):
        resp = get(sb, "/v3/offers", auth, updated_at=filt)
        assert resp.status_code == 422
        err = resp.json()["errors"][0]
        assert err["field"] == "updated_at" and text in err["message"]


def test_created_at_ids_and_parent_filters(sb: Sandbox, auth: dict[str, str]) -> None:
    world = sb.world
    some = [CANDIDATE_BASE + k for k in (3, 1, 40)]
    got = walk(sb, "candidates", auth, ids=",".join(map(str, some)), per_page=2)
    assert [r["id"] for r in got] == sorted(some)
    cutoff = world.candidate(CANDIDATE_BASE + 30).created_at
    created = walk(sb, "candidates", auth, created_at=f"gte|{iso_ms(cutoff)}", per_page=500)
    assert created
    assert all(r["created_at"] >= iso_ms(cutoff) for r in created)
    offers = walk(sb, "offers", auth, candidate_ids=str(CANDIDATE_BASE + 1))
    assert [o["candidate_id"] for o in offers] == [CANDIDATE_BASE + 1]
    accepted = walk(sb, "offers", auth, status="accepted", per_page=500)
    assert accepted and {o["status"] for o in accepted} == {"Accepted"}


# --- rate limits and faults --------------------------------------------------------------


def test_rate_limit_headers_and_enforced_429(
    sb: Sandbox, app: GreenhouseApp, auth: dict[str, str]
) -> None:
    app.rate_limit = 3
    app.enforce_rate_limit = True
    try:
        seen = [get(sb, "/v3/users", auth) for _ in range(4)]
    finally:
        app.rate_limit = 50
    assert [r.headers.get("X-RateLimit-Remaining") for r in seen[:3]] == ["2", "1", "0"]
    limited = seen[3]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert int(limited.headers["X-RateLimit-Reset"]) > 1_000_000_000
    assert limited.headers["X-RateLimit-Limit"] == "3"


def test_injected_faults_are_greenhouse_shaped(
    sb: Sandbox, app: GreenhouseApp, auth: dict[str, str]
) -> None:
    sb.faults.retry_after = 2
    sb.faults.script[:] = ["429", "503"]
    r429 = get(sb, "/v3/offers", auth)
    assert (r429.status_code, r429.headers["Retry-After"]) == (429, "2")
    assert "message" in r429.json()
    r503 = get(sb, "/v3/offers", auth)
    assert (r503.status_code, r503.json()) == (503, {"message": "Service Unavailable"})
    assert get_token(sb).status_code == 200  # the token endpoint is never faulted


# --- record shapes ------------------------------------------------------------------------


def test_candidate_shape_keeps_raw_names_and_typed_contacts(
    sb: Sandbox, auth: dict[str, str]
) -> None:
    world = sb.world
    by_id = {r["id"]: r for r in walk(sb, "candidates", auth, per_page=500)}
    for cid, rec in by_id.items():
        cand = world.candidate(cid)
        assert (rec["first_name"], rec["last_name"]) == (cand.first_name, cand.last_name)
        types = {e["type"]: e["value"] for e in rec["email_addresses"]}
        assert types.get("personal") == cand.email and types.get("work") == cand.work_email
        assert rec["phone_numbers"] == (
            [{"value": cand.phone, "type": "mobile"}] if cand.phone else []
        )
        assert rec["updated_at"] == iso_ms(cand.updated_at)
    zoe = by_id[CANDIDATE_BASE + 1]
    assert (zoe["first_name"], zoe["last_name"]) == ("Zoë", "O'Brien-Łukasiewicz")
    assert by_id[CANDIDATE_BASE + 4]["first_name"] == "秀英"
    assert "application_ids" not in zoe  # v3 leaves child ids out of parents


def test_offer_shape(sb: Sandbox, auth: dict[str, str]) -> None:
    world = sb.world
    offers = walk(sb, "offers", auth, per_page=500)
    assert {o["status"] for o in offers} <= {"Created", "Accepted", "Rejected", "Deprecated"}
    for rec in offers:
        offer = world.offer(rec["id"])
        assert rec["starts_on"] == (offer.starts_on.isoformat() if offer.starts_on else None)
        assert rec["sent_on"] == (offer.sent_on.isoformat() if offer.sent_on else None)
        assert rec["opening_id"] == opening_id(offer.opening_id)
        salary = rec["custom_fields"].get("salary")
        if offer.salary is None:
            assert salary is None
        else:
            assert salary["type"] == "currency"
            assert str(salary["value"]["amount"]).rstrip("0").rstrip(".") == str(
                offer.salary
            ).rstrip("0").rstrip(".")
            assert salary["value"]["unit"] == offer.currency
    assert any(o["custom_fields"].get("salary") is None for o in offers)


def test_reference_shapes(sb: Sandbox, auth: dict[str, str]) -> None:
    world = sb.world
    jobs = walk(sb, "jobs", auth)
    assert [j["id"] for j in jobs] == sorted(j.id for j in world.jobs)
    job = world.jobs[0]
    assert jobs[0]["name"] == job.title and jobs[0]["office_ids"] == [job.office_id]
    offices = walk(sb, "offices", auth)
    zurich = next(o for o in offices if o["name"] == "Zürich")
    assert zurich["location"] == "Zürich, ZH, CH"
    users = walk(sb, "users", auth)
    assert {u["primary_email"] for u in users} == {u.email for u in world.users}


def test_pages_stay_cheap_in_a_million_employee_world() -> None:
    world = World(employees=1_000_000)
    creds = {"client_id": "c", "client_secret": "s", "user_id": str(world.users[0].id)}
    app = GreenhouseApp(world, creds)
    running = serve(app, Faults())
    try:
        token = requests.post(
            f"{running.url}/token",
            auth=("c", "s"),
            data={"grant_type": "client_credentials", "sub": creds["user_id"]},
            timeout=10,
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        late = iso_ms(world.base_updated_at("offers", world.candidates - 3))
        page = requests.get(
            f"{running.url}/v3/offers",
            params={"per_page": 500, "updated_at": f"gte|{late}"},
            headers=auth,
            timeout=30,
        )
        assert page.status_code == 200
        assert 1 <= len(page.json()) <= 4
        first = requests.get(
            f"{running.url}/v3/candidates", params={"per_page": 500}, headers=auth, timeout=30
        )
        assert len(first.json()) == 500 and "next" in first.links
    finally:
        running.stop()
