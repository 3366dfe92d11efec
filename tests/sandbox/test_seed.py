"""The seeded world: deterministic, consistent between ATS and HRIS, edge cases where promised."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox.seed import CANDIDATE_BASE, OFFER_BASE, World

AS_OF = date(2026, 11, 15)


@pytest.fixture(scope="module")
def world() -> World:
    return World(employees=400, as_of=AS_OF)


def test_deterministic() -> None:
    a, b = World(50, seed=3, as_of=AS_OF), World(50, seed=3, as_of=AS_OF)
    assert [a.person(i) for i in range(1, 51)] == [b.person(i) for i in range(1, 51)]
    assert World(50, seed=4, as_of=AS_OF).person(40) != a.person(40)


def test_hard_names_are_clean_in_hris_and_raw_in_ats(world: World) -> None:
    zoe = world.person(1)
    assert (zoe.first_name, zoe.last_name) == ("Zoë", "O'Brien-Łukasiewicz")
    renee = world.person(10)
    assert renee.candidate_id is None  # k % 5 == 0: hired before the ATS
    francois = world.person(12)
    raw = world.candidate(francois.candidate_id or 0)
    assert raw.first_name != francois.first_name
    assert unicodedata.normalize("NFC", raw.first_name) == francois.first_name
    mononym = world.person(7)
    assert mononym.first_name == mononym.last_name == "Sukarno"
    assert world.candidate(CANDIDATE_BASE + 7).last_name == ""
    assert world.person(4).last_name == "王"


def test_ats_and_hris_agree_for_hired_candidates(world: World) -> None:
    for k in (1, 2, 3, 8, 17, 29):
        person = world.person(k)
        assert person.candidate_id == CANDIDATE_BASE + k
        cand = world.candidate(person.candidate_id)
        assert cand.employee_id == k
        offer = world.offers_for_candidate(cand.id)[0]
        assert offer.status == "Accepted"
        assert offer.starts_on == person.hire_date
        job = world.job(offer.job_id)
        assert job.title == person.positions[0].job_title
        assert world.department(job.department_id).name == person.positions[0].department
        assert world.office(job.office_id).name == person.positions[0].location


def test_edge_cases_present(world: World) -> None:
    people = list(world.people())
    assert any(len(p.employments) == 2 for p in people)  # rehires
    assert any(len(p.positions) == 2 for p in people)  # two concurrent positions
    assert any(p.status == "Inactive" for p in people)
    assert any(p.hire_date > AS_OF for p in people)  # future-dated hires
    assert any(p.termination_date and p.termination_date > AS_OF for p in people)
    assert any(p.employment_type == "Contractor" for p in people)
    assert any(p.phone is None for p in people)
    assert any(p.date_of_birth is None for p in people)
    assert any(p.address is None for p in people)
    assert any(p.address and p.address.line1.startswith("PO Box") for p in people)
    rehire = world.person(29)
    assert rehire.original_hire_date < rehire.hire_date
    assert rehire.status == "Active"


def test_pending_hires_are_accepted_and_not_in_hris(world: World) -> None:
    pending = world.pending_hires()
    assert len(pending) == 20
    for cand in pending:
        assert cand.employee_id is None
        (offer,) = world.offers_for_candidate(cand.id)
        assert offer.status == "Accepted"
        assert offer.starts_on and offer.starts_on > AS_OF


def test_ids_paging_and_updated_filter(world: World) -> None:
    first = world.ids("candidates", limit=10)
    assert first == [CANDIDATE_BASE + k for k in range(1, 11)]
    assert world.ids("candidates", after=first[-1], limit=2) == [
        CANDIDATE_BASE + 11,
        CANDIDATE_BASE + 12,
    ]
    pivot = world.candidate(CANDIDATE_BASE + 300).updated_at
    since = world.ids("candidates", updated_gte=pivot, limit=10_000)
    assert since[0] == CANDIDATE_BASE + 300
    assert all(world.candidate(i).updated_at >= pivot for i in since)
    assert len(since) == world.candidates - 299
    offers = world.ids("offers", limit=10_000)
    assert all(world.offer(i).id == i for i in offers[:50])
    assert (
        OFFER_BASE + world.employees + 1 not in offers
    )  # k=401: not hired, 401 % 3 != 0: no offer


def test_updates_move_to_the_overlay() -> None:
    world = World(100, as_of=AS_OF)
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = [CANDIDATE_BASE + k for k in (5, 50, 90)]
    for i in ids:
        world.update_candidate(i, title="Changed")
    assert world.ids("candidates", updated_gte=before) == ids
    assert world.candidate(ids[0]).title == "Changed"
    # an updated record is listed once, in id order, in an unfiltered listing too
    everything = world.ids("candidates", limit=100_000)
    assert everything == sorted(set(everything))
    assert len(everything) == world.candidates


def test_a_million_employees_is_cheap() -> None:
    world = World(1_000_000, as_of=AS_OF)
    page = world.ids("people", after=600_000, limit=500)
    assert page[0] == 600_001 and len(page) == 500
    assert world.person(999_999).employee_id == 999_999
