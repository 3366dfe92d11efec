"""The swap, one step at a time: the same seeded people read by tap-hibob and by tap-bamboohr
(each from its sandbox fake, over HTTP) become the same canonical workers through
hibob_to_canonical and bamboohr_to_canonical, and the unchanged downstream profiles
(hris_to_iam, hris_to_lms, hris_to_analytics) send the destinations the same records.

The differences that are the vendors' own, and only those, are allowed: HiBob keeps one
effective work entry (no concurrent positions), has no original hire date or ATS candidate
field, numbers employees its own way, stamps no last change, and has its own manager flag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.taps.tapkit import sync

from sandbox.server import Sandbox
from tap_bamboohr.tap import TapBambooHR
from tap_hibob.tap import TapHibob

Run = Callable[..., list[dict[str, Any]]]
#: canonical fields only one of the two HRIS has (see the module docstring)
OWN_FIELDS = {"source_system", "employee_number", "original_hire_date", "ats_candidate_id",
              "updated_at", "is_manager"}  # fmt: skip


@pytest.fixture(scope="module")
def sources() -> Iterator[tuple[Sandbox, list[dict[str, Any]], list[dict[str, Any]]]]:
    with Sandbox(employees=60, vendors=("hibob", "bamboohr")) as sb:
        info = sb.info()
        hibob = sync(
            TapHibob(
                config={k: info["hibob"][k] for k in ("api_url", "service_user_id", "token")},
                parse_env_config=False,
            )
        )
        bamboo_tap = TapBambooHR(
            config={"api_url": info["bamboohr"]["api_url"], "api_key": info["bamboohr"]["api_key"]},
            parse_env_config=False,
        )
        for name, stream in bamboo_tap.streams.items():  # what the hris jobs select
            if name not in ("employees", "job_info"):
                stream.selected = False
        yield sb, hibob, sync(bamboo_tap)


def workers(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["record"]["id"]: m["record"] for m in messages if m["type"] == "RECORD"}


def keyed(messages: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(m["record"][key]): m["record"] for m in messages if m["type"] == "RECORD"}


def test_both_hris_give_the_same_canonical_workers(sources: Any, run_inprocess: Run) -> None:
    sb, hibob, bamboo = sources
    from_hibob = workers(run_inprocess({"profile": "hibob_to_canonical"}, hibob))
    from_bamboo = workers(run_inprocess({"profile": "bamboohr_to_canonical"}, bamboo))
    assert set(from_hibob) == set(from_bamboo) == {str(p.employee_id) for p in sb.world.people()}
    for p in sb.world.people():
        h, b = from_hibob[str(p.employee_id)], from_bamboo[str(p.employee_id)]
        assert h["source_system"] == "hibob"
        if len(p.positions) > 1:  # HiBob: the primary position only
            assert h["positions"] == b["positions"][:1]
            h, b = {**h, "positions": None}, {**b, "positions": None}
        same = {k: v for k, v in h.items() if k not in OWN_FIELDS}
        assert same == {k: v for k, v in b.items() if k not in OWN_FIELDS}, p.employee_id
    managers = {w["manager_id"] for w in from_hibob.values() if w.get("manager_id")}
    assert {k for k, w in from_hibob.items() if w["is_manager"]} == managers


@pytest.mark.parametrize(
    ("profile", "key"),
    [("hris_to_iam", "employee_id"), ("hris_to_lms", "worker_id"),
     ("hris_to_analytics", "employee_key")],
)  # fmt: skip
def test_downstream_profiles_send_the_same_records(
    sources: Any, run_inprocess: Run, profile: str, key: str
) -> None:
    sb, hibob, bamboo = sources
    canonical_h = run_inprocess({"profile": "hibob_to_canonical"}, hibob)
    canonical_b = run_inprocess({"profile": "bamboohr_to_canonical"}, bamboo)
    out_h = keyed(run_inprocess({"profile": profile}, canonical_h), key)
    out_b = keyed(run_inprocess({"profile": profile}, canonical_b), key)
    assert out_h.keys() == out_b.keys() and out_h
    two = {str(p.employee_id) for p in sb.world.people() if len(p.positions) > 1}
    for k, rec in out_b.items():
        expected = dict(rec)
        if "positions" in expected and k in two:
            expected["positions"] = []  # the second position is not in HiBob
        # HiBob's own numbers, and its own manager flag (BambooHR has none, so target-moodle
        # derives it from manager_id: the same people, as the first test shows)
        own = ("employee_number", "is_manager")
        expected = {f: v for f, v in expected.items() if f not in own}
        got = {f: v for f, v in out_h[k].items() if f not in own}
        assert got == expected, k
