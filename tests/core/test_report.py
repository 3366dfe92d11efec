"""`hrsync report engagement`: numbers against a hand computation; the minimum group size
never violated (property-based, including differencing between rows and between reports)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hrsync_ops.cli import main
from hrsync_ops.report import (
    ALL,
    OTHER,
    UNLINKED,
    ReportError,
    Respondent,
    Row,
    check_compatible,
    engagement,
    parse_dimensions,
    segment_report,
    table_rows,
    tenure_band,
    to_csv,
)

SURVEY = "sv1"
LIKERT = [f"c{i}" for i in range(1, 6)]  # positions 1..5
NPS = [f"n{i}" for i in range(11)]  # positions 1..11 = scores 0..10

# people: key -> (department, location, manager, hire month, likert answers (q1, q2 r1, q2 r2),
# eNPS answer). Likert None = skipped. Hand computation in test_report_matches_hand_computation.
PEOPLE: dict[str, tuple[str, str, str, str, list[int] | None, int]] = {
    "s1": ("Sales", "Berlin", "m1", "2025-06", [5, 4, 3], 10),
    "s2": ("Sales", "Berlin", "m1", "2024-01", [4, 4, 4], 9),
    "s3": ("Sales", "Paris", "m1", "2020-02", [2, 3, 5], 7),
    "s4": ("Sales", "Paris", "m1", "2020-02", [1, 2, 2], 3),
    "s5": ("Sales", "Berlin", "m1", "2012-01", [5, 5, 5], 9),
    "s6": ("Sales", "Paris", "m1", "2023-09", [3, 3, 4], 6),
    "e1": ("Engineering", "Berlin", "m2", "2021-01", [4, 4, 4], 8),
    "e2": ("Engineering", "Berlin", "m2", "2021-01", [5, 5, 4], 10),
    "e3": ("Engineering", "Berlin", "m2", "2021-01", [2, 2, 2], 0),
    "e4": ("Engineering", "Berlin", "m2", "2021-01", [4, 5, 3], 9),
    "e5": ("Engineering", "Berlin", "m2", "2021-01", None, 9),
    "p1": ("Support", "Paris", "m3", "2024-11", [5, 4, 4], 9),
    "p2": ("Support", "Paris", "m3", "2024-11", [4, 4, 4], 9),
    "p3": ("Support", "Paris", "m3", "2024-11", [3, 3, 3], 5),
    "p4": ("Support", "Paris", "m3", "2024-11", [4, 2, 5], 7),
    "p5": ("Support", "Paris", "m3", "2024-11", [5, 5, 5], 10),
    "l1": ("Legal", "Paris", "m1", "2018-05", [1, 1, 1], 0),
    "l2": ("Legal", "Paris", "m1", "2018-05", [5, 5, 5], 10),
}
UNLINKED_ANSWERS = {"u1": ([4, 4, 4], 8), "u2": ([2, 2, 2], 2), "u3": ([3, 4, 5], 9)}
ANSWERED = datetime(2026, 3, 10, 12, 0)


def build_warehouse(path: Path) -> None:
    """The tables survey-to-analytics loads (same names and columns as the profiles emit)."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE employees (employee_key VARCHAR, email_key VARCHAR, department VARCHAR, "
        "location VARCHAR, manager_key VARCHAR, hire_month VARCHAR, _loaded_at TIMESTAMPTZ)"
    )
    con.execute("CREATE TABLE surveys (survey_id VARCHAR, title VARCHAR)")
    con.execute(
        "CREATE TABLE survey_questions (survey_id VARCHAR, question_id VARCHAR, family VARCHAR, "
        "display_type VARCHAR, choices JSON)"
    )
    con.execute(
        "CREATE TABLE survey_responses (response_id VARCHAR, survey_id VARCHAR, "
        "employee_key VARCHAR, email_key VARCHAR, response_status VARCHAR, "
        "date_modified TIMESTAMPTZ)"
    )
    con.execute(
        "CREATE TABLE survey_answers (response_id VARCHAR, survey_id VARCHAR, "
        "question_id VARCHAR, answer_position BIGINT, row_id VARCHAR, choice_id VARCHAR, "
        "choice_position BIGINT)"
    )
    con.execute("INSERT INTO surveys VALUES (?, ?)", [SURVEY, "Pulse March"])
    likert = json.dumps([{"id": c, "position": i + 1, "text": "x"} for i, c in enumerate(LIKERT)])
    nps = json.dumps([{"id": c, "position": i + 1} for i, c in enumerate(NPS)])
    three = json.dumps([{"id": f"t{i}", "position": i} for i in (1, 2, 3)])
    for qid, family, choices in (
        ("q1", "single_choice", likert),
        ("q2", "matrix", likert),
        ("q3", "matrix", nps),
        ("q4", "open_ended", None),
        ("q5", "single_choice", three),  # yes / no / unsure: not scored
    ):
        con.execute(
            "INSERT INTO survey_questions VALUES (?, ?, ?, NULL, ?)", [SURVEY, qid, family, choices]
        )

    def respond(
        rid: str,
        emp: str | None,
        email: str | None,
        likert_answers: list[int] | None,
        nps_answer: int | None,
        when: datetime = ANSWERED,
        status: str = "completed",
    ) -> None:
        con.execute(
            "INSERT INTO survey_responses VALUES (?, ?, ?, ?, ?, ?)",
            [rid, SURVEY, emp, email, status, when],
        )
        items = [("q1", None), ("q2", "r1"), ("q2", "r2")]
        add = "INSERT INTO survey_answers VALUES (?, ?, ?, ?, ?, ?, ?)"
        for i, ((qid, row), answer) in enumerate(zip(items, likert_answers or [], strict=False)):
            con.execute(add, [rid, SURVEY, qid, i + 1, row, LIKERT[answer - 1], answer])
        if nps_answer is not None:
            con.execute(add, [rid, SURVEY, "q3", 1, "r3", NPS[nps_answer], nps_answer + 1])
        con.execute(add, [rid, SURVEY, "q5", 1, None, "t1", 1])  # not a Likert item

    for key, (dept, loc, mgr, hired, answers, score) in PEOPLE.items():
        con.execute(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?, ?, now())",
            [f"k-{key}", f"mail-{key}", dept, loc, f"k-{mgr}", hired],
        )
        if key == "l1":  # linked through the e-mail pseudonym only
            respond(f"r-{key}", None, f"mail-{key}", answers, score)
        else:
            respond(f"r-{key}", f"k-{key}", None, answers, score)
    # e3 answered twice: only the latest response counts
    respond("r-e3-old", "k-e3", None, [5, 5, 5], 10, when=datetime(2026, 3, 1))
    # an unfinished response does not count
    respond("r-partial", "k-s1", None, [1, 1, 1], 0, status="partial")
    for key, (answers, score) in UNLINKED_ANSWERS.items():
        respond(f"r-{key}", f"unknown-{key}", f"unknown-mail-{key}", answers, score)
    con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "w.duckdb"
    build_warehouse(path)
    return path


def test_report_matches_hand_computation(warehouse: Path) -> None:
    (report,) = engagement(warehouse, [("department",)])
    assert report.survey == "Pulse March"
    assert report.unlinked == 3
    got = {r["segment"]: r for r in table_rows(report)}
    # Sales: favourable answers (>= 4) s1 2, s2 3, s3 1, s4 0, s5 3, s6 1 = 10 of 18;
    # eNPS promoters 10, 9, 9 (3), detractors 3, 6 (2): (3 - 2) / 6
    assert got["Sales"] == {
        "segment": "Sales", "respondents": 6, "favourable_pct": 55.6, "enps": 16.7,
    }  # fmt: skip
    # Engineering: only 4 answered the Likert items (e5 skipped them): favourable hidden;
    # eNPS 8, 10, 0, 9, 9: promoters 3, detractors 1: (3 - 1) / 5 = 40
    assert got["Engineering"] == {
        "segment": "Engineering", "respondents": 5, "favourable_pct": None, "enps": 40.0,
    }  # fmt: skip
    # Support: 3 + 3 + 0 + 2 + 3 = 11 of 15; eNPS 9, 9, 5, 7, 10: (3 - 1) / 5
    assert got["Support"] == {
        "segment": "Support", "respondents": 5, "favourable_pct": 73.3, "enps": 40.0,
    }  # fmt: skip
    # Other = Legal (2) + unlinked (3): 5. Its favourable (8 of 15) is hidden as well: the
    # hidden Engineering cell alone (4 contributors) could be recovered from the total, so the
    # smallest shown cell is hidden with it (Other and Support tie at 5; Other sorts first).
    # eNPS 0, 10, 8, 2, 9: promoters 2, detractors 2 -> 0
    assert got[OTHER] == {
        "segment": OTHER, "respondents": 5, "favourable_pct": None, "enps": 0.0,
    }  # fmt: skip
    # everyone: 37 favourable of 60 answers; eNPS promoters 11, detractors 6 of 21
    assert got[ALL] == {"segment": ALL, "respondents": 21, "favourable_pct": 61.7, "enps": 23.8}
    assert list(got) == ["Engineering", "Sales", "Support", OTHER, ALL]


def test_tenure_bands_and_managers(warehouse: Path) -> None:
    tenure, manager = engagement(warehouse, [("tenure_band",), ("manager",)], min_group=3)
    got = {r["segment"]: r["respondents"] for r in table_rows(tenure)}
    # months from the hire month to March 2026: s1 9 (< 1 year), s2 26 and s6 30 (2-5 years),
    # s3, s4 73, e1..e5 62 and l1, l2 94 (5-10 years), s5 170 (10+), p1..p5 16 (1-2 years).
    # < 1 year (1), 2-5 years (2) and 10+ (1) are below 3: merged into Other (4).
    assert got == {UNLINKED: 3, "1-2 years": 5, "5-10 years": 9, OTHER: 4, ALL: 21}
    managers = {r["segment"]: r["respondents"] for r in table_rows(manager)}
    # m1: Sales (6) and Legal (2); m2: Engineering (5); m3: Support (5)
    assert managers == {
        UNLINKED: 3, "manager k-m1": 8, "manager k-m2": 5, "manager k-m3": 5, ALL: 21
    }  # fmt: skip


def test_tenure_band_edges() -> None:
    answered = date(2026, 3, 10)
    assert tenure_band("2026-03", answered) == "< 1 year"
    assert tenure_band("2027-01", answered) == "< 1 year"  # hired after answering
    assert tenure_band("2025-03", answered) == "1-2 years"
    assert tenure_band("2024-04", answered) == "1-2 years"
    assert tenure_band("2024-03", answered) == "2-5 years"
    assert tenure_band("2016-03", answered) == "10+ years"
    assert tenure_band(None, answered) == "(not recorded)"
    assert tenure_band("garbage", answered) == "(not recorded)"


def test_too_few_respondents_shows_nothing(warehouse: Path) -> None:
    (report,) = engagement(warehouse, [("department",)], min_group=22)
    assert report.rows == [] and table_rows(report) == []
    assert to_csv(report) == "segment,respondents,favourable_pct,enps\n"


def test_incompatible_cuts_and_bad_dimensions_are_refused(warehouse: Path) -> None:
    with pytest.raises(ReportError, match="incompatible"):
        engagement(warehouse, [("department", "location"), ("location",)])
    check_compatible([("department",), ("department", "location"), ("manager",)])
    with pytest.raises(ReportError, match="unknown segment"):
        parse_dimensions("department,salary")


def test_cli_writes_table_csv_and_png(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["report", "engagement", "--database", str(warehouse), "--by", "department",
         "--by", "department,location", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| Sales | 6 | 56% | +17 |" in printed
    assert "Unlinked respondents (not found in the HRIS): 3" in printed
    png = out / "engagement-department.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(
        csv.DictReader(io.StringIO((out / "engagement-department-location.csv").read_text()))
    )
    assert sum(int(r["respondents"]) for r in rows if r["segment"] != ALL) == 21
    assert all(int(r["respondents"]) >= 5 for r in rows)
    assert main(["report", "engagement", "--database", str(tmp_path / "none.duckdb")]) == 2


# --- the minimum group size, property-based ------------------------------------------------------


def _respondent(
    dept: str, loc: str, linked: bool, likert: list[int], nps: int | None
) -> Respondent:
    segments = (
        {"department": dept, "location": loc}
        if linked
        else dict.fromkeys(("department", "location"), UNLINKED)
    )
    return Respondent("", segments, tuple(likert), nps, linked)


respondent = st.builds(
    _respondent,
    st.sampled_from(["A", "B", "C", "D", "E", "F"]),
    st.sampled_from(["x", "y", "z"]),
    st.sampled_from([True, True, True, False]),
    st.lists(st.integers(1, 5), max_size=3),
    st.none() | st.integers(0, 10),
)
people_strategy = st.lists(respondent, max_size=80).map(
    lambda ps: [Respondent(str(i), p.segments, p.likert, p.nps, p.linked) for i, p in enumerate(ps)]
)


def _count(row: Row, column: str) -> int:
    return row.likert_n if column == "favourable" else row.nps_n


def _check_partition(rows: list[Row], members: list[Respondent], k: int) -> None:
    ids = sorted(r.id for row in rows for r in row.members)
    assert ids == sorted(r.id for r in members)  # every respondent in exactly one row
    for row in rows:
        assert row.n >= k, f"{row.label}: {row.n} respondents shown with minimum {k}"


def _check_differencing(
    parent_count: int, parent_shown: bool, rows: list[Row], k: int, only: str
) -> None:
    for column in (only,):
        if not parent_shown:
            assert all(getattr(r, column) is None for r in rows)
            continue
        shown = [r for r in rows if getattr(r, column) is not None]
        for row in shown:
            assert _count(row, column) >= k
        rest = parent_count - sum(_count(r, column) for r in shown)
        assert rest == 0 or rest >= k, f"{column}: hidden cells add up to {rest} < {k}"


@given(people=people_strategy, k=st.integers(1, 7))
def test_minimum_group_size_is_never_violated(people: list[Respondent], k: int) -> None:
    top = segment_report(people, ("department",), k)
    fine = segment_report(people, ("department", "location"), k)
    if len(people) < k:
        assert top.rows == [] and fine.rows == []
        return
    for report in (top, fine):
        _check_partition(report.rows, people, k)
        for column in ("favourable", "enps"):
            if getattr(report.total, column) is not None:
                assert _count(report.total, column) >= k
    # differencing against the total: whatever is hidden adds up to 0 or >= k
    total_shown = {c: getattr(top.total, c) is not None for c in ("favourable", "enps")}
    for column, shown in total_shown.items():
        count = _count(top.total, column)
        _check_differencing(count, shown, top.rows, k, only=column)
    # differencing between the two reports: each shown department of the coarse report is
    # split exactly by the fine one, hidden parts add up to 0 or >= k, Other stays one row
    for parent in top.rows:
        children = [r for r in fine.rows if r.labels[: len(parent.labels)] == parent.labels]
        if parent.other:
            assert [c.members for c in children] == [parent.members]
            continue
        _check_partition(children, parent.members, k)
        for column in ("favourable", "enps"):
            shown = getattr(parent, column) is not None
            _check_differencing(_count(parent, column), shown, children, k, only=column)


def test_differencing_case_by_hand() -> None:
    """Total 12 = A 6 + B 4 + C 2 with k = 5: B and C merge into Other (6), never B alone;
    and with A 5, B 5, C 2: C alone (2) is too small, so the smallest other row joins it."""

    def people(sizes: dict[str, int]) -> list[Respondent]:
        out = []
        for dept, n in sizes.items():
            out += [Respondent(f"{dept}{i}", {"department": dept}, (5,), 9) for i in range(n)]
        return out

    report = segment_report(people({"A": 6, "B": 4, "C": 2}), ("department",), 5)
    assert [(r.label, r.n) for r in report.rows] == [("A", 6), (OTHER, 6)]
    report = segment_report(people({"A": 5, "B": 6, "C": 2}), ("department",), 5)
    assert [(r.label, r.n) for r in report.rows] == [("B", 6), (OTHER, 7)]
