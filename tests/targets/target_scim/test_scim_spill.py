"""The plan is kept in memory below the spill's budget and in a sealed file beyond it, read back
a chunk at a time: the result on the server must depend on neither. Two tenants of the same
real scim2-server get the same feeds, one in memory with the default chunk (the whole test
batch in one chunk), one with chunks of 3 (every batch, wave and Bulk request crosses chunk
boundaries) and a budget of a few rows (the spill moves to its sealed file during the first
records); the users on the servers and the outcomes must be equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scim2_models import EnterpriseUser

from hrsync import spill

Person = Any  # conftest.person: an identity record with defaults


def _feed_one(person: Person) -> list[dict[str, Any]]:
    people = [person(f"E{i:02d}", manager_employee_id=f"E{i - 1:02d}") for i in range(1, 13)]
    people.reverse()  # reports before their managers: managers must still be created first
    people.append(person("E00"))
    people.append(person("CA", manager_employee_id="CB"))  # a reporting cycle
    people.append(person("CB", manager_employee_id="CA"))
    people.append(person("GONE", employment_status="Inactive"))  # no account: skipped
    people.append(person("NONAME", user_name=None, work_email=None))  # cannot be created
    people.append(person("E05", title="Principal"))  # a later record for E05 wins
    return people


def _feed_two(person: Person) -> list[dict[str, Any]]:
    people = [person(f"E{i:02d}", manager_employee_id=f"E{i - 1:02d}") for i in range(1, 12)]
    people[3]["department"] = "Platform"  # a mover
    people[4]["manager_employee_id"] = "N2"  # now reports to a newcomer
    people[6]["termination_date"] = "2020-06-30"  # a leaver
    people += [person("E00"), person("N1", manager_employee_id="N2"), person("N2")]
    return people  # E12, CA, CB absent: full-feed mode deactivates them


def _state(scim: Any) -> dict[str, tuple[Any, ...]]:
    users = scim.users()
    by_id = {u.id: key for key, u in users.items()}
    out = {}
    for key, u in users.items():
        ent = u[EnterpriseUser]
        manager = by_id.get(ent.manager.value) if ent and ent.manager else None
        out[key] = (
            u.user_name,
            u.display_name,
            u.title,
            u.active,
            ent.department if ent else None,
            manager,
            sorted(e.value for e in u.emails or []),
        )
    return out


def test_small_chunks_give_the_same_users_as_one_chunk(
    scim: Any, scim_twin: Any, make_person: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = scim_twin
    config = {"bulk_max_operations": 2, "max_concurrency": 2}
    full = {**config, "deactivate_missing_users": True, "max_deactivation_share": 1.0}
    monkeypatch.delenv(spill.ENV_MEMORY_MB, raising=False)  # in memory
    whole = [scim.run(_feed_one(make_person), **config), scim.run(_feed_two(make_person), **full)]
    monkeypatch.setattr(spill, "CHUNK", 3)
    monkeypatch.setenv(spill.ENV_MEMORY_MB, "0.002")  # 2 KiB: a few rows, then the sealed file
    chunked = [twin.run(_feed_one(make_person), **config), twin.run(_feed_two(make_person), **full)]

    for a, b in zip(whole, chunked, strict=True):
        assert a.summary.outcomes == b.summary.outcomes
        assert sorted(f.message() for f in a.summary.failures) == sorted(
            f.message() for f in b.summary.failures
        )
    assert whole[0].summary.outcomes == {"created": 15}
    assert [f.employee_id for f in whole[0].summary.failures] == ["NONAME"]
    assert whole[1].summary.outcomes == {"created": 2, "updated": 2, "deactivated": 4}
    state = _state(scim)
    assert state == _state(twin)
    assert state["E01"][5] == "E00" and state["E12"][3] is False  # chain kept, E12 gone
    assert state["E05"][2] == "Engineer" and state["E05"][5] == "N2"  # now under a newcomer
    assert state["N1"][5] == "N2" and state["E07"][3] is False
    assert {state["CA"][5], state["CB"][5]} <= {"CA", "CB", None}


@pytest.mark.parametrize("budget", [None, "0", "0.0001"], ids=["memory", "file", "moves"])
def test_the_plan_store_file_holds_no_personal_data_in_clear(
    budget: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory nothing reaches the disk; in the file (from the start, or after the budget
    is passed during the listing) nothing personal is in clear; the answers are the same."""
    from target_scim.planstore import PlanStore
    from target_scim.users import DesiredUser

    if budget is None:
        monkeypatch.delenv(spill.ENV_MEMORY_MB, raising=False)
    else:
        monkeypatch.setenv(spill.ENV_MEMORY_MB, budget)
    store = PlanStore()
    record = {"name": "Zelda Quixote", "email": "zelda.quixote@corp.example"}
    values = {"userName": "zquixote", "emails": record["email"]}
    store.add(DesiredUser("iam_users", "EMP7731", values, True, "EMP9902", record))
    store.add_account("EMP7731", "zquixote", {"id": "scim-uuid-4411", "userName": "zquixote"})
    store.add_account("EMP5500", "obrien", {"id": "scim-uuid-5500", "userName": "obrien"})
    store.put_match("EMP7731", None, "userName zquixote is taken")
    store.put_id("EMP7731", "scim-uuid-4411", "written")
    store.add_create(1, "EMP7731", "EMP9902")
    assert store.spill.spilled is (budget is not None)
    if budget is None:
        assert list(Path(store.spill.folder).iterdir()) == []
    else:
        store.db.execute("COMMIT")
        store.db.execute("BEGIN")
        raw = store.spill.path.read_bytes()
        for clear in (b"EMP7731", b"EMP9902", b"EMP5500", b"Quixote", b"corp.example"):
            assert clear not in raw
        assert b"zquixote" not in raw and b"scim-uuid" not in raw and b"obrien" not in raw
    # and everything still reads back
    assert list(store.batch()) == [("iam_users", "EMP7731")]
    assert store.get_id("EMP7731", "written") == "scim-uuid-4411"
    assert store.match("EMP7731") == (None, "userName zquixote is taken")
    assert store.unknown_managers() == ["EMP9902"]
    assert [[ext for ext, _ in c] for c in store.unclaimed_accounts()] == [["EMP5500"]]
    assert (store.account_by_name("zquixote") or {})["id"] == "scim-uuid-4411"
    assert store.levels() == 1
    store.close()
