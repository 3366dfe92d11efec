"""SCIM streams: one small declaration per resource endpoint (schemas in schemas/<name>.json)."""

from __future__ import annotations

from tap_scim.client import SCIMStream


class UsersStream(SCIMStream):
    """``GET /Users``: accounts with their enterprise extension and group memberships."""

    name = "users"
    path = "/Users"


class GroupsStream(SCIMStream):
    """``GET /Groups``: groups with their members."""

    name = "groups"
    path = "/Groups"


#: Emission order: users first, the groups that refer to them last.
STREAM_TYPES: tuple[type[SCIMStream], ...] = (UsersStream, GroupsStream)
