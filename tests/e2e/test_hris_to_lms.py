"""`meltano run hris-to-lms` end to end: BambooHR sandbox -> map-hr x2 -> target-moodle ->
the Moodle fake."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests import projectkit

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from sandbox.demo import meltano_env
from sandbox.moodle import Moodle
from sandbox.server import Sandbox
from target_moodle.rules import DEFAULT_RULES

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
MELTANO = projectkit.MELTANO

Env = tuple[Sandbox, dict[str, str]]


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("lms")
    with Sandbox(employees=60, vendors=("bamboohr", "moodle")) as sb:
        env = meltano_env(sb, workdir) | private_run_dir(workdir)
        env["TARGET_MOODLE_STATE_PATH"] = str(workdir / "target-moodle-state.sqlite")
        env["HRSYNC_DLQ_PATH"] = str(workdir / "dlq.sqlite")
        env["TARGET_MOODLE_RULES_PATH"] = str(rules_with_finance(workdir))
        yield sb, env


def rules_with_finance(workdir: Path) -> Path:
    """The shipped rules, plus one that only a second position meets in this world (person 17:
    Customer Success, and Controller in Finance)."""
    rules = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules["rules"].append({"name": "finance", "when": {"department": "Finance"}, "courses": [11]})
    path = workdir / "rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return path


def private_run_dir(workdir: Path) -> dict[str, str]:
    """A .meltano of this test's own, its plugin venvs linked to the project's: Meltano
    rewrites .meltano/run/<plugin>/ on every invocation, and runs sharing it (a demo or another
    job in the same checkout) delete each other's config files mid-run."""
    sys_dir = workdir / "meltano-sys"
    sys_dir.mkdir()
    for kind in ("extractors", "mappers", "loaders", "utilities"):
        if (ROOT / ".meltano" / kind).is_dir():
            (sys_dir / kind).symlink_to(ROOT / ".meltano" / kind)
    return {"MELTANO_SYS_DIR_ROOT": str(sys_dir)}


def run_job(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *args, "hris-to-lms"],
        cwd=ROOT,
        env={**env, "HRSYNC_INTEGRATION": "hris-to-lms"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def moodle(sb: Sandbox) -> Moodle:
    app = sb.apps["moodle"]
    assert isinstance(app, Moodle)
    return app


def users(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {u["idnumber"]: u for u in moodle(sb).users.values() if u.get("idnumber")}


def courses(sb: Sandbox, wid: str) -> set[int]:
    uid = users(sb)[wid]["id"]
    return {c for (c, u), row in moodle(sb).enrolments.items() if u == uid and row["status"] == 0}


def test_workers_reach_moodle_with_their_compliance_courses(lms: Env) -> None:
    sb, env = lms
    run_job(env, "--full-refresh")
    today = sb.world.as_of
    people = list(sb.world.people())
    current = {
        str(p.employee_id)
        for p in people
        if p.work_email and (p.termination_date is None or p.termination_date > today)
    }
    active = {k for k, u in users(sb).items() if not u["suspended"]}
    assert active == current  # leavers got no account; people without a work e-mail neither
    # leavers do reach the target (map-hris-to-lms sends them, for suspensions)
    skipped = {
        e["record_key"]
        for e in AuditLog.read(Path(env["HRSYNC_AUDIT_LOG"]))
        if e["outcome"] == "skipped"
    }
    leavers = {str(p.employee_id) for p in people if p.status == "Inactive"}
    # future hires whose work address IT has not made yet wait (no dead letter: not an error)
    starting = {
        str(p.employee_id) for p in people if not p.work_email and p.hire_date > sb.world.as_of
    }
    assert starting, "the world should have a future hire without a work e-mail"
    assert skipped == leavers | starting
    letters = DeadLetterStore(env["HRSYNC_DLQ_PATH"]).list()
    assert not starting & {dl.record_key for dl in letters}
    assert all(dl.error_class == "missing_email" for dl in letters)  # those who have started
    zoe = users(sb)["1"]
    assert (zoe["firstname"], zoe["lastname"]) == ("Zoë", "O'Brien-Łukasiewicz")
    assert users(sb)["4"]["lastname"] == "王"
    for wid in current:
        assert 2 in courses(sb, wid) and 3 in courses(sb, wid)  # everyone's courses
    berlin = [
        str(p.employee_id)
        for p in people
        if str(p.employee_id) in current and p.positions[0].location == "Berlin"
    ]
    for wid in berlin:
        assert {7, 8} <= courses(sb, wid)
    # managers are derived from who reports to whom: person 1 has reports in every world
    assert 10 in courses(sb, "1")
    # a second position brings its own courses: Finance (rule "finance") or Sales (rule "sales")
    two = [p for p in people if len(p.positions) > 1 and str(p.employee_id) in current]
    second_only = [
        p for p in two if p.positions[0].department not in ("Finance", "Sales")
        and p.positions[1].department in ("Finance", "Sales")
    ]  # fmt: skip
    assert second_only, "the world should have someone whose second position has a course"
    for p in second_only:
        assert 11 in courses(sb, str(p.employee_id))
    others = [
        p for p in people if str(p.employee_id) in current and p not in second_only
        and p.positions[0].department not in ("Finance", "Sales")
    ]  # fmt: skip
    assert all(11 not in courses(sb, str(p.employee_id)) for p in others)
    # nothing but LMS fields reached Moodle
    assert not any("ssn" in str(u).lower() or "1960" in str(u) for u in users(sb).values())


def test_a_rerun_writes_nothing_but_the_leaver_it_suspends(lms: Env) -> None:
    sb, env = lms
    leaver = next(
        p for p in sb.world.people() if p.work_email and p.status == "Active" and p.employee_id > 1
    )
    key = str(leaver.employee_id)
    before = courses(sb, key)
    last = sb.world.person(leaver.employee_id)
    ended = dataclasses.replace(
        last.employments[-1], termination_date=sb.world.as_of - timedelta(days=1)
    )
    sb.world.update_person(leaver.employee_id, employments=(*last.employments[:-1], ended))
    audit = Path(env["HRSYNC_AUDIT_LOG"])
    mark, sent = len(AuditLog.read(audit)), len(moodle(sb).writes)
    run_job(env)  # incremental: only the changed employee comes through
    writes = [
        (e["record_key"], e["outcome"])
        for e in AuditLog.read(audit)[mark:]
        if e["outcome"] not in ("unchanged", "skipped")
    ]
    assert writes == [(key, "suspended")]
    assert len(moodle(sb).writes) == sent + 1
    assert users(sb)[key]["suspended"] == 1
    assert courses(sb, key) == before  # the leaver's courses and history stay
