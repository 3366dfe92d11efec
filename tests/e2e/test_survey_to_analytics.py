"""`meltano run survey-to-analytics` end to end: BambooHR and SurveyMonkey sandboxes -> map-hr ->
the DuckDB warehouse, checked row by row; then `hrsync report engagement` on what landed."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests import projectkit

from hrsync.pseudonym import Pseudonymizer
from hrsync_ops.report import ALL, UNLINKED
from sandbox.demo import meltano_env
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
BIN = Path(sys.executable).parent
MELTANO = str(BIN / "meltano")
JOB = "survey-to-analytics"

Env = tuple[Sandbox, dict[str, str], Path]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("analytics")
    with Sandbox(employees=60, vendors=("bamboohr", "surveymonkey")) as sb:
        # meltano_env (the demo's) points the taps at the sandbox, target-warehouse at
        # workdir/warehouse.duckdb, and turns on include_respondent_email (e-mail collectors)
        env = meltano_env(sb, workdir) | {"HRSYNC_INTEGRATION": JOB}
        database = Path(env["TARGET_WAREHOUSE_DATABASE"])
        assert database.parent == workdir.resolve()
        run_job(env, "--full-refresh")
        yield sb, env, database


def run_job(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, JOB], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def sandbox_responses(sb: Sandbox) -> list[dict[str, Any]]:
    app: Any = sb.apps["surveymonkey"]
    return [app.response(s, slot) for s in app.surveys.values() for slot in app._base(s)]


def test_hris_segments_land_pseudonymised(job: Env) -> None:
    sb, env, db = job
    keyed = Pseudonymizer(env["MAP_HR_HMAC_KEY"]).context("analytics")
    rows = {
        r[0]: r
        for r in query(
            db,
            "SELECT employee_key, email_key, department, location, manager_key, hire_month "
            "FROM employees",
        )
    }
    people = list(sb.world.people())
    assert set(rows) == {keyed(str(p.employee_id)) for p in people}
    checked = 0
    for p in people:
        if len(p.positions) != 1:
            continue  # two positions: which one BambooHR shows is the tap's business
        pos = p.positions[0]
        manager = keyed(str(pos.reports_to)) if pos.reports_to else None
        email = keyed(p.work_email.lower()) if p.work_email else None
        assert rows[keyed(str(p.employee_id))] == (
            keyed(str(p.employee_id)),
            email,
            pos.department,
            pos.location,
            manager,
            p.hire_date.isoformat()[:7],
        ), p.employee_id
        checked += 1
    assert checked > 40


def test_survey_responses_land_linked_by_pseudonym_and_unknowns_are_kept(job: Env) -> None:
    sb, env, db = job
    keyed = Pseudonymizer(env["MAP_HR_HMAC_KEY"]).context("analytics")
    expected = {}
    for r in sandbox_responses(sb):
        employee = (r["custom_variables"] or {}).get("employee_id") or None
        email = r["email_address"] or None
        expected[r["id"]] = (
            r["survey_id"],
            keyed(employee) if employee else None,
            keyed(email.lower()) if email else None,
            r["response_status"],
        )
    got = {
        r[0]: r[1:]
        for r in query(
            db,
            "SELECT response_id, survey_id, employee_key, email_key, response_status "
            "FROM survey_responses",
        )
    }
    assert got == expected
    employees = {r[0] for r in query(db, "SELECT employee_key FROM employees")}
    emails = {r[0] for r in query(db, "SELECT email_key FROM employees") if r[0]}
    unlinked = [
        rid for rid, (_, emp, mail, _) in got.items() if emp not in employees and mail not in emails
    ]
    assert len(unlinked) >= 3  # no custom variable, an empty one, an id nobody has
    # answers: every chosen option, scored by position; no free text at all
    answers = query(
        db,
        "SELECT a.question_id, a.choice_position, a.choice_weight, q.family, "
        "json_array_length(q.choices) FROM survey_answers a JOIN survey_questions q "
        "USING (survey_id, question_id)",
    )
    assert answers and all(pos is not None for _, pos, _, _, _ in answers)
    for _, pos, weight, _, n in answers:
        assert weight == (pos - 1 if n == 11 else pos)
    choice_answers = sum(
        1
        for r in sandbox_responses(sb)
        for page in r["pages"]
        for q in page["questions"]
        for a in q["answers"]
        if a.get("choice_id")
    )
    assert len(answers) == choice_answers


def test_no_names_emails_or_free_text_anywhere_in_the_warehouse(job: Env) -> None:
    sb, _env, db = job
    from sandbox.surveymonkey import COMMENTS

    people = list(sb.world.people())
    names = {n for p in people for n in (p.first_name, p.last_name, p.preferred_name) if n}
    full_names = {f"{p.first_name} {p.last_name}" for p in people}
    ids = {str(p.employee_id) for p in people}
    cells: list[str] = []
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        for table in tables:
            for col, kind, *_ in con.execute(f'DESCRIBE "{table}"').fetchall():
                if kind not in ("VARCHAR", "JSON"):
                    continue  # numbers, dates and flags name nobody
                values = con.execute(f'SELECT DISTINCT CAST("{col}" AS VARCHAR) FROM "{table}"')  # noqa: S608
                cells += [v for (v,) in values.fetchall() if v is not None]
    assert set(tables) == {
        "employees",
        "surveys",
        "survey_questions",
        "survey_responses",
        "survey_answers",
    }
    text = "\n".join(cells)
    assert "@" not in text  # no e-mail address
    assert not [c for c in cells if c in names or c in ids]  # no name, no raw employee id
    assert not [n for n in full_names if n in text]
    assert not [c for c in COMMENTS if c.split("\n")[0] in text]  # no free-text answer
    # the only 64-hex strings are pseudonyms; nothing else looks like an identifier of a person
    assert all(re.fullmatch(r"[0-9a-f]{64}", c) for c in cells if len(c) == 64)


def test_report_on_what_landed(job: Env, tmp_path: Path) -> None:
    _sb, env, db = job
    out = tmp_path / "report"
    proc = subprocess.run(
        [str(BIN / "hrsync"), "report", "engagement", "--database", str(db),
         "--by", "department", "--by", "department,tenure_band", "--by", "manager",
         "--out", str(out)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "### Engagement by department — Employee engagement survey" in proc.stdout
    completed = query(
        db,
        "SELECT count(*) FROM survey_responses r JOIN surveys s USING (survey_id) "
        "WHERE s.title = 'Employee engagement survey' AND r.response_status = 'completed'",
    )[0][0]
    for name in ("department", "department-tenure_band", "manager"):
        rows = list(csv.DictReader(io.StringIO((out / f"engagement-{name}.csv").read_text())))
        total = next(r for r in rows if r["segment"] == ALL)
        assert int(total["respondents"]) == completed
        segments = [r for r in rows if r["segment"] != ALL]
        assert sum(int(r["respondents"]) for r in segments) == completed
        assert all(int(r["respondents"]) >= 5 for r in segments)
        assert not any(r["segment"] == UNLINKED and int(r["respondents"]) < 5 for r in rows)
        assert (out / f"engagement-{name}.png").stat().st_size > 1000


def test_incremental_rerun_upserts_a_finished_response(job: Env) -> None:
    """A respondent finishes a partial response: the re-run (survey task, from its bookmark)
    updates that response and adds its new answers; nothing is doubled."""
    sb, env, db = job
    app: Any = sb.apps["surveymonkey"]
    survey = app.surveys["500000001"]
    slot = next(s for s in app._base(survey) if s % 9 == 0)  # every ninth is partial
    rid = app.response(survey, slot)["id"]
    counts = f"SELECT count(*) FROM survey_answers WHERE response_id = '{rid}'"  # noqa: S608
    (answers_before,) = query(db, counts)[0]
    before = {
        t: query(db, f"SELECT count(*) FROM {t}")[0][0]  # noqa: S608
        for t in ("surveys", "survey_questions", "survey_responses")
    }
    app.touch(survey.id, slot, response_status="completed")
    proc = subprocess.run(
        [MELTANO, "run", "tap-surveymonkey", "map-survey-to-analytics", "target-warehouse"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    after = {t: query(db, f"SELECT count(*) FROM {t}")[0][0] for t in before}  # noqa: S608
    assert after == before
    status = f"SELECT response_status FROM survey_responses WHERE response_id = '{rid}'"  # noqa: S608
    assert query(db, status) == [("completed",)]
    assert query(db, counts)[0][0] > answers_before
    assert query(db, "SELECT count(*) - count(DISTINCT response_id) FROM survey_responses") == [
        (0,)
    ]


def test_answers_removed_in_an_edit_leave_the_warehouse(job: Env) -> None:
    """A completed response is edited down to its first page (the later answers are gone in
    SurveyMonkey): after the incremental run the warehouse holds exactly the answers the
    response has now (target-warehouse replaces a response's answers as a whole)."""
    sb, env, db = job
    app: Any = sb.apps["surveymonkey"]
    survey = app.surveys["500000001"]
    slot = next(s for s in app._base(survey) if s % 9 != 0 and s > 20)  # a completed one
    rid = app.response(survey, slot)["id"]
    counts = f"SELECT count(*) FROM survey_answers WHERE response_id = '{rid}'"  # noqa: S608
    (before,) = query(db, counts)[0]
    app.touch(survey.id, slot, response_status="partial")
    now = app.response(survey, slot)
    scored = sum(
        1
        for page in now["pages"]
        for question in page["questions"]
        for answer in question["answers"]
        if answer.get("choice_id")  # free text never leaves map-hr
    )
    assert 0 < scored < before
    proc = subprocess.run(
        [MELTANO, "run", "tap-surveymonkey", "map-survey-to-analytics", "target-warehouse"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert query(db, counts) == [(scored,)]
    others = "SELECT count(DISTINCT response_id) FROM survey_answers"
    assert query(db, others)[0][0] > 1  # the other responses' answers are still there
