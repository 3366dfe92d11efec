"""The reconcile comparison on a small warehouse (tables as target-warehouse writes them); the
end-to-end run against the real destinations is tests/e2e/test_reconcile.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import duckdb
import pytest

from hrsync_ops.cli import main
from hrsync_ops.reconcile import to_csv

TODAY = dt.date(2026, 6, 1)


def warehouse(path: Path) -> Path:
    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE hris_payroll_employees (employee_id VARCHAR, first_name VARCHAR, "
        "last_name VARCHAR, employment_status VARCHAR, hire_date DATE, termination_date DATE)"
    )
    conn.execute(
        "INSERT INTO hris_payroll_employees VALUES "
        "('1', 'Zoë', 'O''Brien', 'Active', '2020-01-01', NULL),"
        "('2', 'Ana', 'Lee', 'Inactive', '2019-01-01', '2026-05-01'),"
        "('3', 'Kim', 'Ito', 'Active', '2021-01-01', '2026-07-01'),"  # leaves next month
        "('4', 'Raj', 'Rao', 'Active', '2022-01-01', NULL),"
        "('5', 'Eve', 'Ng', 'Inactive', '2018-01-01', '2025-01-01'),"
        "('6', 'Max', 'Roe', 'Active', '2023-01-01', '2026-01-01')"  # rehired? no: ended
    )
    conn.execute(
        "CREATE TABLE gusto_employees (uuid VARCHAR, hris_employee_id VARCHAR, "
        "terminated BOOLEAN, first_name VARCHAR, last_name VARCHAR, custom JSON)"
    )
    conn.execute(
        "INSERT INTO gusto_employees VALUES "
        "('g1', '1', false, 'Zoë', ' O''Brien ', NULL),"  # same after trimming
        "('g2', '2', false, 'Ana', 'Lee', NULL),"  # paid after the last day
        "('g3', '3', false, 'Kim', 'Itō', NULL),"  # a changed name
        "('g5', '5', true, 'Eve', 'Ng', NULL),"  # a leaver, terminated: fine
        "('g6', '6', true, 'Max', 'Roe', NULL),"
        "('=g9', NULL, false, 'By', 'Hand', ?)",  # made by hand; a formula-like key
        [json.dumps({"x": 1})],
    )
    conn.close()
    return path


def test_findings_name_each_drift_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = warehouse(tmp_path / "w.duckdb")
    out = tmp_path / "out"
    code = main(
        [
            "reconcile",
            "--database",
            str(db),
            "--destination",
            "gusto",
            "--as-of",
            "2026-06-01",
            "--out",
            str(out),
        ]
    )
    assert code == 3
    rows = list(csv.DictReader((out / "reconcile-2026-06-01.csv").open(encoding="utf-8")))
    assert [(r["finding"], r["hris_id"], r["account"], r["detail"]) for r in rows] == [
        ("field_differs", "3", "g3", "last_name"),
        ("missing", "4", "", "no account"),
        ("orphaned", "", "'=g9", "no HRIS id"),  # neutralised for spreadsheets
        ("paid_after_last_day", "2", "g2", "last day has passed"),
    ]
    report = capsys.readouterr().out
    assert "| gusto | 6 | 1 | 1 | 1 | 0 | 1 |" in report
    assert "Itō" not in report and "Itō" not in (out / "reconcile-2026-06-01.csv").read_text()
    assert oct((out / "reconcile-2026-06-01.csv").stat().st_mode & 0o777) == "0o600"


def test_an_earlier_day_moves_the_last_days(tmp_path: Path) -> None:
    """As of a day before Ana's last day she is owed pay: no paid-after-last-day finding."""
    db = warehouse(tmp_path / "w.duckdb")
    code = main(
        [
            "reconcile",
            "--database",
            str(db),
            "--destination",
            "gusto",
            "--as-of",
            "2026-04-01",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 3
    text = (tmp_path / "reconcile-2026-04-01.csv").read_text(encoding="utf-8")
    assert "paid_after_last_day" not in text


def test_could_not_run_is_two_and_names_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = warehouse(tmp_path / "w.duckdb")
    assert main(["reconcile", "--database", str(db), "--out", str(tmp_path)]) == 2
    assert "main.hris_iam_users is not in the warehouse" in capsys.readouterr().err
    assert main(["reconcile", "--database", str(tmp_path / "no.duckdb")]) == 2
    assert "no warehouse at" in capsys.readouterr().err


def test_no_drift_exits_zero(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(db))
    conn.execute(
        "CREATE TABLE hris_payroll_employees AS SELECT '1' AS employee_id, 'A' AS first_name, "
        "'B' AS last_name, 'Active' AS employment_status, NULL AS termination_date"
    )
    conn.execute(
        "CREATE TABLE gusto_employees AS SELECT 'g1' AS uuid, '1' AS hris_employee_id, "
        "false AS terminated, 'A' AS first_name, 'B' AS last_name"
    )
    conn.close()
    code = main(
        ["reconcile", "--database", str(db), "--destination", "gusto", "--out", str(tmp_path)]
    )
    assert code == 0


def test_csv_cells_are_neutralised() -> None:
    from hrsync_ops.reconcile import Finding, Result

    result = Result(TODAY, ["ldap"], [Finding("ldap", "orphaned", "", "+cmd|x", "")], {"ldap": 1})
    rows = list(csv.reader(io.StringIO(to_csv(result))))
    assert rows[1][3] == "'+cmd|x"
