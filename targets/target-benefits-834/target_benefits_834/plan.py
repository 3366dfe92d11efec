"""What to tell the carrier about one family: compare the HRIS now with what was sent before.

Per member (subscriber ``E:<employee id>``, dependant ``D:<dependant id>``):

- never sent and covered (now or from a future date) -> **021 addition** (reason 28 initial
  enrolment; a dependant joining an enrolled family: 32 marriage for a spouse / partner, 02
  birth for a child; 41 re-enrolment after a termination);
- sent before, identical -> nothing (a re-run sends nothing);
- sent before, every coverage now has an end date -> **024 termination** (reason 08
  termination of employment when the subscriber has a termination date, 01 divorce for a
  spouse who left the dependant list, else 07 termination of benefits), with ``DTP*357``
  (eligibility end) and each ``HD*024`` with ``DTP*349``;
- sent before, changed -> **001 change** (reason 32 / 02 when the family gained a spouse /
  child, else AI), with an ``HD`` per coverage that was added (021), changed (001) or ended
  (024); unchanged coverages are not repeated.

Coverage rules: a dependant is covered by a plan when the plan's coverage level covers their
relationship (ESP: spouse/partner, ECH: children, FAM: everyone). A dependant's coverage
begins when the enrolment began (initial enrolment) or when the current coverage level began
(a dependant added to an enrolment already sent: the marriage or birth), a child's never
before their birth. Coverage ends on the election's end date; without one, on the
subscriber's termination date (coverage does not outlive employment). A dependant who left
the HRIS list, or a plan that vanished from a full feed, ends on the run date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from hrsync.errors import RecordError
from target_benefits_834.members import (
    DEPENDENTS,
    ELECTIONS,
    SPOUSES,
    SUBSCRIBERS,
    ElectionRow,
    covers,
    dependant,
    election,
    key_of,
    subscriber,
)


@dataclass(frozen=True)
class Coverage:
    maint: str  # HD01: 021 add, 001 change, 024 terminate
    line: str
    level: str
    begin: str  # CCYYMMDD
    end: str | None
    group: str
    since: str  # when the current coverage level began (DTP*303 of a change)


@dataclass
class MemberLoop:
    member: str  # E:<id> | D:<id>
    employee_id: str
    stream: str
    record_key: str
    fields: list[str]  # input field names behind the loop (for the audit log)
    ident: dict[str, Any]
    maint: str  # INS03
    reason: str  # INS04
    dates: list[tuple[str, str]]  # member-level DTP (qualifier, CCYYMMDD)
    coverages: list[Coverage]
    snapshot: dict[str, Any]
    digest: str

    @property
    def subscriber(self) -> bool:
        return self.member.startswith("E:")

    @property
    def status(self) -> str:
        return "terminated" if self.maint == "024" else "active"


@dataclass
class DeadLetter:
    stream: str
    record_key: str
    record: dict[str, Any]
    reason: str


@dataclass
class FamilyPlan:
    loops: list[MemberLoop] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    election_keys: list[str] = field(default_factory=list)


def _d8(day: dt.date | None) -> str | None:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}" if day else None


def _day(text: str | None) -> dt.date | None:
    return dt.datetime.strptime(text, "%Y%m%d").date() if text else None


def digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _fields(record: dict[str, Any] | None) -> list[str]:
    return sorted(k for k, v in (record or {}).items() if v not in (None, ""))


class Planner:
    """Plans families against the ledger; ``today`` is the run date (ends of removed coverage)."""

    def __init__(self, today: dt.date, *, dependents_seen: bool, elections_seen: bool) -> None:
        self.today = today
        self.dependents_seen = dependents_seen
        self.elections_seen = elections_seen

    # --- one family -------------------------------------------------------------------------

    def family(
        self,
        employee_id: str,
        records: dict[str, list[dict[str, Any]]],
        sent: dict[str, tuple[dict[str, Any], str, str]],
    ) -> FamilyPlan:
        plan = FamilyPlan()
        sub_key = f"E:{employee_id}"
        prev_sub = sent.get(sub_key)
        sub_rec = records[SUBSCRIBERS][0] if records[SUBSCRIBERS] else None
        deps = records[DEPENDENTS]

        elections: dict[str, ElectionRow] = {}
        for rec in records[ELECTIONS]:
            plan.election_keys.append(key_of(ELECTIONS, rec))
            try:
                row = election(rec)
            except RecordError as err:
                plan.dead.append(DeadLetter(ELECTIONS, key_of(ELECTIONS, rec), rec, str(err)))
                continue
            if row is not None:
                earlier = elections.get(row.plan)
                if earlier is None or row.start >= earlier.start:
                    elections[row.plan] = row

        try:
            ident = subscriber(sub_rec) if sub_rec is not None else None
        except RecordError as err:
            self._dead_family(plan, sub_rec, deps, str(err))
            return plan
        if ident is None and prev_sub is not None:
            ident = prev_sub[0]["ident"]  # unchanged employee on an incremental run
        if ident is None:
            if elections or deps:
                reason = (
                    f"employee {employee_id} has dependants or elections but no "
                    f"{SUBSCRIBERS} record in this run and was never sent: run the job with "
                    "the employees stream (--full-refresh)"
                )
                for rec in records[ELECTIONS]:
                    plan.dead.append(DeadLetter(ELECTIONS, key_of(ELECTIONS, rec), rec, reason))
                for rec in deps:
                    plan.dead.append(DeadLetter(DEPENDENTS, key_of(DEPENDENTS, rec), rec, reason))
            return plan

        if not self.elections_seen and prev_sub is not None:
            sub_cov = dict(prev_sub[0]["coverage"])  # elections not in this run: keep as sent
        else:
            sub_cov = self._subscriber_coverage(elections, ident)
        prev_sub_cov = prev_sub[0]["coverage"] if prev_sub else {}

        # dependants: present now, and sent before but gone from the HRIS list
        dep_loops: list[MemberLoop] = []
        present: set[str] = set()
        gained: set[str] = set()
        for rec in deps:
            key = key_of(DEPENDENTS, rec)
            member = f"D:{key}"
            present.add(member)
            try:
                dep = dependant(rec)
            except RecordError as err:
                plan.dead.append(DeadLetter(DEPENDENTS, key, rec, str(err)))
                continue
            prev = sent.get(member)
            cov = self._dependant_coverage(dep, elections, prev, prev_sub_cov, ident)
            loop = self._compare(member, employee_id, DEPENDENTS, key, rec, dep, cov, prev,
                                 family_new=prev_sub is None)  # fmt: skip
            if loop is not None:
                if loop.maint == "021" and prev is None:
                    gained.add("spouse" if dep["relationship"] in SPOUSES else "child")
                dep_loops.append(loop)
        if self.dependents_seen:
            for member, (snap, _, status) in sorted(sent.items()):
                if member.startswith("D:") and member not in present and status != "terminated":
                    loop = self._removed(member, employee_id, snap)
                    if loop is not None:
                        dep_loops.append(loop)

        sub_loop = self._compare(sub_key, employee_id, SUBSCRIBERS, employee_id, sub_rec, ident,
                                 sub_cov, prev_sub, family_new=prev_sub is None,
                                 gained=gained)  # fmt: skip
        if sub_loop is not None:
            plan.loops.append(sub_loop)
        plan.loops.extend(dep_loops)
        return plan

    def _dead_family(
        self,
        plan: FamilyPlan,
        sub_rec: dict[str, Any] | None,
        deps: list[dict[str, Any]],
        reason: str,
    ) -> None:
        if sub_rec is not None:
            plan.dead.append(DeadLetter(SUBSCRIBERS, key_of(SUBSCRIBERS, sub_rec), sub_rec, reason))
        for rec in deps:
            plan.dead.append(
                DeadLetter(
                    DEPENDENTS,
                    key_of(DEPENDENTS, rec),
                    rec,
                    f"not sent: their subscriber is undeliverable ({reason})",
                )
            )

    # --- coverages ----------------------------------------------------------------------------

    @staticmethod
    def _end(row: ElectionRow, ident: dict[str, Any]) -> str | None:
        end = _d8(row.end)
        termination = ident.get("termination")
        if termination and termination >= (_d8(row.start) or ""):
            end = min(end, termination) if end else termination
        return end

    def _subscriber_coverage(
        self, elections: dict[str, ElectionRow], ident: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        return {
            plan_id: {
                "line": row.line,
                "level": row.level,
                "begin": _d8(row.start),
                "end": self._end(row, ident),
                "group": row.group,
                "since": _d8(max(row.effective or row.start, row.start)),
            }
            for plan_id, row in sorted(elections.items())
        }

    def _dependant_coverage(
        self,
        dep: dict[str, Any],
        elections: dict[str, ElectionRow],
        prev: tuple[dict[str, Any], str, str] | None,
        prev_sub_cov: dict[str, Any],
        ident: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        prev_cov = prev[0]["coverage"] if prev else {}
        out: dict[str, dict[str, Any]] = {}
        for plan_id, row in sorted(elections.items()):
            if not covers(row.level, dep["relationship"]):
                before = prev_cov.get(plan_id)
                if before and not before.get("end"):  # the level no longer covers them
                    changed = row.effective or self.today
                    end = max(_day(before["begin"]) or changed, changed - dt.timedelta(days=1))
                    out[plan_id] = {**before, "end": _d8(end)}
                elif before:
                    out[plan_id] = before
                continue
            if plan_id in prev_cov and not prev_cov[plan_id].get("end"):
                begin = prev_cov[plan_id]["begin"]
            elif plan_id in prev_sub_cov:
                begin = _d8(max(row.effective or row.start, row.start))
            else:
                begin = _d8(row.start)
            if dep["relationship"] not in SPOUSES and dep.get("dob") and dep["dob"] > begin:
                begin = dep["dob"]
            out[plan_id] = {
                "line": row.line,
                "level": row.level,
                "begin": begin,
                "end": self._end(row, ident),
                "group": row.group,
                "since": begin,
            }
        return out

    # --- comparison ---------------------------------------------------------------------------

    def _compare(
        self,
        member: str,
        employee_id: str,
        stream: str,
        record_key: str,
        record: dict[str, Any] | None,
        ident: dict[str, Any],
        cov: dict[str, dict[str, Any]],
        prev: tuple[dict[str, Any], str, str] | None,
        *,
        family_new: bool,
        gained: set[str] | None = None,
    ) -> MemberLoop | None:
        snapshot = {"ident": ident, "coverage": cov}
        new_digest = digest(snapshot)
        today = _d8(self.today) or ""
        subscriber_loop = member.startswith("E:")
        open_cov = [c for c in cov.values() if not c["end"] or c["end"] >= today]

        def loop(
            maint: str, reason: str, hds: list[Coverage], dates: list[tuple[str, str]]
        ) -> MemberLoop:
            if subscriber_loop and ident.get("hire"):
                dates = [("336", ident["hire"]), *dates]
            return MemberLoop(member, employee_id, stream, record_key, _fields(record), ident,
                              maint, reason, dates, hds, snapshot, new_digest)  # fmt: skip

        def hd(maint: str, c: dict[str, Any]) -> Coverage:
            return Coverage(maint, c["line"], c["level"], c["begin"], c["end"], c["group"],
                            c.get("since") or c["begin"])  # fmt: skip

        if prev is None:
            if not open_cov:
                return None  # never sent and already over: nothing to tell the carrier
            if subscriber_loop or family_new:
                reason = "28"
            else:
                reason = "32" if ident["relationship"] in SPOUSES else "02"
            begins = sorted(c["begin"] for c in cov.values())
            return loop("021", reason, [hd("021", c) for c in cov.values()],
                        [("356", begins[0])] if begins else [])  # fmt: skip
        prev_snap, prev_digest, prev_status = prev
        prev_cov: dict[str, dict[str, Any]] = prev_snap["coverage"]
        for plan_id, before in prev_cov.items():
            if plan_id not in cov:  # a plan sent before that the feed no longer has
                cov[plan_id] = before if before.get("end") else {**before, "end": today}
        snapshot = {"ident": ident, "coverage": cov}
        new_digest = digest(snapshot)
        if prev_digest == new_digest:
            return None
        open_cov = [c for c in cov.values() if not c["end"] or c["end"] >= today]
        if prev_status == "terminated" and open_cov and any(not c["end"] for c in cov.values()):
            return loop("021", "41", [hd("021", c) for c in cov.values() if not c["end"]],
                        [("356", min(c["begin"] for c in cov.values()))])  # fmt: skip
        ends = [c["end"] for c in cov.values() if c["end"]]
        if cov and len(ends) == len(cov) and not all(c.get("end") for c in prev_cov.values()):
            reason = "08" if subscriber_loop and ident.get("termination") else "07"
            return loop("024", reason, [hd("024", c) for c in cov.values()], [("357", max(ends))])
        hds: list[Coverage] = []
        for plan_id, c in cov.items():
            sent_cov = prev_cov.get(plan_id)
            if sent_cov is None:
                hds.append(hd("021", c))
            elif c != sent_cov:
                hds.append(hd("024" if c["end"] and not sent_cov.get("end") else "001", c))
        gained = gained or set()
        reason = "32" if "spouse" in gained else "02" if "child" in gained else "AI"
        effective = max((c.since for c in hds if c.maint != "024"), default=today)
        return loop("001", reason, hds, [("303", effective)])

    def _removed(self, member: str, employee_id: str, snap: dict[str, Any]) -> MemberLoop | None:
        """A dependant sent before who left the HRIS list: every open coverage ends today."""
        today = _d8(self.today) or ""
        cov = {
            p: ({**c, "end": today} if not c.get("end") else c) for p, c in snap["coverage"].items()
        }
        if cov == snap["coverage"]:
            return None
        ident = snap["ident"]
        snapshot = {"ident": ident, "coverage": cov}
        reason = "01" if ident.get("relationship") in SPOUSES else "07"
        hds = [Coverage("024", c["line"], c["level"], c["begin"], c["end"], c["group"],
                        c.get("since") or c["begin"]) for c in cov.values()]  # fmt: skip
        return MemberLoop(member, employee_id, DEPENDENTS, member[2:], [], ident, "024", reason,
                          [("357", today)], hds, snapshot, digest(snapshot))  # fmt: skip
