"""The Postgres path of survey-to-analytics, for real: `meltano run tap-surveymonkey
map-survey-to-analytics target-postgres` (MeltanoLabs' target, as meltano.yml declares it)
into a PostgreSQL server started here, compared row by row with what target-warehouse loads
from the same sandbox; a re-run doubles nothing."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests import projectkit

from sandbox.demo import meltano_env
from sandbox.postgres import Postgres, postgres_bin, start_postgres
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO
SURVEY_TASK = ["tap-surveymonkey", "map-survey-to-analytics"]
ANSWER_COLUMNS = "response_id, survey_id, question_id, answer_position, choice_id, choice_weight"


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, dict[str, str], Postgres, Path]]:
    if postgres_bin("initdb") is None:
        pytest.fail("PostgreSQL is not installed: scripts/bootstrap installs Debian's postgresql")
    workdir = tmp_path_factory.mktemp("postgres")
    pg = start_postgres()
    try:
        with Sandbox(employees=60, vendors=("surveymonkey",)) as sb:
            env = meltano_env(sb, workdir) | pg.env() | {
                "HRSYNC_INTEGRATION": "survey-to-postgres",
                "TARGET_POSTGRES_SSL_ENABLE": "false",  # loopback, throwaway cluster
            }  # fmt: skip
            for target in ("target-warehouse", "target-postgres"):
                run(env, target)
            yield sb, env, pg, Path(env["TARGET_WAREHOUSE_DATABASE"])
    finally:
        pg.stop()


def run(env: dict[str, str], target: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", "--full-refresh", *SURVEY_TASK, target],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def duck(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def text(value: Any) -> str:
    """One value as text, numbers alike whether psql printed NUMERIC ``2.0`` or DuckDB ``2``."""
    if value is None:
        return ""
    if isinstance(value, float) or (isinstance(value, str) and re.fullmatch(r"-?\d+\.\d+", value)):
        return f"{float(value):g}"
    return str(value)


def norm(rows: list[Any]) -> set[tuple[str, ...]]:
    """Rows as text tuples (psql prints text; DuckDB returns typed values)."""
    return {tuple(text(v) for v in row) for row in rows}


def test_postgres_holds_what_the_warehouse_holds(
    loaded: tuple[Sandbox, dict[str, str], Postgres, Path],
) -> None:
    _, _, pg, db = loaded
    sql = f"SELECT {ANSWER_COLUMNS} FROM survey_answers"  # noqa: S608
    in_postgres = pg.query(f"SELECT {ANSWER_COLUMNS} FROM analytics.survey_answers")  # noqa: S608
    in_duckdb = duck(db, sql)
    assert len(in_duckdb) > 100
    assert norm(in_postgres) == norm(in_duckdb)
    responses = "SELECT response_id, survey_id, response_status FROM {}survey_responses"
    assert norm(pg.query(responses.format("analytics."))) == norm(duck(db, responses.format("")))
    # pseudonyms only: map-hr's allow-list reached Postgres too (no e-mail or name columns)
    columns = {
        row[0]
        for row in pg.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'"
        )
    }
    assert "email_key" in columns and not {"respondent_email", "first_name", "email"} & columns


def test_a_rerun_upserts_and_doubles_nothing(
    loaded: tuple[Sandbox, dict[str, str], Postgres, Path],
) -> None:
    _, env, pg, _ = loaded
    count = "SELECT count(*), count(DISTINCT (response_id, question_id, answer_position)) FROM "
    before = pg.query(count + "analytics.survey_answers")
    run(env, "target-postgres")
    assert pg.query(count + "analytics.survey_answers") == before
    assert before[0][0] == before[0][1]
