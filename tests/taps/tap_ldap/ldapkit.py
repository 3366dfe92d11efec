"""tap-ldap's test kit: identity records for target-ldap (which writes what the tap reads back),
running the target in this process, and the tap's config for a slapd or a Samba DC."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tap_ldap.tap import TapLDAP

ROOT = Path(__file__).resolve().parents[3]
IAM_SCHEMA = json.loads(
    (ROOT / "tests/targets/target_ldap/iam_users.schema.json").read_text(encoding="utf-8")
)


def person(eid: str, given: str, family: str, **extra: Any) -> dict[str, Any]:
    """An identity record as map-hr's IAM profile emits it."""
    local = f"{given}.{family}".lower().replace(" ", "")
    return {
        "employee_id": eid,
        "employee_number": f"N{eid}",
        "user_name": f"{local}@example.com",
        "work_email": f"{local}@example.com",
        "given_name": given,
        "family_name": family,
        "title": "Engineer",
        "department": "Engineering",
        "division": "Product",
        "location": "Lisbon",
        "employment_status": "Active",
        "hire_date": "2020-01-06",
        **extra,
    }


def leaver(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record, employment_status="Inactive", termination_date="2021-03-31")


def run_target(config: dict[str, Any], records: list[dict[str, Any]]) -> Any:
    """target-ldap in this process over the records; returns the target (its summary)."""
    from target_ldap.target import TargetLDAP

    lines = [{"type": "SCHEMA", "stream": "iam_users", "schema": IAM_SCHEMA,
              "key_properties": ["employee_id"]}]  # fmt: skip
    lines += [{"type": "RECORD", "stream": "iam_users", "record": r} for r in records]
    target = TargetLDAP(config=config, validate_config=True)
    target.listen(io.StringIO("".join(json.dumps(m) + "\n" for m in lines)))
    assert not target.summary.failures, target.summary.failures
    return target


def tap(config: dict[str, Any], state: dict[str, Any] | None = None, **overrides: Any) -> TapLDAP:
    settings = {k: v for k, v in {**config, **overrides}.items() if v is not None}
    return TapLDAP(config=settings, state=state, parse_env_config=False)


def secrets_in(messages: list[dict[str, Any]]) -> list[str]:
    """Password attributes anywhere in the tap's output (names compared case-insensitively)."""
    text = json.dumps(messages).casefold()
    return [name for name in ("userpassword", "unicodepwd", "{ssha}") if name in text]
