"""target-ldap: provision HRIS employees into OpenLDAP or Active Directory over LDAP(S)."""

from __future__ import annotations

import dataclasses
import re
import sys
from types import FrameType
from typing import Any

from singer_sdk import typing as th
from singer_sdk.target_base import Target

from hrsync.audit import AuditLog
from hrsync.batch import BatchAsRecords
from hrsync.cli import plugin_main
from hrsync.deadletter import TargetDeadLetters, replaying
from hrsync.errors import ConfigError as HRSyncConfigError
from hrsync.identity import settle_failures
from hrsync.singer_input import SingerObjectReader
from target_ldap.ad_errors import ad_code
from target_ldap.config import MODES, parse_settings
from target_ldap.directory import Directory, DirectoryError
from target_ldap.provision import (
    Failure,
    Provisioner,
    ProvisioningIncomplete,
    Summary,
    TargetLDAPError,
)
from target_ldap.sinks import LDAPUserSink

_RULES = th.CustomType({"type": ["array", "object", "string", "null"]})
_OBJECT = th.CustomType({"type": ["object", "string", "null"]})


class TargetLDAP(BatchAsRecords, Target):  # BATCH files take the RECORD path
    """Creates, updates, moves, disables and re-enables directory accounts; keeps group
    memberships in line with department/role rules."""

    name = "target-ldap"
    package_name = "hrsync-target-ldap"  # the distribution, for --about's version
    message_reader_class = SingerObjectReader  # a non-object line fails naming it
    default_sink_class = LDAPUserSink

    config_jsonschema = th.PropertiesList(
        th.Property(
            "url",
            th.StringType,
            required=True,
            description="ldaps://host:636, or ldap://host with start_tls: true; plain ldap:// "
            "only to a loopback host",
        ),
        th.Property(
            "start_tls",
            th.BooleanType,
            default=False,
            description="Upgrade an ldap:// connection with StartTLS before binding",
        ),
        th.Property(
            "ca_file",
            th.StringType,
            description="PEM file of the CA(s) that signed the server certificate "
            "(default: the system store). Certificates and host names are always verified",
        ),
        th.Property(
            "bind_dn",
            th.StringType,
            description="DN of the service account the target binds as",
        ),
        th.Property(
            "bind_password",
            th.StringType,
            secret=True,
            description="Password of the bind_dn service account",
        ),
        th.Property(
            "base_dn",
            th.StringType,
            required=True,
            description="Subtree of the managed accounts, e.g. ou=People,dc=example,dc=com",
        ),
        th.Property(
            "mode",
            th.StringType,
            default="openldap",
            allowed_values=list(MODES),
            description="openldap (inetOrgPerson) or ad (Active Directory user objects)",
        ),
        th.Property(
            "dn_template",
            th.StringType,
            description="DN of an account, e.g. uid={uid},ou={department},ou=People,"
            "dc=example,dc=com (placeholders: uid, cn, display_name, given_name, family_name, "
            "employee_id, department, division, location, cost_center, base_dn; values are "
            "RDN-escaped). Default: uid={uid},{base_dn} / CN={uid},{base_dn} in ad mode",
        ),
        th.Property(
            "upn_domain",
            th.StringType,
            description="ad mode: userPrincipalName = sAMAccountName@upn_domain",
        ),
        th.Property(
            "initial_password",
            th.StringType,
            secret=True,
            description="ad mode: password set on new accounts (unicodePwd; needs ldaps:// or "
            "start_tls, AD refuses it in clear text). Must meet the domain's password policy; "
            "a refusal becomes a dead letter naming unicodePwd",
        ),
        th.Property(
            "password_must_change",
            th.BooleanType,
            default=True,
            description="ad mode: with initial_password, set pwdLastSet=0 so the user must "
            "choose a new password at first logon",
        ),
        th.Property(
            "disabled_ou",
            th.StringType,
            description="Move disabled accounts here (and back on rehire)",
        ),
        th.Property(
            "disabled_attribute",
            _OBJECT,
            description="Mark disabled accounts with 'attribute: value', e.g. "
            "'pwdAccountLockedTime: 000001010000Z' (ppolicy) or 'employeeType: disabled'",
        ),
        th.Property(
            "group_rules",
            _RULES,
            description="Group membership rules: [{group: DN, match: {department: X}}] or "
            "{DN: {department: X}}; values may be lists; {} matches everyone",
        ),
        th.Property(
            "group_placeholder_member",
            th.StringType,
            description="Member kept in a groupOfNames whose last member leaves "
            "(default: the group's own DN)",
        ),
        th.Property(
            "remove_groups_on_disable",
            th.BooleanType,
            default=True,
            description="A disabled account leaves its rule-managed groups",
        ),
        th.Property(
            "attribute_map",
            _OBJECT,
            description="LDAP attribute -> record field, added to / overriding the mode's "
            "defaults (null removes a default)",
        ),
        th.Property(
            "employee_id_attribute",
            th.StringType,
            description="Attribute holding the HRIS employee id (default employeeNumber / "
            "employeeID in ad mode)",
        ),
        th.Property(
            "object_classes",
            th.ArrayType(th.StringType),
            description="objectClass values of new accounts (default per mode)",
        ),
        th.Property(
            "login_max_length",
            th.IntegerType,
            description="Longest generated uid / sAMAccountName (default 64 / 20)",
        ),
        th.Property(
            "create_missing_ous",
            th.BooleanType,
            default=True,
            description="Create a missing ou= parent (e.g. a new department) on add/move",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Print the plan (creates, updates, moves, disables, group changes) "
            "and write nothing",
        ),
        th.Property(
            "max_deactivation_share",
            th.NumberType,
            default=0.10,
            description="Refuse a run that would disable more than this share of the enabled "
            "accounts under base_dn (nothing is written)",
        ),
        th.Property(
            "mass_deactivation_floor",
            th.IntegerType,
            default=1,
            description="The guard never fires for this many disables or fewer",
        ),
        th.Property(
            "allow_mass_deactivation",
            th.BooleanType,
            default=False,
            description="Explicit override of the mass-deprovisioning guard",
        ),
        th.Property(
            "deactivate_missing_users",
            th.BooleanType,
            default=False,
            description="Full-feed mode: disable managed accounts absent from this run's "
            "input (only for feeds that list every employee)",
        ),
        th.Property(
            "max_connections",
            th.IntegerType,
            default=4,
            description="Parallel LDAP connections for the writes",
        ),
        th.Property(
            "timezone",
            th.StringType,
            default="UTC",
            description="IANA time zone deciding what 'today' is for termination dates",
        ),
        th.Property(
            "timeout",
            th.NumberType,
            default=30,
            description="Connect and receive timeout of one LDAP operation, in seconds",
        ),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = parse_settings(self.config)
        if replaying():  # a dead-letter replay carries a few people, not the feed
            self.settings = dataclasses.replace(self.settings, deactivate_missing_users=False)
        self.directory = Directory(self.settings, logger=self.logger)
        self.audit_log = AuditLog()  # HRSYNC_AUDIT_LOG / the integration from the environment
        self.provisioner = Provisioner(
            self.directory,
            self.settings,
            audit=self._audit,
            audit_flush=self.audit_log.flush,
            logger=self.logger,
        )
        # employees the directory refused -> dead letters; delivered ones resolve
        self.letters = TargetDeadLetters(self.name)
        self.summary: Summary | None = None

    def _audit(
        self,
        stream: str,
        record_key: str,
        fields: list[str],
        outcome: str,
        destination: str,
        detail: str | None,
    ) -> None:
        """One audit line per change: attribute names only, never values."""
        self.audit_log.record(
            stream=stream,
            record_key=record_key,
            fields=fields,
            destination=destination,
            outcome=outcome,
            detail=detail,
            employee_id=record_key,  # the subject reference, never the id, is written
        )

    def record_refused(
        self, stream: str, record_key: str, record: Any, field: str, error: str
    ) -> None:
        """A record the reader refused (hrsync.singer_input, already a dead letter): that
        employee is in the feed, so full-feed mode must not disable them as missing."""
        self.provisioner.held.add(record_key)

    def _handle_max_record_age(self) -> None:
        """No time-based drains: the run is planned as a whole at the end of the input, and
        state must not be emitted before the accounts it covers are written."""

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: stop without state; a re-run converges (it writes only what
        differs)."""
        self.logger.warning(
            "target-ldap interrupted by signal %d: no state emitted (a re-run converges)", signum
        )
        sys.exit(128 + signum)

    def process_endofpipe(self) -> None:
        """Plan the whole batch, guard, write, then emit state (and fail if employees
        failed)."""
        try:
            self._plan_write_settle()
        finally:
            self.provisioner.close()  # the spill file of the batch and the plan

    def _plan_write_settle(self) -> None:
        try:
            # audit lines appended a chunk at a time, flushed after each acknowledged chunk
            # of writes and on the way out (also on an error or a signal's SystemExit)
            with self.audit_log.buffered():
                self.summary = self.provisioner.run()
        finally:
            self.directory.close()
        summary = self.summary
        self.logger.info(
            "target-ldap done: %s",
            ", ".join(f"{v} {k}" for k, v in sorted(summary.outcomes.items())) or "no writes",
        )
        if summary.guard_message:  # dry run: the plan is printed, the verdict is the exit code
            raise TargetLDAPError(summary.guard_message)
        if self.settings.dry_run:
            super().process_endofpipe()
            if summary.failures:
                raise ProvisioningIncomplete(
                    f"{len(summary.failures)} employee(s) could not be provisioned; they are "
                    "listed above (dry run)"
                )
            return
        lost = self._settle(summary.failures)
        super().process_endofpipe()
        if lost:
            raise ProvisioningIncomplete(
                f"{len(lost)} account(s) absent from the feed could not be changed "
                f"({', '.join(sorted({f.employee_id for f in lost})[:20])}); the next full-feed "
                "run tries again"
            )

    def _settle(self, failures: list[Failure]) -> list[Failure]:
        """Dead letters for the failures, resolved letters for everyone else of the batch."""
        return settle_failures(
            self.letters,
            failures,
            self.provisioner.batch(),
            _ldap_error_class,
            self.logger,
            "target-ldap",
        )

    @classmethod
    def invoke(cls, *args: Any, **kwargs: Any) -> None:
        """Run-level stops end with a clear message and exit status 1, not a traceback."""
        try:
            super().invoke(*args, **kwargs)
        except (TargetLDAPError, DirectoryError, HRSyncConfigError) as error:
            cls.logger.error("target-ldap stopped: %s", error)
            print(f"target-ldap: {error}", file=sys.stderr)
            sys.exit(1)


def _ldap_error_class(failure: Failure) -> str:
    code = re.match(r"LDAP result (-?\d+) (\w*)", failure.result or "")
    # "LDAP result 19 constraintViolation: 0000052D: ...": AD's code leads the message part
    ad = ad_code((failure.result or "").partition(": ")[2]) if code else None
    if code and ad:  # Active Directory's own code says what went wrong
        return f"ldap_{code[1]}_{code[2]}_ad_{ad}"
    return f"ldap_{code[1]}_{code[2]}" if code else "invalid_record"


#: the target-ldap console script: closed pipes and missing files end quietly (hrsync.cli)
main = plugin_main(TargetLDAP, "target-ldap")


if __name__ == "__main__":
    main()
