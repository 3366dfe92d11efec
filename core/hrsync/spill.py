"""Spill files: a run's working set kept on disk, so memory stays flat however large the input.

A target that must see its whole batch before it writes (the IAM targets: the
mass-deprovisioning guard decides before any write) keeps the batch, the destination's
current state and the plan in a private, temporary SQLite file instead of Python objects.
Rows are Python objects (held by reference in memory, pickled in the file: a record keeps its
exact types, a ``datetime`` stays one) read back in key or insertion order, a chunk at a time.

Sealed and short-lived (personal data at rest):

- Every pickled row, and every clear value a caller needs back (:meth:`SpillDB.seal_text`),
  is sealed with AES-256-GCM (hrsync.sealing) under a key made per :class:`SpillDB` from 32
  random bytes held in memory only, never written anywhere: a file left behind is unreadable.
  A row is authenticated *before* it is unpickled; a row that fails (altered, or not ours)
  raises :class:`SpillTamperedError`, naming the file, the table and the row, and is never
  unpickled.
- A column the SQL only compares for equality (employee ids, logins, userNames, DN keys:
  joins, lookups, uniqueness) holds :meth:`SpillDB.key`, a keyed HMAC-SHA-256 under a second
  key from the same random bytes, never the value.
- What stays in clear: integers the code numbers itself (positions, wave levels, flags), tags
  (action names) and stream names. One personal value's order is needed by the SQL:
  target-ldap sorts the employee ids of people without an account (new logins resolve the
  same way whatever the feed order); they sit in clear in SQLite's temporary database (an
  unlinked file, gone with the process: ``temp_store=FILE``), never in the spill file.
  Nothing else: DN ancestry and wave numbering are computed on keys (equality only).

**In memory below a budget.** Until the values it holds pass ``memory_budget`` bytes (the
``HRSYNC_SPILL_MEMORY_MB`` environment variable, default :data:`DEFAULT_MEMORY_MB` MiB; 0
spills from the first row), a SpillDB is an in-memory SQLite database (its temporary tables
in memory too): nothing is written to disk, and as nothing leaves the process, rows are not
even pickled: a row's ``BLOB`` column holds a handle (an integer) to the Python object
itself, so reading a row back costs no unpickling and gives back *the same object* (a change
made to it is the stored row; :meth:`SpillList.update` of that object is free), clear texts
stay ``str`` and equality columns hold the value itself (``=`` + value), not its HMAC. What an
object counts towards the budget is an estimate: its pickled size, measured on one object in
:data:`SAMPLE` of each type, times :data:`OBJECT_FACTOR` (what the Python objects take
compared with their pickles). The first :meth:`SpillDB.settle` past the budget (owners call it
before they add a row, at a point where they hold no key or handle across the call) pickles
and seals every row and keys every equality column in place, copies the database to the spill
file, drops its objects and goes on there: from then on every row is a sealed pickle (read
back, a *copy*: callers write a changed item back with :meth:`SpillList.update`) and keyed as
described above. For this, a schema declares its equality columns
``KEYTEXT`` (TEXT affinity) and keeps sealed values, and only those, in ``BLOB`` columns.
Both paths give the same answers: the SQL compares keys for equality only.

The file lives in a fresh 0700 folder named after the owning process id, is created 0600, and
is deleted by :meth:`SpillDB.close` (or when the object is garbage collected, or at
interpreter exit). A run killed before that (SIGKILL) leaves its folder behind: the next
:class:`SpillDB` created on the machine removes every spill folder whose owning process is
gone (:func:`remove_stale`). Nothing is fsynced: a crash loses the file, and a re-run plans
again from the destination.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import re
import shutil
import sqlite3
import stat
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from hrsync.sealing import TOKEN_PREFIX, Sealer

T = TypeVar("T")

#: Rows read per query when iterating (the memory of one chunk, not of the batch).
CHUNK = 2000
#: Values held in memory (bytes) before a SpillDB moves to its sealed file, in MiB.
DEFAULT_MEMORY_MB = 64
ENV_MEMORY_MB = "HRSYNC_SPILL_MEMORY_MB"
#: Counted per key or value besides its bytes (SQLite's row and index overhead, roughly).
ROW_OVERHEAD = 48
#: The declared type of an equality column (keyed when the SpillDB moves to its file).
KEY_TYPE = "KEYTEXT"
#: In memory, one object in this many of each type is pickled to estimate its size.
SAMPLE = 16
#: Bytes a Python object held by reference counts per byte of its pickle. Alone such an object
#: takes 3-5x its pickle (tracemalloc, the IAM targets' rows), but rows share parts a pickle
#: repeats (a change holds its person, a person the record the input parsed anyway): at 2, a
#: budget buys about the resident memory the pickled rows took (target-ldap, 10,000 users:
#: 170 MiB peak RSS, 192 MiB with pickles; 20,000: 248 and 247 MiB).
OBJECT_FACTOR = 2
#: SQLite page cache of a spill file, in KiB.
CACHE_KIB = 32_768
#: Every spill folder's name ends with this (after the owning pid): what :func:`remove_stale`
#: looks for in the temporary directory.
SUFFIX = ".hrsync-spill"
_STALE = re.compile(r"-(\d+)-[^/]*" + re.escape(SUFFIX) + r"\Z")
#: Folders of live SpillDBs of this process (a dead run may have had the same pid).
_OURS: set[str] = set()


class SpillTamperedError(Exception):
    """A sealed row of a spill file failed authentication (it was altered, or not ours)."""

    def __init__(self, path: Path, table: str, row: object) -> None:
        super().__init__(
            f"spill file {path}: row {row} of table {table} failed authentication "
            "(altered, or sealed by another run); it was not unpickled"
        )
        self.path = path
        self.table = table
        self.row = row


def _remove(folder: str) -> None:
    _OURS.discard(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale(tmpdir: str | None = None) -> list[str]:
    """Remove the spill folders (ours: same owner, a real folder) whose owning process is
    gone; returns their paths."""
    root = tmpdir or tempfile.gettempdir()
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _STALE.search(entry.name)
        if not match:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        pid = int(match.group(1))
        if entry.path in _OURS or (pid != os.getpid() and _alive(pid)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def memory_budget_bytes() -> int:
    """The default memory budget of a SpillDB, in bytes (``$HRSYNC_SPILL_MEMORY_MB``)."""
    raw = os.environ.get(ENV_MEMORY_MB, "").strip()
    if not raw:
        return DEFAULT_MEMORY_MB * 1024 * 1024
    try:
        megabytes = float(raw)
    except ValueError:
        raise ValueError(
            f"{ENV_MEMORY_MB}={raw!r}: not a number of MiB (0 spills to the sealed file at once)"
        ) from None
    if megabytes < 0:
        raise ValueError(f"{ENV_MEMORY_MB}={raw!r}: must be 0 or more MiB")
    return int(megabytes * 1024 * 1024)


class SpillDB:
    """One private temporary SQLite file; ``schema`` creates the caller's tables."""

    def __init__(
        self, schema: str, *, prefix: str = "hrsync-spill-", memory_budget: int | None = None
    ) -> None:
        remove_stale()
        self.folder = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", suffix=SUFFIX)  # 0700
        _OURS.add(self.folder)
        self.path = Path(self.folder) / "spill.sqlite"
        self._finalizer = weakref.finalize(self, _remove, self.folder)
        # per-run keys, in memory only: one seals rows, the other keys the equality columns
        secret = os.urandom(32)
        # a random key: no derivation (the sealing of a spilled row costs only the cipher)
        self._sealer = Sealer.for_key(
            hmac.new(secret, b"hrsync spill seal", hashlib.sha256).digest()
        )
        self._mac_key = hmac.new(secret, b"hrsync spill key", hashlib.sha256).digest()
        self._mac = hmac.new(self._mac_key, digestmod=hashlib.sha256)  # keyed once, copied
        del secret
        self.memory_budget = memory_budget_bytes() if memory_budget is None else memory_budget
        #: bytes of the keys and values made so far (an upper bound of what is held)
        self.held = 0
        #: False while the database is in memory (clear), True once it is the sealed file
        self.spilled = False
        # in memory: the objects the rows' handles refer to, and per type (objects seen,
        # objects pickled, their bytes) for the size estimate
        self._objects: dict[int, Any] = {}
        self._handles = 0
        self._sizes: dict[type, list[int]] = {}
        # one connection, used by the thread that plans (writers hand results back to it)
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(schema)
        self.db.execute("BEGIN")  # one long transaction: the data is thrown away at the end
        if self.memory_budget <= 0:
            self._to_file()

    def settle(self) -> None:
        """Move to the sealed spill file when the values held have passed the budget. Call it
        where no key made by :meth:`key` is held across the call (keys change on the move)."""
        if not self.spilled and self.held > self.memory_budget:
            self._to_file()

    def _to_file(self) -> None:
        """Seal every BLOB value and key every ``KEYTEXT`` column in place, then copy the
        database (and the temporary tables) to the spill file and go on there."""
        mem = self.db
        mem.create_function("hrsync_key", 1, self._key_clear, deterministic=True)
        mem.create_function("hrsync_seal", 1, self._seal_raw)
        tables = [
            str(name)
            for (name,) in mem.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            sets = []
            for _, column, kind, *_ in mem.execute(f"PRAGMA table_info({table})").fetchall():
                if str(kind).upper() == KEY_TYPE:
                    sets.append(f"{column} = hrsync_key({column})")
                elif str(kind).upper() == "BLOB":
                    sets.append(f"{column} = hrsync_seal({column})")
            if sets:
                mem.execute(f"UPDATE {table} SET {', '.join(sets)}")  # noqa: S608 - our schema
        temp = mem.execute(
            "SELECT type, name, sql FROM sqlite_temp_master WHERE sql IS NOT NULL "
            "ORDER BY type = 'index'"
        ).fetchall()
        mem.execute("COMMIT")
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        disk = sqlite3.connect(str(self.path), isolation_level=None)
        mem.backup(disk)
        disk.execute("PRAGMA journal_mode=OFF")
        disk.execute("PRAGMA synchronous=OFF")
        disk.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        disk.execute("PRAGMA temp_store=FILE")
        disk.execute("BEGIN")
        for kind, name, sql in temp:  # clear by design (see the owner's docs): copied as they are
            # sqlite_temp_master keeps the statements without their TEMP / schema name
            sql = re.sub(r"\ACREATE TABLE ", "CREATE TEMP TABLE ", str(sql))
            disk.execute(re.sub(r"\ACREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX temp.", sql))
            if kind == "table":
                rows = mem.execute(f"SELECT * FROM temp.{name}").fetchall()  # noqa: S608
                if rows:
                    marks = ", ".join("?" * len(rows[0]))
                    disk.executemany(f"INSERT INTO temp.{name} VALUES ({marks})", rows)  # noqa: S608
        mem.close()
        self.db = disk
        self.spilled = True
        self._objects.clear()  # sealed in the file now (and those no row referred to any more)

    def _key_clear(self, value: str | None) -> str | None:
        """The keyed HMAC of a key made in memory (``=`` + value)."""
        return None if value is None else self._hmac(value[1:])

    def _seal_raw(self, value: int | str | bytes | None) -> bytes | None:
        """A BLOB value made in memory, sealed: a handle's object pickled, a text encoded."""
        if value is None:
            return None
        if isinstance(value, int):
            raw = pickle.dumps(self._objects[value], protocol=pickle.HIGHEST_PROTOCOL)
        elif isinstance(value, str):
            raw = value.encode("utf-8")
        else:
            raw = bytes(value)
        return self._sealer.seal(raw)

    def _hmac(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode("utf-8"))
        return mac.hexdigest()[:32]

    # -- sealing -----------------------------------------------------------------------------
    def dumps(self, value: Any) -> bytes | int:
        """What a ``BLOB`` column holds for ``value``: in memory a handle to the object itself
        (no copy: see the module's docs), in the file the sealed pickle."""
        if not self.spilled:
            self.held += self._estimate(value) + ROW_OVERHEAD
            self._handles += 1
            self._objects[self._handles] = value
            return self._handles
        raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.held += len(raw) + ROW_OVERHEAD
        return self._sealer.seal(raw)

    def _estimate(self, value: Any) -> int:
        """Bytes an object held by reference counts: the mean pickled size of its type (one
        object in SAMPLE pickled) times OBJECT_FACTOR."""
        stats = self._sizes.get(type(value))
        if stats is None:
            stats = self._sizes[type(value)] = [0, 0, 0]
        if stats[0] % SAMPLE == 0:
            stats[1] += 1
            stats[2] += len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        stats[0] += 1
        return OBJECT_FACTOR * stats[2] // stats[1]

    def loads(self, blob: bytes | int, table: str, row: object) -> Any:
        """The value of a ``blob`` made by :meth:`dumps` (``table`` and ``row`` name it in the
        error): in memory the object itself; in the file it is authenticated first, and
        unpickled only when it comes from this SpillDB unaltered."""
        if not self.spilled:
            return self._objects[int(blob)]  # a handle made by dumps
        raw = self._open(blob, table, row)  # refuses a handle: not a sealed value
        return pickle.loads(raw)  # noqa: S301 - authenticated by our key

    def same(self, blob: bytes | int, value: Any) -> bool:
        """Is ``blob`` a handle to ``value`` itself (in memory: a row read back and changed in
        place needs no writing back)?"""
        return not self.spilled and isinstance(blob, int) and self._objects.get(blob) is value

    def forget(self, blob: bytes | int | None) -> None:
        """A handle no row refers to any more (its row was replaced): drop the object."""
        if not self.spilled and isinstance(blob, int):
            self._objects.pop(blob, None)

    def seal_text(self, value: str | None) -> bytes | str | None:
        """A clear value the caller needs back (not compared in SQL): in memory the text
        itself, sealed once in the file."""
        if value is None:
            return None
        if not self.spilled:
            self.held += len(value) + ROW_OVERHEAD
            return value
        raw = value.encode("utf-8")
        self.held += len(raw) + ROW_OVERHEAD
        return self._sealer.seal(raw)

    def open_text(self, blob: bytes | str | None, table: str, row: object) -> str | None:
        if blob is None:
            return None
        if not self.spilled:
            return blob if isinstance(blob, str) else bytes(blob).decode("utf-8")
        return self._open(blob, table, row).decode("utf-8")

    def key(self, value: str | None) -> str | None:
        """What a column SQL compares for equality holds for ``value``: its keyed HMAC (128
        bits, hex) in the file, ``=`` + the value while in memory."""
        if value is None:
            return None
        if not self.spilled:
            self.held += len(value) + ROW_OVERHEAD
            return "=" + value
        return self._hmac(value)

    def _open(self, blob: object, table: str, row: object) -> bytes:
        if not isinstance(blob, bytes | memoryview):
            raise SpillTamperedError(self.path, table, row)
        raw = self._sealer.open(bytes(blob)) if bytes(blob).startswith(TOKEN_PREFIX) else None
        if raw is None:
            raise SpillTamperedError(self.path, table, row)
        return raw

    def close(self) -> None:
        """Delete the file (idempotent)."""
        if self._finalizer.alive:
            self.db.close()
            self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def chunks(
        self, sql: str, params: tuple[Any, ...] = (), *, key: int = 0, size: int | None = None
    ) -> Iterator[list[Any]]:
        """Rows of ``sql`` a chunk at a time, by keyset pagination.

        ``sql`` must select a strictly increasing integer in column ``key``, have a
        ``{after}`` placeholder for the condition on that column (``seq > ?``: write
        ``WHERE {after}`` or ``AND {after}``) and end with ``ORDER BY`` that column. Between
        chunks the caller may write to the same file.
        """
        last = -(2**63)
        column = sql.split("ORDER BY", 1)[1].split()[0]
        while True:
            rows = self.db.execute(
                sql.format(after=f"{column} > ?") + f" LIMIT {int(size or CHUNK)}", (*params, last)
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][key]


class SpillList(Generic[T]):
    """An append-only list of sealed pickled items, each with an optional tag (counted) and
    key (stored as a keyed HMAC)."""

    def __init__(self, spill: SpillDB, name: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a table name: {name!r}")
        self.spill = spill
        self.name = name
        self.counts: Counter[str] = Counter()
        self._len = 0
        # in memory: the handle of each position (an update of the object itself is free)
        self._handles: list[bytes | int] = []
        spill.db.execute(
            f"CREATE TABLE {name} (seq INTEGER PRIMARY KEY, tag TEXT, item_key {KEY_TYPE}, "
            "flag INTEGER NOT NULL, item BLOB)"
        )

    def append(self, item: T, tag: str | None = None, key: str | None = None, flag: int = 0) -> int:
        """Add ``item`` (``tag`` is counted; ``key`` and the integer ``flag`` can be selected
        on: ``key`` is stored as :meth:`SpillDB.key`, compare ``item_key`` with that);
        returns its position."""
        self._len += 1
        blob = self.spill.dumps(item)
        if not self.spill.spilled:
            self._handles.append(blob)
        elif self._handles:
            self._handles = []  # moved to the file: the handles are gone
        self.spill.db.execute(
            f"INSERT INTO {self.name} VALUES (?, ?, ?, ?, ?)",  # noqa: S608 - a checked name
            (self._len, tag, self.spill.key(key), flag, blob),
        )
        if tag is not None:
            self.counts[tag] += 1
        return self._len

    def update(self, seq: int, item: T) -> None:
        """Replace the item at position ``seq`` (a changed copy read back earlier; in memory,
        the item itself changed in place costs nothing)."""
        spill = self.spill
        blob: bytes | int | None = None
        if not spill.spilled and 0 < seq <= len(self._handles):
            if spill.same(self._handles[seq - 1], item):
                return
            spill.forget(self._handles[seq - 1])
            blob = self._handles[seq - 1] = spill.dumps(item)
        spill.db.execute(
            f"UPDATE {self.name} SET item = ? WHERE seq = ?",  # noqa: S608 - a checked name
            (spill.dumps(item) if blob is None else blob, seq),
        )

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[T]:
        for chunk in self.iter_chunks():
            yield from chunk

    def iter_chunks(
        self, where: str = "", params: tuple[Any, ...] = (), *, size: int | None = None
    ) -> Iterator[list[T]]:
        """The items (optionally ``where`` a condition on ``seq``, ``tag`` or ``item_key``), in
        order, a chunk at a time."""
        for chunk in self.iter_numbered(where, params, size=size):
            yield [item for _, item in chunk]

    def iter_numbered(
        self, where: str = "", params: tuple[Any, ...] = (), *, size: int | None = None
    ) -> Iterator[list[tuple[int, T]]]:
        """Like :meth:`iter_chunks`, each item with its position (``seq``, from 1)."""
        condition = f"({where}) AND " if where else ""
        # the table name is checked; ``where`` is the caller's code, values go in ``params``
        sql = f"SELECT seq, item FROM {self.name} WHERE {condition}{{after}} ORDER BY seq"  # noqa: S608
        for rows in self.spill.chunks(sql, params, size=size):
            yield [(int(seq), self.spill.loads(blob, self.name, seq)) for seq, blob in rows]
