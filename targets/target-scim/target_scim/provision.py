"""Plan the whole batch, check the mass-deprovisioning guard, then write.

Nothing is written before the full plan exists: the guard has to know how many active
accounts the run would deactivate, and an empty or truncated HRIS feed must never lock
the company out.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from hrsync import spill
from hrsync.spill import SpillList
from target_scim import scim
from target_scim.client import SCIMAuthError, SCIMClient, SCIMError, ServerFeatures
from target_scim.planstore import PlanStore
from target_scim.users import DesiredUser

LOGGER = logging.getLogger("target_scim")
T = TypeVar("T")
R = TypeVar("R")

ACTIONS = ("create", "update", "deactivate", "reactivate")
OUTCOME = {
    "create": "created",
    "update": "updated",
    "deactivate": "deactivated",
    "reactivate": "reactivated",
}


class TargetSCIMError(Exception):
    """A run-level stop with a message for the operator (exit status 1)."""


class MassDeactivationRefused(TargetSCIMError):
    """The guard stopped the run before anything was written."""


class ProvisioningIncomplete(TargetSCIMError):
    """Some users failed and could not be kept as dead letters (accounts absent from a full
    feed: there is no record to replay). Raised after the rest was processed."""


@dataclass
class Settings:
    dry_run: bool = False
    max_deactivation_share: float = 0.10
    allow_mass_deactivation: bool = False
    mass_deactivation_floor: int = 1
    deactivate_missing_users: bool = False
    max_concurrency: int = 4
    use_bulk: bool = True
    bulk_max_operations: int = 1000


@dataclass
class Change:
    action: str
    user: DesiredUser
    user_id: str | None
    existing: dict[str, Any] | None
    changes: dict[str, Any]  # managed path -> new value (None: remove)
    manager_pending: str | None = None  # manager's employee id, created in this same run
    reason: str | None = None

    @property
    def fields(self) -> list[str]:
        order = {p: i for i, p in enumerate(scim.MANAGED)}
        paths = sorted(self.changes, key=lambda p: order.get(p, len(order)))
        names = [scim.short_name(p) for p in paths]
        if self.manager_pending and "manager" not in names:
            names.append("manager")
        return names


@dataclass
class Failure:
    stream: str
    employee_id: str
    action: str
    field: str
    reason: str
    record: dict[str, Any]
    status: int | None = None
    scim_type: str | None = None
    detail: str | None = None

    def message(self) -> str:
        text = f"[{self.stream}] employee {self.employee_id}: {self.action} failed on {self.field}"
        text += f": {self.reason}"
        if self.scim_type:
            text += f" (scimType={self.scim_type})"
        return text


@dataclass
class Plan:
    """The run's plan; a real run's changes and skips are spilled to disk (SpillList)."""

    changes: list[Change] | SpillList[Change] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[DesiredUser, str]] | SpillList[tuple[DesiredUser, str]] = field(
        default_factory=list
    )
    failures: list[Failure] = field(default_factory=list)
    active_accounts: int | None = None

    def count(self, action: str) -> int:
        if isinstance(self.changes, SpillList):
            return self.changes.counts[action]
        return sum(1 for c in self.changes if c.action == action)

    def add(self, change: Change) -> None:
        if isinstance(self.changes, SpillList):
            self.changes.append(change, change.action, change.user.employee_id)
        else:
            self.changes.append(change)


@dataclass
class Summary:
    plan: Plan
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


AuditHook = Callable[[str, str, list[str], str, str | None], None]
"""(stream, record_key, field names, outcome, detail) -> None"""


def _norm(path: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if path == scim.ACTIVE:
        return scim.parse_bool(value, True)
    return value if isinstance(value, str) else str(value)


def field_of(error: SCIMError, paths: Iterable[str]) -> str:
    """The attribute an error is about: named in the server's detail, else the likely one."""
    detail = (error.detail or "").lower()
    names = [scim.short_name(p) for p in paths]
    for name in sorted({*names, "userName", "externalId"}, key=len, reverse=True):
        leaf = name.rsplit(".", 1)[-1]
        if name.lower() in detail or f"'{leaf.lower()}'" in detail:
            return name
    if (error.scim_type or "").lower() == "uniqueness":
        return "userName"
    return ", ".join(names) or "(record)"


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


class Provisioner:
    """Collects desired users, plans against the server, guards, writes, reports."""

    def __init__(
        self,
        client: SCIMClient,
        settings: Settings,
        *,
        audit: AuditHook | None = None,
        logger: logging.Logger = LOGGER,
        plan_out: TextIO | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.audit = audit or (lambda *_: None)
        self.logger = logger
        self.plan_out = plan_out or sys.stderr
        self.input_failures: list[Failure] = []
        #: employees whose record was refused before planning (hrsync.singer_input): in the
        #: feed, so never "absent from the HRIS feed"; their account stays as it is this run
        self.held: set[str] = set()
        self.rehired: dict[str, str] = {}  # earlier employee id -> the id of the rehire
        self._features: ServerFeatures | None = None
        self._store: PlanStore | None = None
        self._lists = 0

    # -- input -----------------------------------------------------------------------------

    @property
    def store(self) -> PlanStore:
        """The batch, the server's users and the plan, on disk (flat memory at any size)."""
        if self._store is None:
            self._store = PlanStore()
        return self._store

    def close(self) -> None:
        """Delete the spill file (after the dead letters are settled)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def add(self, user: DesiredUser) -> None:
        """The latest record for an employee wins (one account per person, however many
        positions or update events the feed carries)."""
        self.store.add(user)

    def batch(self) -> Iterable[tuple[str, str]]:
        """(stream, employee id) of everyone in the batch."""
        if self._store is None:
            return []
        return self._store.batch()

    def _spill_list(self, name: str) -> SpillList[Any]:
        self._lists += 1
        return SpillList(self.store.spill, f"{name}{self._lists}")

    def reject(self, failure: Failure) -> None:
        self.input_failures.append(failure)

    @property
    def features(self) -> ServerFeatures:
        if self._features is None:
            self._features = self.client.features()
            self.logger.info("SCIM server features: %s", self._features)
        return self._features

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        workers = max(1, self.settings.max_concurrency)
        if workers == 1 or len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    # -- lookups ---------------------------------------------------------------------------

    def _page_size(self) -> int:
        return max(1, min(self.features.filter_max_results, 1000))

    def _use_listing(self) -> tuple[bool, int | None]:
        """List every user once, or look each one up with a filter: whichever costs fewer
        requests (listing is required to find accounts missing from the feed)."""
        if self.settings.deactivate_missing_users or not self.features.filter:
            return True, None
        total, _ = self.client.search(None, count=0)
        pages = math.ceil(total / self._page_size())
        return pages < self.store.count(), total

    def _list_all(self) -> int:
        """Every user of the server into the spill file; returns how many are active."""
        active = 0
        for resource in self.client.iter_users(self._page_size()):
            values = scim.read_managed(resource)
            ext = values[scim.EXTERNAL_ID]
            name = values[scim.USER_NAME]
            self.store.add_account(
                str(ext) if ext else None, str(name).lower() if name else None, resource
            )
            if values[scim.ACTIVE]:
                active += 1
        return active

    def _find(
        self, external_id: str, user_name: str | None, prior: str | None = None
    ) -> list[dict[str, Any]]:
        flt = f"externalId eq {scim.filter_string(external_id)}"
        if user_name:
            flt += f" or userName eq {scim.filter_string(user_name)}"
        if prior:
            flt += f" or externalId eq {scim.filter_string(prior)}"
        _, found = self.client.search(flt)
        return found

    def _pick(
        self, user: DesiredUser, candidates: Iterable[Mapping[str, Any] | None]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(existing account, conflict reason)."""
        by_name = by_prior = None
        prior = user.prior_employee_id
        for candidate in candidates:
            if not candidate:
                continue
            values = scim.read_managed(candidate)
            if values[scim.EXTERNAL_ID] == user.employee_id:
                return dict(candidate), None
            if prior and values[scim.EXTERNAL_ID] == prior:
                by_prior = dict(candidate)
            same_name = (
                user.user_name is not None
                and str(values[scim.USER_NAME] or "").lower() == user.user_name.lower()
            )
            if same_name and by_name is None:
                by_name = (dict(candidate), values[scim.EXTERNAL_ID], bool(values[scim.ACTIVE]))
        if by_prior is not None:  # the HRIS links the rehire to the earlier employee id
            linked = self._link(user, by_prior, str(prior))
            return linked, None if linked else f"employee {prior}'s account is claimed twice"
        if by_name is None:
            return None, None
        account, other, active = by_name
        if not other:
            return account, None  # an unmanaged account with this userName: adopt it
        earlier = self.store.get(str(other))
        if user.active and (not earlier.active if earlier is not None else not active):
            # The same work login, and its owner has left (inactive in this feed, or absent
            # from it with the account already deactivated): a rehire under a new employee
            # id. The account follows the person: reactivated, re-keyed, never duplicated.
            linked = self._link(user, account, str(other))
            if linked is not None:
                return linked, None
        return None, f"userName is already used by the account of employee {other}"

    def _link(
        self, user: DesiredUser, account: dict[str, Any], earlier: str
    ) -> dict[str, Any] | None:
        if self.rehired.setdefault(earlier, user.employee_id) != user.employee_id:
            return None  # a second new id claims the same earlier account: a conflict
        self.logger.info(
            "employee %s is a rehire of employee %s: their account follows them",
            user.employee_id,
            earlier,
        )
        return account

    # -- planning --------------------------------------------------------------------------

    def plan(self) -> Plan:
        """The whole batch against the server, read and written a chunk at a time."""
        store = self.store
        plan = Plan(
            changes=self._spill_list("changes"),
            skipped=self._spill_list("skipped"),
            failures=list(self.input_failures),
        )
        listing, _ = self._use_listing()
        if listing:
            plan.active_accounts = self._list_all()
            store.ids_from_listing()
        # pass 1: which account is whose (every match before any plan: rehires link here)
        for users in store.users():
            if listing:
                for user in users:
                    candidates = [store.account_by_ext(user.employee_id)]
                    if user.user_name:
                        candidates.append(store.account_by_name(user.user_name.lower()))
                    if user.prior_employee_id:
                        candidates.append(store.account_by_ext(user.prior_employee_id))
                    store.put_match(user.employee_id, *self._pick(user, candidates))
            else:
                found = self._map(
                    lambda u: self._find(u.employee_id, u.user_name, u.prior_employee_id), users
                )
                for user, hits in zip(users, found, strict=True):
                    store.put_match(user.employee_id, *self._pick(user, hits))

        if not listing:  # managers outside the batch: one filter each
            wanted = store.unknown_managers()

            def find_manager(ext: str) -> list[dict[str, Any]]:
                return self.client.search(f"externalId eq {scim.filter_string(ext)}")[1]

            for start in range(0, len(wanted), spill.CHUNK):
                part = wanted[start : start + spill.CHUNK]
                for ext, found_managers in zip(part, self._map(find_manager, part), strict=True):
                    for resource in found_managers:
                        if resource.get("id"):
                            store.put_id(ext, str(resource["id"]))
                            break

        # pass 2: the changes
        for users in store.users():
            for user in users:
                account, conflict = store.match(user.employee_id)
                if user.employee_id in self.rehired:
                    later = self.rehired[user.employee_id]
                    plan.skipped.append(
                        (user, f"rehired as employee {later}: the account is theirs")
                    )
                    continue
                if conflict and not user.active:
                    plan.skipped.append((user, "inactive and has no account: nothing to create"))
                    continue
                if conflict:
                    plan.failures.append(
                        Failure(
                            user.stream,
                            user.employee_id,
                            "create",
                            "userName",
                            conflict,
                            user.record,
                            409,
                            "uniqueness",
                        )
                    )
                    continue
                self._plan_one(plan, user, account, store.get_id, store.creating)

        if self.settings.deactivate_missing_users:
            stream = store.first_stream() or "iam_users"
            # in the feed but refused (a bad field, text that is not Unicode): not a leaver
            held = self.held | {f.employee_id for f in self.input_failures}
            for accounts in store.unclaimed_accounts():
                for ext, resource in accounts:
                    if ext in self.rehired or not scim.read_managed(resource)[scim.ACTIVE]:
                        continue
                    if ext in held:
                        continue
                    ghost = DesiredUser(stream, ext, {scim.ACTIVE: False}, False, None, {})
                    plan.add(
                        Change(
                            "deactivate",
                            ghost,
                            str(resource.get("id")),
                            resource,
                            {scim.ACTIVE: False},
                            reason="absent from the HRIS feed",
                        )
                    )

        if plan.count("deactivate") and plan.active_accounts is None:
            plan.active_accounts = self._count_active()
        return plan

    def _count_active(self) -> int:
        if self.features.filter:
            total, _ = self.client.search("active eq true", count=0)
            return total
        pages = self.client.iter_users(self._page_size())
        return sum(1 for r in pages if scim.read_managed(r)[scim.ACTIVE])

    def _plan_one(
        self,
        plan: Plan,
        user: DesiredUser,
        account: dict[str, Any] | None,
        id_of: Callable[[str], str | None],
        creating: Callable[[str], bool],
    ) -> None:
        wanted = dict(user.values)
        pending = None
        manager = user.manager_employee_id
        if manager == user.employee_id:  # some HRIS make the CEO their own manager
            manager = None
        manager_id = id_of(manager) if manager is not None else None
        if manager is None:
            wanted[scim.MANAGER] = None
        elif manager_id is not None:
            wanted[scim.MANAGER] = manager_id
        elif creating(manager):
            pending = manager
        else:
            self.logger.warning(
                "employee %s: manager %s has no SCIM account; manager left unchanged",
                user.employee_id,
                manager,
            )

        if account is None:
            if not user.active:
                plan.skipped.append((user, "inactive and has no account: nothing to create"))
                return
            if not user.user_name:
                plan.failures.append(
                    Failure(
                        user.stream,
                        user.employee_id,
                        "create",
                        "user_name",
                        "required to create the account, and missing or empty",
                        user.record,
                    )
                )
                return
            values = {p: v for p, v in wanted.items() if v is not None}
            plan.add(Change("create", user, None, None, values, pending))
            return

        current = scim.read_managed(account)
        changes = {p: v for p, v in wanted.items() if _norm(p, v) != _norm(p, current.get(p))}
        earlier = current.get(scim.EXTERNAL_ID)
        reason = None
        if earlier and earlier != user.employee_id and self.rehired.get(str(earlier)):
            reason = f"rehire of employee {earlier}"
        if current[scim.ACTIVE] and not user.active:
            action = "deactivate"
        elif not current[scim.ACTIVE] and user.active:
            action = "reactivate"
        elif changes or pending:
            action = "update"
        else:
            plan.unchanged += 1
            return
        plan.add(Change(action, user, str(account["id"]), account, changes, pending, reason))

    # -- guard -----------------------------------------------------------------------------

    def check_guard(self, plan: Plan) -> None:
        deactivations = plan.count("deactivate")
        active = plan.active_accounts or 0
        share = deactivations / active if active else 0.0
        limit = self.settings.max_deactivation_share
        if deactivations <= self.settings.mass_deactivation_floor or share <= limit:
            return
        message = (
            f"mass-deprovisioning guard: this run would deactivate {deactivations} of "
            f"{active} active accounts ({share:.0%}, more than max_deactivation_share "
            f"{limit:.0%}). Nothing was written. An empty or truncated HRIS feed looks like "
            f"this; check the feed, or set allow_mass_deactivation: true to proceed."
        )
        if self.settings.allow_mass_deactivation:
            self.logger.warning("%s (overridden by allow_mass_deactivation)", message)
            return
        for change in plan.changes:
            self.audit(
                change.user.stream,
                change.user.employee_id,
                change.fields,
                "refused",
                "mass-deprovisioning guard",
            )
        raise MassDeactivationRefused(message)

    # -- output ----------------------------------------------------------------------------

    def print_plan(self, plan: Plan) -> None:
        out = self.plan_out
        head = "DRY RUN - nothing written. " if self.settings.dry_run else ""
        counts = ", ".join(f"{plan.count(a)} {a}" for a in ACTIONS)
        print(
            f"{head}target-scim plan for {self.client.base_url}: {counts}, "
            f"{plan.unchanged} unchanged, {len(plan.skipped)} skipped, "
            f"{len(plan.failures)} failed",
            file=out,
        )
        for change in plan.changes:
            extra = f" ({change.reason})" if change.reason else ""
            fields = ", ".join(change.fields) or "-"
            print(f"  {change.action:<10} {change.user.employee_id}: {fields}{extra}", file=out)
        for user, reason in plan.skipped:
            print(f"  {'skip':<10} {user.employee_id}: {reason}", file=out)
        for failure in plan.failures:
            print(f"  {'error':<10} {failure.message()}", file=out)
        out.flush()

    # -- writing ---------------------------------------------------------------------------

    def run(self) -> Summary:
        plan = self.plan()
        self.check_guard(plan)
        self.print_plan(plan) if self.settings.dry_run else self._log_plan(plan)
        summary = Summary(plan, failures=list(plan.failures))
        if not self.settings.dry_run:
            self._apply(plan, summary)
        for failure in summary.failures:
            self.logger.error("%s", failure.message())
            # status and scimType only: a server's detail text may quote the values
            code = " ".join(str(x) for x in (failure.status, failure.scim_type) if x) or None
            self.audit(failure.stream, failure.employee_id, [failure.field], "failed", code)
        return summary

    def _log_plan(self, plan: Plan) -> None:
        self.logger.info(
            "plan: %s, %d unchanged, %d skipped, %d failed before writing",
            ", ".join(f"{plan.count(a)} {a}" for a in ACTIONS),
            plan.unchanged,
            len(plan.skipped),
            len(plan.failures),
        )

    def _apply(self, plan: Plan, summary: Summary) -> None:
        """Creates in waves (managers first, so each create carries its manager's SCIM id),
        then the other changes; a chunk of changes in memory at a time."""
        store = self.store
        changes = plan.changes
        assert isinstance(changes, SpillList), "a real run's plan is spilled"
        size = max(spill.CHUNK, self.settings.max_concurrency * self.settings.bulk_max_operations)
        for chunk in changes.iter_chunks("tag != 'create'"):
            for c in chunk:
                if c.user_id:
                    store.put_id(c.user.employee_id, c.user_id, "written")
        for numbered in changes.iter_numbered("tag = 'create'"):
            for seq, c in numbered:
                store.add_create(seq, c.user.employee_id, c.manager_pending)
        for level in range(store.levels()):
            waves = "seq IN (SELECT seq FROM waves WHERE level = ?)"
            for wave in changes.iter_chunks(waves, (level,), size=size):
                for change in wave:
                    if change.manager_pending:
                        manager_id = store.get_id(change.manager_pending, "written")
                        if manager_id:
                            change.changes[scim.MANAGER] = manager_id
                        else:
                            self.logger.warning(
                                "employee %s: manager %s was not created; manager left unset",
                                change.user.employee_id,
                                change.manager_pending,
                            )
                        change.manager_pending = None
                for change, user_id, error in self._write(wave):
                    self._record(summary, change, error)
                    if user_id:
                        store.put_id(change.user.employee_id, user_id, "written")
        for others in changes.iter_chunks("tag != 'create'", size=size):
            for change in others:
                if change.manager_pending:
                    manager_id = store.get_id(change.manager_pending, "written")
                    if manager_id:
                        change.changes[scim.MANAGER] = manager_id
                    change.manager_pending = None
            for change, _, error in self._write([c for c in others if c.changes]):
                self._record(summary, change, error)

    def _record(self, summary: Summary, change: Change, error: SCIMError | None) -> None:
        if error is None:
            outcome = OUTCOME[change.action]
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            self.audit(change.user.stream, change.user.employee_id, change.fields, outcome, None)
            return
        paths = list(change.changes)
        summary.failures.append(
            Failure(
                change.user.stream,
                change.user.employee_id,
                change.action,
                field_of(error, paths),
                error.detail or str(error),
                change.user.record,
                error.status,
                error.scim_type,
                error.detail,
            )
        )

    def _body(self, change: Change) -> tuple[str, str, dict[str, Any]]:
        """(method, path, body) for one change."""
        if change.action == "create":
            return "POST", "/Users", scim.user_body(change.changes)
        path = f"/Users/{change.user_id}"
        if self.features.patch:
            return "PATCH", path, scim.patch_body(change.changes)
        return "PUT", path, scim.user_body(change.changes, base=change.existing)

    def _write(self, changes: list[Change]) -> list[tuple[Change, str | None, SCIMError | None]]:
        if not changes:
            return []
        bulk_ops = min(self.features.bulk_max_operations, self.settings.bulk_max_operations)
        if self.settings.use_bulk and self.features.bulk and bulk_ops > 1 and len(changes) > 1:
            return self._write_bulk(changes, bulk_ops)
        return self._map(self._write_one, changes)

    def _write_one(self, change: Change) -> tuple[Change, str | None, SCIMError | None]:
        method, _, body = self._body(change)
        try:
            if method == "POST":
                return change, str(self.client.create(body).get("id") or "") or None, None
            if method == "PATCH":
                self.client.patch(str(change.user_id), body)
            else:
                self.client.put(str(change.user_id), body)
            return change, change.user_id, None
        except SCIMAuthError:
            raise
        except SCIMError as error:
            return change, *self._recover(change, error)

    def _recover(self, change: Change, error: SCIMError) -> tuple[str | None, SCIMError | None]:
        """A create that conflicts may be our own earlier attempt (a retried POST whose
        answer was lost): if the account with this externalId exists, it is ours."""
        if change.action != "create" or error.status != 409:
            return None, error
        try:
            _, found = self.client.search(
                f"externalId eq {scim.filter_string(change.user.employee_id)}"
            )
        except SCIMError:
            return None, error
        for resource in found:
            if resource.get("externalId") == change.user.employee_id and resource.get("id"):
                return str(resource["id"]), None
        return None, error

    def _write_bulk(
        self, changes: list[Change], max_ops: int
    ) -> list[tuple[Change, str | None, SCIMError | None]]:
        payload_cap = self.features.bulk_max_payload or 1_048_576
        batches: list[list[tuple[Change, dict[str, Any]]]] = []
        current: list[tuple[Change, dict[str, Any]]] = []
        size = 200
        for n, change in enumerate(changes):
            method, path, body = self._body(change)
            op: dict[str, Any] = {"method": method, "path": path, "data": body}
            if method == "POST":
                op["bulkId"] = f"u{n}"
            op_size = len(json.dumps(op, ensure_ascii=False).encode("utf-8")) + 2
            if current and (len(current) >= max_ops or size + op_size > payload_cap * 0.9):
                batches.append(current)
                current, size = [], 200
            current.append((change, op))
            size += op_size
        if current:
            batches.append(current)

        def send(batch: list[tuple[Change, dict[str, Any]]]) -> list[Any]:
            try:
                results = self.client.bulk([op for _, op in batch])
            except SCIMAuthError:
                raise
            except SCIMError as error:  # the whole request failed: try one by one
                self.logger.warning("Bulk request failed (%s); writing one by one", error)
                return [self._write_one(change) for change, _ in batch]
            out: list[Any] = []
            for (change, _), result in zip(batch, results, strict=True):
                if result.error is None and result.status is not None:
                    user_id = change.user_id
                    if result.location:
                        user_id = result.location.rstrip("/").rsplit("/", 1)[-1]
                    out.append((change, user_id, None))
                elif result.error is not None and (result.error.status or 0) in (401, 403):
                    raise SCIMAuthError(
                        result.error.method,
                        result.error.url,
                        result.error.status,
                        result.error.scim_type,
                        result.error.detail,
                    )
                elif result.error is not None and (result.error.status or 0) not in (
                    429,
                    500,
                    502,
                    503,
                    504,
                ):
                    out.append((change, *self._recover(change, result.error)))
                else:  # transient or unanswered inside the bulk: retry it on its own
                    out.append(self._write_one(change))
            return out

        return [item for batch_out in self._map(send, batches) for item in batch_out]
