"""tap-ldap: people and groups of an OpenLDAP or Active Directory directory (LDAPS or StartTLS,
RFC 2696 paged searches, incremental on modifyTimestamp / whenChanged)."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

from hrsync.cli import plugin_main
from hrsync.errors import ConfigError
from hrsync.taps import HRTap
from tap_ldap.client import MODES, Directory, parse_disabled_attribute
from tap_ldap.streams import STREAM_TYPES


class TapLDAP(HRTap, Tap):
    """Singer tap for LDAP directories: people and groups."""

    name = "tap-ldap"
    package_name = "hrsync-tap-ldap"  # the distribution, for --about's version
    stream_types = STREAM_TYPES  # synced in this order

    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            required=True,
            description="Directory URL: ldaps://host:636, or ldap://host:389 with start_tls "
            "(plain ldap:// only to a loopback host)",
        ),
        th.Property("bind_dn", th.StringType, description="DN to bind as (read access)"),
        th.Property("bind_password", th.StringType, secret=True, description="Password of bind_dn"),
        th.Property(
            "start_tls",
            th.BooleanType,
            default=False,
            description="Upgrade an ldap:// connection with StartTLS before binding",
        ),
        th.Property(
            "ca_file",
            th.StringType,
            description="PEM file of the CA that issued the directory's certificate (default: "
            "the system's trust store)",
        ),
        th.Property(
            "mode",
            th.StringType,
            default="openldap",
            allowed_values=list(MODES),
            description="openldap or ad (Active Directory): default filters, the employee id "
            "attribute, whenChanged and userAccountControl",
        ),
        th.Property(
            "base_dn",
            th.StringType,
            required=True,
            description="Subtree of the people entries (target-ldap's base_dn)",
        ),
        th.Property(
            "groups_base_dn",
            th.StringType,
            description="Subtree of the group entries (default: base_dn)",
        ),
        th.Property(
            "disabled_ou",
            th.StringType,
            description="OU where target-ldap moves disabled accounts: searched too, and an "
            "entry under it reads enabled false",
        ),
        th.Property(
            "disabled_attribute",
            th.CustomType({"type": ["object", "string", "null"]}),
            description="'attribute: value' (or {attribute: value}) that marks a disabled "
            "account, as target-ldap's setting (e.g. 'pwdAccountLockedTime: 000001010000Z')",
        ),
        th.Property(
            "employee_id_attribute",
            th.StringType,
            description="Attribute holding the HRIS employee id, emitted as employee_id "
            "(default: employeeNumber; employeeID in ad mode)",
        ),
        th.Property(
            "people_filter",
            th.StringType,
            description="LDAP filter of people entries (default: (objectClass=inetOrgPerson); "
            "in ad mode (&(objectCategory=person)(objectClass=user)))",
        ),
        th.Property(
            "groups_filter",
            th.StringType,
            description="LDAP filter of group entries (default: groupOfNames or "
            "groupOfUniqueNames; in ad mode (objectClass=group))",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=10000),
            default=500,
            description="Entries per page of the paged search (RFC 2696); keep it at or below "
            "the server's size limit (OpenLDAP's default 500, AD's MaxPageSize 1000)",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Only entries modified at or after this instant (first run only)",
        ),
        th.Property(
            "timeout",
            th.IntegerType(minimum=1),
            default=30,
            description="Seconds to wait for the connection and for each answer",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            parse_disabled_attribute(self.config.get("disabled_attribute"))
        except ValueError as error:
            raise ConfigError(str(error)) from None

    @cached_property
    def directory(self) -> Directory:
        return Directory(self.config, self.logger)

    def discover_streams(self) -> list[Stream]:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


main = plugin_main(TapLDAP, "tap-ldap")


if __name__ == "__main__":
    main()
