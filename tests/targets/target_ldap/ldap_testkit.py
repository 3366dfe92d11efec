"""Test kit for target-ldap: a real OpenLDAP slapd (fresh mdb database, loopback port, from
sandbox.directories), ldap3 to read back, identity records and Singer messages."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.directories import ADMIN as ADMIN
from sandbox.directories import DISABLED as DISABLED
from sandbox.directories import GROUPS as GROUPS
from sandbox.directories import PASSWORD as PASSWORD
from sandbox.directories import PEOPLE as PEOPLE
from sandbox.directories import SUFFIX as SUFFIX
from sandbox.directories import Slapd as Slapd
from sandbox.directories import start_slapd as _start_slapd

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "iam_users.schema.json").read_text(encoding="utf-8"))


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def person(eid: str, given: str, family: str, **extra: Any) -> dict[str, Any]:
    """An identity record with sensible defaults."""
    folded = unicodedata.normalize("NFKD", f"{given}.{family}").encode("ascii", "ignore").decode()
    local = folded.lower().replace(" ", "").replace("'", "").strip(".") or f"e{eid}"
    record: dict[str, Any] = {
        "employee_id": eid,
        "employee_number": f"N{eid}",
        "user_name": f"{local}@example.com",
        "work_email": f"{local}@example.com",
        "given_name": given,
        "family_name": family,
        "preferred_name": None,
        "display_name": None,
        "title": "Engineer",
        "department": "Engineering",
        "division": "Product",
        "location": "Lisbon",
        "cost_center": "CC-100",
        "manager_employee_id": None,
        "employment_status": "Active",
        "hire_date": "2020-01-06",
        "termination_date": None,
        "deleted": None,
        "positions": None,
    }
    record.update(extra)
    return record


def messages(records: list[dict[str, Any]], stream: str = "iam_users") -> str:
    lines = [
        {"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": ["employee_id"]}
    ]
    lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": len(records)}}}})
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in lines) + "\n"


def openldap_config(server: Slapd, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "mode": "openldap",
        "dn_template": "uid={uid},ou={department},ou=People,dc=example,dc=com",
        "disabled_ou": DISABLED,
        "group_rules": [
            {"group": f"cn=engineering,{GROUPS}", "match": {"department": "Engineering"}},
            {"group": f"cn=sales,{GROUPS}", "match": {"department": ["Sales", "Sales Ops"]}},
            {"group": f"cn=all-staff,{GROUPS}", "match": {}},
            {"group": f"cn=managers,{GROUPS}", "match": {"title": ["Engineering Manager"]}},
        ],
        "max_connections": 2,
    }
    config.update(overrides)
    return config


def audit_lines(monkeypatch_env: str | None = None) -> list[dict[str, Any]]:
    import os

    path = Path(monkeypatch_env or os.environ["HRSYNC_AUDIT_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


RunTarget = Callable[..., Any]


def start_slapd(
    workdir: Path, *, ad: bool = False, ppolicy: bool = True, tls: bool = False
) -> Slapd:
    """The sandbox's slapd, with the test AD schema when ``ad`` is set."""
    return _start_slapd(workdir, ad=ad, ppolicy=ppolicy, tls=tls, ad_schema=HERE / "ad_test.schema")
