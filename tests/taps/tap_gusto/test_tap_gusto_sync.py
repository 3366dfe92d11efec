"""tap-gusto against the Gusto fake over HTTP: every employee, job, compensation and
termination read back once, the HRIS key, the rotating refresh token, faults."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.taps.tap_gusto.gusto_seed import FUTURE, PAST, PEOPLE, seed, tap_config
from tests.taps.tap_gusto.record_bytes import FIXTURE, NUMBERED, numbered, record_bytes
from tests.taps.tapkit import Messages, records, sync

from sandbox.gusto import Gusto
from sandbox.server import Sandbox
from tap_gusto.tap import TapGusto

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(employees=20, vendors=("gusto",)) as sandbox:
        sandbox.apps["gusto"].seeded_ids = seed(sandbox)  # type: ignore[attr-defined]
        yield sandbox


@pytest.fixture
def app(sb: Sandbox) -> Iterator[Gusto]:
    app = sb.apps["gusto"]
    assert isinstance(app, Gusto)
    yield app
    sb.faults.reset()
    sb.faults.retry_after = 1


def run_tap(config: dict[str, Any]) -> Messages:
    return sync(TapGusto(config=config, parse_env_config=False))


def test_every_employee_and_what_hangs_off_it_is_read_back_once(
    sb: Sandbox, app: Gusto, tmp_path: Path
) -> None:
    msgs = run_tap(tap_config(sb, tmp_path / "token.json", page_size=3))
    ids: dict[str, str] = app.seeded_ids  # type: ignore[attr-defined]
    employees = records(msgs, "employees")
    assert sorted(e["uuid"] for e in employees) == sorted(ids.values())  # 8 over 3 pages
    by_hris = {e["hris_employee_id"]: e for e in employees}
    assert set(by_hris) == {p[0] for p in PEOPLE}  # the hand-made one has None
    assert (by_hris["E200"]["first_name"], by_hris["E200"]["last_name"]) == (
        "Zoë",
        "O'Brien-Łukasiewicz",
    )
    terminated = {k for k, e in by_hris.items() if e["terminated"]}
    assert terminated == {"E201"}  # E202 leaves in the future, E203 was rehired
    assert all("ssn" not in e and "jobs" not in e for e in employees)

    jobs = records(msgs, "jobs")
    assert len(jobs) == len(PEOPLE) + 1
    mine = sorted((j["title"], j["primary"]) for j in jobs if j["employee_uuid"] == ids["E200"])
    assert mine == [("Engineer", True), ("Mentor", False)]
    first_location = app.locations[0]
    assert all(j["location"]["name"] == first_location["name"] for j in jobs)
    assert all("compensations" not in j for j in jobs)

    comps = records(msgs, "compensations")
    engineer = next(j for j in jobs if j["employee_uuid"] == ids["E200"] and j["primary"])
    assert sorted(
        (c["effective_date"], c["rate"]) for c in comps if c["job_uuid"] == engineer["uuid"]
    ) == [(min(c["effective_date"] for c in comps), "85000.00"), (PAST, "92000.00")]
    assert {c["flsa_status"] for c in comps} >= {"Exempt"}

    terms = {
        (t["employee_uuid"], t["effective_date"], t["run_termination_payroll"])
        for t in records(msgs, "terminations")
    }
    assert (ids["E201"], PAST, True) in terms and (ids["E202"], FUTURE, False) in terms
    assert len(terms) == 3

    # every child names a parent that was emitted (singer-sdk emits a parent's children just
    # before the parent record itself)
    employee_ids = {e["uuid"] for e in employees}
    assert {j["employee_uuid"] for j in jobs} <= employee_ids
    assert {t["employee_uuid"] for t in records(msgs, "terminations")} <= employee_ids
    assert {c["job_uuid"] for c in comps} == {j["uuid"] for j in jobs}
    # one SCHEMA per stream, not one per parent record (singer-sdk's default for children)
    schemas = [m["stream"] for m in msgs if m["type"] == "SCHEMA"]
    assert len(schemas) == len(set(schemas)) == 5


@pytest.mark.parametrize(
    "deselect",
    [(), ("jobs",), ("employees",), ("compensations", "terminations"), ("locations", "jobs")],
)
def test_every_stream_writes_the_same_record_bytes_as_before(
    sb: Sandbox, app: Gusto, tmp_path: Path, deselect: tuple[str, ...]
) -> None:
    """fixtures/records.json: the RECORD lines of each stream as tap-gusto wrote them when
    every embedded child was a singer-sdk child sync; the children are now synced from the
    employee pass, and each stream's lines must stay the same bytes in the same order. A
    deselected stream writes nothing; a selected child of a deselected parent still gets its
    records (singer-sdk syncs a deselected parent that has selected descendants)."""
    before: dict[str, list[str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    expected = numbered({k: v for k, v in before.items() if k not in deselect}, NUMBERED)
    got = record_bytes(tap_config(sb, tmp_path / "token.json", page_size=3), deselect)
    assert got == expected


def test_without_embedded_lists_the_children_ask_their_endpoints(
    sb: Sandbox, app: Gusto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tap_config(sb, tmp_path / "token.json")
    embedded = run_tap(config)
    # an API version whose employee and job lists leave out what they hold
    stripped = {
        "employees": ("jobs", "terminations"),
        "jobs": ("compensations",),
        "compensations": (),
        "terminations": (),
    }
    asked: list[str] = []

    def strip(handler: Any, keys: tuple[str, ...]) -> Any:
        def answer(req: Any, **kw: str) -> Any:
            resp = handler(req, **kw)
            asked.append(req.path.rsplit("/", 1)[-1])
            for item in resp.body if isinstance(resp.body, list) else []:
                for key in keys:
                    item.pop(key, None)
            return resp

        return answer

    routes = []
    for method, regex, handler in app._routes:
        last = regex.pattern.rstrip("/?$").rsplit("/", 1)[-1]
        if method == "GET" and last in stripped:
            handler = strip(handler, stripped[last])
        routes.append((method, regex, handler))
    monkeypatch.setattr(app, "_routes", routes)
    writes_before = len(app.writes)
    bare = run_tap(config)
    for stream in ("jobs", "compensations", "terminations"):
        assert sorted(r["uuid"] for r in records(bare, stream)) == sorted(
            r["uuid"] for r in records(embedded, stream)
        )
    assert len(app.writes) == writes_before
    n = len(PEOPLE)  # one request per employee for each, one per job for compensations
    assert (asked.count("jobs"), asked.count("terminations")) == (n, n)
    assert asked.count("compensations") == n + 1


def test_the_rotated_refresh_token_is_kept_and_a_valid_access_token_reused(
    sb: Sandbox, app: Gusto, tmp_path: Path
) -> None:
    token_file = tmp_path / "gusto" / "token.json"
    config = tap_config(sb, token_file)
    grants = app.token_grants
    run_tap(config)
    assert app.token_grants == grants + 1
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    saved = token_file.read_text()
    assert config["refresh_token"] not in saved  # spent: the rotated one is kept
    run_tap(config)  # the stored access token is still valid: no refresh at all
    assert app.token_grants == grants + 1
    app.expire_tokens()  # revoked or expired early: 401, refresh with the stored token, go on
    employees = records(run_tap(config), "employees")
    assert len(employees) == len(PEOPLE)
    assert app.token_grants == grants + 2


def test_a_spent_refresh_token_fails_with_a_specific_error(
    sb: Sandbox, app: Gusto, tmp_path: Path
) -> None:
    config = tap_config(sb, tmp_path / "a.json")
    run_tap(config)  # spends config["refresh_token"]
    other = {**config, "token_file": str(tmp_path / "b.json")}
    with pytest.raises(Exception, match=r"invalid_grant.*a refresh token works once") as err:
        run_tap(other)
    assert config["client_secret"] not in str(err.value)


def test_429_with_retry_after_and_5xx_are_retried_and_nothing_is_lost(
    sb: Sandbox, app: Gusto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sb.faults.retry_after = 0
    sb.faults.script = ["429", "503", "ok", "500", "429", "ok", "drop", "ok", "502"]
    with caplog.at_level(logging.WARNING):
        msgs = run_tap(tap_config(sb, tmp_path / "token.json", page_size=2))
    assert sorted(e["uuid"] for e in records(msgs, "employees")) == sorted(
        app.seeded_ids.values()  # type: ignore[attr-defined]
    )
    assert sb.faults.script == []
    assert "Retrying GET" in caplog.text


def test_a_gusto_error_is_named_with_its_category(sb: Sandbox, app: Gusto, tmp_path: Path) -> None:
    config = tap_config(sb, tmp_path / "token.json", company_uuid="not-our-company")
    with pytest.raises(
        Exception, match=r"404 Not Found for GET /v1/companies/not-our-company/locations: "
        r"\[not_found\] company_uuid: Company not-our-company not found"
    ):  # fmt: skip
        run_tap(config)


def test_a_new_vendor_field_is_reported_once_and_left_out(
    sb: Sandbox, app: Gusto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    render = app.render_employee

    def with_extra(emp: dict[str, Any], *args: Any) -> dict[str, Any]:
        return {**render(emp, *args), "pronouns": "they/them"}

    monkeypatch.setattr(app, "render_employee", with_extra)
    with caplog.at_level(logging.WARNING):
        employees = records(run_tap(tap_config(sb, tmp_path / "token.json")), "employees")
    assert len(employees) == len(PEOPLE)
    assert all("pronouns" not in e for e in employees)
    assert len([r for r in caplog.records if "pronouns" in r.getMessage()]) == 1


def test_meltano_yml_shares_the_targets_token_file() -> None:
    """Gusto's refresh tokens work once: tap-gusto must find the one target-payroll-api kept."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    plugins = {p["name"]: p for kind in ("extractors", "loaders") for p in project["plugins"][kind]}
    target = plugins["target-payroll-api"]["settings"]
    kept = next(s["value"] for s in target if s["name"] == "token_file")
    assert plugins["tap-gusto"]["config"]["token_file"] == kept


#: one refresh in a process of its own: target-payroll-api's client or tap-gusto's authenticator
_REFRESH = """
import json, pathlib, sys, time
from target_payroll_api.client import GustoClient
from tap_gusto.client import RefreshTokenAuthenticator
config = json.loads(sys.argv[2])
go = pathlib.Path(sys.argv[3])
print("ready", flush=True)
while not go.exists():  # every process starts its refresh at the same moment
    time.sleep(0.001)
if sys.argv[1] == "target":
    print(GustoClient(config).access_token())
else:
    auth = RefreshTokenAuthenticator(
        token_url=config["api_url"] + "/oauth/token", client_id=config["client_id"],
        client_secret=config["client_secret"], refresh_token=config["refresh_token"],
        token_file=config["token_file"],
    )
    auth.update_access_token()
    print(auth.access_token)
"""


def test_the_tap_and_the_target_sharing_a_token_file_never_spend_one_refresh_token_twice(
    sb: Sandbox, app: Gusto, tmp_path: Path
) -> None:
    """Gusto's refresh tokens work once. tap-gusto (the reconcile job) and target-payroll-api
    share one token file; both refresh only under the file's lock after re-reading it, so when
    they find an expired token at the same moment exactly one refresh happens and the others
    take its access token. (Without the lock, one spends the token the other is about to send:
    invalid_grant, and the authorisation is lost.)"""
    import json
    import subprocess
    import sys

    config = tap_config(sb, tmp_path / "shared-token.json")
    grants = app.token_grants
    for round_ in range(1, 4):
        app.expire_tokens()
        if round_ > 1:  # the stored access token is expired too: every process must refresh
            saved = json.loads((tmp_path / "shared-token.json").read_text())
            (tmp_path / "shared-token.json").write_text(json.dumps({**saved, "expires_at": 0}))
        go = tmp_path / f"go-{round_}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _REFRESH, kind, json.dumps(config), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for kind in ("target", "tap") * 3
        ]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n", proc.communicate()[1][-2000:]
        go.touch()
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        assert [code for code, _, err in results] == [0] * 6, [err[-800:] for _, _, err in results]
        assert len({out.strip() for _, out, _ in results}) == 1  # one access token for all
        assert app.token_grants == grants + round_
