"""Retention: remove or seal what is past its time in every store hrsync keeps.

``hrsync.yml``'s ``retention:`` block gives each store a duration (``30d``); a store left out
keeps its data. ``hrsync retention apply`` (schedule it daily: see docs/operations.md):

- **dead letters**: resolved or discarded letters older than the retention are deleted; a
  letter still waiting has its record erased (``status = expired``): the failure stays visible,
  the personal data goes;
- **run ledger**: runs that started before the cut-off;
- **webhook inbox**: events received before the cut-off whose triggers are done (a pending
  trigger keeps its event);
- **transfer ledger**: files sent before the cut-off and the items they carried;
- **map-hr lookups**: rows older than the cut-off where the store records when a row was
  written (``updated_at``), else a lookup file nobody has written to since the cut-off;
- **834 ledger**: members whose last file terminated them before the cut-off (active members
  are the baseline of the next file and stay);
- **Moodle state**: leavers (and the enrolments target-moodle made for them) inactive since
  before the cut-off (a rehire is found again in Moodle by the worker id);
- **audit log**: rotated files whose last line is older than the cut-off. A chained
  ``retention`` line records the chain head of each removed file, so ``hrsync audit verify``
  accepts the shortened chain and still catches any other removal.

Every run logs what it removed as counts per store (never values) and appends them to the
audit log as a chained ``retention`` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hrsync import audit, deadletter
from hrsync_ops import runs
from hrsync_ops.ops import load_ops, parse_duration, safe_load
from hrsync_ops.webhooks import store as webhook_store

__all__ = ["STORES", "StoreResult", "apply", "default_paths", "load_policy"]

STORES = (
    "dead_letters",
    "runs",
    "webhooks",
    "transfers",
    "lookups",
    "benefits_ledger",
    "moodle_state",
    "audit",
)


def default_paths() -> dict[str, Path]:
    """Where each store lives by default (the same environment variables the plugins read)."""
    # imported here: hrsync.transfer pulls in paramiko and singer-sdk
    from hrsync.transfer import DEFAULT_LEDGER_PATH, ENV_LEDGER

    return {
        "dead_letters": deadletter.default_path(),
        "runs": runs.default_path(),
        "webhooks": webhook_store.default_path(),
        "transfers": Path(os.environ.get(ENV_LEDGER) or DEFAULT_LEDGER_PATH),
        "lookups": Path(os.environ.get("MAP_HR_STATE_DIR") or ".hrsync/map-hr"),
        "benefits_ledger": Path(
            os.environ.get("TARGET_BENEFITS_834_STATE_PATH")
            or ".hrsync/target-benefits-834/ledger.sqlite"
        ),
        "moodle_state": Path(
            os.environ.get("TARGET_MOODLE_STATE_PATH") or ".hrsync/target-moodle-state.sqlite"
        ),
        "audit": audit.default_path(),
    }


@dataclass
class Policy:
    keep: dict[str, timedelta]
    paths: dict[str, Path]


def load_policy(ops_file: str | Path | None = None, root: str | Path = ".") -> Policy:
    """The ``retention:`` block of hrsync.yml (validated by its schema)."""
    config = load_ops(ops_file, root=root)
    data: dict[str, Any] = {}
    if config.path is not None:
        data = dict(safe_load(config.path.read_text(encoding="utf-8")) or {})
    block = dict(data.get("retention") or {})
    paths = default_paths()
    for name, value in dict(block.pop("paths", None) or {}).items():
        paths[name] = Path(value)
    return Policy({k: parse_duration(str(v)) for k, v in block.items()}, paths)


@dataclass
class StoreResult:
    store: str
    path: str
    cutoff: str
    removed: dict[str, int] = field(default_factory=dict)
    sealed: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "path": self.path,
            "cutoff": self.cutoff,
            "removed": self.removed,
            "sealed": self.sealed,
            "note": self.note,
        }


@contextlib.contextmanager
def _db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _dead_letters(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        if "dead_letters" not in _tables(db):
            return
        done = db.execute(
            "DELETE FROM dead_letters WHERE status != 'waiting' AND status != 'expired' "
            "AND COALESCE(resolved_at, last_failed_at) < ?",
            (cutoff,),
        ).rowcount
        sealed = db.execute(
            "UPDATE dead_letters SET payload = ?, encrypted = 0, status = 'expired', "
            "resolved_at = ?, note = 'retention: record erased' "
            "WHERE status = 'waiting' AND last_failed_at < ?",
            (b"null", datetime.now(UTC).isoformat(timespec="milliseconds"), cutoff),
        ).rowcount
        result.removed["letters"] = done
        result.sealed["letters"] = sealed


def _runs(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        if "runs" in _tables(db):
            result.removed["runs"] = db.execute(
                "DELETE FROM runs WHERE started_at < ?", (cutoff,)
            ).rowcount


def _webhooks(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        if "events" not in _tables(db):
            return
        result.removed["triggers"] = db.execute(
            "DELETE FROM triggers WHERE event_id IN "
            "(SELECT id FROM events WHERE received_at < ?) AND event_id NOT IN "
            "(SELECT event_id FROM triggers WHERE status = 'pending')",
            (cutoff,),
        ).rowcount
        result.removed["events"] = db.execute(
            "DELETE FROM events WHERE received_at < ? "
            "AND id NOT IN (SELECT event_id FROM triggers)",
            (cutoff,),
        ).rowcount


def _transfers(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        tables = _tables(db)
        if "transfers" in tables:
            result.removed["files"] = db.execute(
                "DELETE FROM transfers WHERE sent_at < ?", (cutoff,)
            ).rowcount
        if "transfer_items" in tables:
            result.removed["items"] = db.execute(
                "DELETE FROM transfer_items WHERE sent_at < ?", (cutoff,)
            ).rowcount


def _lookups(path: Path, cutoff: str, result: StoreResult) -> None:
    files = sorted(path.glob("*.sqlite")) if path.is_dir() else [path]
    removed = 0
    stale = datetime.fromisoformat(cutoff).timestamp()
    for file in files:
        written = file.stat().st_mtime
        wal = file.with_name(file.name + "-wal")
        if wal.exists():
            written = max(written, wal.stat().st_mtime)
        with _db(file) as db:
            if "refs" not in _tables(db):
                continue
            if "updated_at" in _columns(db, "refs"):
                removed += db.execute("DELETE FROM refs WHERE updated_at < ?", (cutoff,)).rowcount
            elif written < stale:
                removed += db.execute("DELETE FROM refs").rowcount
    result.removed["rows"] = removed
    result.note = f"{len(files)} lookup file(s)"


def _benefits_ledger(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        if "members" in _tables(db):
            result.removed["members"] = db.execute(
                "DELETE FROM members WHERE status = 'terminated' AND sent_at < ?", (cutoff,)
            ).rowcount


def _moodle_state(path: Path, cutoff: str, result: StoreResult) -> None:
    with _db(path) as db:
        if "workers" not in _tables(db) or "inactive_since" not in _columns(db, "workers"):
            result.note = "a state file target-moodle has not opened since retention began"
            return
        if "enrolments" in _tables(db):
            result.removed["enrolments"] = db.execute(
                "DELETE FROM enrolments WHERE worker_id IN (SELECT worker_id FROM workers "
                "WHERE active = 0 AND inactive_since < ?)",
                (cutoff,),
            ).rowcount
        result.removed["workers"] = db.execute(
            "DELETE FROM workers WHERE active = 0 AND inactive_since < ?", (cutoff,)
        ).rowcount


def _audit(path: Path, cutoff: str, result: StoreResult) -> None:
    files = audit.audit_files(path)
    removed, heads, lines = [], [], 0
    for file in files[:-1] if files and files[-1] == path else files:
        last = audit._last_line(file)
        if last is None:
            continue
        obj = json.loads(last)
        if str(obj.get("ts", "")) >= cutoff:
            break  # files are in chain order: the later ones are newer
        with file.open("rb") as fh:
            lines += sum(1 for _ in fh)
        heads.append(str(obj.get("hash") or ""))
        removed.append(file)
    result.removed["files"] = len(removed)
    result.removed["lines"] = lines
    if removed:
        log = audit.AuditLog(path, integration="hrsync-retention")
        log.note("retention", removed_files=[f.name for f in removed], removed_heads=heads)
        for file in removed:
            file.unlink()


_APPLY: dict[str, Callable[[Path, str, StoreResult], None]] = {
    "dead_letters": _dead_letters,
    "runs": _runs,
    "webhooks": _webhooks,
    "transfers": _transfers,
    "lookups": _lookups,
    "benefits_ledger": _benefits_ledger,
    "moodle_state": _moodle_state,
    "audit": _audit,
}


def apply(policy: Policy, *, now: datetime | None = None) -> list[StoreResult]:
    """Apply the policy to every store it names; the counts per store (no values)."""
    now = now or datetime.now(UTC)
    results = []
    for store in STORES:
        keep = policy.keep.get(store)
        if keep is None:
            continue
        path = policy.paths[store]
        cutoff = (now - keep).astimezone(UTC).isoformat(timespec="milliseconds")
        result = StoreResult(store, str(path), cutoff)
        exists = path.exists() or (store == "audit" and bool(audit.audit_files(path)))
        if not exists:
            result.note = "no such store"
        else:
            _APPLY[store](path, cutoff, result)
        results.append(result)
    summary = {
        r.store: {
            **{f"removed_{k}": v for k, v in r.removed.items()},
            **{f"sealed_{k}": v for k, v in r.sealed.items()},
        }
        for r in results
    }
    audit_path = policy.paths["audit"]
    audit.AuditLog(audit_path, integration="hrsync-retention").note(
        "retention-applied", now=now.isoformat(timespec="seconds"), stores=summary
    )
    return results
