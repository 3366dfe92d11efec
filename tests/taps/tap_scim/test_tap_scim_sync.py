"""tap-scim against the real scim2-server: paging, incremental runs, what other servers do
differently (fewer resources than asked, no meta.lastModified, no filtering), HTTPS, and what
target-scim wrote read back in SCIM's own shape."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from tests.taps.tap_scim.scimkit import ENTERPRISE, TOKEN, Proxy, Seeder, new_tenant
from tests.taps.tapkit import final_state, records, sync
from tests.tlskit import CA

from hrsync.shapes import UnexpectedPage
from sandbox.directories import ScimServer
from tap_scim.tap import TapSCIM

ROOT = Path(__file__).resolve().parents[3]


def tap(url: str, state: dict[str, Any] | None = None, **config: Any) -> TapSCIM:
    settings = {"base_url": url, "bearer_token": TOKEN, "page_size": 10, **config}
    return TapSCIM(config=settings, state=state, parse_env_config=False)


def test_every_page_is_read_once_in_scims_own_shape(proxy: Proxy) -> None:
    tenant = new_tenant()
    seed = Seeder(proxy.url(tenant))
    users = seed.users(25)
    group = seed.group("engineering", users[:3])
    messages = sync(tap(proxy.url(tenant)))
    rows = records(messages, "users")
    assert sorted(r["id"] for r in rows) == sorted(u["id"] for u in users)  # each once
    first = next(r for r in rows if r["id"] == users[0]["id"])
    assert first["userName"] == "user001@example.com" and first["externalId"] == "E001"
    assert first["active"] is True and first["name"]["familyName"] == "Family1"
    assert first["emails"] == [{"value": "user001@example.com", "type": "work", "primary": True}]
    assert first[ENTERPRISE] == {"employeeNumber": "N001", "department": "Engineering"}
    assert (
        first["lastModified"] == first["meta"]["lastModified"] == users[0]["meta"]["lastModified"]
    )
    assert first.get("groups") in (None, [{"value": group["id"]}])  # scim2-server: none
    assert all("password" not in r for r in rows)
    starts = [q["startIndex"] for q in proxy.lists("/Users")]
    assert starts == [["1"], ["11"], ["21"]]  # 25 users, 10 a page, each page once
    (engineering,) = records(messages, "groups")
    assert {m["value"] for m in engineering["members"]} == {u["id"] for u in users[:3]}
    schema = next(m for m in messages if m["type"] == "SCHEMA" and m["stream"] == "users")
    assert schema["key_properties"] == ["id"]
    assert schema["bookmark_properties"] == ["lastModified"]


def test_a_server_returning_fewer_than_asked_is_paged_by_what_it_returned(
    proxy: Proxy,
) -> None:
    tenant = new_tenant()
    users = Seeder(proxy.url(tenant)).users(11)

    def at_most_three(method: str, path: str, body: Any) -> Any:
        if "/Users?" in path and body.get("Resources"):
            body["Resources"] = body["Resources"][:3]
            body["itemsPerPage"] = len(body["Resources"])
        return body

    proxy.rewrite = at_most_three
    rows = records(sync(tap(proxy.url(tenant))), "users")
    assert sorted(r["id"] for r in rows) == sorted(u["id"] for u in users)
    assert [q["startIndex"] for q in proxy.lists("/Users")] == [["1"], ["4"], ["7"], ["10"]]


def test_an_empty_page_before_total_results_stops_the_extract(proxy: Proxy) -> None:
    tenant = new_tenant()
    Seeder(proxy.url(tenant)).users(12)

    def short(method: str, path: str, body: Any) -> Any:
        if "startIndex=11" in path:
            body["Resources"], body["itemsPerPage"] = [], 0
        return body

    proxy.rewrite = short
    with pytest.raises(UnexpectedPage, match=r"totalResults is 12 but the page at startIndex 11"):
        sync(tap(proxy.url(tenant)))


def test_the_next_run_filters_on_meta_last_modified(proxy: Proxy) -> None:
    tenant = new_tenant()
    seed = Seeder(proxy.url(tenant))
    users = seed.users(12)
    # SCIM stamps are whole seconds: a run in the second of the seeding rightly reads that
    # second again next time (nothing lost at the window's edge); start in the next one
    time.sleep(1.1)
    state = final_state(sync(tap(proxy.url(tenant))))
    bookmark = state["bookmarks"]["users"]["replication_key_value"]
    assert bookmark == max(u["meta"]["lastModified"] for u in users)
    assert all("filter" not in q for q in proxy.lists("/Users"))  # first run: in full
    time.sleep(1.1)  # the change, too, in a second of its own
    changed = seed.replace(users[4], title="Staff Engineer", active=False)
    proxy.requests.clear()
    rows = records(sync(tap(proxy.url(tenant), state=state)), "users")
    assert [(r["id"], r["title"], r["active"]) for r in rows] == [
        (changed["id"], "Staff Engineer", False)
    ]
    (query,) = proxy.lists("/Users")
    assert query["filter"][0].startswith('meta.lastModified gt "')
    assert query["filter"][0].endswith('Z"')


def test_a_refused_filter_falls_back_to_a_full_read(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = new_tenant()
    seed = Seeder(proxy.url(tenant))
    users = seed.users(5)
    state = final_state(sync(tap(proxy.url(tenant))))
    seed.replace(users[1], title="Manager")

    def refuse(method: str, path: str) -> tuple[int, Any] | None:
        if "filter=" in path:
            error = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "meta.lastModified is not filterable",
            }
            return 400, error
        return None

    proxy.answer = refuse
    proxy.requests.clear()
    with caplog.at_level(logging.WARNING):
        rows = records(sync(tap(proxy.url(tenant), state=state)), "users")
    # read in full; the run's window still keeps only what changed since the bookmark
    assert [(r["id"], r["title"]) for r in rows] == [(users[1]["id"], "Manager")]
    queries = proxy.lists("/Users")
    assert "filter" in queries[0] and all("filter" not in q for q in queries[1:])
    assert any("refused the meta.lastModified filter" in r.getMessage() for r in caplog.records)


def test_a_server_that_cannot_filter_is_read_in_full(proxy: Proxy) -> None:
    tenant = new_tenant()
    seed = Seeder(proxy.url(tenant))
    users = seed.users(4)

    def no_filtering(method: str, path: str, body: Any) -> Any:
        if path.endswith("/ServiceProviderConfig"):
            body["filter"] = {"supported": False, "maxResults": 2}
        return body

    proxy.rewrite = no_filtering
    time.sleep(1.1)  # whole-second stamps: the run and the change each in a second of its own
    state = final_state(sync(tap(proxy.url(tenant))))
    time.sleep(1.1)
    seed.replace(users[3], title="Lead")
    rows = records(sync(tap(proxy.url(tenant), state=state)), "users")
    assert [(r["id"], r["title"]) for r in rows] == [(users[3]["id"], "Lead")]
    queries = proxy.lists("/Users")
    assert all("filter" not in q for q in queries)
    assert {q["count"][0] for q in queries} == {"2"}  # filter.maxResults caps the page size


def test_a_server_without_last_modified_is_read_in_full_every_run(proxy: Proxy) -> None:
    tenant = new_tenant()
    users = Seeder(proxy.url(tenant)).users(3)

    def no_stamps(method: str, path: str, body: Any) -> Any:
        for resource in body.get("Resources") or []:
            resource.get("meta", {}).pop("lastModified", None)
        return body

    proxy.rewrite = no_stamps
    first = sync(tap(proxy.url(tenant)))
    assert [r["lastModified"] for r in records(first, "users")] == [None] * 3
    again = records(sync(tap(proxy.url(tenant), state=final_state(first))), "users")
    assert sorted(r["id"] for r in again) == sorted(u["id"] for u in users)
    assert all("filter" not in q for q in proxy.lists("/Users"))


def test_a_password_a_server_returns_is_never_emitted(proxy: Proxy) -> None:
    tenant = new_tenant()
    Seeder(proxy.url(tenant)).users(2)

    def leaky(method: str, path: str, body: Any) -> Any:
        for resource in body.get("Resources") or []:
            resource["password"] = "{SSHA}leaked-hash"
        return body

    proxy.rewrite = leaky
    out = io.StringIO()
    rows = records(sync(tap(proxy.url(tenant))), "users")
    assert len(rows) == 2
    out.write(json.dumps(rows))
    assert "password" not in out.getvalue() and "leaked-hash" not in out.getvalue()


def test_over_https_with_the_servers_ca(
    scim_upstream: ScimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = CA(tmp_path / "ca")
    front = Proxy(scim_upstream.port, cert=ca.issue("127.0.0.1"))
    try:
        tenant = new_tenant()
        Seeder(front.url(tenant), verify=str(ca.ca_file)).users(3)
        assert front.url(tenant).startswith("https://")
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            sync(tap(front.url(tenant), max_retries=1))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_file))
        assert len(records(sync(tap(front.url(tenant))), "users")) == 3
    finally:
        front.close()


def test_a_wrong_token_fails_naming_the_endpoint(proxy: Proxy) -> None:
    tenant = new_tenant()
    Seeder(proxy.url(tenant)).users(1)
    with pytest.raises(Exception, match=r"401 .*GET /.*/v2/Users") as failure:
        sync(tap(proxy.url(tenant), bearer_token="wrong-token-123"))
    assert "wrong-token-123" not in str(failure.value)


def test_what_target_scim_wrote_reads_back(proxy: Proxy) -> None:
    """The read-back contract hrsync reconcile relies on: target-scim's users come back with
    externalId = employee id, and a leaver deactivated by the target reads active false."""
    from target_scim.target import TargetSCIM

    tenant = new_tenant()
    schema = json.loads(
        (ROOT / "tests/targets/target_scim/iam_users.schema.json").read_text(encoding="utf-8")
    )

    def person(eid: str, **extra: Any) -> dict[str, Any]:
        return {
            "employee_id": eid,
            "employee_number": f"N-{eid}",
            "user_name": f"{eid.lower()}@example.com",
            "work_email": f"{eid.lower()}@example.com",
            "given_name": f"Given{eid}",
            "family_name": f"Family{eid}",
            "title": "Engineer",
            "department": "Engineering",
            "employment_status": "Active",
            "hire_date": "2020-01-06",
            **extra,
        }

    people = [
        person("E1"),
        person("E2", title="Designer"),
        person("E3", employment_status="Terminated", termination_date="2021-03-31"),
    ]

    def provision(people: list[dict[str, Any]]) -> None:
        lines = [{"type": "SCHEMA", "stream": "iam_users", "schema": schema,
                  "key_properties": ["employee_id"]}]  # fmt: skip
        lines += [{"type": "RECORD", "stream": "iam_users", "record": p} for p in people]
        target = TargetSCIM(
            config={
                "base_url": proxy.url(tenant),
                "bearer_token": TOKEN,
                "organization": "Acme",
                "allow_mass_deactivation": True,
            },
            validate_config=True,
        )
        target.listen(file_input=io.StringIO("".join(json.dumps(m) + "\n" for m in lines)))

    provision(people)
    rows = {r["externalId"]: r for r in records(sync(tap(proxy.url(tenant))), "users")}
    assert set(rows) == {"E1", "E2"}  # a leaver without an account gets none
    assert rows["E1"]["userName"] == "e1@example.com" and rows["E1"]["active"] is True
    assert rows["E2"]["title"] == "Designer"
    assert rows["E1"][ENTERPRISE]["employeeNumber"] == "N-E1"
    provision([dict(people[0], employment_status="Terminated", termination_date="2021-03-31")])
    rows = {r["externalId"]: r for r in records(sync(tap(proxy.url(tenant))), "users")}
    assert (rows["E1"]["active"], rows["E2"]["active"]) == (False, True)


def test_a_server_without_total_results_is_paged_to_an_empty_page(proxy: Proxy) -> None:
    tenant = new_tenant()
    users = Seeder(proxy.url(tenant)).users(12)

    def no_total(method: str, path: str, body: Any) -> Any:
        if "/Users?" in path:
            body.pop("totalResults", None)
        return body

    proxy.rewrite = no_total
    rows = records(sync(tap(proxy.url(tenant))), "users")
    assert sorted(r["id"] for r in rows) == sorted(u["id"] for u in users)
    assert [q["startIndex"] for q in proxy.lists("/Users")] == [["1"], ["11"], ["13"]]


def test_an_attribute_the_schema_lacks_is_reported_once_and_left_out(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = new_tenant()
    Seeder(proxy.url(tenant)).users(3)

    def extension(method: str, path: str, body: Any) -> Any:
        for resource in body.get("Resources") or []:
            resource["urn:example:params:scim:schemas:extension:acme:2.0:User"] = {"badge": "7"}
        return body

    proxy.rewrite = extension
    with caplog.at_level(logging.WARNING):
        rows = records(sync(tap(proxy.url(tenant))), "users")
    assert len(rows) == 3 and all(not any("acme" in k for k in r) for r in rows)
    drift = [r.getMessage() for r in caplog.records if "acme" in r.getMessage()]
    assert len(drift) == 1 and "Schema drift in stream 'users'" in drift[0]
