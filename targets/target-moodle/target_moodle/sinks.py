"""LMS user records -> Moodle users and compliance enrolments.

Per batch of records (``batch_size``):

1. each record becomes a :class:`Person` (a bad one is a dead letter naming record, field and
   reason); the Moodle users are looked up by ``idnumber`` (the HRIS worker id) in one call;
2. users are created, updated (only the fields that differ), suspended on termination and
   un-suspended on rehire; an account someone made by hand (same username or e-mail, no
   ``idnumber``) is adopted rather than duplicated;
3. the rules decide which courses each active person must take; missing ones are enrolled
   (``enrol_manual_enrol_users``, due date as the enrolment end), ones no longer required are
   handled by ``when_no_longer_required`` — never by deleting what a person completed.

At the end of the run, when the rules changed since the last run, everyone the state knows is
re-evaluated (so a rules edit takes effect without a full refresh), and so are managers whose
derived manager flag changed because a report joined, moved or left.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field

from singer_sdk.sinks import BatchSink

from hrsync.audit import AuditLog
from hrsync.deadletter import TargetDeadLetters
from hrsync.errors import RecordError, Undelivered
from hrsync.http import RetryBudgetExhausted
from hrsync.identity import parse_date, parse_flag, should_be_active
from hrsync.validation import CompiledValidation
from target_moodle.client import MoodleClient, MoodleError, MoodleHTTPError
from target_moodle.rules import Facts, Rules
from target_moodle.state import Enrolment, StateStore, Worker

if t.TYPE_CHECKING:
    from target_moodle.target import TargetMoodle

DESTINATION = "moodle"
LOOKUP_CHUNK = 100
ENROL_FIELDS = ["courseid", "roleid", "timeend", "timestart", "userid"]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USERNAME_DROP = re.compile(r"[^-.@_a-z0-9]")


class MoodleUnavailable(RuntimeError):
    """Moodle kept failing after every retry: the run stops (records kept as dead letters)."""


@dataclass
class Person:
    key: str
    record: dict[str, t.Any]
    user: dict[str, t.Any]  # the Moodle user fields the HRIS owns
    facts: dict[str, t.Any]
    manager_id: str | None
    active: bool
    moodle: dict[str, t.Any] | None = None  # the Moodle user, once known
    created: bool = False
    failed: bool = False
    waiting: bool = False  # a future hire without a work e-mail yet: no user created
    outcomes: list[str] = field(default_factory=list)


@dataclass
class Action:
    kind: str  # enrol | suspend | unenrol
    worker_id: str
    userid: int
    course_id: int
    timestart: int
    timeend: int
    rules: str
    reactivation: bool = False


def _text(value: t.Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _positions(record: dict[str, t.Any], *, stream: str, key: str) -> list[dict[str, str | None]]:
    """The other positions held at once, as {role, department, location} (none: [])."""
    value = record.get("positions")
    if value in (None, ""):
        return []
    if not isinstance(value, list) or any(not isinstance(p, dict) for p in value):
        raise RecordError(
            stream, key, "positions", "must be an array of {role, department, location}"
        )
    out = []
    for pos in value:
        facet = {k: _text(pos.get(k)) for k in ("role", "department", "location")}
        if any(facet.values()):
            out.append(facet)
    return out


def epoch(day: dt.date) -> int:
    """Midnight UTC at the start of ``day`` (Moodle stores Unix times)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def username_for(email: str) -> str:
    """Moodle usernames are lower case from a small alphabet: the work e-mail, folded."""
    return _USERNAME_DROP.sub("", email.strip().lower())


class LmsUserSink(CompiledValidation, BatchSink):
    """Creates, updates, suspends and reactivates Moodle users; enrols them by the rules."""

    fail_on_record_validation_exception = False

    def __init__(self, target: TargetMoodle, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(target, *args, **kwargs)
        self.client: MoodleClient = target.client
        self.audit: AuditLog = target.audit
        self.memory: StateStore = target.memory
        self.rules: Rules = target.rules
        self.today: dt.date = target.today
        self.letters: TargetDeadLetters = target.letters
        self.letters.stream(self.stream_name, self.schema, self.key_properties)
        cfg = self.config
        self.key_property = str(cfg.get("worker_id_property") or "worker_id")
        self.auth = str(cfg.get("auth") or "manual")
        self.send_login = bool(cfg.get("send_login_email", True))
        self.role_id = int(cfg.get("student_role_id") or 5)
        self.due_mode = str(cfg.get("due_date_mode") or "enrolment_end")
        self.drop_policy = str(cfg.get("when_no_longer_required") or "suspend")
        self.dry_run = bool(cfg.get("dry_run"))
        self.counts: dict[str, int] = {}
        self.waiting_for_email = 0
        self.processed: set[str] = set()
        self.dirty_managers: set[str] = set()
        self.reevaluation_failed = False

    def _singer_validate_message(self, record: dict[str, t.Any]) -> None:
        """A record without its key is a dead letter naming the field, filed by this sink
        (singer-sdk's MissingKeyPropertiesError would stop the run and every later record)."""

    @property
    def max_size(self) -> int:
        return int(self.config.get("batch_size") or 100)

    # --- records -> people ------------------------------------------------------------------

    def _parse_timestamps_in_record(
        self, record: dict[str, t.Any], schema: dict[str, t.Any], treatment: t.Any
    ) -> None:
        """Keep a malformed date as it came: :meth:`person` names the record and field."""
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError:
            return

    def person(self, record: dict[str, t.Any]) -> Person:
        stream = self.stream_name
        raw_key = record.get(self.key_property)
        if raw_key in (None, ""):
            raise RecordError(
                stream,
                "<missing>",
                self.key_property,
                "the HRIS worker id is required: it is the Moodle idnumber every run matches on",
            )
        key = str(raw_key)
        hire = parse_date(record.get("hire_date"), stream=stream, key=key, name="hire_date")
        active = should_be_active(record, self.today, stream=stream, key=key)
        email = _text(record.get("email"))
        if email is not None and not _EMAIL.match(email):
            raise RecordError(stream, key, "email", "is not an e-mail address Moodle accepts")
        user: dict[str, t.Any] = {
            "firstname": _text(record.get("first_name")),
            "lastname": _text(record.get("last_name")),
            "idnumber": key,
            "department": _text(record.get("department")) or "",
            "city": _text(record.get("location")) or "",
            "country": (_text(record.get("country")) or "").upper(),
        }
        if email is not None:
            user["email"] = email
            user["username"] = username_for(email)
        for name, fld in (("firstname", "first_name"), ("lastname", "last_name")):
            if not user[name]:
                raise RecordError(stream, key, fld, "Moodle requires a first and a last name")
        if user["country"] and not re.fullmatch(r"[A-Z]{2}", user["country"]):
            raise RecordError(stream, key, "country", "is not an ISO 3166-1 alpha-2 code")
        facts = {
            "department": _text(record.get("department")),
            "role": _text(record.get("role")),
            "location": _text(record.get("location")),
            "country": user["country"] or None,
            "state": (_text(record.get("state")) or "").upper() or None,
            "is_manager": parse_flag(record.get("is_manager")),
            "hire_date": hire.isoformat() if hire else None,
        }
        others = _positions(record, stream=stream, key=key)
        if others:  # the other positions held at once: their roles' courses too
            facts["positions"] = others
        manager = _text(record.get("manager_id"))
        return Person(key, record, user, facts, manager, active)

    # --- batches ----------------------------------------------------------------------------

    def process_batch(self, context: dict) -> None:
        people: list[Person] = []
        for record in context.get("records", []):
            try:
                people.append(self.person(record))
            except RecordError as exc:
                self._dead(record, exc, "invalid_record")
        if not people:
            return
        people = list({p.key: p for p in people}.values())  # a worker sent twice: the last wins
        try:
            self._sync_users(people)
            self._save_workers([p for p in people if not p.failed])
            self._enrol([self._worker(p) for p in people if not p.failed and p.moodle], people)
        except RetryBudgetExhausted as exc:
            for p in people:
                if not p.failed and p.key not in self.processed:
                    self._dead(
                        p.record,
                        Undelivered(
                            self.stream_name,
                            p.key,
                            None,
                            f"not delivered: {exc}",
                            "RetryBudgetExhausted",
                        ),
                        "RetryBudgetExhausted",
                    )
            raise MoodleUnavailable(
                f"Moodle failed after every retry ({exc}); stopping. This batch is kept as "
                "dead letters; the rest is read again on the next run"
            ) from exc
        for p in people:
            if not p.failed:
                self.processed.add(p.key)
                self.letters.delivered(self.stream_name, [p.key])

    # --- users ------------------------------------------------------------------------------

    def _lookup(self, field_name: str, values: list[str]) -> dict[str, list[dict[str, t.Any]]]:
        found: dict[str, list[dict[str, t.Any]]] = {}
        unique = sorted(set(values))
        for i in range(0, len(unique), LOOKUP_CHUNK):
            for user in self.client.users_by(field_name, unique[i : i + LOOKUP_CHUNK]):
                found.setdefault(str(user.get(field_name) or "").lower(), []).append(user)
        return found

    def _sync_users(self, people: list[Person]) -> None:
        by_id = self._lookup("idnumber", [p.key for p in people])
        for p in people:
            matches = by_id.get(p.key.lower(), [])
            if len(matches) > 1:
                ids = ", ".join(str(m["id"]) for m in matches)
                self._fail(
                    p,
                    "idnumber",
                    f"Moodle users {ids} all carry this worker id as "
                    "idnumber: merge them in Moodle",
                    "duplicate_idnumber",
                )
            elif matches:
                p.moodle = matches[0]
        creating = [p for p in people if not p.failed and p.moodle is None]
        for p in creating:
            if not p.active:
                self._outcome(p, "skipped", [], "leaver without a Moodle account: none created")
            elif "email" not in p.user and self._starts_later(p):
                # IT often adds the work address in the days before the start: not an error yet
                # (the change brings the record back); after the start date it is one
                p.waiting = True
                self.waiting_for_email += 1
                self._outcome(
                    p,
                    "skipped",
                    [],
                    f"starts {p.facts['hire_date']}, no work e-mail yet: created once the HRIS "
                    "has one",
                )
            elif "email" not in p.user:
                self._fail(
                    p,
                    "email",
                    "Moodle requires an e-mail address to create a user: "
                    "add the work e-mail in the HRIS",
                    "missing_email",
                )
        creating = [p for p in creating if p.active and not p.failed and not p.waiting]
        self._adopt(creating)
        self._create([p for p in creating if p.moodle is None and not p.failed])
        updates = []
        for p in people:
            if p.failed or p.moodle is None or p.created:
                continue
            changes = self._changes(p)
            if changes:
                updates.append((p, changes))
            elif "adopted" not in p.outcomes:
                self._outcome(p, "unchanged", [])
        self._update(updates)

    def _starts_later(self, p: Person) -> bool:
        hire = p.facts.get("hire_date")
        return bool(hire) and dt.date.fromisoformat(str(hire)) > self.today

    def _changes(self, p: Person) -> dict[str, t.Any]:
        have = p.moodle or {}
        changes = {k: v for k, v in p.user.items() if str(have.get(k) or "") != str(v or "")}
        suspended = 0 if p.active else 1
        if int(bool(have.get("suspended"))) != suspended:
            changes["suspended"] = suspended
        return changes

    def _adopt(self, people: list[Person]) -> None:
        """A user made by hand (same username or e-mail, no idnumber) becomes the worker's."""
        if not people:
            return
        by_name = self._lookup("username", [p.user["username"] for p in people])
        by_mail = self._lookup("email", [p.user["email"] for p in people])
        for p in people:
            candidates = by_name.get(p.user["username"], []) + by_mail.get(
                p.user["email"].lower(), []
            )
            if not candidates:
                continue
            other = candidates[0]
            if str(other.get("idnumber") or "") not in ("", p.key):
                self._fail(
                    p,
                    "email",
                    f"Moodle user {other['id']} already has this username or e-mail and "
                    f"belongs to worker {other.get('idnumber')}: two workers share a work "
                    "e-mail, fix it in the HRIS",
                    "email_in_use",
                )
                continue
            p.moodle = other
            p.outcomes.append("adopted")

    def _create_fields(self, p: Person) -> dict[str, t.Any]:
        fields = {k: v for k, v in p.user.items() if v not in (None, "")}
        fields["auth"] = self.auth
        if self.auth == "manual" and self.send_login:
            fields["createpassword"] = 1
        return fields

    def _create(self, people: list[Person]) -> None:
        if not people:
            return
        if self.dry_run:
            for p in people:
                self._outcome(p, "planned-created", self._create_fields(p))
            return
        try:
            created = self.client.create_users([self._create_fields(p) for p in people])
        except MoodleError as exc:
            if exc.run_level:
                raise
            # one bad user fails the whole call (one transaction): find it, keep the others
            for p in people:
                self._create_one(p)
            return
        for p, row in zip(people, created, strict=True):
            self._created(p, int(row["id"]))

    def _create_one(self, p: Person) -> None:
        fields = self._create_fields(p)
        try:
            row = self.client.create_users([fields])[0]
        except MoodleError as exc:
            if exc.run_level:
                raise
            # a create whose answer was lost and then retried finds its own user: that is ours
            mine = [
                u
                for u in self._lookup("username", [p.user["username"]]).get(p.user["username"], [])
                if str(u.get("idnumber") or "") == p.key
            ]
            if mine:
                self._created(p, int(mine[0]["id"]))
                return
            self._outcome(p, "failed", fields, detail=exc.errorcode)
            self._fail(
                p,
                _field_in(exc.reason, fields),
                f"Moodle refused the new user: {exc.reason}",
                exc.errorcode or "moodle_exception",
                audited=True,
            )
            return
        self._created(p, int(row["id"]))

    def _created(self, p: Person, moodle_id: int) -> None:
        p.moodle = {"id": moodle_id, **p.user, "suspended": False}
        p.created = True
        self.memory.forget_enrolments(p.key)  # a state file older than this Moodle site
        self._outcome(p, "created", self._create_fields(p))

    def _update(self, updates: list[tuple[Person, dict[str, t.Any]]]) -> None:
        if not updates:
            return
        if self.dry_run:
            for p, changes in updates:
                self._outcome(p, "planned-" + self._update_outcome(p, changes), changes)
            return
        try:
            self.client.update_users([{"id": p.moodle["id"], **c} for p, c in updates if p.moodle])
        except MoodleError as exc:
            if exc.run_level:
                raise
            for p, changes in updates:
                self._update_one(p, changes)
            return
        for p, changes in updates:
            self._updated(p, changes)

    def _update_one(self, p: Person, changes: dict[str, t.Any]) -> None:
        assert p.moodle is not None
        try:
            self.client.update_users([{"id": p.moodle["id"], **changes}])
        except MoodleError as exc:
            if exc.run_level:
                raise
            self._outcome(p, "failed", changes, detail=exc.errorcode)
            self._fail(
                p,
                _field_in(exc.reason, changes),
                f"Moodle refused the update: {exc.reason}",
                exc.errorcode or "moodle_exception",
                audited=True,
            )
            return
        self._updated(p, changes)

    @staticmethod
    def _update_outcome(p: Person, changes: dict[str, t.Any]) -> str:
        if "adopted" in p.outcomes:
            return "adopted"
        if changes.get("suspended") == 1:
            return "suspended"
        if changes.get("suspended") == 0:
            return "reactivated"
        return "updated"

    def _updated(self, p: Person, changes: dict[str, t.Any]) -> None:
        assert p.moodle is not None
        p.moodle.update(changes)
        self._outcome(p, self._update_outcome(p, changes), changes)

    # --- state --------------------------------------------------------------------------------

    def _worker(self, p: Person) -> Worker:
        saved = self.memory.worker(p.key)
        known = bool(saved and saved.enrolments_known) or p.created
        return Worker(
            p.key, int(p.moodle["id"]) if p.moodle else None, p.manager_id, p.active, p.facts, known
        )

    def _save_workers(self, people: list[Person]) -> None:
        if self.dry_run:
            return
        for p in people:
            before = self.memory.worker(p.key)
            after = self._worker(p)
            if (
                before is None
                or before.manager_id != after.manager_id
                or before.active != (after.active)
            ):
                self.dirty_managers.update(
                    m for m in (before.manager_id if before else None, after.manager_id) if m
                )
            self.memory.save_worker(after)

    # --- enrolments ---------------------------------------------------------------------------

    def _facts(self, worker: Worker) -> Facts:
        f = worker.facts
        return Facts(
            department=f.get("department"),
            role=f.get("role"),
            location=f.get("location"),
            country=f.get("country"),
            state=f.get("state"),
            is_manager=bool(f.get("is_manager")) or self.memory.has_reports(worker.worker_id),
        )

    def _all_facts(self, worker: Worker) -> list[Facts]:
        """The primary position's facts, then one per other position held at once (its role,
        department and location; the person's country, state and manager flag)."""
        primary = self._facts(worker)
        out = [primary]
        for pos in worker.facts.get("positions") or []:
            out.append(
                dataclasses.replace(
                    primary,
                    role=pos.get("role"),
                    department=pos.get("department") or primary.department,
                    location=pos.get("location") or primary.location,
                )
            )
        return out

    def plan(self, worker: Worker) -> list[Action]:
        """What to change in Moodle so ``worker`` has exactly the courses the rules require."""
        if not worker.active or worker.moodle_id is None:
            return []  # a leaver's enrolments stay as they are: the suspended account keeps them
        required = self.rules.requirements_any(self._all_facts(worker))
        current = self.memory.enrolments(worker.worker_id)
        if not worker.enrolments_known:
            # an account the target did not create: what Moodle already has counts as done
            for course in self.client.users_courses(worker.moodle_id):
                cid = int(course["id"])
                if cid in required and cid not in current:
                    current[cid] = Enrolment(cid, "active", 0, 0, "found in Moodle", None)
                    if not self.dry_run:
                        self.memory.save_enrolment(worker.worker_id, current[cid])
            worker.enrolments_known = True
            if not self.dry_run:
                self.memory.save_worker(worker)
        hire = worker.facts.get("hire_date")
        hire_date = dt.date.fromisoformat(hire) if hire else None
        actions = []
        for cid, need in sorted(required.items()):
            have = current.get(cid)
            if have is not None and have.status == "active":
                continue
            if have is not None and have.status == "kept":  # never left Moodle: nothing to send
                have.status, have.rules = "active", ",".join(need.rules)
                if not self.dry_run:
                    self.memory.save_enrolment(worker.worker_id, have)
                continue
            due = need.due_date(hire_date, self.today)
            start = epoch(hire_date) if hire_date and hire_date > self.today else 0
            end = epoch(due + dt.timedelta(days=1)) - 1 if self.due_mode == "enrolment_end" else 0
            actions.append(
                Action(
                    "enrol",
                    worker.worker_id,
                    worker.moodle_id,
                    cid,
                    start,
                    end,
                    ",".join(need.rules),
                    reactivation=have is not None,
                )
            )
        dropped = [
            e for cid, e in sorted(current.items()) if e.status == "active" and cid not in required
        ]
        if dropped and self.drop_policy != "keep":
            completed: set[int] = set()
            if self.drop_policy == "unenrol":
                completed = {
                    int(c["id"])
                    for c in self.client.users_courses(worker.moodle_id)
                    if c.get("completed")
                }
            for e in dropped:
                kind = (
                    "unenrol"
                    if self.drop_policy == "unenrol" and (e.course_id not in completed)
                    else "suspend"
                )
                actions.append(
                    Action(
                        kind,
                        worker.worker_id,
                        worker.moodle_id,
                        e.course_id,
                        e.timestart,
                        e.timeend,
                        e.rules,
                    )
                )
        elif dropped:
            for e in dropped:
                e.status = "kept"
                if not self.dry_run:
                    self.memory.save_enrolment(worker.worker_id, e)
        return actions

    def _enrol(self, workers: list[Worker], people: list[Person] | None = None) -> bool:
        """Plan and apply the enrolments of ``workers``; False if any action failed."""
        by_key = {p.key: p for p in people or []}
        actions = [a for w in workers for a in self.plan(w)]
        enrols = [a for a in actions if a.kind in ("enrol", "suspend")]
        unenrols = [a for a in actions if a.kind == "unenrol"]
        ok = self._apply(enrols, self.client.enrol, by_key)
        return self._apply(unenrols, self.client.unenrol, by_key) and ok

    def _item(self, a: Action) -> dict[str, t.Any]:
        if a.kind == "unenrol":
            return {"userid": a.userid, "courseid": a.course_id}
        item = {
            "roleid": self.role_id,
            "userid": a.userid,
            "courseid": a.course_id,
            "timestart": a.timestart,
            "timeend": a.timeend,
        }
        if a.kind == "suspend":
            item["suspend"] = 1
        return item

    def _apply(
        self,
        actions: list[Action],
        call: t.Callable[[list[dict[str, t.Any]]], None],
        by_key: dict[str, Person],
    ) -> bool:
        if not actions:
            return True
        if self.dry_run:
            for a in actions:
                self._enrolment_done(a, planned=True)
            return True
        try:
            call([self._item(a) for a in actions])
        except MoodleError as exc:
            if exc.run_level:
                raise
            ok = True
            for a in actions:  # one transaction: find the bad enrolment, keep the others
                try:
                    call([self._item(a)])
                except MoodleError as one:
                    if one.run_level:
                        raise
                    ok = False
                    self._enrolment_failed(a, one, by_key.get(a.worker_id))
                else:
                    self._enrolment_done(a)
            return ok
        for a in actions:
            self._enrolment_done(a)
        return True

    def _enrolment_done(self, a: Action, *, planned: bool = False) -> None:
        outcome = {
            "enrol": "re-enrolled" if a.reactivation else "enrolled",
            "suspend": "enrolment-suspended",
            "unenrol": "unenrolled",
        }[a.kind]
        fields = ["courseid", "userid"] if a.kind == "unenrol" else ENROL_FIELDS
        due = (
            f"; due {dt.datetime.fromtimestamp(a.timeend, dt.UTC).date().isoformat()}"
            if a.kind == "enrol" and a.timeend
            else ""
        )
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.audit.record(
            stream=self.stream_name,
            record_key=a.worker_id,
            fields=fields,
            destination=DESTINATION,
            employee_id=a.worker_id,
            outcome=("planned-" + outcome) if planned else outcome,
            detail=f"course {a.course_id} (rule {a.rules}){due}",
        )
        if planned:
            return
        status = {"enrol": "active", "suspend": "suspended", "unenrol": "unenrolled"}[a.kind]
        self.memory.save_enrolment(
            a.worker_id,
            Enrolment(a.course_id, status, a.timestart, a.timeend, a.rules, self.today.isoformat()),
        )

    def _enrolment_failed(self, a: Action, exc: MoodleError, p: Person | None) -> None:
        self.audit.record(
            stream=self.stream_name,
            record_key=a.worker_id,
            fields=ENROL_FIELDS,
            destination=DESTINATION,
            employee_id=a.worker_id,
            outcome="failed",
            detail=f"course {a.course_id}: {exc.errorcode}",
        )
        reason = f"course {a.course_id} (rule {a.rules}): Moodle refused the {a.kind}: {exc.reason}"
        if p is not None:
            self._fail(p, "courses", reason, exc.errorcode or "moodle_exception", audited=True)
        else:
            self.reevaluation_failed = True
            self.logger.error("stream %s, worker %s: %s", self.stream_name, a.worker_id, reason)

    # --- end of run: rules changed, managers changed ------------------------------------------

    def clean_up(self) -> None:
        try:
            self._reevaluate()
        finally:
            self.letters.flush()
            if self.counts.get("dead-lettered"):
                self.logger.warning(
                    "target-moodle %s: %d record(s) not delivered, kept as dead letters in %s "
                    "(hrsync dlq list; hrsync dlq replay once the cause is fixed)",
                    self.stream_name,
                    self.counts["dead-lettered"],
                    self.letters.store.path,
                )
            if self.waiting_for_email:
                self.logger.info(
                    "target-moodle %s: %d future hire(s) without a work e-mail yet: no user "
                    "created (each is created once the HRIS has the address; after the start "
                    "date a missing address is a dead letter)",
                    self.stream_name,
                    self.waiting_for_email,
                )
            summary = ", ".join(f"{n} {o}" for o, n in sorted(self.counts.items()))
            self.logger.info("target-moodle %s: %s", self.stream_name, summary or "no records")
            super().clean_up()

    def _reevaluate(self) -> None:
        if self.dry_run:
            return
        before = self.memory.get_meta("rules_fingerprint")
        changed = before != self.rules.fingerprint
        if changed:
            self.logger.info(
                "rules %s (fingerprint %s) %s: re-evaluating everyone",
                self.rules.path,
                self.rules.fingerprint,
                f"changed since the last run ({before})"
                if before
                else "applied for the first time",
            )
            batch: list[Worker] = []
            for worker in self.memory.workers():
                if worker.worker_id in self.processed and worker.worker_id not in (
                    self.dirty_managers
                ):
                    continue
                batch.append(worker)
                if len(batch) >= self.max_size:
                    self._enrol(batch)
                    batch = []
            self._enrol(batch)
        else:
            managers = [self.memory.worker(m) for m in sorted(self.dirty_managers)]
            self._enrol([w for w in managers if w is not None and w.moodle_id is not None])
        if not self.reevaluation_failed:
            self.memory.set_meta("rules_fingerprint", self.rules.fingerprint)

    # --- outcomes -----------------------------------------------------------------------------

    def _outcome(
        self, p: Person, outcome: str, fields: t.Iterable[str], detail: str | None = None
    ) -> None:
        if outcome not in p.outcomes:
            p.outcomes.append(outcome)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.audit.record(
            stream=self.stream_name,
            record_key=p.key,
            fields=list(fields),
            destination=DESTINATION,
            employee_id=p.key,
            outcome=outcome,
            detail=detail,
        )

    def _fail(
        self,
        p: Person,
        field_name: str | None,
        reason: str,
        error_class: str,
        *,
        audited: bool = False,
    ) -> None:
        p.failed = True
        if not audited:
            self._outcome(p, "failed", [], detail=error_class)
        self._dead(
            p.record,
            Undelivered(self.stream_name, p.key, field_name, reason, error_class),
            error_class,
        )

    def _dead(self, record: dict[str, t.Any], error: RecordError, error_class: str) -> None:
        self.logger.error("%s (kept as a dead letter)", error)
        key = "<missing>" if error.record_key in (None, "") else str(error.record_key)
        self.counts["dead-lettered"] = self.counts.get("dead-lettered", 0) + 1
        self.letters.dead(
            stream=self.stream_name,
            record_key=key,
            record=record,
            error=str(error),
            error_class=error_class,
        )


def _field_in(reason: str, fields: t.Iterable[str]) -> str | None:
    lowered = reason.lower()
    if "username" in lowered:
        return "email"  # the username is the work e-mail
    if "email" in lowered:
        return "email"
    return next((f for f in fields if f in lowered), None)


__all__ = ["LmsUserSink", "MoodleHTTPError", "MoodleUnavailable"]
