"""`hrsync-sandbox rehearse --people FILE`: every job once on a people file of hard cases
(accents, apostrophes, non-Latin names, a mononym, two positions, a rehire under a new id, a
malformed work e-mail), with a summary of what each destination got and what was dead-lettered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests import projectkit

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
PEOPLE = ROOT / "tests" / "sandbox" / "people" / "hard_cases.csv"
SANDBOX = str(Path(sys.executable).parent / "hrsync-sandbox")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, list[dict[str, Any]]]:
    from tests.e2e.test_hris_to_lms import private_run_dir

    workdir = tmp_path_factory.mktemp("rehearsal")
    env = {**os.environ, **private_run_dir(workdir)}
    out = workdir / "out"
    proc = subprocess.run(
        [SANDBOX, "rehearse", "--people", str(PEOPLE), "--workdir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (out / "rehearsal.md").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "rehearsal.md").stat().st_mode & 0o077 == 0  # names real people: private
    report = json.loads((out / "rehearsal.json").read_text(encoding="utf-8"))
    return proc.returncode, (out / "rehearsal.md").read_text(encoding="utf-8"), report


def job(report: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in report if r["job"] == name)


def got(report: dict[str, Any], destination: str, outcome: str) -> set[str]:
    """The file ids (without names) the destination got with this outcome."""
    out: set[str] = set()
    for d in report["deliveries"]:
        if re.search(destination, d["destination"]):
            out |= {who.split(" ", 1)[0] for who in d["outcomes"].get(outcome, [])}
    return out


def test_every_job_ran_and_the_summary_names_each_one(
    rehearsal: tuple[int, str, list[dict[str, Any]]],
) -> None:
    _, text, report = rehearsal
    names = [r["job"] for r in report]
    assert names == [
        "ats-to-hris", "lever-to-hris", "hris-to-iam", "hris-to-lms", "hris-to-payroll",
        "hris-to-benefits", "survey-to-analytics",
    ]  # fmt: skip
    for name in names:
        assert f"## {name}: " in text
    assert "# Rehearsal on hard_cases.csv" in text and "8 people from the file" in text


def test_the_carrier_gets_the_hard_names_and_the_mononym(
    rehearsal: tuple[int, str, list[dict[str, Any]]],
) -> None:
    _, text, report = rehearsal
    benefits = job(report, "hris-to-benefits")
    assert benefits["exit_status"] == 0, benefits["errors"]
    sent = set().union(*(got(benefits, ".", o) for o in ("sent", "added", "delivered")))
    # enrolled people with a Latin spelling (2006's seeded elections are all waived); 王 has
    # no Latin spelling: a dead letter saying so
    assert {"1001", "1002", "1004", "1005"} <= sent, text
    assert "2006" not in sent and "1006" not in sent  # 1006 left in 2023: nothing to send
    letters = {d["who"].split(" ", 1)[0]: d for d in benefits["dead_letters"]}
    assert "1003" in letters and "last_name" in letters["1003"]["error"]
    # 1007's malformed work e-mail makes their canonical worker a dead letter (the benefits job
    # reads the canonical model, as every HRIS job does): named, and sent once it is fixed
    assert "1007" not in sent
    named = [e for e in benefits["errors"] if "ana.souza@@acme" in e or "id=8" in e]
    assert ("1007" in letters and "mail" in letters["1007"]["error"]) or named, text
    assert "1003 (秀英 王)" in text  # named as the file names them


def test_directories_and_lms_get_the_people_and_both_positions(
    rehearsal: tuple[int, str, list[dict[str, Any]]],
) -> None:
    _, text, report = rehearsal
    iam = job(report, "hris-to-iam")
    everyone = {"1001", "1002", "1003", "1004", "1005"}
    for directory in ("/v2$", "ou=People"):
        created = got(iam, directory, "created")
        assert everyone | {"2006"} <= created, text
        assert "1006" not in created  # left in 2023: no account; 2006 is the one rehired
    # two positions: Aoife is in the engineering group and, by her second job, in sales
    assert "1005" in got(iam, "cn=engineering", "group_added")
    assert "1005" in got(iam, "cn=sales", "group_added")
    assert "1001" not in got(iam, "cn=sales", "group_added")
    assert "1004 (Teller)" in text  # a mononym is named once
    lms = job(report, "hris-to-lms")
    assert everyone | {"2006"} <= got(lms, "moodle", "created")
    assert "1006" in got(lms, "moodle", "skipped")
    # the ATS jobs ran and added nobody: the HRIS holds the file's people only
    for ats in ("ats-to-hris", "lever-to-hris"):
        assert job(report, ats)["exit_status"] == 0 and job(report, ats)["deliveries"] == []


def test_the_malformed_email_is_named_with_its_field(
    rehearsal: tuple[int, str, list[dict[str, Any]]],
) -> None:
    _, text, report = rehearsal
    for name in ("hris-to-iam", "hris-to-lms", "hris-to-payroll"):
        r = job(report, name)
        letters = [d for d in r["dead_letters"] if d["who"].startswith("1007 ")]
        named = [e for e in r["errors"] if "ana.souza@@acme" in e or "id=8" in e]
        # a dead letter naming the field, or (while map-hr stops at the first bad record) the
        # error that stopped the mapper, naming record and field: never silence
        assert letters or named, (name, text)
        assert all("mail" in d["error"] for d in letters)
        assert all("work_email" in e or "workEmail" in e for e in named)
        assert "1007" not in got(r, ".", "created")
