# ruff: noqa: RUF001  (look-alike letters are the point)
"""The pieces of target-benefits-834 that need no server: X12 text, control numbers, members."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrsync.errors import RecordError
from target_benefits_834.control import ControlNumberError, ControlNumbers
from target_benefits_834.members import dependant, election, subscriber
from target_benefits_834.x12 import SEPARATORS, Untransliterable, segment, x12_text


@pytest.mark.parametrize(
    ("raw", "x12"),
    [
        ("Zoë O'Brien-Łukasiewicz", "ZOE OBRIEN-LUKASIEWICZ"),
        ("D’Alessandro", "DALESSANDRO"),  # typographic apostrophe
        ("Ærø", "AERO"),
        ("Nguyễn", "NGUYEN"),
        ("Ó_Súilleabháin", "O SUILLEABHAIN"),
        ("Şebnem Öztürk", "SEBNEM OZTURK"),
        ("Мария Иванова", "MARIYA IVANOVA"),
        ("Παπαδόπουλος", "PAPADOPOYLOS"),
        ("  Rene\u0301e  ", "RENEE"),  # decomposed accent, stray spaces
        ("Groß", "GROSS"),
    ],
)
def test_names_become_x12_basic_characters(raw: str, x12: str) -> None:
    assert x12_text(raw, kind="name") == x12


@pytest.mark.parametrize("raw", ["王", "العلي", "김"])
def test_scripts_without_a_spelling_are_refused(raw: str) -> None:
    with pytest.raises(Untransliterable):
        x12_text(raw, kind="name")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_no_text_ever_carries_a_separator(raw: str) -> None:
    for kind in ("name", "text", "id"):
        try:
            out = x12_text(raw, kind=kind, max_len=35)
        except Untransliterable:
            continue
        assert not SEPARATORS & set(out)
        assert out.isascii() and out == out.strip() and len(out) <= 35
        segment("NM1", "IL", "1", out)  # never refused


def test_a_separator_inside_an_element_is_refused() -> None:
    with pytest.raises(ValueError, match="separator"):
        segment("NM1", "IL", "1", "SMITH~DROP")


def _reserve(path: str) -> list[int]:
    return [ControlNumbers(path).reserve(3) for _ in range(20)]


def test_control_numbers_are_unique_across_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "control-number")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        firsts = [n for batch in pool.map(_reserve, [path] * 4) for n in batch]
    numbers = [n + i for n in firsts for i in range(3)]
    assert len(numbers) == len(set(numbers)) == 240
    assert ControlNumbers(path).last() == 240


def test_control_numbers_never_wrap(tmp_path: Path) -> None:
    path = tmp_path / "control-number"
    path.write_text("999999998\n")
    assert ControlNumbers(path).reserve() == 999_999_999
    with pytest.raises(ControlNumberError, match="exhausted"):
        ControlNumbers(path).reserve()
    path.write_text("twelve\n")
    with pytest.raises(ControlNumberError, match="not a number"):
        ControlNumbers(path).reserve()


def test_members_name_the_record_field_and_reason() -> None:
    with pytest.raises(RecordError, match="record 7: field date_of_birth"):
        subscriber({"employee_id": "7", "last_name": "Ng", "date_of_birth": "31/02/1990"})
    with pytest.raises(RecordError, match="field relationship"):
        dependant(
            {"dependent_id": "9", "employee_id": "7", "last_name": "Ng", "relationship": "cousin"}
        )
    with pytest.raises(RecordError, match="field insurance_line"):
        election({"election_id": "1", "plan_id": "11", "start_date": "2024-01-01"})
    with pytest.raises(RecordError, match="ends before it begins"):
        election({"election_id": "1", "plan_id": "11", "insurance_line": "HLT",
                  "start_date": "2024-02-01", "end_date": "2024-01-01"})  # fmt: skip


def test_mononym_and_missing_fields_still_make_a_member() -> None:
    member = subscriber({"employee_id": "7", "first_name": "Sukarno", "last_name": ""})
    assert (member["last"], member["first"], member["dob"], member["gender"]) == (
        "SUKARNO",
        "",  # NM104 is situational: a single name is NM103 alone
        None,
        "U",
    )
    assert member["address"] is None
    # the HRIS form of a mononym (first = last, as BambooHR stores it) is the same single name
    hris = subscriber({"employee_id": "7", "first_name": "Teller", "last_name": "Teller"})
    assert (hris["last"], hris["first"]) == ("TELLER", "")
    nm1 = segment("NM1", "IL", "1", hris["last"], hris["first"], hris["middle"], "", "", "", "")
    assert nm1.rstrip("~") == "NM1*IL*1*TELLER"
    assert election({"election_id": "1", "plan_id": "11", "status": "Waived"}) is None


def test_two_runs_of_one_feed_never_overlap(tmp_path: Path) -> None:
    import logging

    from target_benefits_834.run import ConcurrentRun, Run

    config = {"work_dir": str(tmp_path), "dead_letter_path": str(tmp_path / "dlq.sqlite")}
    first = Run(config, logging.getLogger("test"))
    try:
        with pytest.raises(ConcurrentRun, match="must not overlap"):
            Run(config, logging.getLogger("test"))
    finally:
        first.close()
    Run(config, logging.getLogger("test")).close()  # free again once the first has finished
