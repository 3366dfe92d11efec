"""A person's transfer history and where their data rests in hrsync's own stores.

``hrsync audit subject <employee id>`` (or ``--candidate <ATS candidate id>``) answers an access
request: every audit event about the person, found by their keyed subject reference
(:mod:`hrsync.subject`), never by raw ids in the log. An ATS candidate's reference and the
employee's are joined through the ``links`` the ATS -> HRIS target writes when it creates the
employee. Then the stores hrsync keeps on disk are searched for the person's rows (dead
letters, the file-transfer ledger, the 834 ledger, the Moodle state), each with the date its
retention (hrsync.yml ``retention:``) removes it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hrsync import subject
from hrsync.audit import read_all
from hrsync_ops.retention import Policy

__all__ = ["Rest", "Transfer", "find", "render_markdown"]

#: dead letters of these loaders are keyed by the ATS candidate id
CANDIDATE_KEYED = ("target-bamboohr",)
#: map-hr lookups keyed by the ATS candidate (Greenhouse candidates, Lever opportunities)
CANDIDATE_LOOKUPS = ("candidates", "opportunities")


@dataclass(frozen=True)
class Transfer:
    when: str
    job: str
    integration: str
    stream: str
    destination: str
    processor: str | None
    fields: list[str]
    legal_basis: str | None
    outcome: str


@dataclass(frozen=True)
class Rest:
    store: str
    path: str
    what: str
    stored_at: str
    retention_until: str | None


def _references(employee_id: str | None, candidate_id: str | None) -> set[str]:
    refs = {
        subject.employee_ref(employee_id) if employee_id else None,
        subject.candidate_ref(candidate_id) if candidate_id else None,
    }
    return {r for r in refs if r}


def transfers(audit_path: Path | None, refs: set[str]) -> tuple[list[Transfer], set[str]]:
    """The person's events (their references closed over ``links``) and all their refs."""
    events = read_all(audit_path)
    refs = set(refs)
    while True:  # a link can name a reference that links further
        grown = set(refs)
        for e in events:
            mine = {e.get("subject"), *(e.get("links") or [])} - {None}  # one person's event
            if mine & grown:
                grown |= {str(r) for r in mine}
        if grown == refs:
            break
        refs = grown
    out = []
    for e in events:
        mine = {e.get("subject"), *(e.get("links") or []), *(e.get("subjects") or [])} - {None}
        if mine & refs:
            out.append(
                Transfer(
                    when=str(e["ts"]),
                    job=str(e.get("job") or e.get("integration")),
                    integration=str(e.get("integration")),
                    stream=str(e.get("stream")),
                    destination=str(e.get("destination")),
                    processor=e.get("processor"),
                    fields=list(e.get("fields") or []),
                    legal_basis=e.get("legal_basis"),
                    outcome=str(e.get("outcome")),
                )
            )
    return out, refs


@contextlib.contextmanager
def _read(path: Path) -> Iterator[sqlite3.Connection | None]:
    if not path.is_file():
        yield None
        return
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        yield conn
    finally:
        conn.close()


def _until(stamp: str, keep: timedelta | None) -> str | None:
    if keep is None or not stamp:
        return None
    with contextlib.suppress(ValueError):
        return (datetime.fromisoformat(stamp) + keep).isoformat(timespec="seconds")
    return None


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rests(policy: Policy, refs: set[str], moodle_state: Path | None = None) -> list[Rest]:
    """Rows about the person in hrsync's stores, matched by their keyed references."""
    out: list[Rest] = []

    def ref_of(key: str, candidate: bool) -> str | None:
        return subject.candidate_ref(key) if candidate else subject.employee_ref(key)

    path = policy.paths["dead_letters"]
    with _read(path) as db:
        if db is not None and "dead_letters" in _tables(db):
            for lid, plugin, stream, key, status, first, last, resolved in db.execute(
                "SELECT id, plugin, stream, record_key, status, first_failed_at, "
                "last_failed_at, resolved_at FROM dead_letters"
            ):
                if ref_of(str(key), plugin in CANDIDATE_KEYED) in refs:
                    since = resolved or last if status != "waiting" else last
                    out.append(
                        Rest(
                            "dead_letters",
                            str(path),
                            f"letter {lid} ({plugin} {stream}, {status})",
                            str(first),
                            _until(str(since), policy.keep.get("dead_letters")),
                        )
                    )
    path = policy.paths["transfers"]
    with _read(path) as db:
        if db is not None and "transfer_items" in _tables(db):
            for dest, key, name, sent in db.execute(
                "SELECT destination, item_key, file_name, sent_at FROM transfer_items"
            ):
                bare = str(key).split(":", 1)[-1]
                if ref_of(str(key), False) in refs or ref_of(bare, False) in refs:
                    out.append(
                        Rest(
                            "transfers",
                            str(path),
                            f"item of file {name} to {dest}",
                            str(sent),
                            _until(str(sent), policy.keep.get("transfers")),
                        )
                    )
    path = policy.paths["benefits_ledger"]
    with _read(path) as db:
        if db is not None and "members" in _tables(db):
            for member, employee, status, sent in db.execute(
                "SELECT member, employee_id, status, sent_at FROM members"
            ):
                if ref_of(str(employee), False) in refs:
                    kind = "subscriber" if str(member).startswith("E:") else "dependant"
                    until = (
                        _until(str(sent), policy.keep.get("benefits_ledger"))
                        if status == "terminated"
                        else "while enrolled"
                    )
                    out.append(
                        Rest("benefits_ledger", str(path), f"{kind} ({status})", str(sent), until)
                    )
    out += _lookups(policy, refs)
    if moodle_state is not None:
        with _read(moodle_state) as db:
            if db is not None and "workers" in _tables(db):
                since_col = "inactive_since" in {
                    r[1] for r in db.execute("PRAGMA table_info(workers)")
                }
                query = (
                    "SELECT worker_id, active, inactive_since FROM workers"
                    if since_col
                    else "SELECT worker_id, active, NULL FROM workers"
                )
                for worker, active, since in db.execute(query):
                    if ref_of(str(worker), False) in refs:
                        n = db.execute(
                            "SELECT COUNT(*) FROM enrolments WHERE worker_id = ?", (worker,)
                        ).fetchone()[0]
                        until = (
                            "while the worker is synchronised"
                            if active
                            else _until(str(since or ""), policy.keep.get("moodle_state"))
                        )
                        out.append(
                            Rest(
                                "moodle_state",
                                str(moodle_state),
                                f"worker ({'active' if active else 'inactive'}), {n} enrolment(s)",
                                str(since or ""),
                                until,
                            )
                        )
    return out


def _lookups(policy: Policy, refs: set[str]) -> list[Rest]:
    """Candidate rows in map-hr's join lookups (the ATS -> HRIS profiles keep them)."""
    base = policy.paths["lookups"]
    files = sorted(base.glob("*.sqlite")) if base.is_dir() else [base]
    out = []
    for file in files:
        with _read(file) as db:
            if db is None or "refs" not in _tables(db):
                continue
            marks = ",".join("?" * len(CANDIDATE_LOOKUPS))
            for lookup, key in db.execute(
                f"SELECT lookup, k FROM refs WHERE lookup IN ({marks})",  # noqa: S608
                CANDIDATE_LOOKUPS,
            ):
                if subject.candidate_ref(str(key)) in refs:
                    stamp = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(
                        timespec="seconds"
                    )
                    out.append(
                        Rest(
                            "lookups",
                            str(file),
                            f"map-hr lookup {lookup} ({file.name})",
                            stamp,
                            _until(stamp, policy.keep.get("lookups")),
                        )
                    )
    return out


def find(
    policy: Policy,
    *,
    employee_id: str | None = None,
    candidate_id: str | None = None,
    moodle_state: Path | None = None,
) -> dict[str, Any]:
    refs = _references(employee_id, candidate_id)
    if not refs:
        raise ValueError(
            "no subject reference: set MAP_HR_HMAC_KEY (the key the plugins pseudonymise with)"
        )
    found, all_refs = transfers(policy.paths["audit"], refs)
    return {
        "subject": {"employee_id": employee_id, "candidate_id": candidate_id},
        "references": sorted(all_refs),
        "transfers": [asdict(t) for t in found],
        "stores": [asdict(r) for r in rests(policy, all_refs, moodle_state)],
    }


def _cell(value: Any) -> str:
    return str(value if value not in (None, "") else "-").replace("|", "\\|")


def render_markdown(report: dict[str, Any]) -> str:
    who = report["subject"]
    name = (
        f"employee {who['employee_id']}"
        if who.get("employee_id")
        else f"candidate {who['candidate_id']}"
    )
    out = [
        f"# Transfers of {name}",
        "",
        f"Subject references (keyed pseudonyms): {', '.join(report['references'])}",
        "",
        "| When | Job | Destination | Processor | Fields | Legal basis | Outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in report["transfers"]:
        out.append(
            f"| {t['when']} | {_cell(t['job'])} | {_cell(t['destination'])} | "
            f"{_cell(t['processor'])} | {_cell(', '.join(t['fields']))} | "
            f"{_cell(t['legal_basis'])} | {_cell(t['outcome'])} |"
        )
    if not report["transfers"]:
        out.append("| - | - | - | - | - | - | no transfers |")
    out += [
        "",
        "## Where the data rests in hrsync's stores",
        "",
        "| Store | What | Stored | Removed by retention on |",
        "|---|---|---|---|",
    ]
    for r in report["stores"]:
        out.append(
            f"| {r['store']} | {_cell(r['what'])} | {_cell(r['stored_at'])} | "
            f"{_cell(r['retention_until'])} |"
        )
    if not report["stores"]:
        out.append("| - | nothing | - | - |")
    return "\n".join(out) + "\n"
