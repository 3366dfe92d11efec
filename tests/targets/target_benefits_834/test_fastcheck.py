"""The fast 834 check (target_benefits_834.fastcheck) gives pyx12's verdict: a differential test.

Files are written by the target's own builder (Planner -> Body -> write_interchange) from the
sandbox's seeded world, several transaction sets each, then mutated: every mutant is judged
by the fast check and by pyx12 on the whole file, and the two verdicts must be equal. Most
mutations land in a member loop that is *not* the first of its shape (the loops the fast check
does not hand to pyx12's walker), since that is where the fast check could go wrong.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from sandbox.benefits import Benefits
from sandbox.seed import World
from target_benefits_834.document import Body, Parties, _pyx12, validate, write_interchange
from target_benefits_834.fastcheck import fast_verdict, parse, reduce
from target_benefits_834.members import DEPENDENTS, ELECTIONS, SUBSCRIBERS
from target_benefits_834.plan import Planner

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
PARTIES = Parties("ZZ", "ACMEHR", "ZZ", "CARRIER", "Acme Inc", "FI", "123456789",
                  "Blue Prairie Health", "FI", "987654321", "T", "MP-1")  # fmt: skip
LINES = {11: "HLT", 12: "DEN", 13: "VIS"}
LEVELS = {1: "EMP", 2: "ESP", 3: "ECH", 4: "FAM"}


def build(tmp: Path, employees: int, per_set: int) -> Path:
    """An 834 of the seeded world's first ``employees`` people, by the target's builder."""
    world = World(employees=employees, seed=7, as_of=NOW.date())  # the same file any day
    benefits = Benefits(world)
    planner = Planner(NOW.date(), dependents_seen=True, elections_seen=True)
    body = Body(tmp / "body.x12", per_set)
    for p in world.people():
        k = p.employee_id
        a = p.address
        sub: dict[str, Any] = {
            "employee_id": str(k), "first_name": p.first_name, "middle_name": p.middle_name,
            "last_name": p.last_name, "ssn": p.ssn,
            "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else None,
            "gender": {"Female": "F", "Male": "M"}.get(p.gender or ""),
            "address_line1": a.line1 if a else None, "address_line2": a.line2 if a else None,
            "city": a.city if a else None, "state": a.state if a else None,
            "postal_code": a.postal_code if a else None, "country": a.country if a else None,
            "hire_date": p.hire_date.isoformat(),
            "termination_date": p.termination_date.isoformat() if p.termination_date else None,
        }  # fmt: skip
        deps = [{
            "dependent_id": str(d.id), "employee_id": str(k), "first_name": d.first_name,
            "last_name": d.last_name, "relationship": "01" if d.relationship == "spouse" else "19",
            "date_of_birth": d.date_of_birth.isoformat() if d.date_of_birth else None,
        } for d in benefits.dependants(k)]  # fmt: skip
        elections = [{
            "election_id": str(e.id), "employee_id": str(k), "plan_id": str(e.plan.id),
            "insurance_line": LINES[e.plan.id], "coverage_level": LEVELS[e.coverage],
            "status": e.status.lower(), "effective_date": e.effective_date.isoformat(),
            "start_date": e.start_date.isoformat(),
            "end_date": e.end_date.isoformat() if e.end_date else None,
            "group_number": e.plan.group_number,
        } for e in benefits.elections(k)]  # fmt: skip
        family = planner.family(
            str(k), {SUBSCRIBERS: [sub], DEPENDENTS: deps, ELECTIONS: elections}, {}
        )
        body.add_family(family.loops)
    body.close()
    out = tmp / "built.x12"
    write_interchange(out, PARTIES, body, 42, NOW)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("fastcheck")
    path = build(tmp, 40, 12)
    return path, path.read_text(encoding="ascii").split("~\n")


def verdicts(path: Path) -> tuple[bool, bool]:
    """The fast check's verdict and pyx12's on the whole file (one x12n_document run)."""
    return fast_verdict(path).valid, _pyx12(path).valid


def test_a_built_file_is_valid_for_both_and_mostly_reduced(built: tuple[Path, list[str]]) -> None:
    path, _ = built
    assert verdicts(path) == (True, True)
    parsed = parse(path.read_text(encoding="ascii"))
    assert parsed is not None and len(parsed.sets) >= 3
    reduced, origin = reduce(parsed)
    loops = [start for _, _, loops in parsed.sets for start, _, _ in loops]
    # the fast check leaves member loops to pyx12's segment checks (the point of it)
    assert len(set(origin) & set(loops)) < len(loops) and len(reduced) < len(parsed.segments)


def _middle_loops(segments: list[str]) -> list[tuple[int, int]]:
    """(first, end) of member loops that are neither first nor last of their set and whose
    shape occurred before (the ones the fast check does not give to pyx12's walker)."""
    text = "".join(s + "~\n" for s in segments if s)
    parsed = parse(text)
    assert parsed is not None
    _, origin = reduce(parsed)
    kept = set(origin)
    return [(a, b) for _, _, loops in parsed.sets for a, b, _ in loops[1:-1] if a not in kept]


def _write(tmp: Path, name: str, segments: list[str]) -> Path:
    out = tmp / f"{name}.x12"
    out.write_text("".join(s + "~\n" for s in segments if s), encoding="ascii")
    return out


def _replace_element(seg: str, pos: int, value: str) -> str:
    parts = seg.split("*")
    while len(parts) <= pos:
        parts.append("")
    parts[pos] = value
    return "*".join(parts)


def edit(prefix: str, pos: int, value: str) -> Any:
    """A mutation: element ``pos`` of the loop's segments starting with ``prefix`` set."""
    return lambda s: [_replace_element(x, pos, value) if x.startswith(prefix) else x for x in s]


def each(prefix: str, change: Any) -> Any:
    """A mutation: ``change`` applied to the loop's segments starting with ``prefix``."""
    return lambda s: [change(x) if x.startswith(prefix) else x for x in s]


MUTATIONS: dict[str, Any] = {
    # (loop segments) -> loop segments: each aimed at one of pyx12's checks
    "bad date": edit("DTP*348", 3, "20261341"),
    "date with a bad format code": edit("DTP*348", 2, "D6"),
    "unknown qualifier": edit("REF*0F", 1, "ZZ"),
    "bad code": edit("HD*", 3, "HAM"),
    "too long name": edit("NM1*IL", 3, "A" * 61),
    "name at its maximum": edit("NM1*IL", 3, "A" * 60),
    "lower case": edit("NM1*IL", 3, "smith"),
    "trailing space": edit("NM1*IL", 3, "SMITH "),
    "leading space": each("NM1*IL", lambda x: " " + x),
    "control character": edit("NM1*IL", 3, "SM\x07TH"),
    "composite where none": edit("NM1*IL", 3, "SMI:TH"),
    "trailing separator": each("NM1*IL", lambda x: x + "*"),
    "too many elements": each("DMG", lambda x: x + "*" * 9 + "X"),
    "empty required element": edit("INS", 3, ""),
    "syntax rule (NM108 without NM109)": edit("NM1*IL", 8, "34"),
    "syntax rule satisfied (NM108 + NM109)": each(
        "NM1*IL", lambda x: _replace_element(_replace_element(x, 8, "34"), 9, "123456789")
    ),
    "missing NM1": lambda s: [x for x in s if not x.startswith("NM1*IL")],
    "segment twice": lambda s: [y for x in s for y in ([x, x] if x.startswith("DMG") else [x])],
    "unknown segment": lambda s: [*s[:2], "ZZZ*1", *s[2:]],
    "invalid segment id": lambda s: [*s[:2], "Z", *s[2:]],
    "empty segment": lambda s: [*s[:2], "DMG", *s[2:]],
    "out of order": lambda s: [s[0], s[2], s[1], *s[3:]],
    "INS dropped (two loops merge)": lambda s: s[1:],
    "gender code": edit("DMG", 3, "X"),
    "birth date not a date": edit("DMG", 2, "19991301"),
    "state code": edit("N4", 2, "QQ"),
    "postal code too short": edit("N4", 3, "12"),
    "employment status": edit("INS*Y", 8, "QQ"),
    "numeric where id": edit("INS", 5, "A1"),
    "unchanged": lambda s: s,
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_mutated_member_loop_gets_pyx12s_verdict(
    built: tuple[Path, list[str]], tmp_path: Path, name: str
) -> None:
    _, segments = built
    loops = _middle_loops(segments)
    a, b = random.Random(name).choice(loops)
    mutated = [*segments[:a], *MUTATIONS[name](segments[a:b]), *segments[b:]]
    # keep SE01 right unless the point is the count: recount the set the loop is in
    se = next(i for i in range(a, len(mutated)) if mutated[i].startswith("SE*"))
    st = max(i for i in range(a) if mutated[i].startswith("ST*"))
    mutated[se] = _replace_element(mutated[se], 1, str(se - st + 1))
    fast, pyx12 = verdicts(_write(tmp_path, "mutant", mutated))
    assert fast == pyx12, f"{name}: fast check says {fast}, pyx12 says {pyx12}"


def test_random_mutants_get_pyx12s_verdict(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Random single-character edits anywhere in the file (the envelope included)."""
    _, segments = built
    text = "".join(s + "~\n" for s in segments if s)
    rng = random.Random(834)
    alphabet = "ABZ019 *:~^-.&\x01a"
    outcomes = set()
    for n in range(12):
        i = rng.randrange(len(text))
        op = rng.choice(("replace", "insert", "delete"))
        ch = rng.choice(alphabet)
        mutant = {
            "replace": text[:i] + ch + text[i + 1 :],
            "insert": text[:i] + ch + text[i:],
            "delete": text[:i] + text[i + 1 :],
        }[op]
        path = tmp_path / f"random-{n}.x12"
        path.write_text(mutant, encoding="ascii")
        fast, pyx12 = verdicts(path)
        assert fast == pyx12, f"{op} {ch!r} at {i}: fast check {fast}, pyx12 {pyx12}"
        outcomes.add(pyx12)
    assert outcomes == {True, False}  # the corpus holds files of both verdicts


def test_a_wrong_se_count_is_refused(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    _, segments = built
    se = max(i for i, s in enumerate(segments) if s.startswith("SE*"))
    wrong = [*segments]
    wrong[se] = _replace_element(wrong[se], 1, str(int(wrong[se].split("*")[1]) + 1))
    assert verdicts(_write(tmp_path, "se", wrong)) == (False, False)


def test_invalid_file_reports_pyx12s_own_errors(
    built: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """validate() hands a file the fast check refuses to pyx12: the errors are pyx12's."""
    _, segments = built
    a, b = _middle_loops(segments)[0]
    mutated = [*segments[:a], *MUTATIONS["bad code"](segments[a:b]), *segments[b:]]
    checked = validate(_write(tmp_path, "bad", mutated), workers=1)
    assert not checked.valid
    assert any("(HAM) is not a valid code" in e for e in checked.errors), checked.errors


def test_the_builder_writes_the_same_bytes_as_before(tmp_path: Path) -> None:
    """fixtures/built-40-employees.x12 was written by the builder before it was made faster
    (commit of this test); the same input must give the same file, byte for byte."""
    fixture = Path(__file__).parent / "fixtures" / "built-40-employees.x12"
    assert build(tmp_path, 40, 12).read_bytes() == fixture.read_bytes()
