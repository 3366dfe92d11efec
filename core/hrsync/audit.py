"""Append-only, tamper-evident audit log: every exchange, with field *names* and never values.

One JSON object per line::

    {"ts": "2025-03-01T06:00:00.123+00:00", "integration": "ats-to-hris", "stream": "new_hires",
     "record_key": "4000000001", "fields": ["firstName", "hireDate"], "destination": "bamboohr",
     "outcome": "created", "detail": null, "job": "ats-to-hris",
     "legal_basis": "Art. 6(1)(b) ...", "processor": "BambooHR Inc.",
     "subject": "5f0c...", "links": [], "seq": 17, "prev": "9ab1...", "hash": "c04e..."}

**Who and why.** ``job``, ``legal_basis`` and ``processor`` come from the job's processing
annotations in meltano.yml (:mod:`hrsync.processing`). ``subject`` is a keyed pseudonym of the
person (:mod:`hrsync.subject`): the same for the ATS candidate, the HRIS employee and the
analytics pseudonym of one person, never another system's raw identifier; ``links`` holds the
person's other references when a writer knows them (a new hire's candidate reference).

**Tamper evidence.** Each line carries ``seq`` (one counter across rotated files), ``prev`` (the
previous line's ``hash``) and ``hash`` (SHA-256 of ``prev`` and the line's canonical JSON
without ``hash``). Every ``CHECKPOINT_EVERY`` lines, and at each rotation, a checkpoint line
adds ``mac``: an HMAC of the chain head with ``$HRSYNC_AUDIT_KEY``, so a chain rewritten as a
whole (hashes recomputed) no longer matches its checkpoints. :func:`verify` names the first
removed, edited or reordered line. A file past ``$HRSYNC_AUDIT_MAX_BYTES`` is renamed
``audit.jsonl.<last seq>`` and the new file's first line continues the chain. Writers in several
threads or processes take an ``fcntl`` lock on ``audit.jsonl.lock`` around read-last-hash and
append, so concurrent plugins of one pipeline keep one valid chain.

**A chunk at a time.** Within :meth:`AuditLog.buffered` a writer's lines are kept and
appended a chunk at a time (one lock, one read of the chain head, one write; the chain and its
checkpoints are the same as line by line): when ``max_lines`` are waiting, at each
:meth:`AuditLog.flush` (a writer calls it as soon as the writes a chunk of lines reports have
been acknowledged, so a killed run has no more unaudited writes than it had in flight) and on
leaving the block, also on an error or ``SystemExit``.

The integration is named by the ``integration`` argument, else ``$HRSYNC_INTEGRATION``, else
from what ``meltano run`` puts in a plugin's environment. Meltano 4 exports no job name or run
id to plugins, but every plugin of a ``meltano run`` block sees the names of the plugins before
it and its own (``MELTANO_EXTRACTOR_NAME``, ``MELTANO_MAPPER_NAME``, ``MELTANO_LOADER_NAME``), so
a target audits as ``tap-x-to-target-y``, the form of Meltano's own state ids. Else ``adhoc``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import threading
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from hrsync import processing, subject

DEFAULT_PATH = Path(".hrsync/audit.jsonl")
ENV_PATH = "HRSYNC_AUDIT_LOG"
ENV_INTEGRATION = "HRSYNC_INTEGRATION"
ENV_KEY = "HRSYNC_AUDIT_KEY"
ENV_MAX_BYTES = "HRSYNC_AUDIT_MAX_BYTES"
DETAIL_MAX = 300
#: a keyed checkpoint after this many lines (and at each rotation)
CHECKPOINT_EVERY = 100
#: rotate when the file has grown past this many bytes (0: never)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
CHAIN_KEYS = ("seq", "prev", "hash")
GENESIS = ""
_TAIL = 1 << 16
#: lines kept at most within :meth:`AuditLog.buffered` before they are appended
BUFFER_LINES = 256
_SORTED = orjson.OPT_SORT_KEYS

__all__ = [
    "DEFAULT_PATH",
    "AuditLog",
    "Problem",
    "Verification",
    "audit_files",
    "default_integration",
    "default_path",
    "read_all",
    "verify",
]


def default_integration() -> str:
    """``$HRSYNC_INTEGRATION``, else ``<extractor>-to-<loader>`` under ``meltano run``, else
    the one Meltano plugin name present, else ``adhoc``."""
    if name := os.environ.get(ENV_INTEGRATION):
        return name
    extractor = os.environ.get("MELTANO_EXTRACTOR_NAME")
    loader = os.environ.get("MELTANO_LOADER_NAME")
    if extractor and loader:
        return f"{extractor}-to-{loader}"
    return extractor or loader or "adhoc"


def default_path() -> Path:
    """``$HRSYNC_AUDIT_LOG``, else ``.hrsync/audit.jsonl`` (relative to the working directory)."""
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def _field_names(fields: Iterable[str]) -> list[str]:
    if type(fields) is list and all(type(name) is str for name in fields):  # the usual call
        return sorted(set(fields))
    if isinstance(fields, Mapping | ValuesView | ItemsView | str | bytes):
        raise TypeError(
            f"AuditLog.record(fields=...) takes field names, not a {type(fields).__name__}: "
            "pass record.keys() or a list of names; values must never reach the audit log"
        )
    names = set()
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(
                f"AuditLog.record(fields=...) takes field names (str), got a "
                f"{type(name).__name__}: values must never reach the audit log"
            )
        names.add(name)
    return sorted(names)


@lru_cache(maxsize=256)  # a run writes to a few destinations, one event per record
def _safe_destination(destination: str) -> str:
    """A destination URL without user info, query or fragment (no credentials in the log)."""
    if "://" not in destination:
        return destination
    parts = urlsplit(destination)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# --- the chain ------------------------------------------------------------------------------


def _canonical(obj: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a line's hash covers (``hash`` left out)."""
    if isinstance(obj, dict) and "hash" not in obj:
        return orjson.dumps(obj, option=_SORTED)
    return orjson.dumps({k: v for k, v in obj.items() if k != "hash"}, option=_SORTED)


def _encode(line: Mapping[str, Any]) -> bytes:
    """The line as written: its canonical JSON with ``hash`` appended (one encoding)."""
    body = _canonical(line)
    return body[:-1] + b',"hash":"' + str(line["hash"]).encode() + b'"}\n'


def line_hash(obj: Mapping[str, Any]) -> str:
    """SHA-256 over the line's canonical JSON (without ``hash``; ``prev`` is inside it)."""
    return hashlib.sha256(_canonical(obj)).hexdigest()


def _mac(key: bytes, seq: int, head: str) -> str:
    return hmac.new(
        key, f"hrsync-audit-checkpoint\x00{seq}\x00{head}".encode(), "sha256"
    ).hexdigest()


def _key() -> bytes | None:
    value = os.environ.get(ENV_KEY)
    return value.encode("utf-8") if value else None


def _max_bytes() -> int:
    try:
        return int(os.environ.get(ENV_MAX_BYTES) or DEFAULT_MAX_BYTES)
    except ValueError:
        return DEFAULT_MAX_BYTES


def _last_line(path: Path) -> bytes | None:
    """The file's last non-empty line (read from the end: O(line), not O(file))."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        pos, tail = end, b""
        while pos > 0:
            step = min(_TAIL, pos)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
            stripped = tail.rstrip(b"\n")
            if b"\n" in stripped or pos == 0:
                return stripped.rsplit(b"\n", 1)[-1] or None
        return None


def _head(line: bytes | None) -> tuple[int, str]:
    """(seq, hash) of a line; a line written before chaining counts by its raw SHA-256."""
    if line is None:
        return 0, GENESIS
    try:
        obj = json.loads(line)
    except ValueError:
        return 0, hashlib.sha256(line).hexdigest()
    if isinstance(obj, dict) and isinstance(obj.get("hash"), str):
        return int(obj.get("seq") or 0), str(obj["hash"])
    return 0, hashlib.sha256(line).hexdigest()


def audit_files(path: str | Path | None = None) -> list[Path]:
    """The log's rotated files (oldest first), then the current one (if it exists)."""
    current = Path(path) if path else default_path()
    rotated = sorted(
        p
        for p in current.parent.glob(current.name + ".*")
        if p.suffix != ".lock" and p.name[len(current.name) + 1 :].isdigit()
    )
    return [*rotated, *([current] if current.exists() else [])]


class AuditLog:
    """``AuditLog(path=None, integration=None).record(stream=..., record_key=..., ...)``.

    ``path`` defaults to :func:`default_path`, ``integration`` to :func:`default_integration`.
    The file and its parent directories are created on the first event (mode 0640).
    """

    def __init__(self, path: str | Path | None = None, *, integration: str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.integration = integration or default_integration()
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._size = 0
        # (inode, size) of the file after our last write -> (seq, hash) of its last line: when
        # nobody wrote since, the tail need not be read again
        self._known: tuple[tuple[int, int], tuple[int, str]] | None = None
        self._processing: processing.Processing | None = None
        # lines waiting within buffered(): appended by flush()
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self._hold = 0

    @property
    def processing(self) -> processing.Processing:
        """The job's purpose, legal basis and processor (read once from meltano.yml)."""
        if self._processing is None:
            self._processing = processing.current(self.integration)
        return self._processing

    def record(
        self,
        *,
        stream: str,
        record_key: Any,
        fields: Iterable[str],
        destination: str,
        outcome: str,
        detail: str | None = None,
        integration: str | None = None,
        employee_id: Any = None,
        candidate_id: Any = None,
        analytics_pseudonym: str | None = None,
        analytics_pseudonyms: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Append one event and return it.

        ``fields`` are the *names* of the fields sent (a dict, ``dict.values()`` or
        ``dict.items()`` is refused with a TypeError). ``outcome`` is a short word such as
        ``created``, ``updated``, ``unchanged``, ``skipped``, ``failed``, ``deactivated``.
        ``detail`` is a short reason without personal data (cut at 300 characters).
        ``employee_id`` (the HRIS id), ``candidate_id`` (the ATS id) or ``analytics_pseudonym``
        name the person: only their keyed subject reference is written, never the ids. A batch
        event of many people passes their ``analytics_pseudonyms``: their references are written
        as ``subjects``.
        """
        names = _field_names(fields)
        if not isinstance(outcome, str) or not outcome.strip():
            raise ValueError(f"AuditLog.record: outcome must be a non-empty word, got {outcome!r}")
        if detail is not None:
            detail = " ".join(str(detail).split())[:DETAIL_MAX] or None
        refs = subject.references(
            employee_id=employee_id,
            candidate_id=candidate_id,
            analytics_pseudonym=analytics_pseudonym,
        )
        proc = self.processing.for_destination(os.environ.get("MELTANO_LOADER_NAME"))
        event: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "integration": integration or self.integration,
            "stream": stream,
            "record_key": record_key
            if record_key is None or isinstance(record_key, int | str)
            else str(record_key),
            "fields": names,
            "destination": _safe_destination(str(destination)),
            "outcome": outcome.strip(),
            "detail": detail,
            "job": proc.job,
            "legal_basis": proc.basis,
            "processor": proc.processor,
            "subject": refs[0] if refs else None,
            "links": refs[1:],
        }
        batch = {subject.pseudonym_ref(p) for p in analytics_pseudonyms if p}
        if batch - {None}:
            event["subjects"] = sorted(r for r in batch if r)
        if self._hold:  # buffered(): chained and appended with its chunk
            with self._pending_lock:
                self._pending.append(event)
                full = len(self._pending) >= self._hold
            if full:
                self.flush()
            return event
        return self.append(event)

    @contextlib.contextmanager
    def buffered(self, max_lines: int = BUFFER_LINES) -> Iterator[AuditLog]:
        """Within the block, :meth:`record` keeps its lines (and returns the event without
        its chain keys); they are appended a chunk at a time: when ``max_lines`` wait, at each
        :meth:`flush` and on leaving the block (also on an error or ``SystemExit``)."""
        if max_lines < 1:
            raise ValueError(f"AuditLog.buffered: max_lines must be 1 or more, got {max_lines}")
        self._hold = max_lines
        try:
            yield self
        finally:
            self._hold = 0
            self.flush()

    @property
    def pending(self) -> int:
        """Lines recorded within :meth:`buffered` and not appended yet."""
        return len(self._pending)

    def flush(self) -> None:
        """Append the waiting lines: one lock, one write, chained as one by one would be."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        with self._locked():
            seq, prev = self._last()
            limit = _max_bytes()
            if limit and self._size >= limit:
                seq, prev = self._rotate(seq, prev)
            lines: list[dict[str, Any]] = []
            for event in pending:
                line = self._chain(event, seq, prev)
                lines.append(line)
                seq, prev = line["seq"], line["hash"]
                if seq % CHECKPOINT_EVERY == 0:
                    mark = self._checkpoint(seq, prev)
                    lines.append(mark)
                    seq, prev = mark["seq"], mark["hash"]
            self._write(lines)

    # --- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self._lock_fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                lock = self.path.with_name(self.path.name + ".lock")
                self._lock_fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o640)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Chain ``event`` to the last line and append it (with a checkpoint when due)."""
        with self._locked():
            seq, prev = self._last()
            limit = _max_bytes()
            if limit and self._size >= limit:
                seq, prev = self._rotate(seq, prev)
            line = self._chain(event, seq, prev)
            lines = [line]
            if line["seq"] % CHECKPOINT_EVERY == 0:
                lines.append(self._checkpoint(line["seq"], line["hash"]))
            self._write(lines)
            return line

    def _last(self) -> tuple[int, str]:
        """(seq, hash) of the file's last line (call under the lock)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._size = 0
            return 0, GENESIS
        self._size = st.st_size
        if self._known is not None and self._known[0] == (st.st_ino, st.st_size):
            return self._known[1]
        return _head(_last_line(self.path))

    def _chain(self, obj: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
        line = {k: v for k, v in obj.items() if k not in CHAIN_KEYS}
        line["seq"], line["prev"] = seq + 1, prev
        line["hash"] = line_hash(line)
        return line

    def _checkpoint(self, seq: int, head: str) -> dict[str, Any]:
        key = _key()
        mark = {
            "type": "checkpoint",
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "head_seq": seq,
            "mac": _mac(key, seq, head) if key else None,
        }
        return self._chain(mark, seq, head)

    def _write(self, lines: list[dict[str, Any]]) -> None:
        data = b"".join(_encode(line) for line in lines)
        try:
            current = self.path.stat().st_ino
        except FileNotFoundError:
            current = None
        if self._fd is not None and os.fstat(self._fd).st_ino != current:
            os.close(self._fd)  # rotated (by us or another writer): append to the new file
            self._fd = None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal
            written += os.write(self._fd, data[written:])
        st = os.fstat(self._fd)
        self._size = st.st_size
        self._known = ((st.st_ino, st.st_size), (int(lines[-1]["seq"]), str(lines[-1]["hash"])))

    def _rotate(self, seq: int, prev: str) -> tuple[int, str]:
        """Close the current file with a checkpoint, rename it, start the next with a line
        that names it (call under the lock)."""
        mark = self._checkpoint(seq, prev)
        self._write([mark])
        rotated = self.path.with_name(f"{self.path.name}.{mark['seq']:012d}")
        self.path.replace(rotated)
        header = self._chain(
            {
                "type": "rotation",
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "previous_file": rotated.name,
            },
            mark["seq"],
            mark["hash"],
        )
        self._write([header])
        return header["seq"], header["hash"]

    def rotate(self) -> Path | None:
        """Rotate now (``hrsync audit rotate``); returns the rotated file, None when empty."""
        with self._locked():
            if not self.path.exists() or self.path.stat().st_size == 0:
                return None
            seq, prev = self._last()
            self._rotate(seq, prev)
            return self.path.with_name(f"{self.path.name}.{seq + 1:012d}")

    def note(self, kind: str, **data: Any) -> dict[str, Any]:
        """Append a chained operations line (``type: kind``), e.g. what retention removed."""
        line = {"type": kind, "ts": datetime.now(UTC).isoformat(timespec="milliseconds"), **data}
        with self._locked():
            seq, prev = self._last()
            chained = self._chain(line, seq, prev)
            mark = self._checkpoint(chained["seq"], chained["hash"])
            self._write([chained, mark])
            return chained

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to do
            self.close()

    @staticmethod
    def read(path: str | Path | None = None) -> list[dict[str, Any]]:
        """All events of the current file, oldest first (checkpoints and rotation lines left
        out; for tests, reports and the CLI)."""
        target = Path(path) if path else default_path()
        if not target.exists():
            return []
        with target.open(encoding="utf-8") as fh:
            lines = [json.loads(line) for line in fh if line.strip()]
        return [line for line in lines if "type" not in line]


def read_all(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Events of every file of the log, rotated ones first."""
    return [e for p in audit_files(path) for e in AuditLog.read(p)]


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based line number in that file
    seq: int | None
    reason: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.file}:{self.line}{seq}: {self.reason}"


@dataclass
class Verification:
    files: list[str] = field(default_factory=list)
    lines: int = 0
    checkpoints: int = 0
    keyed: bool = False
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _removed_heads(files: list[Path]) -> set[str]:
    """Chain heads of files that retention removed (from its chained ``retention`` notes)."""
    heads: set[str] = set()
    for file in files:
        with file.open("rb") as fh:
            for raw in fh:
                if b'"retention"' in raw:
                    with contextlib.suppress(ValueError):
                        obj = json.loads(raw)
                        if isinstance(obj, dict) and obj.get("type") == "retention":
                            heads.update(str(h) for h in obj.get("removed_heads") or [])
    return heads


def verify(path: str | Path | None = None, *, key: bytes | None = None) -> Verification:
    """Check every file of the log: hashes, links, sequence, checkpoints and rotations.

    Names the first line where the chain breaks in each file (a removed line breaks the link
    of the line after it, an edited line its own hash, swapped lines their links).
    """
    key = key if key is not None else _key()
    result = Verification(keyed=key is not None)
    files = audit_files(path)
    removed_heads = _removed_heads(files)
    prev_file_head: str | None = None
    legacy, chained = 0, False  # lines of the oldest file written before chaining
    for index, file in enumerate(files):
        result.files.append(file.name)
        prev: str | None = None
        seq: int | None = None
        with file.open("rb") as fh:
            raw_lines = fh.read().split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        for number, raw in enumerate(raw_lines, 1):
            result.lines += 1
            where = (file.name, number)
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
            except ValueError:
                result.problems.append(Problem(*where, None, "not a JSON object (edited?)"))
                break
            this_seq = obj.get("seq")
            if "hash" not in obj:
                if index == 0 and not chained:  # written before the chain started
                    legacy += 1
                    prev = hashlib.sha256(raw).hexdigest()
                    continue
                result.problems.append(Problem(*where, None, "line carries no hash (unchained)"))
                break
            chained = True
            if obj["hash"] != line_hash(obj):
                result.problems.append(
                    Problem(*where, this_seq, "hash does not match the line: edited")
                )
                break
            if prev is None:  # first line of the file: links to the file before, or to genesis
                expected = prev_file_head if index else None
                if obj["prev"] not in (GENESIS, expected) and obj["prev"] not in removed_heads:
                    reason = "does not continue the previous file"
                    if index == 0:
                        reason = (
                            f"the chain continues {obj.get('previous_file') or 'a file'}, which "
                            "is missing and no retention note removed it"
                        )
                    result.problems.append(Problem(*where, this_seq, reason))
                    break
            elif obj["prev"] != prev:
                reason = "does not follow the line before it"
                if isinstance(this_seq, int) and isinstance(seq, int):
                    if this_seq > seq + 1:
                        reason = f"lines removed or reordered before it (expected seq {seq + 1})"
                    elif this_seq <= seq:
                        reason = f"out of order (follows seq {seq})"
                result.problems.append(Problem(*where, this_seq, reason))
                break
            if seq is not None and this_seq != seq + 1:
                result.problems.append(
                    Problem(*where, this_seq, f"sequence jumps from {seq} (lines removed?)")
                )
                break
            if obj.get("type") == "checkpoint":
                result.checkpoints += 1
                if key is not None:
                    if obj.get("mac") is None:
                        result.warnings.append(f"{file.name}:{number}: checkpoint without a key")
                    elif not hmac.compare_digest(
                        str(obj["mac"]), _mac(key, int(obj["head_seq"]), str(obj["prev"]))
                    ):
                        result.problems.append(
                            Problem(*where, this_seq, "checkpoint MAC wrong: chain rewritten")
                        )
                        break
            prev, seq = str(obj["hash"]), this_seq if isinstance(this_seq, int) else None
        # the next file continues this one's last line (even where this one broke)
        prev_file_head = _head(raw_lines[-1])[1] if raw_lines else prev
    if legacy:
        result.warnings.append(
            f"{files[0].name}: the first {legacy} line(s) were written before the chain "
            "(not protected)"
        )
    if key is None:
        result.warnings.append(
            f"no {ENV_KEY}: checkpoint MACs not checked (a chain rewritten as a whole passes)"
        )
    return result
