# ruff: noqa: RUF001  (typographic apostrophes in names are the point)
"""A sandbox world from a people file: both formats, the hard cases, and specific errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import requests

from sandbox.bamboohr import person_fields, table_rows
from sandbox.people import PeopleFileError, PeopleWorld, load_people
from sandbox.server import Sandbox

HERE = Path(__file__).parent / "people"
AS_OF = date(2026, 11, 15)


@pytest.fixture(scope="module")
def csv_world() -> PeopleWorld:
    return PeopleWorld.from_file(HERE / "hard_cases.csv", as_of=AS_OF)


def test_csv_export_becomes_people_in_file_order(csv_world: PeopleWorld) -> None:
    ids = [csv_world.source_id(k) for k in range(1, csv_world.employees + 1)]
    assert ids == ["1001", "1002", "1003", "1004", "1005", "1006", "2006", "1007"]
    zoe = csv_world.person(1)
    assert (zoe.first_name, zoe.last_name, zoe.employee_number) == (
        "Zoë",
        "O'Brien-Łukasiewicz",
        "E-1001",
    )
    assert csv_world.person(2).last_name == "D’Alessandro"
    assert csv_world.person(2).positions[0].reports_to == 1  # supervisorEId, renumbered
    assert (csv_world.person(3).first_name, csv_world.person(3).last_name) == ("秀英", "王")
    teller = csv_world.person(4)
    assert teller.first_name == teller.last_name == "Teller"  # the HRIS's form of a mononym
    assert csv_world.person(8).work_email == "ana.souza@@acme"  # kept: the pipelines must cope


def test_two_rows_of_one_hire_are_two_positions_primary_first(csv_world: PeopleWorld) -> None:
    aoife = csv_world.person(5)
    assert [(p.job_title, p.primary) for p in aoife.positions] == [
        ("Software Engineer", True),
        ("Sales Engineer", False),
    ]
    rows = table_rows(aoife, "jobInfo")  # what the BambooHR fake serves
    assert [r["jobTitle"] for r in rows] == ["Software Engineer", "Sales Engineer"]
    assert person_fields(aoife)["jobTitle"] == "Software Engineer"
    pay = [r["rate"] for r in table_rows(aoife, "compensation")]
    assert pay == [
        {"value": "140000.00", "currency": "USD"},
        {"value": "20000.00", "currency": "USD"},
    ]


def test_a_rehire_under_a_new_id_is_another_employee_with_the_same_address(
    csv_world: PeopleWorld,
) -> None:
    old, new = csv_world.person(6), csv_world.person(7)
    assert (old.status, new.status) == ("Inactive", "Active")
    assert old.work_email == new.work_email == "kai.lindqvist@acme.example"
    assert old.termination_date == date(2023, 6, 30) and new.termination_date is None


def test_canonical_json_lines_with_positions_employments_and_dependants() -> None:
    world = PeopleWorld.from_file(HERE / "hard_cases.jsonl", as_of=AS_OF)
    sean, madonna = world.person(1), world.person(2)
    assert [p.job_title for p in sean.positions] == ["Nurse", "Trainer"]
    assert sean.positions[0].pay_rate == 91000 and sean.address is not None
    assert sean.address.postal_code == "94105"
    # a rehire under the same id: two employments, the latest is current
    assert [e.hire_date for e in madonna.employments] == [date(2015, 1, 5), date(2019, 1, 7)]
    assert madonna.status == "Active" and madonna.original_hire_date == date(2015, 1, 5)
    with Sandbox(world=world, vendors=("bamboohr",)) as sb:
        info = sb.info()["bamboohr"]
        deps = requests.get(
            f"{info['api_url']}/employeedependents",
            params={"employeeid": "1"},
            auth=(info["api_key"], "x"),
            headers={"Accept": "application/json"},
            timeout=10,
        )
        assert deps.status_code == 200, deps.text
        names = [(d["firstName"], d["relationship"]) for d in deps.json()["Employee Dependents"]]
        assert names == [("Siobhán", "spouse")]  # the file's, not seeded ones
        assert sb.apps["bamboohr"].benefits.dependants(2) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "firstName,lastName\nAna,Souza\n",
            "people.csv:1: field id: the header must name an id column",
        ),
        (
            "id,firstName,lastName,hireDate\n,Ana,Souza,2020-01-01\n",
            "people.csv:2: field id: required",
        ),
        (
            "id,firstName,lastName,hireDate\n7,,,2020-01-01\n",
            "people.csv:2: field lastName: no name",
        ),
        (
            "id,firstName,hireDate\n7,Ana,31/31/2020\n",
            "people.csv:2: field hireDate: '31/31/2020' is not",
        ),
        ("id,firstName,hireDate\n7,Ana,\n", "people.csv:2: field hireDate: required"),
        ("id,firstName,hireDate,payRate\n7,Ana,2020-01-01,lots\n", "field payRate: 'lots' is not"),
        (
            "id,firstName,hireDate,terminationDate\n7,Ana,2020-01-01,2019-01-01\n",
            "field terminationDate: 2019-01-01 is before the hire date",
        ),
    ],
)
def test_bad_csv_names_line_field_and_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "people.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PeopleFileError, match=r"people\.csv:") as caught:
        load_people(path)
    assert message in str(caught.value)


def test_bad_json_lines_name_line_field_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text(
        '{"id": "1", "first_name": "A", "hire_date": "2020-01-01"}\n'
        '{"id": "1", "first_name": "B", "hire_date": "2020-01-01"}\n',
        encoding="utf-8",
    )
    with pytest.raises(PeopleFileError, match=r"people.jsonl:2: field id: '1' is on line 1"):
        load_people(path)
    path.write_text('{"id": "2", "first_name": "A", "hire_date": "2020-01-01",\n')
    with pytest.raises(PeopleFileError, match=r"people.jsonl:1: not JSON"):
        load_people(path)
    path.write_text(
        '{"id": "3", "first_name": "A", "hire_date": "2020-01-01", '
        '"dependants": [{"first_name": "B", "relationship": "cousin"}]}\n'
    )
    with pytest.raises(PeopleFileError, match=r"dependants\[0\].relationship: must be spouse"):
        load_people(path)
