# ruff: noqa: RUF001  (names and places in every script are the point of this file)
"""Deterministic, lazily generated HR world shared by every sandbox vendor.

Every object is a pure function of ``(seed, as_of, index)``: a world of 1,000,000 employees costs
nothing until a page of it is served. The ATS and the HRIS agree where real systems agree: a
hired candidate is an employee whose ``candidate_id`` points back at the candidate, the offer's
job gives the employee's title, department and location, and the offer's start date is the
employee's (latest) hire date.

Edge cases are placed at fixed indices (the first people are a catalogue of hard names) and by
residues of the index, so tests can find them without scanning:

- ``k % 13 == 0`` terminated in the past; ``k % 29 == 0`` terminated then rehired;
  ``k % 31 == 0`` termination date in the future; ``k % 37 == 0`` hire date in the future;
  ``k % 17 == 0`` two concurrent positions; ``k % 5 == 0`` hired before the ATS (no candidate).
- contractors, part-timers and interns; missing phone / birth date / address / middle name;
  PO boxes, military, UK and Japanese addresses.
- ATS names are "raw": some carry stray whitespace or decomposed (NFD) accents, and mononyms have
  an empty last name. The HRIS holds the clean form (trimmed, NFC, mononym as first = last).

Base records have ``updated_at`` increasing with their index, so an ``updated_at >= X`` filter is a
cheap index range; records changed through ``update_*`` move to an overlay stamped "now".
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import random
import threading
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

CANDIDATE_BASE = 4_000_000_000
APPLICATION_BASE = 7_000_000_000
OFFER_BASE = 9_000_000_000
HISTORY_DAYS = 400


@dataclass(frozen=True)
class Address:
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str | None
    country: str  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    parent_id: int | None
    division: str


@dataclass(frozen=True)
class Office:
    id: int
    name: str
    city: str
    state: str | None
    country: str
    timezone: str
    currency: str


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True)
class Job:
    id: int
    title: str
    department_id: int
    office_id: int
    status: str
    employment_type: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Position:
    job_title: str
    department: str
    division: str
    location: str
    start_date: date
    end_date: date | None
    pay_rate: Decimal
    currency: str
    pay_type: str  # "Salary" | "Hourly"
    pay_per: str  # "Year" | "Hour"
    pay_schedule: str
    exempt: bool
    reports_to: int | None
    primary: bool
    job_id: int


@dataclass(frozen=True)
class Employment:
    hire_date: date
    termination_date: date | None
    employment_type: str  # "Full-Time" | "Part-Time" | "Contractor" | "Intern"
    termination_reason: str | None
    positions: tuple[Position, ...]


@dataclass(frozen=True)
class Person:
    employee_id: int
    candidate_id: int | None
    first_name: str
    middle_name: str | None
    last_name: str
    preferred_name: str | None
    work_email: str | None
    personal_email: str | None
    phone: str | None
    mobile: str | None
    date_of_birth: date | None
    ssn: str | None
    gender: str | None
    address: Address | None
    employments: tuple[Employment, ...]
    employee_number: str
    updated_at: datetime
    as_of: date = field(repr=False, compare=False, default=date(2026, 1, 1))

    @property
    def current(self) -> Employment:
        return self.employments[-1]

    @property
    def hire_date(self) -> date:
        return self.current.hire_date

    @property
    def original_hire_date(self) -> date:
        return self.employments[0].hire_date

    @property
    def termination_date(self) -> date | None:
        return self.current.termination_date

    @property
    def employment_type(self) -> str:
        return self.current.employment_type

    @property
    def positions(self) -> tuple[Position, ...]:
        return self.current.positions

    @property
    def status(self) -> str:
        end = self.current.termination_date
        return "Inactive" if end is not None and end < self.as_of else "Active"


@dataclass(frozen=True)
class Candidate:
    id: int
    first_name: str
    last_name: str
    email: str | None  # the candidate's own (personal) address
    phone: str | None
    company: str | None
    title: str | None
    created_at: datetime
    updated_at: datetime
    employee_id: int | None
    application_ids: tuple[int, ...]
    work_email: str | None = None  # added by the recruiter once hired (pending hires have none)


@dataclass(frozen=True)
class Application:
    id: int
    candidate_id: int
    job_id: int
    status: str  # "active" | "rejected" | "hired"
    applied_at: datetime
    updated_at: datetime
    current_stage: str


@dataclass(frozen=True)
class Offer:
    id: int
    version: int
    application_id: int
    candidate_id: int
    job_id: int
    status: str  # "Created" | "Accepted" | "Rejected" | "Deprecated"
    sent_on: date | None
    starts_on: date | None
    created_at: datetime
    updated_at: datetime
    salary: Decimal | None
    currency: str | None
    employment_type: str
    opening_id: str | None


# --- reference data -----------------------------------------------------------------------

# (first, middle, last, preferred, raw ATS first, raw ATS last) — the catalogue of hard names
# given to the first people of every world.
HARD_NAMES: tuple[tuple[str, str | None, str, str | None, str | None, str | None], ...] = (
    ("Zoë", None, "O'Brien-Łukasiewicz", None, None, None),
    ("José", "María", "Núñez de Balboa", "Pepe", None, None),
    ("Siobhán", None, "Ní Bhraonáin", None, None, None),
    ("秀英", None, "王", None, None, None),
    ("Мария", "Сергеевна", "Иванова", None, None, None),
    ("محمد", None, "العلي", None, None, None),
    ("Sukarno", None, "Sukarno", None, "Sukarno", ""),
    ("Anne-Marie", None, "Smith-Jones", "Annie", None, None),
    ("D'Arcy", None, "D'Angelo", None, None, None),
    ("Renée", None, "Zellweger", None, "  Rene\u0301e ", "Zellweger  "),
    ("Björn", None, "Ødegård", None, None, None),
    ("François", None, "L'Écuyer", None, "Franc\u0327ois", "L'E\u0301cuyer"),
    ("Ngozi", None, "Okonjo-Iweala", None, None, None),
    ("Αλέξανδρος", None, "Παπαδόπουλος", None, None, None),
    ("Minh Khai", None, "Nguyễn", None, None, None),
    ("Łucja", None, "Wójcik", None, None, None),
    ("Mary Ann", None, "van der Berg", None, "Mary  Ann", "van der Berg"),
    ("Şebnem", None, "Öztürk", None, None, None),
    ("Kōji", None, "Tanaka", None, None, None),
    ("Aarav", None, "Patel", None, None, None),
    ("Jean-Luc", None, "Picard", None, None, None),
    ("Priya", None, "Subramanian-Venkataraghavan", None, None, None),
    ("Tūhoe", None, "Te Rangi", None, None, None),
    ("Seo-yeon", None, "김", None, None, None),
    ("Giuseppe", None, "D’Alessandro", None, None, None),  # typographic apostrophe
    ("Øystein", None, "Ærø", None, None, None),
    ("Chloé", None, "Dubois", None, None, None),
    ("Madonna", None, "Madonna", None, "Madonna", ""),
)

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Ana",
    "Sofía",
    "Lucía",
    "Mateo",
    "Santiago",
    "Camila",
    "Valentina",
    "João",
    "Maria",
    "Luís",
    "Inês",
    "Chloé",
    "Léa",
    "Hugo",
    "Jürgen",
    "Anja",
    "Lukas",
    "Leonie",
    "Jörg",
    "Mia",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Ava",
    "Isla",
    "Oliver",
    "Amelia",
    "Arjun",
    "Aditi",
    "Rohan",
    "Ananya",
    "Wei",
    "Jing",
    "Hiroshi",
    "Yuki",
    "Sakura",
    "Haruto",
    "Min-jun",
    "Ji-woo",
    "Fatima",
    "Omar",
    "Layla",
    "Yusuf",
    "Amira",
    "Chidi",
    "Ngozi",
    "Kwame",
    "Ama",
    "Oluwaseun",
    "Zanele",
    "Sipho",
    "Thabo",
    "Ingrid",
    "Sven",
    "Astrid",
    "Mikael",
    "Agnieszka",
    "Piotr",
    "Dorota",
    "Tomasz",
    "Ivana",
    "Marek",
    "Zsófia",
    "Bálint",
    "Ioana",
    "Andrei",
    "Elif",
    "Emre",
    "Dimitra",
    "Nikos",
    "Siobhán",
    "Pádraig",
    "Aoife",
    "Niamh",
    "Seán",
    "Ciarán",
    "Dara",
    "Rhiannon",
    "Gwen",
    "Dafydd",
    "Marisol",
    "Raúl",
    "Álvaro",
    "Inés",
    "Noémie",
    "Gaël",
    "Loïc",
    "Maëlle",
    "Cosmin",
    "Ștefan",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Pérez",
    "Thompson",
    "White",
    "Harris",
    "Sánchez",
    "Clark",
    "Ramírez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schäfer",
    "Koch",
    "Dubois",
    "Lefèvre",
    "Moreau",
    "Girard",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Dąbrowski",
    "Novák",
    "Svoboda",
    "Dvořák",
    "Horváth",
    "Nagy",
    "Popescu",
    "Yılmaz",
    "Kaya",
    "Papadopoulos",
    "Jensen",
    "Nielsen",
    "Hansen",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Virtanen",
    "Korhonen",
    "Singh",
    "Kumar",
    "Sharma",
    "Gupta",
    "Iyer",
    "Tanaka",
    "Suzuki",
    "Takahashi",
    "Watanabe",
    "Kim",
    "Park",
    "Choi",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Dlamini",
    "O'Connor",
    "O'Neill",
    "McCarthy",
    "D'Souza",
    "Fitzgerald",
    "Ó_Súilleabháin",
    "Ní_Dhomhnaill",
    "Smith-Jones",
    "García-Márquez",
    "de_la_Cruz",
    "van_Dijk",
    "von_Neumann",
]

DEPARTMENTS = (
    ("Engineering", "Product & Technology"),
    ("Product", "Product & Technology"),
    ("Data & Analytics", "Product & Technology"),
    ("IT", "Operations"),
    ("Security", "Operations"),
    ("Sales", "Go-to-Market"),
    ("Marketing", "Go-to-Market"),
    ("Customer Success", "Go-to-Market"),
    ("Finance", "G&A"),
    ("People", "G&A"),
    ("Legal", "G&A"),
    ("R&D – Europe", "Product & Technology"),
    ("Facilities", "Operations"),
    ("Support", "Go-to-Market"),
)
TITLES = {
    "Engineering": ("Software Engineer", "Senior Software Engineer", "Engineering Manager"),
    "Product": ("Product Manager", "Senior Product Designer"),
    "Data & Analytics": ("Data Engineer", "Analytics Manager"),
    "IT": ("IT Support Specialist", "Systems Administrator"),
    "Security": ("Security Engineer",),
    "Sales": ("Account Executive", "Sales Development Rep", "Director of Sales"),
    "Marketing": ("Marketing Manager", "Content Strategist"),
    "Customer Success": ("Customer Success Manager",),
    "Finance": ("Accountant", "Payroll Specialist", "Controller"),
    "People": ("HR Business Partner", "Recruiter", "People Operations Manager"),
    "Legal": ("Counsel",),
    "R&D – Europe": ("Research Scientist", "Ingénieur R&D"),
    "Facilities": ("Facilities Coordinator",),
    "Support": ("Support Agent", "Support Team Lead"),
}
OFFICES = (
    ("San Francisco", "San Francisco", "CA", "US", "America/Los_Angeles", "USD"),
    ("New York", "New York", "NY", "US", "America/New_York", "USD"),
    ("Austin", "Austin", "TX", "US", "America/Chicago", "USD"),
    ("Remote – US", "Denver", "CO", "US", "America/Denver", "USD"),
    ("Toronto", "Toronto", "ON", "CA", "America/Toronto", "CAD"),
    ("London", "London", None, "GB", "Europe/London", "GBP"),
    ("Berlin", "Berlin", "BE", "DE", "Europe/Berlin", "EUR"),
    ("Zürich", "Zürich", "ZH", "CH", "Europe/Zurich", "CHF"),
    ("São Paulo", "São Paulo", "SP", "BR", "America/Sao_Paulo", "BRL"),
    ("Bengaluru", "Bengaluru", "KA", "IN", "Asia/Kolkata", "INR"),
    ("Tokyo", "Tokyo", None, "JP", "Asia/Tokyo", "JPY"),
)
STREETS = ("Main St", "Rue de Rivoli", "Königsallee", "Calle Mayor", "Baker Street", "Elm Ave")
TERMINATION_REASONS = ("Resignation", "Layoff", "Termination", "End of contract", "Retirement")


_FOLD = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Ø": "O",
        "ø": "o",
        "Æ": "AE",
        "æ": "ae",
        "ß": "ss",
        "Đ": "D",
        "đ": "d",
        "ı": "i",
        "Œ": "OE",
        "œ": "oe",
        "’": "'",
    }
)


def _ascii_local(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _clean(name: str) -> str:
    return name.replace("_", " ")


class World:
    """A deterministic HR world; see the module docstring for where the edge cases live."""

    def __init__(self, employees: int = 100, seed: int = 7, as_of: date | None = None) -> None:
        if employees < 1:
            raise ValueError("employees must be at least 1")
        self.employees = employees
        self.seed = seed
        self.as_of = as_of or datetime.now(UTC).date()
        self.not_hired = employees // 2
        self.pending = max(3, employees // 20)
        self.candidates = employees + self.not_hired + self.pending
        start = datetime(self.as_of.year, self.as_of.month, self.as_of.day, tzinfo=UTC)
        self._t0 = start - timedelta(days=HISTORY_DAYS)
        self._step = max(1, (HISTORY_DAYS * 86400 - 3600) // self.candidates)
        self._lock = threading.RLock()
        self._overlay: dict[str, dict[int, Any]] = {
            "people": {},
            "candidates": {},
            "applications": {},
            "offers": {},
        }
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self.departments = [
            Department(id=4_100 + i, name=name, parent_id=None, division=div)
            for i, (name, div) in enumerate(DEPARTMENTS, start=1)
        ]
        self.offices = [
            Office(4_200 + i, name, city, state, country, tz, cur)
            for i, (name, city, state, country, tz, cur) in enumerate(OFFICES, start=1)
        ]
        self.users = [
            User(4_300 + i, fn, ln, f"{_ascii_local(fn)}.{_ascii_local(ln)}@acme.example")
            for i, (fn, ln) in enumerate(
                [
                    ("Rita", "Recruiter"),
                    ("Hank", "Hiring"),
                    ("Élodie", "Chassé"),
                    ("Tomás", "O'Reilly"),
                    ("Aiko", "Sato"),
                ],
                start=1,
            )
        ]
        jobs: list[Job] = []
        rng = random.Random(seed)
        for dept in self.departments:
            for title in TITLES[dept.name]:
                for office in rng.sample(self.offices, 2):
                    created = self._t0 - timedelta(days=rng.randint(30, 900))
                    jobs.append(
                        Job(
                            id=4_500 + len(jobs) + 1,
                            title=title,
                            department_id=dept.id,
                            office_id=office.id,
                            status="open" if rng.random() < 0.6 else "closed",
                            employment_type="Full-Time",
                            created_at=created,
                            updated_at=created + timedelta(days=rng.randint(0, 20)),
                        )
                    )
        self.jobs = jobs
        self._dept_by_id = {d.id: d for d in self.departments}
        self._office_by_id = {o.id: o for o in self.offices}
        self._job_by_id = {j.id: j for j in self.jobs}

    # --- lookups ------------------------------------------------------------------------

    def department(self, department_id: int) -> Department:
        return self._dept_by_id[department_id]

    def office(self, office_id: int) -> Office:
        return self._office_by_id[office_id]

    def job(self, job_id: int) -> Job:
        return self._job_by_id[job_id]

    def person(self, employee_id: int) -> Person:
        if not 1 <= employee_id <= self.employees:
            raise KeyError(employee_id)
        over = self._overlay["people"].get(employee_id)
        return over if over is not None else self._person(employee_id)

    def person_updated_at(self, employee_id: int) -> datetime:
        """``person(employee_id).updated_at`` without building the person (change feeds scan
        every person: at 100,000 people building each one is most of a request's time)."""
        if not 1 <= employee_id <= self.employees:
            raise KeyError(employee_id)
        over = self._overlay["people"].get(employee_id)
        return over.updated_at if over is not None else self.base_updated_at("people", employee_id)

    def candidate(self, candidate_id: int) -> Candidate:
        k = candidate_id - CANDIDATE_BASE
        if not 1 <= k <= self.candidates:
            raise KeyError(candidate_id)
        over = self._overlay["candidates"].get(candidate_id)
        return over if over is not None else self._candidate(k)

    def application(self, application_id: int) -> Application:
        k = application_id - APPLICATION_BASE
        if not 1 <= k <= self.candidates:
            raise KeyError(application_id)
        over = self._overlay["applications"].get(application_id)
        return over if over is not None else self._application(k)

    def offer(self, offer_id: int) -> Offer:
        k = offer_id - OFFER_BASE
        if not (1 <= k <= self.candidates and self._has_offer(k)):
            raise KeyError(offer_id)
        over = self._overlay["offers"].get(offer_id)
        return over if over is not None else self._offer(k)

    def offers_for_candidate(self, candidate_id: int) -> list[Offer]:
        k = candidate_id - CANDIDATE_BASE
        return [self.offer(OFFER_BASE + k)] if self._has_offer(k) else []

    def pending_hires(self) -> list[Candidate]:
        """Candidates with an accepted offer who are not in the HRIS yet."""
        first = self.employees + self.not_hired + 1
        return [self.candidate(CANDIDATE_BASE + k) for k in range(first, self.candidates + 1)]

    def people(self, start: int = 1) -> Iterator[Person]:
        for i in range(start, self.employees + 1):
            yield self.person(i)

    # --- listing ------------------------------------------------------------------------

    _KINDS: dict[str, tuple[int, int]] = {
        # kind -> (id base, updated_at offset in seconds from the index clock)
        "people": (0, 30),
        "candidates": (CANDIDATE_BASE, 0),
        "applications": (APPLICATION_BASE, 10),
        "offers": (OFFER_BASE, 20),
    }

    def base_updated_at(self, kind: str, k: int) -> datetime:
        _, offset = self._KINDS[kind]
        return self._t0 + timedelta(seconds=k * self._step + offset)

    def _count(self, kind: str) -> int:
        return self.employees if kind == "people" else self.candidates

    def _exists(self, kind: str, k: int) -> bool:
        return kind != "offers" or self._has_offer(k)

    def get(self, kind: str, ident: int) -> Any:
        getter: Callable[[int], Any] = {
            "people": self.person,
            "candidates": self.candidate,
            "applications": self.application,
            "offers": self.offer,
        }[kind]
        return getter(ident)

    def ids(
        self,
        kind: str,
        *,
        after: int | None = None,
        updated_gte: datetime | None = None,
        updated_lte: datetime | None = None,
        limit: int = 100,
    ) -> list[int]:
        """Ids of ``kind`` in ascending order, after ``after``, within the updated_at bounds.

        Cost is O(limit + changed records), whatever the size of the world.
        """
        base, offset = self._KINDS[kind]
        n = self._count(kind)
        lo = 1 if after is None else max(1, after - base + 1)
        hi = n
        if updated_gte is not None:
            delta = (updated_gte - self._t0).total_seconds() - offset
            lo = max(lo, math.ceil(delta / self._step))
        if updated_lte is not None:
            delta = (updated_lte - self._t0).total_seconds() - offset
            hi = min(hi, math.floor(delta / self._step))
        with self._lock:
            overlay = self._overlay[kind]
            changed = sorted(
                i
                for i, obj in overlay.items()
                if (after is None or i > after)
                and (updated_gte is None or obj.updated_at >= updated_gte)
                and (updated_lte is None or obj.updated_at <= updated_lte)
            )
            skip = set(overlay)
        unchanged = (
            base + k
            for k in range(max(lo, 1), hi + 1)
            if self._exists(kind, k) and base + k not in skip
        )
        return list(itertools.islice(heapq.merge(unchanged, changed), limit))

    # --- mutations ----------------------------------------------------------------------

    def _stamp(self) -> datetime:
        now = datetime.now(UTC)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def update_candidate(self, candidate_id: int, **changes: Any) -> Candidate:
        with self._lock:
            new = dataclasses.replace(
                self.candidate(candidate_id), **changes, updated_at=self._stamp()
            )
            self._overlay["candidates"][candidate_id] = new
            return new

    def update_offer(self, offer_id: int, **changes: Any) -> Offer:
        with self._lock:
            new = dataclasses.replace(self.offer(offer_id), **changes, updated_at=self._stamp())
            self._overlay["offers"][offer_id] = new
            return new

    def update_person(self, employee_id: int, **changes: Any) -> Person:
        with self._lock:
            new = dataclasses.replace(self.person(employee_id), **changes, updated_at=self._stamp())
            self._overlay["people"][employee_id] = new
            return new

    # --- generation ---------------------------------------------------------------------

    def _rng(self, kind: str, k: int) -> random.Random:
        # integer seeds: str seeds go through sha512, which dominated generation time
        return random.Random((zlib.crc32(kind.encode()) << 40) ^ (self.seed << 32) ^ k)

    def _has_offer(self, k: int) -> bool:
        return k <= self.employees or k > self.employees + self.not_hired or k % 3 == 0

    def _hired_from_ats(self, k: int) -> bool:
        return k <= self.employees and k % 5 != 0

    def _names(self, kind: str, k: int) -> tuple[str, str | None, str, str | None, str, str]:
        """(first, middle, last, preferred, raw ATS first, raw ATS last) of person/candidate k."""
        if k <= len(HARD_NAMES) and kind == "person":
            first, middle, last, preferred, raw_first, raw_last = HARD_NAMES[k - 1]
            return (
                first,
                middle,
                last,
                preferred,
                first if raw_first is None else raw_first,
                last if raw_last is None else raw_last,
            )
        rng = self._rng(f"name-{kind}", k)
        first = rng.choice(FIRST_NAMES)
        last = _clean(rng.choice(LAST_NAMES))
        middle = rng.choice(FIRST_NAMES) if rng.random() < 0.15 else None
        preferred = rng.choice(("Sam", "Alex", "Jo", "Max")) if rng.random() < 0.05 else None
        raw_first, raw_last = first, last
        if k % 7 == 0:
            raw_first, raw_last = f" {first}", f"{last} "
        if k % 11 == 0:
            raw_first = unicodedata.normalize("NFD", raw_first)
            raw_last = unicodedata.normalize("NFD", raw_last)
        return first, middle, last, preferred, raw_first, raw_last

    def _personal_email(self, k: int, first: str, last: str) -> str:
        local = f"{_ascii_local(first)}.{_ascii_local(last)}".strip(".") or "candidate"
        return f"{local}.{k}@mail.example"

    def _job_for(self, k: int) -> Job:
        return self.jobs[self._rng("job", k).randrange(len(self.jobs))]

    def _position(
        self, k: int, job: Job, start: date, employment_type: str, primary: bool
    ) -> Position:
        rng = self._rng(f"pos-{job.id}", k)
        dept = self.department(job.department_id)
        office = self.office(job.office_id)
        hourly = employment_type in ("Part-Time", "Contractor", "Intern")
        if hourly:
            rate = Decimal(rng.randint(1800, 9500)) / 100
        else:
            rate = Decimal(rng.randint(45, 260) * 1000)
        if office.currency == "JPY":
            rate = (rate * 150).quantize(Decimal(1))
        elif office.currency == "INR":
            rate = (rate * 40).quantize(Decimal(1))
        return Position(
            job_title=job.title,
            department=dept.name,
            division=dept.division,
            location=office.name,
            start_date=start,
            end_date=None,
            pay_rate=rate,
            currency=office.currency,
            pay_type="Hourly" if hourly else "Salary",
            pay_per="Hour" if hourly else "Year",
            pay_schedule="Twice a month" if office.country == "US" else "Monthly",
            exempt=not hourly,
            reports_to=None if k == 1 else max(1, k // 8),
            primary=primary,
            job_id=job.id,
        )

    def _employment_type(self, k: int) -> str:
        r = self._rng("etype", k).random()
        if r < 0.12:
            return "Contractor"
        if r < 0.22:
            return "Part-Time"
        if r < 0.25:
            return "Intern"
        return "Full-Time"

    def _hire_date(self, k: int) -> date:
        if k % 37 == 0:
            return self.as_of + timedelta(days=7 + k % 50)
        return self.as_of - timedelta(days=30 + self._rng("hire", k).randint(0, 3650))

    @lru_cache(maxsize=8192)  # noqa: B019 — worlds live as long as the process
    def _person(self, k: int) -> Person:
        rng = self._rng("person", k)
        first, middle, last, preferred, _, _ = self._names("person", k)
        job = self._job_for(k)
        office = self.office(job.office_id)
        etype = self._employment_type(k)
        hire = self._hire_date(k)
        employments: list[Employment] = []
        if k % 29 == 0:  # terminated, then rehired
            first_hire = hire - timedelta(days=900)
            left = hire - timedelta(days=200)
            employments.append(
                Employment(
                    hire_date=first_hire,
                    termination_date=left,
                    employment_type="Full-Time",
                    termination_reason="Resignation",
                    positions=(self._position(k, job, first_hire, "Full-Time", True),),
                )
            )
        termination: date | None = None
        reason = None
        if k % 13 == 0 and k % 29 != 0 and k % 37 != 0:
            termination = max(hire + timedelta(days=1), self.as_of - timedelta(days=1 + k % 90))
            reason = TERMINATION_REASONS[k % len(TERMINATION_REASONS)]
        elif k % 31 == 0 and k % 37 != 0:
            termination = self.as_of + timedelta(days=3 + k % 20)
            reason = "Resignation"
        positions = [self._position(k, job, hire, etype, True)]
        if k % 17 == 0:
            second = self.jobs[(self.jobs.index(job) + 7) % len(self.jobs)]
            positions.append(self._position(k, second, hire, etype, False))
        employments.append(
            Employment(
                hire_date=hire,
                termination_date=termination,
                employment_type=etype,
                termination_reason=reason,
                positions=tuple(positions),
            )
        )
        candidate_id = CANDIDATE_BASE + k if self._hired_from_ats(k) else None
        ascii_first, ascii_last = _ascii_local(first), _ascii_local(last)
        work_local = f"{ascii_first}.{ascii_last}" if ascii_first and ascii_last else "employee"
        return Person(
            employee_id=k,
            candidate_id=candidate_id,
            first_name=first,
            middle_name=middle,
            last_name=last,
            preferred_name=preferred,
            work_email=None if etype == "Contractor" and k % 2 else f"{work_local}{k}@acme.example",
            personal_email=self._personal_email(k, first, last),
            phone=None if k % 9 == 0 else self._phone(rng, office.country),
            mobile=self._phone(rng, office.country) if k % 4 == 0 else None,
            date_of_birth=None
            if k % 23 == 0
            else date(1960, 1, 1) + timedelta(days=rng.randint(0, 15000)),
            ssn=f"1{rng.randint(0, 99):02d}-{rng.randint(70, 99):02d}-{rng.randint(1, 9999):04d}"
            if office.country == "US"
            else None,
            gender=rng.choice(("Female", "Male", "Nonbinary", None)),
            address=None if k % 41 == 0 else self._address(rng, k, office),
            employments=tuple(employments),
            employee_number=f"E{k:07d}",
            updated_at=self.base_updated_at("people", k),
            as_of=self.as_of,
        )

    def _phone(self, rng: random.Random, country: str) -> str:
        if country == "US":
            return rng.choice(("({a}) {b}-{c}", "+1 {a} {b} {c}", "{a}.{b}.{c}")).format(
                a=rng.randint(201, 989), b=rng.randint(200, 999), c=f"{rng.randint(0, 9999):04d}"
            )
        if country == "GB":
            return f"+44 20 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}"
        if country == "DE":
            return f"030 {rng.randint(1000000, 9999999)}"
        return f"+{rng.randint(30, 99)} {rng.randint(100000000, 999999999)}"

    def _address(self, rng: random.Random, k: int, office: Office) -> Address:
        if k % 19 == 0:
            return Address(
                f"PO Box {rng.randint(1, 9999)}",
                None,
                office.city,
                office.state,
                self._postal(rng, office.country),
                office.country,
            )
        if k % 43 == 0:
            return Address("Unit 2050 Box 4190", None, "APO", "AP", "96278", "US")
        line2 = f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}" if k % 3 == 0 else None
        if k % 47 == 0:
            line2 = "c/o Müller, Hinterhaus, 3. OG"
        return Address(
            f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            line2,
            office.city,
            office.state,
            self._postal(rng, office.country),
            office.country,
        )

    @staticmethod
    def _postal(rng: random.Random, country: str) -> str | None:
        if country == "GB":
            return rng.choice(("SW1A 1AA", "EC1A 1BB", "W1A 0AX"))
        if country == "JP":
            return f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        if country == "CA":
            return "M5V 2T6"
        if country in ("CH", "DE", "IN", "BR"):
            return str(rng.randint(10000, 99999))
        return f"{rng.randint(1000, 99999):05d}"

    @lru_cache(maxsize=8192)  # noqa: B019
    def _candidate(self, k: int) -> Candidate:
        rng = self._rng("candidate", k)
        if self._hired_from_ats(k):
            person = self._person(k)
            _, _, _, _, raw_first, raw_last = self._names("person", k)
            email = person.personal_email
            work_email = person.work_email
            phone = person.mobile or person.phone
            employee_id: int | None = k
        else:
            _, _, _, _, raw_first, raw_last = self._names("candidate", k + 10_000_000)
            email = self._personal_email(k, raw_first.strip(), raw_last.strip())
            phone = None if k % 6 == 0 else f"+1 555 01{k % 100:02d}"
            employee_id = None
            work_email = None
        updated = self.base_updated_at("candidates", k)
        return Candidate(
            id=CANDIDATE_BASE + k,
            first_name=raw_first,
            last_name=raw_last,
            email=email,
            phone=phone,
            company=rng.choice(("Globex", "Initech", "Umbrella", None)),
            title=rng.choice(("Engineer", "Analyst", "Manager", None)),
            created_at=updated - timedelta(days=rng.randint(20, 200)),
            updated_at=updated,
            employee_id=employee_id,
            application_ids=(APPLICATION_BASE + k,),
            work_email=work_email,
        )

    def _status_of(self, k: int) -> tuple[str, str | None]:
        """(application status, offer status or None) of candidate index k."""
        if self._hired_from_ats(k) or k > self.employees + self.not_hired:
            return "hired", "Accepted"
        if k % 3 == 0:
            return "rejected", ("Rejected", "Deprecated", "Created")[k % 9 // 3]
        return ("active" if k % 2 else "rejected"), None

    @lru_cache(maxsize=8192)  # noqa: B019
    def _application(self, k: int) -> Application:
        status, _ = self._status_of(k)
        if k > self.employees + self.not_hired:
            status = "hired"
        updated = self.base_updated_at("applications", k)
        return Application(
            id=APPLICATION_BASE + k,
            candidate_id=CANDIDATE_BASE + k,
            job_id=self._offer_job(k).id,
            status=status,
            applied_at=updated - timedelta(days=45),
            updated_at=updated,
            current_stage={"hired": "Hired", "rejected": "Rejected"}.get(status, "Interview"),
        )

    def _offer_job(self, k: int) -> Job:
        if self._hired_from_ats(k):
            return self._job_by_id[self._person(k).positions[0].job_id]
        return self._job_for(k + 10_000_000)

    @lru_cache(maxsize=8192)  # noqa: B019
    def _offer(self, k: int) -> Offer:
        rng = self._rng("offer", k)
        _, status = self._status_of(k)
        job = self._offer_job(k)
        office = self.office(job.office_id)
        updated = self.base_updated_at("offers", k)
        if self._hired_from_ats(k):
            person = self._person(k)
            starts_on: date | None = person.hire_date
            pos = person.positions[0]
            salary: Decimal | None = pos.pay_rate
            currency: str | None = pos.currency
            etype = person.employment_type
        else:
            starts_on = self.as_of + timedelta(days=14 + k % 40)
            etype = "Full-Time" if k % 4 else "Contractor"
            # contractors are offered an hourly rate, employees a yearly salary
            salary = (
                Decimal(rng.randint(50, 220) * 1000)
                if etype == "Full-Time"
                else Decimal(rng.randint(2500, 9500)) / 100
            )
            currency = office.currency
            if k % 10 == 0:
                salary, currency = None, None  # salary not on the offer: missing optional field
        return Offer(
            id=OFFER_BASE + k,
            version=1 + k % 2,
            application_id=APPLICATION_BASE + k,
            candidate_id=CANDIDATE_BASE + k,
            job_id=job.id,
            status=status or "Created",
            sent_on=(starts_on - timedelta(days=21)) if starts_on else None,
            starts_on=starts_on,
            created_at=updated - timedelta(days=25),
            updated_at=updated,
            salary=salary,
            currency=currency,
            employment_type=etype,
            opening_id=f"{job.id}-{k % 5 + 1}" if k % 8 else None,
        )
