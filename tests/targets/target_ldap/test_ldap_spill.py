"""The batch, the directory and the plan are kept in memory below the spill's budget and in a
sealed file beyond it, read back a chunk at a time: the directory a run leaves must depend
on neither. Two real slapd servers get the same feeds, one in memory with the default chunk
(the whole test batch in one chunk), one with chunks of 3 (every read, placement, wave and
write crosses chunk boundaries) and a budget of a few rows (the spill moves to its sealed
file during the first records); the entries (every attribute), the groups and the outcomes
must be equal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap_testkit import DISABLED, SUFFIX, RunTarget, Slapd, openldap_config, person, start_slapd

from hrsync import spill


def _feed_one() -> list[dict[str, Any]]:
    chain = [person("C0", "Chief", "Exec")]
    chain += [
        person(f"C{i}", "Level", f"No{i}", manager_employee_id=f"C{i - 1}") for i in range(1, 9)
    ]
    people = list(reversed(chain))  # reports first: managers must still be created first
    people += [
        person("L1", "Loop", "One", manager_employee_id="L2"),  # a reporting cycle
        person("L2", "Loop", "Two", manager_employee_id="L1"),
        person("S1", "Sam", "Sales", department="Sales", title="Engineering Manager"),
        person("S2", "Ana", "Lima", department="Sales"),
        person("S3", "Ana", "Lima", department="Sales"),  # same login: gets another one
        person("X1", "Old", "Timer", employment_status="Inactive"),  # no account: skipped
        person("C3", "Level", "No3", manager_employee_id="C2", title="Staff"),  # later wins
    ]
    return people


def _feed_two() -> list[dict[str, Any]]:
    people = [person("C0", "Chief", "Exec")]
    people += [
        person(f"C{i}", "Level", f"No{i}", manager_employee_id=f"C{i - 1}") for i in range(1, 8)
    ]
    people[2]["department"] = "Sales"  # a mover: new OU, groups follow
    people[4]["termination_date"] = "2020-06-30"  # a leaver: to the disabled OU
    people[5]["manager_employee_id"] = "N1"  # now reports to a newcomer
    people += [
        person("N1", "New", "Comer"),
        person("R1", "Ana", "Lima", department="Sales", prior_employee_id="S2"),  # rehire
        person("S2", "Ana", "Lima", department="Sales", employment_status="Inactive"),
        person("S3", "Ana", "Lima", department="Sales"),
    ]
    return people  # C8, L1, L2, S1 absent: full-feed mode disables them


OPERATIONAL = {
    "createtimestamp",
    "modifytimestamp",
    "creatorsname",
    "modifiersname",
    "entrycsn",
    "entryuuid",
}


def _state(server: Slapd) -> dict[str, Any]:
    """Every entry with its attributes, less the server's own (timestamps, UUIDs)."""
    return {
        dn: {k: v for k, v in sorted(attrs.items()) if k.lower() not in OPERATIONAL}
        for dn, attrs in server.entries(SUFFIX, "(objectClass=*)").items()
    }


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path / "twin")
    yield server
    server.stop()


def _runs(server: Slapd, tmp_path: Path, run_target: RunTarget) -> list[Any]:
    config = openldap_config(server, tmp_path)
    full = dict(config, deactivate_missing_users=True, max_deactivation_share=1.0)
    return [run_target(config, _feed_one()), run_target(full, _feed_two())]


def test_small_chunks_give_the_same_directory_as_one_chunk(
    slapd: Slapd,
    twin: Slapd,
    tmp_path: Path,
    run_target: RunTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(spill.ENV_MEMORY_MB, raising=False)
    whole = _runs(slapd, tmp_path, run_target)
    monkeypatch.setattr(spill, "CHUNK", 3)
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "0.002")  # 2 KiB: a few rows, then the file
    chunked = _runs(twin, tmp_path, run_target)

    for a, b in zip(whole, chunked, strict=True):
        assert a.summary.outcomes == b.summary.outcomes
        assert sorted(f.message() for f in a.summary.failures) == sorted(
            f.message() for f in b.summary.failures
        )
        assert a.summary.plan.skipped == b.summary.plan.skipped
    state = _state(slapd)
    assert state == _state(twin)
    assert whole[0].summary.outcomes == {"created": 14, "group_added": 29}
    assert whole[1].summary.outcomes == {
        "created": 1,
        "updated": 4,
        "disabled": 5,
        "group_added": 4,
        "group_removed": 13,
    }
    assert whole[1].summary.plan.skipped == [
        ("S2", "rehired as employee R1: the account is theirs")
    ]

    def eid(number: str) -> tuple[str, dict[str, Any]]:
        return next((dn, a) for dn, a in state.items() if a.get("employeeNumber") == [number])

    assert {eid(n)[0].split(",", 1)[1] for n in ("C4", "C8", "L1", "L2", "S1")} == {
        DISABLED.lower()
    }
    assert eid("C5")[1]["manager"][0].lower().startswith("uid=new.comer,")
    assert eid("R1")[0].startswith("uid=ana.lima,ou=sales,")  # S2's account followed R1
    assert eid("S3")[0].startswith("uid=ana.limas3,")
    sales = state[f"cn=sales,ou=groups,{SUFFIX}".lower()]
    assert len(sales["member"]) == 3  # C2 moved in; R1, S3; S1 left on disable


@pytest.mark.parametrize("budget", [None, "0", "0.0001"], ids=["memory", "file", "moves"])
def test_the_plan_store_file_holds_no_personal_data_in_clear(
    budget: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory nothing reaches the disk; in the file (from the start, or after the budget
    is passed during the directory read) nothing personal is in clear; the answers are the
    same."""
    from target_ldap.naming import dn_key
    from target_ldap.people import DesiredPerson
    from target_ldap.planstore import PlanStore
    from target_ldap.provision import Account

    if budget is None:
        monkeypatch.delenv(spill.ENV_MEMORY_MB, raising=False)
    else:
        monkeypatch.setenv(spill.ENV_MEMORY_MB, budget)
    store = PlanStore()
    fields = {"display_name": "Zelda Quixote", "work_email": "zelda.quixote@corp.example"}
    store.add(DesiredPerson("iam", "EMP7731", True, fields, "zquixote", "EMP9902", [], fields))
    dn = "uid=zquixote,ou=People,dc=corp,dc=example"
    account = Account(dn, {"uid": ["zquixote"], "employeenumber": ["EMP5500"]})
    n = store.add_account("EMP5500", dn_key(dn), account)
    store.add_login("zquixote")
    store.add_by_login("zquixote", n)
    store.add_holder(dn_key(dn), "EMP5500")
    store.index()
    store.add_newcomer("EMP7731", 1)
    store.place("EMP7731", None, "zquixote2", dn.replace("zquixote", "zquixote2"), "k")
    store.add_create(1, "EMP7731", "EMP9902")
    store.add_create(2, "EMP9902", "EMP7731")  # a reporting cycle
    store.set_final("EMP7731", dn_key(dn), dn)
    assert store.spill.spilled is (budget is not None)
    if budget is None:
        assert list(Path(store.spill.folder).iterdir()) == []
    else:
        store.db.execute("COMMIT")
        store.db.execute("BEGIN")
        raw = store.spill.path.read_bytes()
        for clear in (b"EMP7731", b"EMP9902", b"EMP5500", b"Quixote", b"corp", b"zquixote"):
            assert clear not in raw
    assert list(store.batch()) == [("iam", "EMP7731")]
    assert store.login_taken("zquixote") and not store.login_taken("other")
    assert store.by_login("zquixote").dn == dn
    assert store.holder(dn_key(dn)) == "EMP5500"
    assert [[eid for _, eid, _ in c] for c in store.unique_accounts()] == [["EMP5500"]]
    assert [[p.employee_id for p in c] for c in store.newcomers()] == [["EMP7731"]]
    assert store.placement("EMP7731") == (dn.replace("zquixote", "zquixote2"), True)
    assert store.final_of("EMP7731") == dn and store.final_by_dnkey(dn_key(dn)) == dn
    # the cycle comes back in clear, to be broken by the caller
    assert store.levels() == (0, [("EMP7731", 1, "EMP9902"), ("EMP9902", 2, "EMP7731")])
    store.close()
