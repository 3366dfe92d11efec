"""The batch, the server's users and the plan of one run, spilled to a private SQLite file.

A million-person feed must plan in flat memory: the desired users, the listing of the
server's users, the matches, the SCIM ids and the changes live here (hrsync.spill), and the
provisioner reads them back a chunk at a time.

Sealed (see hrsync.spill): records, resources, SCIM ids, conflict messages and the clear ids
handed back (``*_s`` columns) are AES-GCM sealed; ``employee_id``, ``manager``,
``external_id`` and ``user_name`` hold the run's keyed HMAC (the SQL only joins and looks them
up by equality). Positions, wave levels, flags and stream names are the only clear values.
Below the spill's memory budget all of it stays in memory, unsealed and never on disk; the
``KEYTEXT`` columns are the ones keyed when the spill moves to its file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from hrsync.spill import SpillDB
from target_scim.users import DesiredUser

SCHEMA = """
CREATE TABLE desired (
    employee_id KEYTEXT PRIMARY KEY, employee_id_s BLOB, seq INTEGER NOT NULL, stream TEXT,
    manager KEYTEXT, manager_s BLOB, user BLOB
);
CREATE UNIQUE INDEX desired_seq ON desired (seq);
CREATE TABLE accounts (
    n INTEGER PRIMARY KEY, external_id KEYTEXT, external_id_s BLOB, user_name KEYTEXT, scim_id BLOB,
    resource BLOB
);
CREATE INDEX accounts_ext ON accounts (external_id, n);
CREATE INDEX accounts_name ON accounts (user_name, n);
CREATE TABLE matches (
    employee_id KEYTEXT PRIMARY KEY, account BLOB, conflict BLOB, creating INTEGER NOT NULL
);
CREATE TABLE ids (employee_id KEYTEXT PRIMARY KEY, scim_id BLOB NOT NULL);
CREATE TABLE written (employee_id KEYTEXT PRIMARY KEY, scim_id BLOB NOT NULL);
CREATE TABLE waves (employee_id KEYTEXT PRIMARY KEY, seq INTEGER, manager KEYTEXT, level INTEGER);
"""

_PUT_ID = {
    "ids": "INSERT OR REPLACE INTO ids VALUES (?, ?)",
    "written": "INSERT OR REPLACE INTO written VALUES (?, ?)",
}
_GET_ID = {
    "ids": "SELECT rowid, scim_id FROM ids WHERE employee_id = ?",
    "written": "SELECT rowid, scim_id FROM written WHERE employee_id = ?",
}


class PlanStore:
    """Tables of one run; every method runs on the planning thread."""

    def __init__(self) -> None:
        self.spill = SpillDB(SCHEMA, prefix="target-scim-plan-")
        self.key = self.spill.key
        self._seq = 0
        self._accounts = 0

    @property
    def db(self) -> sqlite3.Connection:
        """The spill's connection (in memory, then the sealed file past the budget)."""
        return self.spill.db

    def close(self) -> None:
        self.spill.close()

    # -- the batch ---------------------------------------------------------------------------
    def add(self, user: DesiredUser) -> None:
        """The latest record for an employee wins, and moves to the end of the batch."""
        self.spill.settle()
        self._seq += 1
        self.db.execute(
            "INSERT INTO desired VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (employee_id) DO UPDATE "
            "SET seq = excluded.seq, stream = excluded.stream, manager = excluded.manager, "
            "manager_s = excluded.manager_s, user = excluded.user",
            (
                self.key(user.employee_id),
                self.spill.seal_text(user.employee_id),
                self._seq,
                user.stream,
                self.key(user.manager_employee_id),
                self.spill.seal_text(user.manager_employee_id),
                self.spill.dumps(user),
            ),
        )

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM desired").fetchone()[0])

    def get(self, employee_id: str) -> DesiredUser | None:
        row = self.db.execute(
            "SELECT seq, user FROM desired WHERE employee_id = ?", (self.key(employee_id),)
        ).fetchone()
        return self.spill.loads(row[1], "desired", row[0]) if row else None

    def users(self) -> Iterator[list[DesiredUser]]:
        """The batch in feed order (of each employee's latest record), a chunk at a time."""
        for rows in self.spill.chunks("SELECT seq, user FROM desired WHERE {after} ORDER BY seq"):
            yield [self.spill.loads(blob, "desired", seq) for seq, blob in rows]

    def batch(self) -> Iterator[tuple[str, str]]:
        """(stream, employee id) of everyone in the batch."""
        sql = "SELECT seq, stream, employee_id_s FROM desired WHERE {after} ORDER BY seq"
        for rows in self.spill.chunks(sql):
            for seq, stream, employee_id in rows:
                yield stream, str(self.spill.open_text(employee_id, "desired", seq))

    def first_stream(self) -> str | None:
        row = self.db.execute("SELECT stream FROM desired ORDER BY seq LIMIT 1").fetchone()
        return str(row[0]) if row else None

    # -- the server's users ------------------------------------------------------------------
    def add_account(
        self, external_id: str | None, user_name: str | None, resource: dict[str, Any]
    ) -> None:
        self.spill.settle()
        self._accounts += 1
        scim_id = resource.get("id")
        self.db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
            (
                self._accounts,
                self.key(external_id),
                self.spill.seal_text(external_id),
                self.key(user_name),
                self.spill.seal_text(str(scim_id)) if scim_id else None,
                self.spill.dumps(resource),
            ),
        )

    def account_by_ext(self, external_id: str) -> dict[str, Any] | None:
        """The first listed account with this externalId."""
        row = self.db.execute(
            "SELECT n, resource FROM accounts WHERE external_id = ? ORDER BY n LIMIT 1",
            (self.key(external_id),),
        ).fetchone()
        return self.spill.loads(row[1], "accounts", row[0]) if row else None

    def account_by_name(self, user_name_lower: str) -> dict[str, Any] | None:
        """The first listed account with this userName (lower case)."""
        row = self.db.execute(
            "SELECT n, resource FROM accounts WHERE user_name = ? ORDER BY n LIMIT 1",
            (self.key(user_name_lower),),
        ).fetchone()
        return self.spill.loads(row[1], "accounts", row[0]) if row else None

    def unclaimed_accounts(self) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """(externalId, first account listed with it) of externalIds absent from the batch."""
        sql = (
            "SELECT a.n, a.external_id_s, a.resource FROM accounts a WHERE a.external_id IS NOT "
            "NULL AND a.n = (SELECT min(n) FROM accounts b WHERE b.external_id = a.external_id) "
            "AND NOT EXISTS (SELECT 1 FROM desired d WHERE d.employee_id = a.external_id) "
            "AND {after} ORDER BY a.n"
        )
        for rows in self.spill.chunks(sql):
            yield [
                (
                    str(self.spill.open_text(ext, "accounts", n)),
                    self.spill.loads(blob, "accounts", n),
                )
                for n, ext, blob in rows
            ]

    def ids_from_listing(self) -> None:
        """employee id -> SCIM id of every listed account (the first one per externalId)."""
        self.db.execute(
            "INSERT OR IGNORE INTO ids SELECT external_id, scim_id FROM accounts "
            "WHERE external_id IS NOT NULL AND scim_id IS NOT NULL ORDER BY n"
        )

    # -- matches and ids ---------------------------------------------------------------------
    def put_match(
        self, employee_id: str, account: dict[str, Any] | None, conflict: str | None
    ) -> None:
        creating = account is None and conflict is None
        self.db.execute(
            "INSERT OR REPLACE INTO matches VALUES (?, ?, ?, ?)",
            (
                self.key(employee_id),
                self.spill.dumps(account) if account else None,
                self.spill.seal_text(conflict),
                int(creating),
            ),
        )
        if account and account.get("id"):
            self.put_id(employee_id, str(account["id"]))

    def match(self, employee_id: str) -> tuple[dict[str, Any] | None, str | None]:
        row = self.db.execute(
            "SELECT rowid, account, conflict FROM matches WHERE employee_id = ?",
            (self.key(employee_id),),
        ).fetchone()
        if row is None:
            return None, None
        rowid, account, conflict = row
        return (
            self.spill.loads(account, "matches", rowid) if account else None,
            self.spill.open_text(conflict, "matches", rowid),
        )

    def creating(self, employee_id: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM matches WHERE employee_id = ? AND creating = 1",
                (self.key(employee_id),),
            ).fetchone()
            is not None
        )

    def put_id(self, employee_id: str, scim_id: str, table: str = "ids") -> None:
        """``ids``: known before the writes; ``written``: where the writes put them."""
        self.db.execute(_PUT_ID[table], (self.key(employee_id), self.spill.seal_text(scim_id)))

    def get_id(self, employee_id: str, table: str = "ids") -> str | None:
        row = self.db.execute(_GET_ID[table], (self.key(employee_id),)).fetchone()
        return self.spill.open_text(row[1], table, row[0]) if row else None

    def unknown_managers(self) -> list[str]:
        """Managers of the batch with no SCIM id yet and not created in this run, sorted."""
        rows = self.db.execute(
            "SELECT min(d.seq), d.manager_s FROM desired d WHERE d.manager IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM ids i WHERE i.employee_id = d.manager) "
            "AND NOT EXISTS (SELECT 1 FROM matches m WHERE m.employee_id = d.manager "
            "AND m.creating = 1) GROUP BY d.manager"
        ).fetchall()
        return sorted(str(self.spill.open_text(blob, "desired", seq)) for seq, blob in rows)

    # -- creation waves ----------------------------------------------------------------------
    def add_create(self, seq: int, employee_id: str, manager: str | None) -> None:
        self.db.execute(
            "INSERT INTO waves VALUES (?, ?, ?, NULL)",
            (self.key(employee_id), seq, self.key(manager)),
        )

    def levels(self) -> int:
        """Number the creates by wave: managers before their reports; a reporting cycle is
        broken by putting what remains in one wave. Returns the number of waves."""
        level = 0
        db = self.db
        while db.execute("SELECT 1 FROM waves WHERE level IS NULL LIMIT 1").fetchone():
            db.execute("DROP TABLE IF EXISTS temp.remaining")
            db.execute(
                "CREATE TEMP TABLE remaining AS SELECT employee_id FROM waves WHERE level IS NULL"
            )
            db.execute("CREATE UNIQUE INDEX temp.remaining_id ON remaining (employee_id)")
            cursor = db.execute(
                "UPDATE waves SET level = ? WHERE level IS NULL AND (manager IS NULL OR NOT "
                "EXISTS (SELECT 1 FROM temp.remaining r WHERE r.employee_id = waves.manager))",
                (level,),
            )
            if cursor.rowcount == 0:  # a cycle: the rest goes together
                db.execute("UPDATE waves SET level = ? WHERE level IS NULL", (level,))
            level += 1
        db.execute("DROP TABLE IF EXISTS temp.remaining")
        return level
