"""Directory streams: people (accounts, with ``enabled`` as target-ldap decides it) and groups."""

from __future__ import annotations

import typing as t

from tap_ldap.client import (
    AD_ACCOUNTDISABLE,
    LDAPStream,
    LDAPTapError,
    parse_disabled_attribute,
)
from tap_ldap.values import is_under

AD_NORMAL_ACCOUNT = 0x200


class PeopleStream(LDAPStream):
    """Person entries under ``base_dn`` (and ``disabled_ou`` when it lies elsewhere)."""

    name = "people"
    text_attributes = (
        "uid",
        "sAMAccountName",
        "userPrincipalName",
        "employeeNumber",
        "employeeID",
        "cn",
        "displayName",
        "givenName",
        "sn",
        "mail",
        "department",
        "division",
        "physicalDeliveryOfficeName",
        "l",
        "manager",
        "userAccountControl",
    )
    list_attributes = ("title", "departmentNumber", "memberOf")
    filter_setting = "people_filter"
    default_filters: t.ClassVar[dict[str, str]] = {
        "openldap": "(objectClass=inetOrgPerson)",
        "ad": "(&(objectCategory=person)(objectClass=user))",
    }

    @property
    def employee_id_attribute(self) -> str:
        default = "employeeID" if self.mode == "ad" else "employeeNumber"
        return str(self.config.get("employee_id_attribute") or default)

    @property
    def disabled_attribute(self) -> tuple[str, str] | None:
        return parse_disabled_attribute(self.config.get("disabled_attribute"))

    def bases(self) -> list[str]:
        base = str(self.config["base_dn"])
        disabled_ou = self.config.get("disabled_ou")
        if disabled_ou and not is_under(str(disabled_ou), base):
            return [base, str(disabled_ou)]
        return [base]

    def extra_attributes(self) -> list[str]:
        names = [self.employee_id_attribute]
        if self.disabled_attribute:
            names.append(self.disabled_attribute[0])
        return names

    def build(self, dn: str, raw: dict[str, list[bytes]]) -> dict[str, t.Any]:
        row = super().build(dn, raw)
        uac = row.pop("userAccountControl")
        try:
            row["userAccountControl"] = int(uac) if uac is not None else None
        except ValueError:
            self._warn_once("uac", "entry %s: userAccountControl %r is not a number", dn, uac)
            row["userAccountControl"] = None
        row["employee_id"] = self.first(dn, raw, self.employee_id_attribute)
        row["enabled"] = self.is_enabled(dn, raw, row["userAccountControl"])
        return row

    def is_enabled(self, dn: str, raw: dict[str, list[bytes]], uac: int | None) -> bool:
        """What target-ldap means by an enabled account: in ``ad`` mode the ACCOUNTDISABLE bit
        of userAccountControl is clear; in either mode, the ``disabled_attribute`` value is
        absent and the entry is not under ``disabled_ou``."""
        if self.mode == "ad" and (uac if uac is not None else AD_NORMAL_ACCOUNT) & (
            AD_ACCOUNTDISABLE
        ):
            return False
        if self.disabled_attribute:
            name, value = self.disabled_attribute
            if value.casefold() in {v.casefold() for v in self.texts(dn, raw, name)}:
                return False
        disabled_ou = self.config.get("disabled_ou")
        return not (disabled_ou and is_under(dn, str(disabled_ou)))


class GroupsStream(LDAPStream):
    """Group entries under ``groups_base_dn`` (default: ``base_dn``) with their members."""

    name = "groups"
    text_attributes = ("cn", "description")
    list_attributes = ("member", "uniqueMember")
    filter_setting = "groups_filter"
    default_filters: t.ClassVar[dict[str, str]] = {
        "openldap": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        "ad": "(objectClass=group)",
    }

    def bases(self) -> list[str]:
        return [str(self.config.get("groups_base_dn") or self.config["base_dn"])]

    def build(self, dn: str, raw: dict[str, list[bytes]]) -> dict[str, t.Any]:
        ranged = sorted(name for name in raw if ";range=" in name)
        if ranged:  # AD hands out large groups' members in ranges (MaxValRange)
            raise LDAPTapError(
                f"group {dn}: the directory sent {ranged[0]}, a partial member list; ranged "
                "retrieval is not supported yet, and a short member list is not emitted"
            )
        row = super().build(dn, raw)
        row["member"] = row["member"] + row.pop("uniqueMember")
        return row


#: Emission order: people first, the groups that refer to them last.
STREAM_TYPES: tuple[type[LDAPStream], ...] = (PeopleStream, GroupsStream)
