"""SCIM 2.0 vocabulary (RFC 7643 / 7644) and tolerant readers for what servers send back.

Strict in what we send (lowercase op names, JSON booleans), tolerant in what we read
(``"op": "Replace"``, ``"False"`` strings, ``"status": "409"`` as a string, URN keys in any case).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CONTENT_TYPE = "application/scim+json"

# Flat names of the attributes this target manages. Enterprise attributes carry the URN
# prefix, exactly as a PATCH path names them (RFC 7644 §3.10).
USER_NAME = "userName"
EXTERNAL_ID = "externalId"
GIVEN_NAME = "name.givenName"
FAMILY_NAME = "name.familyName"
DISPLAY_NAME = "displayName"
NICK_NAME = "nickName"
TITLE = "title"
WORK_EMAIL = "emails"  # the work address; sent as the whole multi-valued attribute
ACTIVE = "active"
EMPLOYEE_NUMBER = f"{ENTERPRISE_USER}:employeeNumber"
DEPARTMENT = f"{ENTERPRISE_USER}:department"
DIVISION = f"{ENTERPRISE_USER}:division"
COST_CENTER = f"{ENTERPRISE_USER}:costCenter"
ORGANIZATION = f"{ENTERPRISE_USER}:organization"
MANAGER = f"{ENTERPRISE_USER}:manager"

MANAGED = (
    USER_NAME,
    EXTERNAL_ID,
    GIVEN_NAME,
    FAMILY_NAME,
    DISPLAY_NAME,
    NICK_NAME,
    TITLE,
    WORK_EMAIL,
    ACTIVE,
    EMPLOYEE_NUMBER,
    DEPARTMENT,
    DIVISION,
    COST_CENTER,
    ORGANIZATION,
    MANAGER,
)

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def short_name(path: str) -> str:
    """``urn:...:enterprise:2.0:User:department`` -> ``department`` (for messages and audit)."""
    if path.startswith(ENTERPRISE_USER + ":"):
        return path[len(ENTERPRISE_USER) + 1 :]
    return path


def parse_bool(value: Any, default: bool | None = None) -> bool | None:
    """Read a boolean the way servers in the wild send it (true, "True", "False", 1, "0")."""
    if isinstance(value, bool):
        return value
    if value is None:
        return default
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return default


def parse_status(value: Any) -> int | None:
    """An error's ``status`` is a string per RFC 7644 §3.12; some servers send an int."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    """Case-insensitive key lookup (attribute names and URNs are case-insensitive)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _clean(value: Any) -> Any:
    """Empty strings and empty containers read as absent."""
    if value in ("", [], {}):
        return None
    return value


def work_email(emails: Any) -> str | None:
    """The work address of a multi-valued ``emails``: type work, else primary, else first."""
    if not isinstance(emails, list):
        return None
    entries = [e for e in emails if isinstance(e, Mapping) and e.get("value")]
    for pick in (
        lambda e: str(e.get("type", "")).lower() == "work",
        lambda e: parse_bool(e.get("primary"), False),
        lambda e: True,
    ):
        for entry in entries:
            if pick(entry):
                return str(entry["value"])
    return None


def read_managed(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a User resource into {managed path: value}, ignoring server-generated meta."""
    name = _get_ci(resource, "name")
    name = name if isinstance(name, Mapping) else {}
    ext = _get_ci(resource, ENTERPRISE_USER)
    ext = ext if isinstance(ext, Mapping) else {}
    manager = _get_ci(ext, "manager")
    if isinstance(manager, Mapping):
        manager = _get_ci(manager, "value")
    out: dict[str, Any] = {
        USER_NAME: _get_ci(resource, "userName"),
        EXTERNAL_ID: _get_ci(resource, "externalId"),
        GIVEN_NAME: _get_ci(name, "givenName"),
        FAMILY_NAME: _get_ci(name, "familyName"),
        DISPLAY_NAME: _get_ci(resource, "displayName"),
        NICK_NAME: _get_ci(resource, "nickName"),
        TITLE: _get_ci(resource, "title"),
        WORK_EMAIL: work_email(_get_ci(resource, "emails")),
        # RFC 7643: a missing "active" is not "inactive"; most servers default to true.
        ACTIVE: parse_bool(_get_ci(resource, "active"), True),
        EMPLOYEE_NUMBER: _get_ci(ext, "employeeNumber"),
        DEPARTMENT: _get_ci(ext, "department"),
        DIVISION: _get_ci(ext, "division"),
        COST_CENTER: _get_ci(ext, "costCenter"),
        ORGANIZATION: _get_ci(ext, "organization"),
        MANAGER: manager,
    }
    return {k: _clean(v) for k, v in out.items()}


def wire_value(path: str, value: Any) -> Any:
    """The JSON value sent for a managed path."""
    if path == WORK_EMAIL:
        return [{"value": value, "type": "work", "primary": True}]
    if path == MANAGER:
        return {"value": value}
    if path == ACTIVE:
        return bool(value)
    return value


def set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, with None, drop) a managed path inside a nested User resource."""
    if path.startswith(ENTERPRISE_USER + ":"):
        container = resource.setdefault(ENTERPRISE_USER, {})
        key = short_name(path)
    elif "." in path:
        parent, key = path.split(".", 1)
        container = resource.setdefault(parent, {})
    else:
        container, key = resource, path
    if value is None:
        container.pop(key, None)
    else:
        container[key] = wire_value(path, value)


def user_body(values: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A full User resource: ``base`` (an existing resource, for PUT) overlaid with ``values``."""
    body: dict[str, Any] = {
        k: v for k, v in (base or {}).items() if k not in ("meta", "id", "schemas")
    }
    # drop server-side case variants of the extension key so we send exactly one
    for key in [k for k in body if k.lower() == ENTERPRISE_USER.lower() and k != ENTERPRISE_USER]:
        body[ENTERPRISE_USER] = body.pop(key)
    if ENTERPRISE_USER in body:
        body[ENTERPRISE_USER] = dict(body[ENTERPRISE_USER])
    if isinstance(body.get("name"), Mapping):
        body["name"] = dict(body["name"])
    for path, value in values.items():
        set_path(body, path, value)
    for key in ("name", ENTERPRISE_USER):
        if body.get(key) == {}:
            del body[key]
    schemas = [CORE_USER]
    if ENTERPRISE_USER in body:
        schemas.append(ENTERPRISE_USER)
    return {"schemas": schemas, **body}


def patch_body(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A PatchOp replacing (or removing, for None) each changed managed path."""
    ops: list[dict[str, Any]] = []
    for path, value in changes.items():
        if value is None:
            ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "replace", "path": path, "value": wire_value(path, value)})
    return {"schemas": [PATCH_OP], "Operations": ops}


def filter_string(value: str) -> str:
    """A SCIM filter comparison value: a JSON string literal (RFC 7644 §3.4.2.2)."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
