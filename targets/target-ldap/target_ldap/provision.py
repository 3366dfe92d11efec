"""Plan the whole batch, check the mass-deprovisioning guard, then write.

Nothing is written before the full plan exists: the guard has to know how many enabled
accounts the run would disable, and an empty or truncated HR feed must never lock the
company out. Write order: moves (modify_dn), then adds and modifies, then manager links to
accounts created in this run, then group memberships (re-read just before, so a refint
overlay or a concurrent admin change is respected).
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from hrsync import spill
from hrsync.errors import RecordError
from hrsync.spill import SpillList
from target_ldap.ad_errors import explain as explain_ad
from target_ldap.config import ConfigError, Settings
from target_ldap.directory import (
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    Directory,
    Op,
    Result,
)
from target_ldap.naming import (
    dn_key,
    first_rdn,
    is_under,
    login_candidates,
    parent_key,
    rdn_of,
    render_dn,
    split_dn,
    template_fields,
)
from target_ldap.passwords import password_attributes
from target_ldap.people import (
    AD_ACCOUNTDISABLE,
    AD_NORMAL_ACCOUNT,
    DesiredPerson,
    desired_attributes,
    template_values,
    text,
)
from target_ldap.planstore import Placed, PlanStore

LOGGER = logging.getLogger("target_ldap")
# stream, record key, field names, outcome, destination, detail (no values)
AuditFn = Callable[[str, str, list[str], str, str, str | None], None]
GROUP_CHUNK = 1000
OUTCOME = {"create": "created", "update": "updated", "disable": "disabled", "enable": "enabled"}
MOVED = 1  # SpillList flag of a change that renames or moves its entry
NOTHING_TO_SEND = Result(0, "success", "", "")  # an update whose changes are all deferred


class TargetLDAPError(Exception):
    """A run-level stop with a message for the operator (exit status 1)."""


class MassDeactivationRefused(TargetLDAPError):
    """The guard stopped the run before anything was written."""


class ProvisioningIncomplete(TargetLDAPError):
    """Some employees failed and could not be kept as dead letters (accounts absent from a
    full feed: no record to replay). Raised after the rest was done."""


@dataclass
class Account:
    """An entry found under the managed base."""

    dn: str
    attrs: dict[str, list[str]]  # lower-cased attribute names

    def values(self, name: str) -> list[str]:
        return self.attrs.get(name.lower(), [])

    def first(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None


@dataclass
class Failure:
    stream: str
    employee_id: str
    action: str
    field: str
    reason: str
    record: dict[str, Any] | None
    result: str | None = None

    def message(self) -> str:
        return (
            f"[{self.stream}] employee {self.employee_id}: {self.action} failed on "
            f"{self.field}: {self.reason}"
        )


@dataclass
class Change:
    action: str  # create | update | disable | enable
    stream: str
    employee_id: str
    person: DesiredPerson | None  # None: an account missing from a full feed
    dn_before: str | None
    dn_after: str
    attributes: dict[str, list[str]] = field(default_factory=dict)  # create: the entry
    state: list[tuple[str, Any, list[str]]] = field(default_factory=list)
    depends_on: str | None = None  # a create whose manager is created in this run too
    manager_deferred: str | None = None  # manager cycle among new accounts: linked afterwards
    final_dn: str | None = None  # where the entry is after the writes (None: not there)
    failed: bool = False

    @property
    def moved(self) -> bool:
        return self.dn_before is not None and dn_key(self.dn_before) != dn_key(self.dn_after)

    @property
    def fields(self) -> list[str]:
        names = sorted(self.attributes) + sorted({s[0] for s in self.state})
        if self.moved:
            names.insert(0, "dn")
        if self.manager_deferred:
            names.append("manager")
        return names


@dataclass
class Group:
    dn: str
    member_attr: str
    needs_placeholder: bool
    members: dict[str, str]  # dn key -> value as stored


@dataclass
class GroupChange:
    group: Group
    add: list[tuple[str, str]] = field(default_factory=list)  # (employee id, member DN)
    remove: list[tuple[str, str]] = field(default_factory=list)
    placeholder_add: str | None = None
    placeholder_remove: str | None = None

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.placeholder_add or self.placeholder_remove)


@dataclass
class Plan:
    """The run's plan; a real run's changes are spilled to disk (SpillList)."""

    changes: list[Change] | SpillList[Change] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (employee id, why)
    enabled_accounts: int = 0
    group_changes: list[GroupChange] = field(default_factory=list)
    # (employee id, final DN, stream, record) of everyone whose memberships this run manages
    members: list[tuple[str, str | None, str | None, set[str]]] = field(default_factory=list)

    def count(self, action: str) -> int:
        if isinstance(self.changes, SpillList):
            return self.changes.counts[action]
        return sum(1 for c in self.changes if c.action == action)

    def add(self, change: Change) -> None:
        if isinstance(self.changes, SpillList):
            flag = MOVED if change.moved else 0
            self.changes.append(change, change.action, change.employee_id, flag)
        else:
            self.changes.append(change)


@dataclass
class Summary:
    plan: Plan
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    guard_message: str | None = None


def _attribute_from_message(message: str) -> str | None:
    """slapd names the attribute: 'mail: value #0 invalid per syntax', "attribute 'sn' ..."."""
    for pattern in (r"^\s*([A-Za-z][\w-]*)\s*:", r"attribute '([\w-]+)'", r"attribute ([\w-]+)"):
        match = re.search(pattern, message)
        if match and match.group(1).lower() not in ("ldaperr", "value"):
            return match.group(1)
    return None


class Provisioner:
    """Collects desired people, plans, guards and writes."""

    def __init__(
        self,
        directory: Directory,
        settings: Settings,
        *,
        audit: AuditFn,
        audit_flush: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.audit_fn = audit
        # the audit lines may be kept and appended a chunk at a time (hrsync.audit's
        # buffered()): flushed as soon as the writes they report are acknowledged
        self.audit_flush = audit_flush or (lambda: None)
        self.logger = logger or LOGGER
        self.out = out or sys.stderr
        self.failures: list[Failure] = []
        #: employees whose record was refused before planning (hrsync.singer_input): in the
        #: feed, so never "missing from feed"; their account stays as it is this run
        self.held: set[str] = set()
        self.rehired: dict[str, str] = {}  # earlier employee id -> the id of the rehire
        self.alias: dict[str, Account] = {}  # a rehire's new employee id -> the account
        self._template_fields = set(template_fields(settings.dn_template))
        self._store: PlanStore | None = None

    # -- input --------------------------------------------------------------------------
    @property
    def store(self) -> PlanStore:
        """The batch, the directory's accounts and the plan, on disk (flat memory)."""
        if self._store is None:
            self._store = PlanStore()
        return self._store

    def close(self) -> None:
        """Delete the spill file (after the dead letters are settled)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def add(self, person: DesiredPerson) -> None:
        """The latest record for an employee wins."""
        self.store.add(person)

    def batch(self) -> Iterator[tuple[str, str]]:
        """(stream, employee id) of everyone in the batch."""
        if self._store is not None:
            yield from self._store.batch()

    def _account(self, eid: str) -> Account | None:
        """The one account carrying this employee id (or linked to it as a rehire)."""
        account = self.alias.get(eid)
        return account if account is not None else cast(Account | None, self.store.account(eid))

    def reject(self, failure: Failure) -> None:
        self.failures.append(failure)

    def _fail(
        self,
        change: Change,
        action: str,
        field_name: str,
        reason: str,
        result: Result | None = None,
    ) -> None:
        failure = Failure(
            change.stream,
            change.employee_id,
            action,
            field_name,
            reason,
            change.person.record if change.person else None,
            str(result) if result else None,
        )
        change.failed = True
        self.failures.append(failure)
        self.logger.error("%s", failure.message())
        self._audit(
            change.stream,
            change.employee_id,
            [field_name],
            "failed",
            self.directory.destination,
            f"{action}: {result.description}" if result else action,
        )

    def _audit(
        self,
        stream: str,
        key: str,
        fields: list[str],
        outcome: str,
        dest: str,
        detail: str | None = None,
    ) -> None:
        if self.settings.dry_run:
            return
        self.audit_fn(stream, key, fields, outcome, dest, detail)

    # -- reading the directory ----------------------------------------------------------
    def _search_bases(self) -> list[str]:
        bases = [self.settings.base_dn]
        ou = self.settings.disabled_ou
        if ou and not is_under(ou, self.settings.base_dn):
            bases.append(ou)
        return bases

    def _read_attributes(self) -> list[str]:
        s = self.settings
        names = {s.employee_id_attribute, s.login_attribute, "manager", *s.attributes}
        names |= set(s.dn_attributes)
        if s.mode == "ad":
            names |= {"userAccountControl", "userPrincipalName"}
        if s.disabled_attribute:
            names.add(s.disabled_attribute[0])
        return sorted(names)

    def load_index(self) -> None:
        """Read every managed entry into the spill file: taken logins, entries by employee
        id (several with one id: a duplicate), the unique ones by login and by DN."""
        s = self.settings
        store = self.store
        eid_attr, login_attr = s.employee_id_attribute, s.login_attribute
        search_filter = f"(|({eid_attr}=*)({login_attr}=*))"
        for base in self._search_bases():
            for dn, attrs in self.directory.search(
                base, search_filter, self._read_attributes(), missing_ok=base != s.base_dn
            ):
                account = Account(dn, attrs)
                for login in account.values(login_attr):
                    store.add_login(login.lower())
                if s.mode == "ad":
                    for upn in account.values("userPrincipalName"):
                        store.add_login(upn.rsplit("@", 1)[0].lower())
                store.add_account(account.first(eid_attr), dn_key(dn), account)
        store.index()
        for accounts in store.unique_accounts():
            for n, eid, account in accounts:
                for login in account.values(login_attr):
                    store.add_by_login(login.lower(), n)
                store.add_holder(dn_key(account.dn), eid)

    def _link_rehires(self) -> None:
        """A rehire under a new employee id keeps the account of the earlier employment.

        Linked by the HRIS's ``prior_employee_id`` when the record carries one, else by the
        same work login (from the work e-mail) when its owner has left: inactive in this
        feed, or absent from it with the account already disabled. Anyone still active keeps
        their login and the newcomer gets another one, as before.
        """
        s = self.settings
        store = self.store
        for people in store.without_account():  # no entry (not even duplicates), active
            for person in people:
                eid = person.employee_id
                if eid in self.alias:
                    continue
                prior = text(person.record.get("prior_employee_id"))
                earlier: str | None = None
                if prior and prior != eid and self._account(prior) is not None:
                    earlier = prior
                elif person.login_from_address:
                    base = next(login_candidates(person.login_base, eid, s.login_max_length))
                    account = cast(Account | None, store.by_login(base.lower()))
                    other = account.first(s.employee_id_attribute) if account else None
                    if (
                        account is not None
                        and other
                        and other != eid
                        and self._same_mail(person, account)
                    ):
                        owner = store.person(other)
                        left = not owner.enabled if owner else not self.is_enabled(account)
                        earlier = other if left else None
                if earlier is None or earlier in self.rehired:
                    continue
                self.rehired[earlier] = eid
                linked = self._account(earlier)
                assert linked is not None
                self.alias[eid] = linked
                store.add_holder(dn_key(linked.dn), eid)
                self.logger.info(
                    "employee %s is a rehire of employee %s: their account follows them",
                    eid,
                    earlier,
                )

    def _same_mail(self, person: DesiredPerson, account: Account) -> bool:
        """Where the directory keeps the work e-mail, a login match must be the same address
        too (maria.silva@example.com is not maria.silva@example.pt)."""
        mail_attrs = [a for a, src in self.settings.attributes.items() if src == "work_email"]
        email = person.fields.get("work_email")
        if not mail_attrs or not email:
            return True
        have = {v.casefold() for a in mail_attrs for v in account.values(a)}
        return not have or str(email).casefold() in have

    def is_enabled(self, account: Account) -> bool:
        s = self.settings
        if s.mode == "ad":
            try:
                uac = int(account.first("userAccountControl") or AD_NORMAL_ACCOUNT)
            except ValueError:
                uac = AD_NORMAL_ACCOUNT
            if uac & AD_ACCOUNTDISABLE:
                return False
        if s.disabled_attribute:
            name, value = s.disabled_attribute
            if value.casefold() in {v.casefold() for v in account.values(name)}:
                return False
        return not (s.disabled_ou and is_under(account.dn, s.disabled_ou))

    # -- planning -----------------------------------------------------------------------
    def _assign_login(self, person: DesiredPerson) -> str:
        for candidate in login_candidates(
            person.login_base, person.employee_id, self.settings.login_max_length
        ):
            if self.store.claim_login(candidate.lower()):
                return candidate
        raise AssertionError("unreachable: login_candidates is endless")

    def _target_dn(
        self, person: DesiredPerson, login: str, enabled: bool, current: str | None
    ) -> str:
        s = self.settings
        values = template_values(person, login, s.base_dn)
        missing = sorted(n for n in self._template_fields if n not in values)
        if missing:
            raise RecordError(
                person.stream,
                person.employee_id,
                missing[0],
                f"missing, and dn_template {s.dn_template!r} needs it",
            )
        dn = render_dn(s.dn_template, values, s.base_dn)
        if enabled:
            return dn
        if s.disabled_ou:
            return f"{rdn_of(dn)},{s.disabled_ou}"
        return current or dn  # a leaver without a disabled OU stays where they are

    def _ad_uac(self, account: Account | None, enabled: bool) -> str:
        current = AD_NORMAL_ACCOUNT
        if account is not None:
            try:
                current = int(account.first("userAccountControl") or AD_NORMAL_ACCOUNT)
            except ValueError:
                current = AD_NORMAL_ACCOUNT
        return str(current & ~AD_ACCOUNTDISABLE if enabled else current | AD_ACCOUNTDISABLE)

    def _state_ops(self, account: Account, enabled: bool) -> list[tuple[str, Any, list[str]]]:
        s = self.settings
        if not s.disabled_attribute:
            return []
        name, value = s.disabled_attribute
        present = value.casefold() in {v.casefold() for v in account.values(name)}
        if enabled and present:
            return [(name, MODIFY_DELETE, [value])]
        if not enabled and not present:
            return [(name, MODIFY_ADD, [value])]
        return []

    def _wanted(
        self,
        person: DesiredPerson,
        login: str,
        manager: list[str] | None,
        dn: str,
        rdn: list[tuple[str, str]] | None = None,
    ) -> dict[str, list[str]]:
        s = self.settings
        attrs = desired_attributes(person, s)
        attrs[s.login_attribute] = [login]
        if s.mode == "ad" and s.upn_domain:
            attrs["userPrincipalName"] = [f"{login}@{s.upn_domain}"]
        if manager is not None:
            attrs["manager"] = manager
        # the naming attribute's value comes from the DN (modify_dn keeps it in step)
        for attr, value in first_rdn(dn) if rdn is None else rdn:
            attrs[attr] = [value]
        return attrs

    @staticmethod
    def _same(attr: str, have: list[str], want: list[str]) -> bool:
        if attr.lower() == "manager":
            return {dn_key(v) for v in have} == {dn_key(v) for v in want}
        return sorted(have) == sorted(want)

    def plan(self) -> Plan:
        """Everything the run would do, from the current directory and the whole batch; the
        batch, the directory and the plan are read and written a chunk at a time."""
        s = self.settings
        store = self.store
        plan = Plan(changes=SpillList(store.spill, "changes"))
        self.load_index()
        for accounts in store.unique_accounts():
            plan.enabled_accounts += sum(
                1 for _, _, a in accounts if is_under(a.dn, s.base_dn) and self.is_enabled(a)
            )
        # pass 1: login and target DN for every employee (new logins in employee-id order,
        # so collisions resolve the same way whatever order the feed came in)
        self._link_rehires()
        for people in store.people_accounts():
            for seq, person, n, stored in people:
                eid = person.employee_id
                if eid in self.rehired:
                    plan.skipped.append(
                        (eid, f"rehired as employee {self.rehired[eid]}: the account is theirs")
                    )
                    continue
                duplicates = store.duplicates(eid)
                if duplicates:
                    self.failures.append(
                        Failure(
                            person.stream,
                            eid,
                            "plan",
                            s.employee_id_attribute,
                            f"{len(duplicates)} entries carry "
                            f"{s.employee_id_attribute}={eid}: "
                            f"{'; '.join(duplicates)}; resolve by hand",
                            person.record,
                        )
                    )
                    continue
                # the one account carrying this employee id (self._account): a rehire's
                # linked one, else the store's (read with the person)
                linked = self.alias.get(eid)
                account = linked if linked is not None else cast(Account | None, stored)
                if account is None:
                    if not person.enabled:
                        plan.skipped.append((eid, "no account, and not active: nothing to create"))
                        continue
                    store.add_newcomer(eid, seq)
                    continue
                login = account.first(s.login_attribute) or self._assign_login(person)
                try:
                    dn = self._target_dn(person, login, person.enabled, account.dn)
                except RecordError as error:
                    self._reject_record(person, error)
                    continue
                store.place(eid, -1 if linked is not None else n, login, dn, dn_key(dn))
        for newcomers in store.newcomers():
            for newcomer in newcomers:
                login = self._assign_login(newcomer)
                try:
                    dn = self._target_dn(newcomer, login, True, None)
                except RecordError as error:
                    self._reject_record(newcomer, error)
                    continue
                store.place(newcomer.employee_id, None, login, dn, dn_key(dn))

        self._drop_dn_conflicts()

        # pass 2: attributes, manager links, account state
        for rows in store.placed_people():
            for placed in rows:
                account = None
                if placed.has_account:
                    linked = self.alias.get(placed.person.employee_id)
                    account = linked if linked is not None else placed.account
                self._plan_person(plan, placed.person, account, placed.login, placed.dn, placed)

        if s.deactivate_missing_users:
            # in the feed but refused (a bad field, text that is not Unicode): not a leaver
            held = self.held | {f.employee_id for f in self.failures}
            for accounts in store.unique_accounts():
                for _, eid, account in accounts:
                    if eid in self.rehired or not self.is_enabled(account):
                        continue
                    if not is_under(account.dn, s.base_dn) or store.in_batch(eid):
                        continue
                    if eid in held:
                        continue
                    dn = f"{rdn_of(account.dn)},{s.disabled_ou}" if s.disabled_ou else account.dn
                    diff = {}
                    if s.mode == "ad":
                        diff["userAccountControl"] = [self._ad_uac(account, False)]
                    change = Change(
                        "disable",
                        "(missing from feed)",
                        eid,
                        None,
                        account.dn,
                        dn,
                        diff,
                        self._state_ops(account, False),
                    )
                    plan.add(change)
                    if s.group_rules:
                        plan.members.append((eid, dn, account.dn, set()))

        if s.group_rules:
            plan.group_changes = self._group_changes(
                plan, {eid: dn for eid, dn, _, _ in plan.members}
            )
        return plan

    def _plan_person(
        self,
        plan: Plan,
        person: DesiredPerson,
        account: Account | None,
        login: str,
        dn: str,
        placed: Placed,
    ) -> None:
        s = self.settings
        eid = person.employee_id
        manager: list[str] | None = []
        depends_on: str | None = None
        mgr = person.manager_employee_id
        if mgr and mgr != eid:
            placement = placed.manager  # self.store.placement(mgr), read with the person
            known = self._account(mgr) if placement is None else None
            if placement is not None:
                manager = [placement[0]]
                if placement[1]:  # created in this run: created first
                    depends_on = mgr
            elif known is not None:
                manager = [known.dn]
            else:
                manager = None  # unknown manager: leave the attribute as it is
                self.logger.warning(
                    "[%s] employee %s: manager %s has no account; manager left unchanged",
                    person.stream,
                    eid,
                    mgr,
                )
        if s.group_rules:  # who belongs where: everyone this run decided about
            groups = (
                {r.group_dn for r in s.group_rules if r.matches(person.facets)}
                if person.enabled or not s.remove_groups_on_disable
                else set()
            )
            plan.members.append((eid, dn, account.dn if account else None, groups))
        rdn = first_rdn(dn)
        wanted = self._wanted(person, login, manager, dn, rdn)
        if account is None:
            if s.mode == "ad":
                wanted["userAccountControl"] = [str(AD_NORMAL_ACCOUNT)]
            entry = {k: v for k, v in wanted.items() if v}
            if s.mode == "ad" and s.initial_password:  # bytes: unicodePwd is UTF-16-LE
                pwd = password_attributes(s.initial_password, s.password_must_change)
                entry.update(cast(dict[str, list[str]], pwd))
            plan.add(
                Change(
                    "create",
                    person.stream,
                    eid,
                    person,
                    None,
                    dn,
                    entry,
                    depends_on=depends_on,
                )
            )
            return
        rdn_attrs = {a.lower() for a, _ in rdn}
        diff = {
            attr: want
            for attr, want in wanted.items()
            if attr.lower() not in rdn_attrs and not self._same(attr, account.values(attr), want)
        }
        was_enabled = self.is_enabled(account)
        if s.mode == "ad":
            uac = self._ad_uac(account, person.enabled)
            if account.first("userAccountControl") != uac:
                diff["userAccountControl"] = [uac]
        state = self._state_ops(account, person.enabled)
        if was_enabled and not person.enabled:
            action = "disable"
        elif person.enabled and not was_enabled:
            action = "enable"
        else:
            action = "update"
        change = Change(action, person.stream, eid, person, account.dn, dn, diff, state)
        if diff or state or change.moved:
            plan.add(change)
        else:
            plan.unchanged += 1

    def _drop_dn_conflicts(self) -> None:
        """Two employees must not aim at one DN (say cn={display_name} and two John Smiths
        in one department): the account already there, else the first placed (accounts
        first, then newcomers by employee id), keeps it; the other gets a specific error
        instead of a race between parallel writes."""
        store = self.store
        for rows in store.dn_conflicts():  # the rest have a DN of their own
            for pseq, eid, dn, key in rows:
                other = store.earlier_target(key, pseq)
                if other is None:
                    holder = store.holder(key)
                    if holder is not None and holder != eid and not store.is_placed(holder):
                        other = holder
                if other is None or other == eid:
                    continue
                person = store.person(eid)
                assert person is not None
                attr = split_dn(dn)[0][0][0]
                self.failures.append(
                    Failure(
                        person.stream,
                        eid,
                        "plan",
                        attr,
                        f"{dn} is also the DN of employee {other}; adjust dn_template "
                        "or the record",
                        person.record,
                    )
                )
                self.logger.error(
                    "[%s] employee %s: %s is also the DN of employee %s",
                    person.stream,
                    eid,
                    dn,
                    other,
                )
                store.drop(pseq)

    def _reject_record(self, person: DesiredPerson, error: RecordError) -> None:
        self.failures.append(
            Failure(
                person.stream,
                person.employee_id,
                "plan",
                error.field or "record",
                error.reason,
                person.record,
            )
        )
        self.logger.error("%s", error)

    # -- groups -------------------------------------------------------------------------
    def read_groups(self) -> dict[str, Group]:
        groups: dict[str, Group] = {}
        for dn in dict.fromkeys(r.group_dn for r in self.settings.group_rules):
            attrs = self.directory.read(dn, ["objectClass", "member", "uniqueMember"])
            if attrs is None:
                raise ConfigError(
                    f"group_rules: group {dn} does not exist in the directory; create it "
                    "or fix the rule (nothing was written)"
                )
            classes = {c.casefold() for c in attrs.get("objectclass", [])}
            member_attr = "uniqueMember" if "groupofuniquenames" in classes else "member"
            members = attrs.get(member_attr.lower(), [])
            groups[dn_key(dn)] = Group(
                dn,
                member_attr,
                bool(classes & {"groupofnames", "groupofuniquenames"}),
                {dn_key(m): m for m in members},
            )
        return groups

    def _group_changes(self, plan: Plan, final: dict[str, str | None]) -> list[GroupChange]:
        groups = self.read_groups()
        desired: dict[str, dict[str, tuple[str, str]]] = {k: {} for k in groups}
        involved: dict[str, str] = {}  # dn key -> employee id (old and new DNs)
        for eid, _dn, before, wanted in plan.members:
            now = final.get(eid)
            for dn in (before, now):
                if dn:
                    involved[dn_key(dn)] = eid
            if now is None:
                continue
            for group_dn in wanted:
                desired[dn_key(group_dn)][dn_key(now)] = (eid, now)
        changes = []
        for key, group in groups.items():
            change = GroupChange(group)
            want = desired[key]
            for member_key, (eid, dn) in want.items():
                if member_key not in group.members:
                    change.add.append((eid, dn))
            for member_key, value in group.members.items():
                if member_key in involved and member_key not in want:
                    change.remove.append((involved[member_key], value))
            if group.needs_placeholder:
                placeholder = self.settings.group_placeholder_member or group.dn
                pkey = dn_key(placeholder)
                remaining = (set(group.members) - {dn_key(v) for _, v in change.remove}) | set(want)
                real = remaining - {pkey}
                if not real and pkey not in group.members:
                    change.placeholder_add = placeholder
                elif real and pkey in group.members:
                    change.placeholder_remove = group.members[pkey]
            if change:
                changes.append(change)
        return changes

    # -- the guard ----------------------------------------------------------------------
    def guard(self, plan: Plan) -> str | None:
        """Why the run must stop, or None."""
        s = self.settings
        disabling = plan.count("disable")
        enabled = plan.enabled_accounts
        if (
            disabling <= s.mass_deactivation_floor
            or disabling <= s.max_deactivation_share * enabled
        ):
            return None
        share = disabling / enabled if enabled else 1.0
        return (
            f"mass-deprovisioning guard: this run would disable {disabling} of the {enabled} "
            f"enabled accounts under {s.base_dn} ({share:.0%}), more than "
            f"max_deactivation_share={s.max_deactivation_share:.0%}. Nothing was written. "
            "An empty, truncated or mis-mapped HR feed looks exactly like this; if the "
            "deactivations are intended, re-run with allow_mass_deactivation: true"
        )

    # -- the run ------------------------------------------------------------------------
    def run(self) -> Summary:
        plan = self.plan()
        summary = Summary(plan)
        message = self.guard(plan)
        if message and self.settings.allow_mass_deactivation:
            self.logger.warning("%s (overridden by allow_mass_deactivation)", message)
            message = None
        summary.guard_message = message
        if self.settings.dry_run:
            self.print_plan(plan, message)
            summary.failures = list(self.failures)
            return summary
        if message:
            raise MassDeactivationRefused(message)
        for failure in self.failures:  # records refused before any write
            self._audit(
                failure.stream,
                failure.employee_id,
                [failure.field],
                "rejected",
                self.directory.destination,
                failure.action,
            )
        self.audit_flush()
        self._execute(plan, summary)
        summary.failures = list(self.failures)
        return summary

    def _execute(self, plan: Plan, summary: Summary) -> None:
        s = self.settings
        dest = self.directory.destination
        counts: Counter[str] = summary.outcomes

        def count(outcome: str) -> None:
            counts[outcome] += 1

        def move_op(change: Change) -> Op:
            assert change.dn_before is not None
            return self.directory.move_op(change.dn_before, change.dn_after)

        def moved(change: Change, result: Result) -> None:
            if result.ok:
                change.final_dn = change.dn_after
                return
            self._fail(change, "move", "dn", self._explain(change, result, "dn"), result)
            change.final_dn = change.dn_before

        def write_op(change: Change) -> Op | Result | None:
            if change.failed:
                return None
            if change.action == "create":
                return self.directory.add_op(change.dn_after, s.object_classes, change.attributes)
            if change.final_dn is None:
                change.final_dn = change.dn_before
            mods: dict[str, list[tuple[int, list[Any]]]] = {
                attr: [(MODIFY_REPLACE, values)] for attr, values in change.attributes.items()
            }
            for attr, op, values in change.state:
                mods.setdefault(attr, []).append((op, values))
            if not mods:
                return NOTHING_TO_SEND
            assert change.final_dn is not None
            return self.directory.modify_op(change.final_dn, mods)

        def written(change: Change, result: Result) -> None:
            if not result.ok:
                self._fail(
                    change,
                    change.action,
                    self._field(change, result),
                    self._explain(change, result, None),
                    result,
                )
                return
            if change.action == "create":
                change.final_dn = change.dn_after
            self._audit(
                change.stream,
                change.employee_id,
                [f for f in change.fields if f != "manager" or not change.manager_deferred],
                OUTCOME[change.action],
                dest,
            )
            count(OUTCOME[change.action])

        def link_op(change: Change) -> Op | None:
            if change.failed or not change.manager_deferred or change.final_dn is None:
                return None
            manager_dn = final_dns.get(dn_key(change.manager_deferred), change.manager_deferred)
            manager_dn = manager_dn or change.manager_deferred
            return self.directory.modify_op(
                change.final_dn, {"manager": [(MODIFY_REPLACE, [manager_dn])]}
            )

        def linked_manager(change: Change, result: Result) -> None:
            if not result.ok:
                self._fail(
                    change,
                    "link manager",
                    "manager",
                    self._explain(change, result, "manager"),
                    result,
                )
                return
            self._audit(change.stream, change.employee_id, ["manager"], "updated", dest)

        changes = plan.changes
        assert isinstance(changes, SpillList), "a real run's plan is spilled"
        store = self.store
        size = max(spill.CHUNK, 8 * max(1, s.max_connections) * 64)
        if s.create_missing_ous:  # new departments: their OUs first, once, not in a race
            parents: dict[str, str] = {}
            for chunk in changes.iter_chunks(f"tag = 'create' OR flag = {MOVED}"):
                for c in chunk:
                    parents[parent_key(c.dn_after)] = c.dn_after
            for child in parents.values():
                self.directory.ensure_parents(child)

        nowhere: set[str] = set()  # employees whose entry is nowhere after its write (few)

        def run(numbered: list[tuple[int, Change]]) -> None:
            """Write a chunk (pipelined on the connections), then keep where each entry is."""
            self.directory.pipeline([c for _, c in numbered], write_op, written)
            self.audit_flush()
            for seq, c in numbered:
                changes.update(seq, c)
                if c.final_dn is None:
                    nowhere.add(c.employee_id)
            store.set_finals([(c.employee_id, dn_key(c.dn_after), c.final_dn) for _, c in numbered])

        for numbered in changes.iter_numbered(f"flag = {MOVED}", size=size):
            self.directory.pipeline([c for _, c in numbered], move_op, moved)
            self.audit_flush()
            for seq, c in numbered:
                changes.update(seq, c)
        # new accounts in waves, managers before their reports (AD checks DN references);
        # then the modifies, which may point at the new accounts
        for numbered in changes.iter_numbered("tag = 'create'"):
            for seq, c in numbered:
                store.add_create(seq, c.employee_id, c.depends_on)
        levels, cyclic = store.levels()
        deferred: list[int] = []
        if cyclic:  # reporting cycles among the new accounts (few): broken in memory
            seqs = {eid: seq for eid, seq, _ in cyclic}
            loaded = {
                c.employee_id: c
                for chunk in changes.iter_chunks(
                    f"seq IN ({','.join(str(q) for q in seqs.values())})"
                )
                for c in chunk
            }
            waves = self._waves(loaded)
            for offset, wave in enumerate(waves):
                for c in wave:
                    store.set_level(c.employee_id, levels + offset)
                    changes.update(seqs[c.employee_id], c)
                    if c.manager_deferred:
                        deferred.append(seqs[c.employee_id])
            levels += len(waves)
        for level in range(levels):
            for numbered in changes.iter_numbered(
                "seq IN (SELECT seq FROM waves WHERE level = ?)", (level,), size=size
            ):
                for _, c in numbered:
                    # the manager's own create failed (it was written in an earlier wave, so
                    # it is in ``nowhere`` exactly when store.final_of(manager) is None)
                    if c.depends_on and c.depends_on in nowhere:
                        c.attributes.pop("manager", None)
                run(numbered)
        for numbered in changes.iter_numbered("tag != 'create'", size=size):
            run(numbered)
        if deferred:
            linked = [
                c
                for chunk in changes.iter_chunks(f"seq IN ({','.join(str(q) for q in deferred)})")
                for c in chunk
            ]
            final_dns: dict[str, str | None] = {
                dn_key(c.manager_deferred): store.final_by_dnkey(dn_key(c.manager_deferred))
                for c in linked
                if c.manager_deferred
            }
            self.directory.pipeline(linked, link_op, linked_manager)
            self.audit_flush()
        if s.group_rules:
            self._write_groups(plan, summary)

    @staticmethod
    def _waves(creates: dict[str, Change]) -> list[list[Change]]:
        """Creates grouped by management depth among the new accounts; a reporting cycle
        is broken by linking that manager after the creates."""
        level: dict[str, int] = {}
        for start in creates:
            path: list[str] = []
            cur: str | None = start
            while cur is not None and cur not in level:
                if cur in path:  # A manages B manages A: B's manager is linked afterwards
                    last = creates[path[-1]]
                    last.manager_deferred = last.attributes.pop("manager", [cur])[0]
                    last.depends_on = None
                    break
                path.append(cur)
                dep = creates[cur].depends_on
                cur = dep if dep in creates else None
            for eid in reversed(path):
                dep = creates[eid].depends_on
                level[eid] = level[dep] + 1 if dep is not None and dep in level else 0
        waves: dict[int, list[Change]] = {}
        for eid, change in creates.items():
            waves.setdefault(level[eid], []).append(change)
        return [waves[k] for k in sorted(waves)]

    def _write_groups(self, plan: Plan, summary: Summary) -> None:
        store = self.store
        # where each entry is now: unchanged -> planned DN; failed create -> nowhere;
        # failed move -> still at its old DN (the final DN kept after each write says so)
        final: dict[str, str | None] = {}
        for eid, dn, _, _ in plan.members:
            changed, now = store.final_row(eid)
            final[eid] = now if changed else dn
        group_changes = self._group_changes(plan, final)
        # streams looked up once, before the writes
        streams: dict[str, str] = {}
        for gc in group_changes:
            for eid, _ in gc.add + gc.remove:
                if eid not in streams:
                    person = store.person(eid)
                    streams[eid] = person.stream if person else "(missing from feed)"
        failed: list[Failure] = []

        def apply(gc: GroupChange) -> None:
            group = gc.group
            attr = group.member_attr
            adds = [dn for _, dn in gc.add]
            removes = [dn for _, dn in gc.remove]
            # adds and removals travel together; the first request also carries the
            # placeholder swap, so a groupOfNames is never left without a member
            requests = max(-(-len(adds) // GROUP_CHUNK), -(-len(removes) // GROUP_CHUNK), 1)
            ops: list[dict[str, list[tuple[int, list[str]]]]] = []
            for i in range(requests):
                batch: list[tuple[int, list[str]]] = []
                if i == 0 and gc.placeholder_add:
                    batch.append((MODIFY_ADD, [gc.placeholder_add]))
                if adds[i * GROUP_CHUNK : (i + 1) * GROUP_CHUNK]:
                    batch.append((MODIFY_ADD, adds[i * GROUP_CHUNK : (i + 1) * GROUP_CHUNK]))
                if removes[i * GROUP_CHUNK : (i + 1) * GROUP_CHUNK]:
                    batch.append((MODIFY_DELETE, removes[i * GROUP_CHUNK : (i + 1) * GROUP_CHUNK]))
                if i == 0 and gc.placeholder_remove:
                    batch.append((MODIFY_DELETE, [gc.placeholder_remove]))
                if batch:
                    ops.append({attr: batch})
            for mods in ops:
                result = self.directory.modify(group.dn, mods)
                if not result.ok:
                    for eid, _ in gc.add + gc.remove:
                        failure = Failure(
                            streams[eid],
                            eid,
                            "group membership",
                            attr,
                            f"group {group.dn}: {result}",
                            None,  # the record is read back below, after the writes
                            str(result),
                        )
                        failed.append(failure)
                        self.logger.error("%s", failure.message())
                    return
            for outcome, members in (("group_added", gc.add), ("group_removed", gc.remove)):
                for eid, _ in members:
                    self._audit(
                        streams[eid],
                        eid,
                        [attr],
                        outcome,
                        f"{self.settings.url.rstrip('/')}/{group.dn}",
                    )
                    summary.outcomes[outcome] += 1

        for gc in group_changes:  # few requests, each up to GROUP_CHUNK values: one by one
            apply(gc)
            self.audit_flush()
        for failure in failed:
            person = store.person(failure.employee_id)
            failure.record = person.record if person else None
            self.failures.append(failure)

    # -- errors -------------------------------------------------------------------------
    def _field(self, change: Change, result: Result) -> str:
        known = explain_ad(result.code, result.message) if self.settings.mode == "ad" else None
        if known is not None:  # AD's own code decides; no guessing from Samba's module names
            return known.field or "entry"
        named = _attribute_from_message(result.message)
        if named:
            return named
        if result.code == 68:  # entryAlreadyExists: the naming attribute
            return split_dn(change.dn_after)[0][0][0]
        if len(change.attributes) == 1 and change.action != "create":
            return next(iter(change.attributes))
        return "entry"

    def _explain(self, change: Change, result: Result, field_name: str | None) -> str:
        s = self.settings
        known = explain_ad(result.code, result.message) if s.mode == "ad" else None
        if known is not None:
            return f"Active Directory refused {change.dn_after}: {known.reason} ({result})"
        if result.code == 68:
            owner = self.directory.read(change.dn_after, [s.employee_id_attribute])
            eid = next(iter((owner or {}).get(s.employee_id_attribute.lower(), [])), None)
            who = (
                f"employee {eid}"
                if eid
                else f"an entry without {s.employee_id_attribute} (not managed by this target)"
            )
            return f"{change.dn_after} already exists and belongs to {who} ({result})"
        return f"the directory rejected {change.dn_after}: {result}"

    # -- dry run ------------------------------------------------------------------------
    def print_plan(self, plan: Plan, guard_message: str | None) -> None:
        """The plan, one line per change: employee ids, DNs, attribute names (no values)."""
        p = self.out.write
        p(f"target-ldap DRY RUN against {self.directory.destination}: nothing is written\n")
        for change in plan.changes:
            where = f"{change.dn_before} -> {change.dn_after}" if change.moved else change.dn_after
            p(
                f"  {change.action:<8} employee {change.employee_id}: {where}"
                f" [{', '.join(change.fields)}]\n"
            )
        for gc in plan.group_changes:
            for eid, _ in gc.add:
                p(f"  join     employee {eid}: {gc.group.dn}\n")
            for eid, _ in gc.remove:
                p(f"  leave    employee {eid}: {gc.group.dn}\n")
            if gc.placeholder_add:
                p(f"  keep     {gc.group.dn}: placeholder member (last member leaves)\n")
        for eid, why in plan.skipped:
            p(f"  skip     employee {eid}: {why}\n")
        for failure in self.failures:
            p(f"  error    {failure.message()}\n")
        p(
            f"target-ldap DRY RUN plan: {plan.count('create')} create, {plan.count('update')} "
            f"update, {plan.count('disable')} disable, {plan.count('enable')} enable, "
            f"{sum(len(g.add) for g in plan.group_changes)} group joins, "
            f"{sum(len(g.remove) for g in plan.group_changes)} group leaves, "
            f"{plan.unchanged} unchanged, {len(self.failures)} errors "
            f"({plan.enabled_accounts} enabled accounts under {self.settings.base_dn})\n"
        )
        if guard_message:
            p(f"target-ldap DRY RUN: the real run would STOP: {guard_message}\n")
        self.out.flush()
