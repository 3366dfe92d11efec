"""`hrsync reconcile --run` end to end: the destinations are written by their real jobs, drift
is seeded into each the way an administrator would make it, and the report names each seeded
drift and nothing else.

One module-scoped fixture does every load once (the sync jobs, the seeding, the reconcile job);
the tests read its report.
"""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests import projectkit

from sandbox.bamboohr import _us_payroll
from sandbox.demo import iam_env, meltano_env
from sandbox.directories import ScimServer, Slapd, start_scim_server, start_slapd
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
BIN = Path(sys.executable).parent
MELTANO = str(BIN / "meltano")
HRSYNC = str(BIN / "hrsync")
LOADERS = ("RECONCILE", "SCIM", "LDAP", "MOODLE", "GUSTO")
#: the destinations the reconcile job reads back
COMPARED = ("scim", "ldap", "moodle", "gusto")


@dataclasses.dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    rows: list[dict[str, str]]
    seeded: set[tuple[str, str, str, str]]  # (destination, finding, hris id, detail)
    markdown: str
    database: Path


def meltano(env: dict[str, str], *blocks: str) -> None:
    proc = subprocess.run(
        [MELTANO, "run", *blocks], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def scim_call(scim: ScimServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    resp = requests.request(
        method,
        f"{scim.url('hrsync')}{path}",
        json=body,
        headers={"Authorization": f"Bearer {scim.token}", "Content-Type": "application/scim+json"},
        timeout=30,
    )
    resp.raise_for_status()
    return resp.json() if resp.content else None


def scim_users(scim: ScimServer) -> dict[str, dict[str, Any]]:
    body = scim_call(scim, "GET", "/Users?count=1000")
    return {u.get("externalId") or u["id"]: u for u in body.get("Resources", [])}


def seed_drift(sb: Sandbox, scim: ScimServer, slapd: Slapd) -> set[tuple[str, str, str, str]]:
    """Drift an administrator makes by hand; returns what the report must name."""
    today = sb.world.as_of
    people = list(sb.world.people())
    leavers = [p for p in people if p.termination_date is not None and p.termination_date <= today]
    seeded: set[tuple[str, str, str, str]] = set()

    # SCIM: a hand-made account (no externalId), a leaver's account made active again (re-created
    # by hand: leavers' accounts are never created), a changed title
    scim_call(
        scim,
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "contractor.by.hand@example.com",
            "active": True,
        },
    )
    seeded.add(("scim", "orphaned", "", "no HRIS id"))
    leaver = next(p for p in leavers if p.work_email)
    scim_call(
        scim,
        "POST",
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"again.{leaver.employee_id}@example.com",
            "externalId": str(leaver.employee_id),
            "active": True,
        },
    )
    seeded.add(("scim", "orphaned", str(leaver.employee_id), "last day has passed"))
    users = scim_users(scim)
    mover = next(
        u
        for k, u in sorted(users.items())
        if u.get("active") and u.get("externalId") and u["title"]
    )
    scim_call(
        scim,
        "PATCH",
        f"/Users/{mover['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Chief Everything Officer"}],
        },
    )
    seeded.add(("scim", "field_differs", mover["externalId"], "title"))

    # Moodle: a leaver's account active again (their suspended one re-enabled, or one made by
    # hand with their id number), and enrolled in a course after the last day
    moodle: Any = sb.apps["moodle"]
    by_idnumber = {str(u.get("idnumber")): u for u in moodle.users.values() if u.get("idnumber")}
    back = leavers[1]
    if str(back.employee_id) in by_idnumber:
        uid = by_idnumber[str(back.employee_id)]["id"]
        moodle.update_users({"users": [{"id": uid, "suspended": 0}]})
    else:
        made = moodle.create_users(
            {
                "users": [
                    {
                        "username": f"again{back.employee_id}",
                        "firstname": "Again",
                        "lastname": "Hand-made",
                        "email": f"again{back.employee_id}@example.com",
                        "idnumber": str(back.employee_id),
                        "createpassword": "1",
                    }
                ]
            }
        )
        uid = made[0]["id"]
    seeded.add(("moodle", "orphaned", str(back.employee_id), "last day has passed"))
    enrolled = {cid for (cid, u) in moodle.enrolments if u == uid}
    course = next(cid for cid in sorted(moodle.courses) if cid != 1 and cid not in enrolled)
    moodle.enrol_users({"enrolments": [{"roleid": 5, "userid": uid, "courseid": course}]})
    for cid in sorted(enrolled | {course}):
        seeded.add(("moodle", "enrolled_after_last_day", str(back.employee_id), f"course {cid}"))

    # Gusto: a leaver on the payroll still active: their termination cancelled by hand, or
    # (when payroll never had them) an employee added by hand under their HRIS id
    gusto: Any = sb.apps["gusto"]
    by_hris = {
        str(e["_external_id"]): k for k, e in gusto.employees.items() if e.get("_external_id")
    }
    terminated = [p for p in leavers if gusto.terminations.get(by_hris.get(str(p.employee_id)))]
    if terminated:
        paid = terminated[0]
        gusto.terminations[by_hris[str(paid.employee_id)]] = []
    else:
        paid = next(p for p in leavers if _us_payroll(p, p.current))
        token = gusto._issue()["access_token"]
        resp = requests.post(
            f"{sb.info()['gusto']['api_url']}/v1/companies/{gusto.company_uuid}/employees",
            json={
                "first_name": "Paid",
                "last_name": "Byhand",
                "custom_fields": [
                    {"id": gusto.custom_field["uuid"], "value": str(paid.employee_id)}
                ],
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
    seeded.add(("gusto", "paid_after_last_day", str(paid.employee_id), "last day has passed"))
    return seeded


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("reconcile")
    scim, slapd = start_scim_server(), start_slapd(workdir / "slapd")
    try:
        with Sandbox(employees=200) as sb:
            sb.apps["gusto"].rate_limit = 100_000  # type: ignore[attr-defined]
            env = meltano_env(sb, workdir) | iam_env(scim, slapd, workdir)
            database = workdir / "reconcile.duckdb"
            for loader in LOADERS:
                env[f"TARGET_WAREHOUSE_{loader}_DATABASE"] = str(database)
            env["HRSYNC_RECONCILE_DB"] = str(database)
            # Gusto's refresh token works once: target-payroll-api and tap-gusto share the file
            for plugin in ("TARGET_PAYROLL_API", "TAP_GUSTO"):
                env[f"{plugin}_TOKEN_FILE"] = str(workdir / "gusto-token.json")
            env["HRSYNC_OPS_FILE"] = str(workdir / "hrsync.yml")
            (workdir / "hrsync.yml").write_text("jobs: {}\n")  # no alert channel leaves loopback
            # the destinations as hrsync's own jobs write them (one `meltano run`, one start-up)
            meltano(
                env,
                "hris-to-iam",
                "hris-to-lms",
                "tap-bamboohr",
                "map-bamboohr-to-canonical",
                "map-hris-to-payroll",
                "target-payroll-api",
            )
            seeded = seed_drift(sb, scim, slapd)
            out = workdir / "report"
            proc = subprocess.run(
                [HRSYNC, "reconcile", "--run", "--out", str(out), "--as-of", str(sb.world.as_of)]
                + [f"--destination={d}" for d in COMPARED],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            csv_path = next(out.glob("reconcile-*.csv"), None)
            md_path = next(out.glob("reconcile-*.md"), None)
            rows = list(csv.DictReader(csv_path.open(encoding="utf-8"))) if csv_path else []
            yield Run(
                proc.returncode,
                proc.stdout,
                proc.stderr,
                rows,
                seeded,
                md_path.read_text(encoding="utf-8") if md_path else "",
                database,
            )
    finally:
        scim.stop()
        slapd.stop()


def test_the_report_names_each_seeded_drift_and_nothing_else(reconciled: Run) -> None:
    assert reconciled.code == 3, reconciled.stderr[-4000:]
    found = {(r["destination"], r["finding"], r["hris_id"], r["detail"]) for r in reconciled.rows}
    seeded = {s for s in reconciled.seeded if s[0] in COMPARED}
    assert found == seeded, (sorted(found - seeded), sorted(seeded - found))
    assert all(r["account"] for r in reconciled.rows)  # each names the destination's record


def test_the_report_holds_keys_and_field_names_only(reconciled: Run) -> None:
    text = reconciled.markdown + "\n".join(str(r) for r in reconciled.rows)
    assert "Chief Everything Officer" not in text  # the value that drifted is never copied
    assert "contractor.by.hand" not in text
    for dest in COMPARED:
        assert f"| {dest} |" in reconciled.markdown
    assert not reconciled.database.exists()  # removed after the comparison


def test_a_clean_destination_exits_zero_and_a_missing_warehouse_two(
    reconciled: Run, tmp_path: Path
) -> None:
    """With the same warehouse, a day before anyone left reports no leaver drift; a warehouse
    that is not there is "could not run" (2), which a monitor tells apart from drift (3)."""
    proc = subprocess.run(
        [HRSYNC, "reconcile", "--database", str(tmp_path / "none.duckdb"), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "no warehouse" in proc.stderr
