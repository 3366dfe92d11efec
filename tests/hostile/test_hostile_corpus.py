"""The hostile corpus (tests/hostile/corpus.py) through every job's mapping and into the real
destinations: scim2-server, OpenLDAP slapd, the SFTP drop (sshd + GnuPG) for the payroll CSV
and the 834 (validated by pyx12), and the sandbox's Moodle. Each destination is read back:
what it holds is exactly the cleaned data, nobody's record spilled into another's, no
injection took effect, and every refused record is a dead letter naming its field.

One module-scoped set-up: the corpus is mapped once (in-process, the engine the CLI runs) and
each target runs once as its console script; the tests only read what arrived.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from hrsync.deadletter import DeadLetter, DeadLetterStore
from map_hr.engine import build_engine, run_stream
from sandbox.benefits import carrier_env
from sandbox.directories import (
    ADMIN,
    DISABLED,
    PASSWORD,
    PEOPLE,
    ScimServer,
    Slapd,
    start_scim_server,
    start_slapd,
)
from sandbox.server import Sandbox
from sandbox.sftp import FileDrop, start_file_drop
from target_benefits_834.document import validate

from .corpus import PEOPLE as CORPUS
from .corpus import by_id

BIN = Path(sys.executable).parent
HMAC = "hostile-corpus-key-0123456789abcdef"
Messages = list[dict[str, Any]]


def _messages(stream: str, records: list[dict[str, Any]]) -> Messages:
    props = sorted({k for r in records for k in r})
    schema = {"type": "object", "properties": {p: {} for p in props}}
    head = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]}
    return [head, *({"type": "RECORD", "stream": stream, "record": r} for r in records)]


def _map(profile: str, messages: Messages, state: Path) -> Messages:
    engine = build_engine({"profile": profile, "hmac_key": HMAC, "state_dir": str(state)})
    out = io.BytesIO()
    data = b"".join(orjson.dumps(m) + b"\n" for m in messages)
    run_stream(engine, io.BytesIO(data), out)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def _records(messages: Messages, stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream]


@dataclass
class Run:
    """What went in and what each destination was left holding."""

    mapped: dict[str, Messages]
    exits: dict[str, int]
    stderr: dict[str, str]
    scim: ScimServer
    slapd: Slapd
    drop: FileDrop
    sandbox: Sandbox
    dlq: Path
    work: Path

    def letters(self, plugin: str) -> list[DeadLetter]:
        return [x for x in DeadLetterStore(self.dlq).list() if x.plugin == plugin]

    def files(self, folder: str) -> list[bytes]:
        remote = self.drop.sshd.upload_dir / folder
        return [self.drop.recipient.decrypt_file(p) for p in sorted(remote.iterdir())]


def _target(
    name: str, config: dict[str, Any], messages: Messages, run: Run, env: dict[str, str]
) -> None:
    path = run.work / f"{name}.json"
    path.write_text(json.dumps(config))
    data = b"".join(orjson.dumps(m) + b"\n" for m in messages)
    proc = subprocess.run(
        [str(BIN / name), "--config", str(path)],
        input=data,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    run.exits[name] = proc.returncode
    run.stderr[name] = proc.stderr.decode(errors="replace")[-4000:]


def _known(config: dict[str, Any], plugin: str) -> dict[str, Any]:
    """Only the settings the plugin's --about knows."""
    about = subprocess.run(
        [str(BIN / plugin), "--about", "--format", "json"], capture_output=True, check=True
    )
    known = set(json.loads(about.stdout)["settings"]["properties"])
    return {k: v for k, v in config.items() if k in known}


def _elections(subscribers: list[dict[str, Any]]) -> Messages:
    """One medical election per subscriber (what hris_to_benefits emits for them)."""
    props = ["election_id", "employee_id", "plan_id", "insurance_line", "coverage_level",
             "status", "start_date", "group_number"]  # fmt: skip
    schema = {"type": "object", "properties": {p: {"type": ["string", "null"]} for p in props}}
    out: Messages = [{"type": "SCHEMA", "stream": "benefit_elections", "schema": schema,
                      "key_properties": ["election_id"]}]  # fmt: skip
    for s in subscribers:
        rec = {"election_id": f"E{s['employee_id']}", "employee_id": s["employee_id"],
               "plan_id": "MED1", "insurance_line": "HLT", "coverage_level": "EMP",
               "status": "enrolled", "start_date": "2026-01-01",
               "group_number": "G-100"}  # fmt: skip
        out.append({"type": "RECORD", "stream": "benefit_elections", "record": rec})
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("hostile")
    dlq = work / "deadletters.sqlite"
    scim, slapd = start_scim_server(), start_slapd(work / "slapd")
    drop = start_file_drop(work)
    try:
        vendors = ("moodle", "gusto")
        with Sandbox(employees=3, vendors=vendors) as sb, pytest.MonkeyPatch.context() as mp:
            mp.setenv("HRSYNC_DLQ_PATH", str(dlq))
            mp.setenv("HRSYNC_AUDIT_LOG", str(work / "audit.jsonl"))
            mp.setenv("HRSYNC_INTEGRATION", "hostile")
            env = {**os.environ}
            employees = _messages("employees", [p.employee() for p in CORPUS])
            canonical = _map("bamboohr_to_canonical", employees, work / "state")
            mapped = {
                "canonical": canonical,
                "iam": _map("hris_to_iam", canonical, work / "state"),
                "lms": _map("hris_to_lms", canonical, work / "state"),
                "payroll": _map("hris_to_payroll", canonical, work / "state"),
                "benefits": _map("hris_to_benefits", canonical, work / "state"),
            }
            result = Run(mapped, {}, {}, scim, slapd, drop, sb, dlq, work)
            _target("target-scim", {"base_url": scim.url("hostile"), "bearer_token": scim.token},
                    mapped["iam"], result, env)  # fmt: skip
            ldap = {"url": slapd.url, "bind_dn": ADMIN, "bind_password": PASSWORD,
                    "base_dn": PEOPLE, "mode": "openldap", "disabled_ou": DISABLED,
                    "dn_template": f"uid={{uid}},{PEOPLE}"}  # fmt: skip
            _target("target-ldap", ldap, mapped["iam"], result, env)

            def settings(prefix: str, extra: dict[str, str]) -> dict[str, Any]:
                return {k[len(prefix) + 1 :].lower(): v for k, v in extra.items()}

            payroll = settings("TARGET_PAYROLL_FILE", drop.env("TARGET_PAYROLL_FILE", "payroll"))
            (work / "payroll").mkdir()
            payroll |= {"company_code": "ACME", "allow_partial_file": True,
                        "work_dir": str(work / "payroll"), "sftp_port": drop.sshd.port}  # fmt: skip
            _target("target-payroll-file", payroll, mapped["payroll"], result, env)
            benefits = settings(
                "TARGET_BENEFITS_834",
                drop.env("TARGET_BENEFITS_834", "benefits") | carrier_env(work),
            )
            benefits["sftp_port"] = drop.sshd.port
            subscribers = _records(mapped["benefits"], "benefit_subscribers")
            keyless = {"type": "RECORD", "stream": "benefit_subscribers",
                       "record": {"first_name": "No", "last_name": "Key"}}  # fmt: skip
            feed = [*mapped["benefits"], keyless, *_elections(subscribers)]
            _target("target-benefits-834", benefits, feed, result, env)
            moodle = {"base_url": sb.url("moodle"), "token": sb.credentials["moodle"]["token"],
                      "state_path": str(work / "moodle.sqlite")}  # fmt: skip
            keyless = {"type": "RECORD", "stream": "lms_users",
                       "record": {"first_name": "No", "last_name": "Key"}}  # fmt: skip
            _target("target-moodle", moodle, [*mapped["lms"], keyless], result, env)
            gusto = dict(sb.info()["gusto"])
            gusto["state_path"] = str(work / "gusto-state.sqlite")
            keyless = {"type": "RECORD", "stream": "payroll_employees",
                       "record": {"first_name": "No", "last_name": "Key"}}  # fmt: skip
            payroll_feed = [*mapped["payroll"], keyless]
            _target("target-payroll-api", _known(gusto, "target-payroll-api"), payroll_feed,
                    result, env)  # fmt: skip
            yield result
    finally:
        drop.stop()
        scim.stop()
        slapd.stop()


# --- what left the mappings ---------------------------------------------------------------------


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def test_no_control_or_invisible_character_leaves_a_mapping(run: Run) -> None:
    for name, messages in run.mapped.items():
        for m in messages:
            if m["type"] != "RECORD":
                continue
            for text in _texts(m["record"]):
                bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
                assert not bad, (name, m["record"])


def test_the_bad_email_is_a_dead_letter_and_everyone_else_goes_on(run: Run) -> None:
    (letter,) = run.letters("map-hr:bamboohr_to_canonical")
    assert letter.record_key == "id=9008" and letter.error_class == "unmappable_work_email"
    workers = {r["id"] for r in _records(run.mapped["canonical"], "worker")}
    assert workers == {str(p.id) for p in CORPUS} - {"9008"}
    mia = next(r for r in _records(run.mapped["canonical"], "worker") if r["id"] == "9007")
    assert (mia["first_name"], mia["last_name"]) == ("Mia", "Ross")
    assert (mia["job_title"], mia["department"]) == ("Nurse DELETE FROM users;--", "Sales")


def _iam(run: Run) -> dict[str, dict[str, Any]]:
    return {r["employee_id"]: r for r in _records(run.mapped["iam"], "iam_users")}


# --- SCIM ----------------------------------------------------------------------------------------


def test_scim_holds_exactly_each_person_as_mapped(run: Run) -> None:
    assert run.exits["target-scim"] == 0, run.stderr["target-scim"]
    body = requests.get(
        f"{run.scim.url('hostile')}/Users",
        params={"count": 1000},
        headers={"Authorization": f"Bearer {run.scim.token}"},
        timeout=30,
    ).json()
    users = {u["externalId"]: u for u in body["Resources"]}
    iam = _iam(run)
    assert set(users) == set(iam)  # one account each: no filter matched somebody else's
    for eid, rec in iam.items():
        user = users[eid]
        assert user["userName"] == rec["user_name"] and user["active"] is True
        assert user["name"]["givenName"] == rec["given_name"]
        assert user["name"]["familyName"] == rec["family_name"]
    assert users["9004"]["name"]["givenName"] == 'x" or userName pr or "'
    assert users["9007"]["title"] == "Nurse DELETE FROM users;--"
    assert not run.letters("target-scim")


# --- LDAP ----------------------------------------------------------------------------------------


def test_ldap_holds_exactly_each_person_under_people(run: Run) -> None:
    assert run.exits["target-ldap"] == 0, run.stderr["target-ldap"]
    with run.slapd.connect() as conn:
        conn.search(PEOPLE, "(objectClass=inetOrgPerson)", attributes=["*"])
        entries = {str(e.employeeNumber): e for e in conn.entries}
        suffix = PEOPLE.split(",", 1)[1]  # the whole directory
        conn.search(suffix, "(objectClass=inetOrgPerson)", attributes=["employeeNumber"])
        everywhere = [e.entry_dn for e in conn.entries]
    iam = _iam(run)
    assert set(entries) == set(iam)
    assert len(everywhere) == len(iam)  # nothing created outside ou=People (DN injection)
    for eid, rec in iam.items():
        entry = entries[eid]
        assert entry.entry_dn.endswith(PEOPLE)
        assert entry.sn.value == rec["family_name"]
        assert entry.givenName.value == rec["given_name"]
    smith = entries["9002"]
    assert smith.sn.value == "Smith,ou=Admins,dc=acme,dc=example"
    assert "ou=Admins" not in smith.entry_dn.replace("\\,", "")
    assert not run.letters("target-ldap")


# --- payroll CSV over SFTP + PGP -----------------------------------------------------------------


def test_payroll_csv_is_safe_for_a_spreadsheet_and_refuses_what_it_must(run: Run) -> None:
    assert run.exits["target-payroll-file"] == 0, run.stderr["target-payroll-file"]
    import csv

    (data,) = run.files("payroll")
    text = data.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert text.count("\r\n") == len(rows) + 1  # header + one line per row: no stray line
    emp = {r["EMPLOYEE_ID"]: r for r in rows if r["RECORD_TYPE"] == "EMP"}
    # 9008: its work e-mail makes its canonical worker a dead letter of the mapping: no
    # destination gets them until it is fixed in the HRIS
    assert set(emp) == {str(p.id) for p in CORPUS} - {"9008", "9010", "9011"}
    (mapping,) = run.letters("map-hr:bamboohr_to_canonical")
    assert mapping.record_key == "id=9008" and mapping.error_class == "unmappable_work_email"
    assert not run.letters("map-hr:hris_to_payroll")
    assert emp["9005"]["FIRST_NAME"] == "'" + by_id(9005).first
    assert emp["9005"]["LAST_NAME"] == "'+SUM(1,1)"
    for row in rows:
        for cell in row.values():
            assert not cell or cell[0] not in "=+-@\t\r", row
    letters = {x.record_key: x for x in run.letters("target-payroll-file")}
    assert "field last_name" in letters["9010"].error
    assert "field ssn" in letters["9011"].error and "000-12-3456" not in letters["9011"].error


# --- X12 834 over SFTP + PGP, validated by pyx12 -------------------------------------------------


def test_the_834_validates_and_carries_no_injected_segment(run: Run, tmp_path: Path) -> None:
    assert run.exits["target-benefits-834"] == 0, run.stderr["target-benefits-834"]
    (data,) = run.files("benefits")
    path = tmp_path / "feed.x12"
    path.write_bytes(data)
    verdict = validate(path, full=True)  # pyx12 on every segment
    assert verdict.valid, verdict.errors
    segments = [s.strip() for s in data.decode("ascii").split("~")]
    names = [s for s in segments if s.startswith("NM1*IL*")]
    # 9011's SSN is refused; 9008's canonical worker is a dead letter (its work e-mail)
    assert len(names) == len(CORPUS) - 2
    assert sum(s.startswith("ISA*") for s in segments) == 1
    assert not any(s.startswith("SE*1*") for s in segments)
    letters = {x.record_key: x for x in run.letters("target-benefits-834")}
    assert "field ssn" in letters["9011"].error
    # a subscriber without its key (fed to the target directly) is a dead letter, not the end
    assert any("employee_id" in x.error for k, x in letters.items() if k.startswith("<missing"))


# --- Moodle (form-encoded web service calls) ---------------------------------------------------


def test_moodle_holds_each_person_and_no_parameter_was_injected(run: Run) -> None:
    assert run.exits["target-moodle"] == 0, run.stderr["target-moodle"]
    url = f"{run.sandbox.url('moodle')}/webservice/rest/server.php"
    data = {
        "wstoken": run.sandbox.credentials["moodle"]["token"],
        "wsfunction": "core_user_get_users",
        "moodlewsrestformat": "json",
        "criteria[0][key]": "auth",
        "criteria[0][value]": "manual",
    }
    users = requests.post(url, data=data, timeout=30).json()["users"]
    ours = {u["idnumber"]: u for u in users if u.get("idnumber")}
    lms = {r["worker_id"]: r for r in _records(run.mapped["lms"], "lms_users")}
    assert set(ours) == set(lms)
    for wid, rec in lms.items():
        assert ours[wid]["firstname"] == rec["first_name"]
        assert ours[wid]["lastname"] == rec["last_name"]
        assert ours[wid]["email"] == rec["email"]
    assert ours["9009"]["firstname"] == by_id(9009).first
    assert not any(u.get("email") == "evil@x.example" for u in users)
    assert len([u for u in users if not u.get("deleted")]) >= len(lms)
    # a user without its key (fed to the target directly) is a dead letter, not the end
    assert any("worker_id" in x.error for x in run.letters("target-moodle"))


# --- Gusto (the payroll API) ---------------------------------------------------------------------


def test_gusto_holds_the_us_payroll_people_and_no_never_issued_ssn(run: Run) -> None:
    assert run.exits["target-payroll-api"] == 0, run.stderr["target-payroll-api"]
    state = requests.get(f"{run.sandbox.url('gusto')}/_sandbox/gusto/state", timeout=30).json()
    employees = state["employees"]
    payroll = {r["employee_id"]: r for r in _records(run.mapped["payroll"], "payroll_employees")}
    assert set(employees) == set(payroll) - {"9011"}
    for eid, emp in employees.items():
        assert emp["first_name"] == payroll[eid]["first_name"]
        assert emp["last_name"] == payroll[eid]["last_name"]
    letters = run.letters("target-payroll-api")
    (ssn,) = [x for x in letters if x.record_key == "9011"]
    assert "field ssn" in ssn.error and "never issues" in ssn.error
    # a record without its key (fed to the target directly) is a dead letter, not the end
    assert [x.record_key for x in letters if x.record_key != "9011"] == ["<missing>"]


# --- fixed width (the payroll layout for providers that take one) --------------------------------


def test_fixed_width_lines_keep_their_width_or_are_refused_naming_the_field(run: Run) -> None:
    from hrsync.errors import RecordError
    from target_payroll_file.layout import load_layout

    layout = load_layout("payroll_changes_fixed")
    refused: dict[str, str] = {}
    for m in run.mapped["payroll"]:
        if m["type"] != "RECORD" or m["stream"] not in layout.streams:
            continue
        key = m["record"]["employee_id"]
        try:
            line = "".join(layout.row(m["stream"], m["record"], key))
        except RecordError as exc:
            refused[key] = str(exc)
            continue
        assert len(line) == layout.line_width and line.isascii() and line.isprintable(), line
    assert "field ssn" in refused["9011"]
    # the rest are names too long for their field: refused, never cut into something else
    for key, error in refused.items():
        assert key == "9011" or " wide" in error, error
    assert "9010" in refused and "9001" not in refused
