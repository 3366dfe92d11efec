"""Dead-letter store: every record a target could not deliver after its retries.

One SQLite file (``$HRSYNC_DLQ_PATH``, else ``.hrsync/deadletters.sqlite``), safe for several
processes and threads (WAL, one short transaction per call). A dead letter keeps what the target
was *allowed to receive* (the record after map-hr, never more), the schema it came with, the
error, and the attempt count. With ``$HRSYNC_DLQ_KEY`` set the record and schema are encrypted
at rest (:mod:`hrsync.sealing`: AES-256-GCM, key derived from the passphrase with scrypt and a
salt); without it they are stored as JSON, the file is created mode 0600 and a loud warning
is logged.

A letter is identified by ``(integration, plugin, stream, record_key)``:

* ``add`` on a key that is already waiting updates it (error, record, ``attempts`` added), so a
  record that fails on every run is one letter with a growing attempt count, never a pile;
* ``resolve`` marks waiting letters delivered; targets call it for records they delivered, so a
  later successful run (or a replay) empties the queue by itself;
* ``replay`` (``hrsync dlq replay``) pipes the waiting letters back through the same target
  (``meltano invoke <plugin>``); targets are idempotent on their record keys, so a replay never
  doubles a record.

Statuses: ``waiting`` -> ``delivered`` (resolved) or ``discarded`` (by an operator, with reason).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hrsync import sqlite
from hrsync.audit import default_integration
from hrsync.sealing import ENV_KEY as ENV_KEY  # re-exported
from hrsync.sealing import sealer

LOGGER = logging.getLogger("hrsync.deadletter")
_WARNED: set[str] = set()

DEFAULT_PATH = Path(".hrsync/deadletters.sqlite")
ENV_PATH = "HRSYNC_DLQ_PATH"
#: set by ``hrsync dlq replay`` for the target it runs: the input is a few letters, not a feed
REPLAY_ENV = "HRSYNC_REPLAY"
ERROR_MAX = 2000

__all__ = [
    "DeadLetter",
    "DeadLetterStore",
    "TargetDeadLetters",
    "default_path",
    "loader_name",
    "replaying",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    integration TEXT NOT NULL,
    plugin TEXT NOT NULL,
    stream TEXT NOT NULL,
    record_key TEXT NOT NULL,
    payload BLOB NOT NULL,
    encrypted INTEGER NOT NULL,
    error TEXT NOT NULL,
    error_class TEXT NOT NULL DEFAULT 'error',
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    first_failed_at TEXT NOT NULL,
    last_failed_at TEXT NOT NULL,
    resolved_at TEXT,
    note TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_waiting
    ON dead_letters (integration, plugin, stream, record_key) WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS dead_letters_status ON dead_letters (status, integration);
"""


def default_path() -> Path:
    """``$HRSYNC_DLQ_PATH``, else ``.hrsync/deadletters.sqlite`` (relative to the cwd)."""
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    integration: str
    plugin: str
    stream: str
    record_key: str
    record: dict[str, Any] | None  # None when encrypted and no (or the wrong) key is set
    schema: dict[str, Any] | None
    key_properties: list[str]
    error: str
    attempts: int
    status: str
    first_failed_at: str
    last_failed_at: str
    resolved_at: str | None
    note: str | None
    error_class: str = "error"

    def summary(self) -> dict[str, Any]:
        """Everything but the record and schema (safe to print, log or alert on)."""
        return {
            "id": self.id,
            "integration": self.integration,
            "plugin": self.plugin,
            "stream": self.stream,
            "record_key": self.record_key,
            "error": self.error,
            "error_class": self.error_class,
            "attempts": self.attempts,
            "status": self.status,
            "first_failed_at": self.first_failed_at,
            "last_failed_at": self.last_failed_at,
            "resolved_at": self.resolved_at,
            "note": self.note,
        }


class DeadLetterStore:
    """``DeadLetterStore(path=None, key=None)``; ``key`` defaults to ``$HRSYNC_DLQ_KEY``."""

    def __init__(self, path: str | Path | None = None, *, key: str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self._sealer = sealer(key)
        self._ready = False

    # --- connection -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        ready, self._ready = self._ready, True  # the schema once per store object
        conn = sqlite.connect(
            self.path,
            schema="" if ready else _SCHEMA,
            migrate=None if ready else _migrate,
            name="dead-letter store",
        )
        try:
            with sqlite.transaction(conn):
                yield conn
        finally:
            conn.close()

    # --- payload --------------------------------------------------------------------------

    def _seal(self, payload: dict[str, Any]) -> tuple[bytes, int]:
        try:
            raw = json.dumps(payload, default=_json_default, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate: kept as its JSON escape, as it came
            raw = json.dumps(payload, default=_json_default).encode("ascii")
        if self._sealer is None:
            self._warn_unsealed()
            return raw, 0
        return self._sealer.seal(raw), 1

    def _warn_unsealed(self) -> None:
        where = str(self.path.resolve())
        if where in _WARNED:
            return
        _WARNED.add(where)
        LOGGER.warning(
            "UNSEALED PERSONAL DATA: %s is not set, so dead letters are stored in PLAINTEXT in "
            "%s (names, identifiers, addresses...). Set %s to a secret passphrase (it seals "
            "them; dead letters stored earlier stay readable).",
            ENV_KEY, where, ENV_KEY,
        )  # fmt: skip

    def _open(self, blob: bytes, encrypted: int) -> dict[str, Any] | None:
        if not encrypted:
            return dict(json.loads(blob))
        raw = self._sealer.open(blob) if self._sealer is not None else None
        return None if raw is None else dict(json.loads(raw))

    # --- writers --------------------------------------------------------------------------

    def add(
        self,
        *,
        plugin: str,
        stream: str,
        record_key: Any,
        record: dict[str, Any],
        error: str,
        attempts: int = 1,
        schema: dict[str, Any] | None = None,
        key_properties: Iterable[str] = (),
        integration: str | None = None,
        error_class: str | None = None,
    ) -> int:
        """Store (or update the waiting letter for) one undeliverable record; returns its id.

        ``error`` must say which field and why, without personal data (cut at 2000 chars).
        ``error_class`` is a short token with no data in it (``http_409``, ``invalid_record``,
        ``RetryBudgetExhausted``): what alerts may quote. ``schema``/``key_properties`` are what
        ``replay`` sends ahead of the record.
        """
        integration = integration or default_integration()
        blob, encrypted = self._seal(
            {"record": record, "schema": schema, "key_properties": list(key_properties)}
        )
        error = " ".join(str(error).split())[:ERROR_MAX] or "unknown error"
        error = error.encode("utf-8", "backslashreplace").decode()  # unpaired surrogates
        klass = _error_class(error_class)
        now = _now()
        key = str(record_key).encode("utf-8", "backslashreplace").decode()
        with self._db() as db:
            row = db.execute(
                "SELECT id FROM dead_letters WHERE integration=? AND plugin=? AND stream=? "
                "AND record_key=? AND status='waiting'",
                (integration, plugin, stream, key),
            ).fetchone()
            if row:
                db.execute(
                    "UPDATE dead_letters SET payload=?, encrypted=?, error=?, error_class=?, "
                    "attempts=attempts+?, last_failed_at=? WHERE id=?",
                    (blob, encrypted, error, klass, attempts, now, row[0]),
                )
                return int(row[0])
            cur = db.execute(
                "INSERT INTO dead_letters (integration, plugin, stream, record_key, payload, "
                "encrypted, error, error_class, attempts, status, first_failed_at, "
                "last_failed_at) VALUES (?,?,?,?,?,?,?,?,?,'waiting',?,?)",
                (
                    integration,
                    plugin,
                    stream,
                    key,
                    blob,
                    encrypted,
                    error,
                    klass,
                    attempts,
                    now,
                    now,
                ),
            )
            return int(cur.lastrowid or 0)

    def resolve(
        self,
        *,
        plugin: str,
        stream: str,
        record_keys: Iterable[Any],
        integration: str | None = None,
    ) -> int:
        """Mark the waiting letters of these delivered records ``delivered``; returns how many.

        Cheap when nothing waits: targets may call it for every batch they deliver.
        """
        integration = integration or default_integration()
        keys = [str(k) for k in record_keys]
        if not keys or not self.path.exists():
            return 0
        now = _now()
        changed = 0
        with self._db() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cur = db.execute(
                    f"UPDATE dead_letters SET status='delivered', resolved_at=? "  # noqa: S608
                    f"WHERE status='waiting' AND integration=? AND plugin=? AND stream=? "
                    f"AND record_key IN ({marks})",
                    (now, integration, plugin, stream, *chunk),
                )
                changed += cur.rowcount
        return changed

    def discard(self, letter_id: int, note: str) -> bool:
        """An operator gives up on a waiting letter (``note`` says why). False if not waiting."""
        with self._db() as db:
            cur = db.execute(
                "UPDATE dead_letters SET status='discarded', resolved_at=?, note=? "
                "WHERE id=? AND status='waiting'",
                (_now(), note, letter_id),
            )
            return cur.rowcount == 1

    # --- readers --------------------------------------------------------------------------

    def list(
        self,
        *,
        status: str | None = "waiting",
        integration: str | None = None,
        plugin: str | None = None,
    ) -> list[DeadLetter]:
        """Letters oldest first, filtered by status (None = all), integration and plugin."""
        if not self.path.exists():
            return []
        where, args = [], []
        for column, value in (("status", status), ("integration", integration), ("plugin", plugin)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = "SELECT * FROM dead_letters"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(sql + " ORDER BY id", args).fetchall()
        return [self._letter(row) for row in rows]

    def get(self, letter_id: int) -> DeadLetter | None:
        if not self.path.exists():
            return None
        with self._db() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM dead_letters WHERE id=?", (letter_id,)).fetchone()
        return self._letter(row) if row else None

    def counts(self, status: str = "waiting") -> dict[str, int]:
        """Letters per integration with this status."""
        if not self.path.exists():
            return {}
        with self._db() as db:
            rows = db.execute(
                "SELECT integration, COUNT(*) FROM dead_letters WHERE status=? "
                "GROUP BY integration",
                (status,),
            ).fetchall()
        return {str(i): int(n) for i, n in rows}

    def _letter(self, row: sqlite3.Row) -> DeadLetter:
        payload = self._open(row["payload"], row["encrypted"])
        return DeadLetter(
            id=row["id"],
            integration=row["integration"],
            plugin=row["plugin"],
            stream=row["stream"],
            record_key=row["record_key"],
            record=payload["record"] if payload else None,
            schema=payload["schema"] if payload else None,
            key_properties=list(payload["key_properties"]) if payload else [],
            error=row["error"],
            attempts=row["attempts"],
            status=row["status"],
            first_failed_at=row["first_failed_at"],
            last_failed_at=row["last_failed_at"],
            resolved_at=row["resolved_at"],
            note=row["note"],
            error_class=row["error_class"],
        )


def replaying() -> bool:
    """Whether this target runs under ``hrsync dlq replay``: its input is only the waiting
    letters, so full-feed behaviours (deactivating whoever is absent) must stay off."""
    return os.environ.get(REPLAY_ENV) == "1"


def loader_name(default: str) -> str:
    """The target's Meltano plugin name (``$MELTANO_LOADER_NAME``, set by ``meltano run`` and
    ``meltano invoke``; an inherited ``target-scim--okta`` keeps its own name), else ``default``.
    ``hrsync dlq replay`` invokes this name."""
    return os.environ.get("MELTANO_LOADER_NAME") or default


#: record keys targets use when a record has none (each such record gets its own letter)
MISSING_KEYS = (None, "", "?", "-", "<missing>")


class TargetDeadLetters:
    """A target's side of the store: one place for the plugin name, the schema of each stream
    (what ``replay`` sends ahead of a record) and batched ``resolve`` calls.

    ``dead(...)`` for every record given up on, ``delivered(...)`` for every record the
    destination now holds (created, updated or already equal), ``flush()`` at the end. A
    record without a key (``None``, ``""``, ``"?"``, ``"-"``, ``"<missing>"``) is filed as
    ``<missing:sha256 of the record>``: two keyless records never overwrite each other.
    """

    BATCH = 500

    def __init__(
        self, plugin: str, store: DeadLetterStore | None = None, *, integration: str | None = None
    ) -> None:
        self.plugin = loader_name(plugin)
        self.store = store or DeadLetterStore()
        self.integration = integration or default_integration()
        self.schemas: dict[str, tuple[dict[str, Any], list[str]]] = {}
        self.added: dict[str, int] = {}  # record key -> letter id, this run
        self.resolved = 0
        self._pending: dict[str, list[str]] = {}

    def stream(self, name: str, schema: dict[str, Any], key_properties: Iterable[str]) -> None:
        self.schemas[name] = (schema, list(key_properties or ()))

    def dead(
        self,
        *,
        stream: str,
        record_key: Any,
        record: dict[str, Any],
        error: str,
        error_class: str,
        attempts: int = 1,
    ) -> int:
        schema, keys = self.schemas.get(stream, (None, []))
        if record_key in MISSING_KEYS:  # records without a key must not share one letter
            digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode())
            record_key = f"<missing:{digest.hexdigest()[:12]}>"
        letter = self.store.add(
            plugin=self.plugin,
            stream=stream,
            record_key=record_key,
            record=record,
            error=error,
            error_class=error_class,
            attempts=attempts,
            schema=schema,
            key_properties=keys,
            integration=self.integration,
        )
        self.added[f"{stream}/{record_key}"] = letter
        return letter

    def delivered(self, stream: str, record_keys: Iterable[Any]) -> None:
        pending = self._pending.setdefault(stream, [])
        pending.extend(str(k) for k in record_keys)
        if len(pending) >= self.BATCH:
            self._resolve(stream)

    def flush(self) -> int:
        """Resolve what is pending; returns how many letters this run resolved in all."""
        for stream in list(self._pending):
            self._resolve(stream)
        return self.resolved

    def _resolve(self, stream: str) -> None:
        keys = self._pending.pop(stream, [])
        if keys:
            self.resolved += self.store.resolve(
                plugin=self.plugin, stream=stream, record_keys=keys, integration=self.integration
            )


def _error_class(value: str | None) -> str:
    """A short token (letters, digits, ``_.-``), never free text that could carry data."""
    token = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value or "error")).strip("_")[:60]
    return token or "error"


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the error_class column to a store written before error classes."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(dead_letters)")}
    if "error_class" in columns:
        return
    try:
        conn.execute(
            "ALTER TABLE dead_letters ADD COLUMN error_class TEXT NOT NULL DEFAULT 'error'"
        )
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # else another writer migrated it just now
            raise
