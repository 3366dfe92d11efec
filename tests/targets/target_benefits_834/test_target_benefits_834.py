# ruff: noqa: RUF001  (typographic apostrophes in names are the point)
"""target-benefits-834 against real things: the BambooHR sandbox through tap-bamboohr | map-hr,
a real sshd as the carrier's SFTP drop, a GnuPG key as the carrier's, and pyx12.

The tests run in order on one carrier (module fixture): first enrolment, re-run, marriage,
birth, termination, a broken file, a dead letter that a fixed record resolves.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from x12kit import (
    Carrier,
    loop_value,
    member_loops,
    segments,
)

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.sealing import TOKEN_PREFIX
from sandbox.benefits import Benefits
from target_benefits_834.document import validate
from target_benefits_834.fastcheck import fast_verdict

TODAY = dt.datetime.now(dt.UTC).date()
UNSPELLABLE = {4, 6, 24}  # 王, العلي, 김: no Latin spelling (dead-lettered)


def benefits(carrier: Carrier) -> Benefits:
    return carrier.sandbox.apps["bamboohr"].benefits  # type: ignore[attr-defined, no-any-return]


def covered_now(carrier: Carrier) -> set[int]:
    """Employees the HRIS has covered today or later (the first file's subscribers)."""
    out = set()
    for person in carrier.sandbox.world.people():
        elections = benefits(carrier).elections(person.employee_id)
        if any(e.end_date is None or e.end_date >= TODAY for e in elections):
            out.add(person.employee_id)
    return out


def pick(carrier: Carrier, used: set[int], *, married: bool | None = None) -> int:
    """An active, enrolled, Latin-named employee not used by another test."""
    b = benefits(carrier)
    for person in carrier.sandbox.world.people(29):
        k = person.employee_id
        deps = b.dependants(k)
        spouse = any(d.relationship == "spouse" for d in deps)
        if (
            k not in used
            and person.termination_date is None
            and person.hire_date < TODAY - dt.timedelta(days=60)
            and any(e.plan.id == 11 for e in b.elections(k))
            and (married is None or spouse == married)
        ):
            used.add(k)
            return k
    raise AssertionError("no suitable employee in the world")


def newest(carrier: Carrier, before: list[Path]) -> str:
    arrived = [p for p in carrier.arrived() if p not in before]
    assert len(arrived) == 1, arrived
    assert arrived[0].name.endswith(".x12.pgp")
    return carrier.decrypt(arrived[0])


def valid(text: str, tmp: Path) -> None:
    path = tmp / "check.x12"
    path.write_text(text, encoding="ascii")
    result = validate(path, full=True)  # pyx12 on every segment
    assert result.valid, result.errors
    assert fast_verdict(path).valid  # and the fast check agrees (test_fastcheck.py)


def by_subscriber(text: str) -> dict[str, list[list[list[str]]]]:
    out: dict[str, list[list[list[str]]]] = {}
    for loop in member_loops(text):
        ref = loop_value(loop, "REF", "0F")
        assert ref is not None
        out.setdefault(ref[2], []).append(loop)
    return out


USED: set[int] = set()


def test_first_run_enrols_every_covered_family(carrier: Carrier, tmp_path: Path) -> None:
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, [])
    valid(text, tmp_path)  # what arrived (decrypted) passes pyx12 too
    families = by_subscriber(text)
    assert {int(k) for k in families} == covered_now(carrier) - UNSPELLABLE
    for loops in families.values():
        assert all(loop[0][3] == "021" for loop in loops)  # INS03 addition
        assert loops[0][0][:3] == ["INS", "Y", "18"]  # subscriber first
    # compare with the source: names (transliterated), birth dates, plans and coverage levels
    b = benefits(carrier)
    for k, loops in families.items():
        person = carrier.sandbox.world.person(int(k))
        nm1 = loop_value(loops[0], "NM1", "IL")
        assert nm1 is not None
        if person.date_of_birth:
            dmg = loop_value(loops[0], "DMG")
            assert dmg is not None and dmg[2] == person.date_of_birth.strftime("%Y%m%d")
        lines = {seg[3]: seg[5] for seg in loops[0] if seg[0] == "HD"}
        expected = {
            {11: "HLT", 12: "DEN", 13: "VIS"}[e.plan.id]: {1: "EMP", 2: "ESP", 3: "ECH", 4: "FAM"}[
                e.coverage
            ]
            for e in b.elections(int(k))
        }
        assert lines == expected
        assert len(loops) - 1 == len(b.dependants(int(k)))  # FAM/ESP/ECH cover them all
    # accents and apostrophes became valid X12, dependants included
    jose = families["2"]
    assert loop_value(jose[0], "NM1", "IL")[3:6] == ["NUNEZ DE BALBOA", "JOSE", "MARIA"]  # type: ignore[index]
    assert loop_value(jose[1], "NM1", "IL")[3:5] == ["O SUILLEABHAIN", "PADRAIG"]  # type: ignore[index]
    assert "*" not in "".join(s[3] for loop in jose for s in loop if s[0] == "NM1" and len(s) > 3)
    maria = families["5"]  # Cyrillic, transliterated; her spouse Œdipe L'Heureux
    assert loop_value(maria[0], "NM1", "IL")[3:6] == ["IVANOVA", "MARIYA", "SERGEEVNA"]  # type: ignore[index]
    assert loop_value(maria[1], "NM1", "IL")[3:5] == ["LHEUREUX", "OEDIPE"]  # type: ignore[index]
    assert "'" not in text and "’" not in text
    # a mononym (first = last in the HRIS) is NM103 alone: NM104 (first name) is situational
    mononyms = [k for k in families if (p := carrier.sandbox.world.person(int(k))).first_name
                == p.last_name]  # fmt: skip
    assert mononyms
    for k in mononyms:
        nm1 = loop_value(families[k][0], "NM1", "IL")
        assert nm1 is not None and nm1[4:5] in ([], [""]), nm1


def test_unspellable_names_are_dead_lettered_with_the_reason(carrier: Carrier) -> None:
    letters = DeadLetterStore(carrier.workdir / "dlq.sqlite").list(plugin="target-benefits-834")
    subscribers = {int(d.record_key): d for d in letters if d.stream == "benefit_subscribers"}
    assert set(subscribers) == UNSPELLABLE & covered_now(carrier)
    assert "field last_name" in subscribers[4].error and "CJK" in subscribers[4].error
    assert "Arabic" in subscribers[6].error
    # their dependants wait with them, saying why
    deps = [d for d in letters if d.stream == "benefit_dependents"]
    assert deps and all("subscriber is undeliverable" in d.error for d in deps)


def test_rerun_sends_nothing(carrier: Carrier) -> None:
    before = carrier.arrived()
    audit = AuditLog.read(carrier.workdir / "audit.jsonl")
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    assert carrier.arrived() == before
    assert "nothing changed" in result.stderr
    assert AuditLog.read(carrier.workdir / "audit.jsonl") == audit


def test_marriage_adds_the_spouse_and_changes_the_subscriber(
    carrier: Carrier, tmp_path: Path
) -> None:
    k = pick(carrier, USED, married=False)
    wedding = TODAY - dt.timedelta(days=3)
    spouse = benefits(carrier).marry(k, wedding, "Anaïs", "D’Aubigné")
    before = carrier.arrived()
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, before)
    valid(text, tmp_path)
    loops = by_subscriber(text)
    assert list(loops) == [str(k)]  # only this family changed
    sub, *others = loops[str(k)]
    new = next(loop for loop in others if loop[0][2] == "01")
    # children, if any, move to the family level with a change
    assert all(loop[0][3] == "001" for loop in others if loop is not new)
    assert sub[0][:5] == ["INS", "Y", "18", "001", "32"]  # change, reason: marriage
    assert loop_value(sub, "DTP", "303")[3] == wedding.strftime("%Y%m%d")  # type: ignore[index]
    assert {s[5] for s in sub if s[0] == "HD"} <= {"ESP", "FAM"}
    assert new[0][:5] == ["INS", "N", "01", "021", "32"]  # spouse added, reason: marriage
    assert loop_value(new, "NM1", "IL")[3:5] == ["DAUBIGNE", "ANAIS"]  # type: ignore[index]
    assert all(s[3] == wedding.strftime("%Y%m%d") for s in new if s[:2] == ["DTP", "348"])
    assert spouse.relationship == "spouse"


def test_birth_adds_a_child(carrier: Carrier, tmp_path: Path) -> None:
    k = pick(carrier, USED)
    born = TODAY - dt.timedelta(days=1)
    benefits(carrier).birth(k, born, "Zoë")
    before = carrier.arrived()
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, before)
    valid(text, tmp_path)
    loops = by_subscriber(text)[str(k)]
    child = next(loop for loop in loops if loop[0][2] == "19" and loop[0][3] == "021")
    assert child[0][4] == "02"  # reason: birth
    assert loop_value(child, "DMG")[2] == born.strftime("%Y%m%d")  # type: ignore[index]
    assert loop_value(child, "NM1", "IL")[4] == "ZOE"  # type: ignore[index]
    assert loops[0][0][3:5] == ["001", "02"]


def test_termination_ends_the_family_coverage(carrier: Carrier, tmp_path: Path) -> None:
    k = pick(carrier, USED, married=True)
    last_day = TODAY - dt.timedelta(days=1)
    benefits(carrier).terminate(k, last_day)
    before = carrier.arrived()
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, before)
    valid(text, tmp_path)
    loops = by_subscriber(text)[str(k)]
    assert len(loops) == 1 + len(benefits(carrier).dependants(k))
    sub = loops[0]
    assert sub[0][:5] == ["INS", "Y", "18", "024", "08"] and sub[0][8] == "TE"
    assert loop_value(sub, "DTP", "357")[3] == last_day.strftime("%Y%m%d")  # type: ignore[index]
    for loop in loops:
        assert loop[0][3] == "024"
        hds = [s for s in loop if s[0] == "HD"]
        assert hds and all(s[1] == "024" for s in hds)
        assert all(s[3] == last_day.strftime("%Y%m%d") for s in loop if s[:2] == ["DTP", "349"])
    # and the next run is quiet again
    again = carrier.arrived()
    assert carrier.run_target(carrier.messages()).returncode == 0
    assert carrier.arrived() == again


def test_a_lone_surrogate_leaves_that_family_as_the_carrier_has_it(
    carrier: Carrier, tmp_path: Path
) -> None:
    """An election record with an unpaired surrogate is its own dead letter; its family is not
    planned this run (the feed is complete: planned without it, coverage would end), and
    another family's change still goes out. Before: UnicodeEncodeError, nothing sent."""
    changed, held = pick(carrier, USED), pick(carrier, USED)
    benefits(carrier).birth(changed, TODAY - dt.timedelta(days=1), "Ines")
    lines = carrier.messages().decode().splitlines()
    for i, line in enumerate(lines):
        message = json.loads(line)
        if message.get("stream") == "benefit_elections" and message.get("type") == "RECORD":
            record = message["record"]
            if record.get("employee_id") == str(held):
                record["note"] = {"from": ["HRIS \ud800"]}
                lines[i] = json.dumps(message)  # the JSON escape, as a tap would send it
                break
    else:
        raise AssertionError(f"no election of {held}")
    before = carrier.arrived()
    result = carrier.run_target(("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, before)
    valid(text, tmp_path)
    assert list(by_subscriber(text)) == [str(changed)]  # not a termination for the held one
    store = DeadLetterStore(carrier.workdir / "dlq.sqlite")
    [letter] = [x for x in store.list(plugin="target-benefits-834") if "surrogate" in x.error]
    assert (letter.stream, letter.record_key) == ("benefit_elections", record["election_id"])
    assert "field note.from[0]: unpaired UTF-16 surrogate" in letter.error
    assert letter.error_class == "unpaired_surrogate"
    store.discard(letter.id, "test: the record is fixed at the source")
    # the fixed feed: nothing to send for that family either (the carrier has it right)
    again = carrier.arrived()
    assert carrier.run_target(carrier.messages()).returncode == 0
    assert carrier.arrived() == again


def test_control_numbers_never_repeat_across_runs(carrier: Carrier) -> None:
    files = carrier.arrived()
    assert len(files) >= 4
    isa, gs, st = [], [], []
    for path in files:
        for seg in segments(carrier.decrypt(path)):
            if seg[0] == "ISA":
                isa.append(seg[13])
            elif seg[0] == "GS":
                gs.append(seg[6])
            elif seg[0] == "ST":
                st.append(seg[2])
    for numbers in (isa, gs, st):
        assert len(numbers) == len(set(numbers)) == len(files) or numbers is st
    assert len(st) == len(set(st))
    assert [int(n) for n in isa] == sorted(int(n) for n in isa)


def test_invalid_file_is_never_sent(carrier: Carrier) -> None:
    """A payer qualifier the 834 does not allow (N103 must be 94, FI or XV): pyx12 rejects
    the file, nothing reaches sshd, nothing is recorded, and the errors are shown."""
    k = pick(carrier, USED)
    benefits(carrier).birth(k, TODAY, "Noé")
    messages = carrier.messages()
    before = carrier.arrived()
    ledger = carrier.workdir / "work" / "ledger.sqlite"
    rows = sqlite3.connect(ledger).execute("SELECT COUNT(*) FROM members").fetchone()
    result = carrier.run_target(messages, payer_id_qualifier="ZZ")
    assert result.returncode == 1
    assert "failed pyx12 validation and was NOT sent" in result.stderr
    assert "(ZZ) is not a valid code" in result.stderr  # pyx12's own words
    assert carrier.arrived() == before
    assert sqlite3.connect(ledger).execute("SELECT COUNT(*) FROM members").fetchone() == rows
    # the same changes go out, once, when the configuration is fixed
    fixed = carrier.run_target(messages)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert len(carrier.arrived()) == len(before) + 1


def test_fixed_name_resolves_the_dead_letter(carrier: Carrier) -> None:
    carrier.sandbox.world.update_person(4, first_name="Xiuying", last_name="Wang")
    before = carrier.arrived()
    result = carrier.run_target(carrier.messages())
    assert result.returncode == 0, result.stderr[-3000:]
    text = newest(carrier, before)
    assert loop_value(by_subscriber(text)["4"][0], "NM1", "IL")[3:5] == ["WANG", "XIUYING"]  # type: ignore[index]
    waiting = DeadLetterStore(carrier.workdir / "dlq.sqlite").list(plugin="target-benefits-834")
    assert "4" not in {d.record_key for d in waiting if d.stream == "benefit_subscribers"}


@pytest.mark.parametrize("field", ["sftp_known_hosts_path"])
def test_unknown_host_key_sends_nothing(carrier: Carrier, tmp_path: Path, field: str) -> None:
    k = pick(carrier, USED)
    benefits(carrier).birth(k, TODAY, "Ève")
    (tmp_path / "known_hosts").write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH\n")
    before = carrier.arrived()
    result = carrier.run_target(carrier.messages(), **{field: str(tmp_path / "known_hosts")})
    assert result.returncode == 1
    assert carrier.arrived() == before


def _ledger_bytes(carrier: Carrier) -> bytes:
    base = carrier.workdir / "work" / "ledger.sqlite"
    return b"".join(
        Path(f"{base}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{base}{suffix}").exists()
    )


def test_a_key_seals_the_ledger_and_a_sealed_ledger_needs_it(carrier: Carrier) -> None:
    """Runs before had no key: the ledger kept SSNs readable. The first run with ledger_key
    seals every row (and rewrites the file); after that the ledger opens with that key only,
    and a run without it stops before sending anything instead of re-enrolling everyone."""
    ssns = {
        person.ssn.replace("-", "")
        for person in carrier.sandbox.world.people()
        if person.ssn and person.employee_id in covered_now(carrier) - UNSPELLABLE
    }
    raw = _ledger_bytes(carrier)
    assert any(ssn.encode() in raw for ssn in ssns)  # the plaintext this test is about

    messages = carrier.messages()
    sealed = carrier.run_target(messages, ledger_key="carrier-ledger-key")
    assert sealed.returncode == 0, sealed.stderr[-3000:]
    raw = _ledger_bytes(carrier)
    assert not any(ssn.encode() in raw for ssn in ssns)
    ledger = sqlite3.connect(carrier.workdir / "work" / "ledger.sqlite")
    snapshots = [bytes(r[0]) for r in ledger.execute("SELECT snapshot FROM members")]
    ledger.close()
    assert snapshots and all(s.startswith(TOKEN_PREFIX) for s in snapshots)  # sealed

    before = carrier.arrived()
    again = carrier.run_target(messages, ledger_key="carrier-ledger-key")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing changed" in again.stderr and carrier.arrived() == before

    for overrides, why in (
        ({}, "is sealed and no key is set"),
        ({"ledger_key": "guess"}, "another key"),
    ):
        refused = carrier.run_target(messages, **overrides)
        assert refused.returncode == 1
        assert why in refused.stderr and "ledger_key" in refused.stderr
        assert carrier.arrived() == before
