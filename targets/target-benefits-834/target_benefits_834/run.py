"""One run: spool the input, plan every family, write the 834, validate it, send it, remember it.

Order of events (nothing is sent unless every step before it succeeded):

1. records are spooled (``store.Spool``); records without a key are dead-lettered at once;
2. every family (employees of the input, and of the ledger when the feed is complete) is
   planned against the ledger (``plan.Planner``); undeliverable members are dead-lettered
   with the reason (``hrsync.deadletter.DeadLetterStore``, plugin ``target-benefits-834``);
3. the member loops are written, control numbers reserved (``control.ControlNumbers``) and
   the envelopes added (``document.write_interchange``);
4. pyx12 validates the file (``document.validate``): an invalid file is never sent, the run
   fails with pyx12's errors and keeps the file (mode 0600) for inspection;
5. ``hrsync.transfer.deliver`` PGP-encrypts and uploads it over SFTP (strict host keys,
   atomic rename, retries) unless its content was already delivered (``content_key``);
6. the ledger takes the delivered members, their dead letters are resolved, and each member
   is audited (field names only).

A run that changes nothing writes no file. A run that fails after step 3 sends nothing and
commits nothing: the next run plans the same changes again, and ``deliver`` recognises a file
whose content already went out before a crash.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore
from hrsync.sealing import sealer
from target_benefits_834.control import ControlNumbers
from target_benefits_834.document import Body, Parties, content_key, validate, write_interchange
from target_benefits_834.members import DEPENDENTS, ELECTIONS, SUBSCRIBERS
from target_benefits_834.plan import Planner
from target_benefits_834.store import Ledger, Spool

PLUGIN = "target-benefits-834"
OUTCOMES = {"021": "added", "001": "changed", "024": "terminated"}
FIELDS_SENT = [
    "employee_id", "first_name", "middle_name", "last_name", "ssn", "date_of_birth", "gender",
    "address", "relationship", "hire_date", "termination_date", "employment_type",
    "insurance_line", "coverage_level", "start_date", "end_date", "group_number",
]  # fmt: skip


class InvalidFile(RuntimeError):
    """pyx12 rejected the 834: nothing was sent."""


class ConcurrentRun(RuntimeError):
    """Another run of the same feed (same ledger) is in progress: nothing was done."""


class MassTermination(RuntimeError):
    """The run would terminate more members than the guard allows: nothing was sent."""


@dataclass
class Summary:
    file: Path | None = None
    members: int = 0
    transactions: int = 0
    first_control: int | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    delivery: str | None = None  # sent | already-sent | None (nothing to send / dry run)
    validation_errors: list[str] = field(default_factory=list)


class Run:
    def __init__(self, config: Mapping[str, Any], logger: logging.Logger) -> None:
        self.config = config
        self.logger = logger
        base = Path(str(config.get("work_dir") or ".hrsync/target-benefits-834"))
        self.work_dir = base
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.chmod(0o700)
        ledger = Path(config.get("state_path") or base / "ledger.sqlite")
        self._lock = self._exclusive(ledger.with_name(ledger.name + ".lock"))
        try:
            self.ledger = Ledger(ledger, sealer(config.get("ledger_key") or None))
        except BaseException:
            os.close(self._lock)
            raise
        if self.ledger.plaintext_rows:
            logger.warning(
                "the 834 ledger %s keeps %d member snapshot(s) (SSNs, birth dates) unsealed: "
                "set ledger_key or $HRSYNC_DLQ_KEY and the next run seals them",
                ledger,
                self.ledger.plaintext_rows,
            )
        # a killed run of this feed left its spool (its input records): we hold the feed's lock
        prefix = f"spool-{hashlib.sha256(str(ledger.resolve()).encode()).hexdigest()[:8]}-"
        for stale in self.work_dir.glob(f"{prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix, dir=self.work_dir)
        self.spool = Spool(Path(self._tmp.name) / "spool.sqlite")
        self.control = ControlNumbers(config.get("control_number_path") or base / "control-number")
        self.dlq = DeadLetterStore(config.get("dead_letter_path") or None)
        self.audit = AuditLog(config.get("audit_log_path") or None)
        self.summary = Summary()
        #: employees with a record the reader refused: their family waits for the fixed record
        self.held: set[str] = set()

    @staticmethod
    def _exclusive(path: Path) -> int:
        """One run per ledger at a time: two overlapping runs would plan and send the same
        changes twice (control numbers alone are safe: see control.py)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConcurrentRun(
                f"target-benefits-834: another run holds {path}: runs of one feed must not "
                "overlap (nothing was done; run again when it has finished)"
            ) from None
        return fd

    # --- dead letters ------------------------------------------------------------------------

    def dead_letter(self, stream: str, key: str, record: dict[str, Any], reason: str) -> None:
        self.dlq.add(plugin=PLUGIN, stream=stream, record_key=key, record=record, error=reason)
        self.summary.dead_letters += 1
        self.logger.warning("not sent (dead-lettered): %s", reason)

    # --- the run -----------------------------------------------------------------------------

    def parties(self) -> Parties:
        c = self.config
        return Parties(
            sender_qualifier=str(c.get("sender_id_qualifier") or "ZZ"),
            sender_id=str(c["sender_id"]),
            receiver_qualifier=str(c.get("receiver_id_qualifier") or "ZZ"),
            receiver_id=str(c["receiver_id"]),
            sponsor_name=str(c["sponsor_name"]),
            sponsor_id_qualifier=str(c.get("sponsor_id_qualifier") or "FI"),
            sponsor_id=str(c["sponsor_id"]),
            payer_name=str(c["payer_name"]),
            payer_id_qualifier=str(c.get("payer_id_qualifier") or "FI"),
            payer_id=str(c["payer_id"]),
            usage=str(c.get("usage_indicator") or "P"),
            master_policy=str(c.get("master_policy_number") or ""),
            action=str(c.get("transaction_action") or "2"),
        )

    def execute(self, now: dt.datetime | None = None) -> Summary:
        now = now or dt.datetime.now(dt.UTC)
        parties = self.parties()  # config errors before any work
        complete = self.spool.seen(ELECTIONS) and self.spool.seen(DEPENDENTS)
        planner = Planner(
            now.date(),
            dependents_seen=self.spool.seen(DEPENDENTS),
            elections_seen=self.spool.seen(ELECTIONS),
        )
        for stream, record in self.spool.without_employee():
            key = str(record.get({DEPENDENTS: "dependent_id"}.get(stream, "election_id")))
            reason = f"stream {stream}, record {key}: field employee_id: required"
            self.dead_letter(stream, key, record, reason)
        body = Body(
            Path(self._tmp.name) / "body.x12",
            int(self.config.get("members_per_transaction") or 10_000),
        )
        employees = set(self.spool.employees())
        if complete:  # a full feed: someone sent before and now absent has lost coverage
            employees |= set(self.ledger.employees())
        for employee_id in sorted(self.held & employees):
            self.logger.warning(
                "employee %s: a record was refused (dead letter): the family is not planned "
                "this run, the carrier keeps what it has",
                employee_id,
            )
        employees -= self.held
        for employee_id in sorted(employees, key=lambda e: (len(e), e)):
            family = planner.family(
                employee_id, self.spool.family(employee_id), self.ledger.family(employee_id)
            )
            for dead in family.dead:
                self.dead_letter(dead.stream, dead.record_key, dead.record, dead.reason)
            if not family.loops:
                continue
            body.add_family(family.loops)
            self.spool.stage_family(family.loops, family.election_keys)
            for loop in family.loops:
                self.summary.outcomes[OUTCOMES[loop.maint]] += 1
        body.close()
        self.summary.members = body.members
        self.summary.transactions = len(body.chunks)
        if body.members == 0:
            self.logger.info("target-benefits-834: nothing changed since the last file: none sent")
            return self.summary
        self._guard()

        first = self.control.reserve(len(body.chunks))
        self.summary.first_control = first
        prefix = str(self.config.get("file_prefix") or "hrsync_834")
        path = self.work_dir / f"{prefix}_{now:%Y%m%d%H%M%S}_{first:09d}.x12"
        write_interchange(path, parties, body, first, now)
        self.summary.file = path

        checked = validate(
            path, workers=int(self.config.get("validation_workers") or os.cpu_count() or 1)
        )
        self.summary.validation_errors = checked.errors
        if not checked.valid:
            invalid = path.with_suffix(".invalid.x12")
            path.rename(invalid)
            self.summary.file = invalid
            shown = "; ".join(checked.errors[:20])
            more = f" (and {len(checked.errors) - 20} more)" if len(checked.errors) > 20 else ""
            raise InvalidFile(
                f"target-benefits-834: the 834 file failed pyx12 validation and was NOT sent; "
                f"kept for inspection at {invalid}; pyx12 errors: {shown}{more}"
            )
        self.logger.info(
            "target-benefits-834: %s valid (pyx12): %d member loop(s) in %d transaction set(s)",
            path.name, body.members, len(body.chunks),
        )  # fmt: skip
        if self.config.get("dry_run"):
            self.logger.info("dry run: %s written and validated, not sent, nothing recorded", path)
            return self.summary

        result = self._deliver(path, content_key(parties, body), body.members)
        self.summary.delivery = result.status
        self._commit(result.destination)
        if not self.config.get("keep_files"):
            path.unlink(missing_ok=True)
        return self.summary

    def _guard(self) -> None:
        terminated = self.summary.outcomes["terminated"]
        sent_before = self.ledger.count()
        share = float(self.config.get("max_termination_share", 0.2))
        floor = int(self.config.get("mass_termination_floor", 10))
        if (
            terminated > floor
            and terminated > share * sent_before
            and not self.config.get("allow_mass_termination")
        ):
            raise MassTermination(
                f"target-benefits-834: this run would terminate the coverage of {terminated} "
                f"of {sent_before} members sent before (more than {share:.0%}): nothing was "
                "sent. If the HRIS really says so, re-run with allow_mass_termination: true; "
                "otherwise check that the feed is complete"
            )

    def _deliver(self, path: Path, key: str, members: int) -> Any:
        from hrsync.transfer import SFTPTarget, deliver, retry_policy_from_config

        armor = bool(self.config.get("pgp_armor"))
        return deliver(
            path,
            SFTPTarget.from_config(self.config),
            recipient_public_key=str(self.config["pgp_recipient_public_key"]),
            remote_name=path.name + (".asc" if armor else ".pgp"),
            record_count=members,
            fingerprint=self.config.get("pgp_recipient_fingerprint") or None,
            armor=armor,
            content_key=key,
            ledger=self.config.get("transfer_ledger_path") or None,
            audit=self.audit,
            stream="benefit_enrolments",
            fields=FIELDS_SENT,
            retry=retry_policy_from_config(self.config),
        )

    def _commit(self, destination: str) -> None:
        self.ledger.commit(self.spool)
        for stream, keys in self.spool.delivered_keys().items():
            self.dlq.resolve(plugin=PLUGIN, stream=stream, record_keys=keys)
        for member, employee, _, _, _, stream, record_key, maint, fields in self.spool.staged():
            self.audit.record(
                stream=stream,
                record_key=member if stream == DEPENDENTS and not record_key else record_key,
                fields=fields,
                destination=destination,
                # the subscriber's subject reference; a dependant is a subject of their own
                employee_id=employee if member.startswith("E:") else None,
                outcome=OUTCOMES[maint],
                detail=f"834 INS03 {maint} for the "
                + ("subscriber" if member.startswith("E:") else "dependant"),
            )

    def close(self) -> None:
        self.spool.close()
        self.ledger.close()
        self._tmp.cleanup()
        os.close(self._lock)  # releases the run lock


__all__ = [
    "PLUGIN",
    "SUBSCRIBERS",
    "ConcurrentRun",
    "InvalidFile",
    "MassTermination",
    "Run",
    "Summary",
]
