"""The batch, the directory's accounts and the plan of one run, spilled to a private SQLite
file (hrsync.spill), so a million-person feed plans in flat memory.

Sealed (see hrsync.spill): people, accounts, logins, DNs and the clear employee ids handed
back (``*_s`` columns) are AES-GCM sealed; ``eid``, ``depends_on``, ``login`` and ``dnkey``
columns hold the run's keyed HMAC (the SQL only joins, looks up and keeps them unique by
equality; DN keys are compared whole, never by ancestry). The one personal value in clear is
``temp.newcomers.eid``: the employee ids of the people without an account, which the SQL
sorts (new logins are assigned in employee-id order, whatever the feed order); that table is
in SQLite's temporary database (an unlinked file that dies with the process), not in the spill
file. Positions, wave levels, flags and stream names are the other clear values. Below the
spill's memory budget all of it stays in memory, unsealed and never on disk; the ``KEYTEXT``
columns are the ones keyed when the spill moves to its file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any, NamedTuple

from hrsync import spill
from hrsync.spill import SpillDB
from target_ldap.naming import dn_key
from target_ldap.people import DesiredPerson

SCHEMA = """
CREATE TABLE people (
    eid KEYTEXT PRIMARY KEY, eid_s BLOB, seq INTEGER NOT NULL, stream TEXT, enabled INTEGER,
    manager KEYTEXT, person BLOB
);
CREATE UNIQUE INDEX people_seq ON people (seq);
CREATE TABLE accounts (
    n INTEGER PRIMARY KEY, eid KEYTEXT, eid_s BLOB, dnkey KEYTEXT, account BLOB
);
CREATE INDEX accounts_eid ON accounts (eid, n);
CREATE TABLE logins (login KEYTEXT PRIMARY KEY);
CREATE TABLE by_login (login KEYTEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE eids (eid KEYTEXT PRIMARY KEY, n INTEGER NOT NULL, accounts INTEGER NOT NULL);
CREATE TABLE holders (dnkey KEYTEXT PRIMARY KEY, eid KEYTEXT NOT NULL, eid_s BLOB NOT NULL);
CREATE TABLE placed (
    pseq INTEGER PRIMARY KEY, eid KEYTEXT NOT NULL UNIQUE, eid_s BLOB NOT NULL, account INTEGER,
    login_s BLOB, dn_s BLOB NOT NULL, dnkey KEYTEXT NOT NULL, dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX placed_dnkey ON placed (dnkey, pseq);
CREATE TABLE waves (
    eid KEYTEXT PRIMARY KEY, eid_s BLOB, seq INTEGER, depends_on KEYTEXT, depends_on_s BLOB,
    level INTEGER
);
CREATE TABLE final (eid KEYTEXT PRIMARY KEY, dnkey KEYTEXT, final_dn BLOB);
CREATE INDEX final_dnkey ON final (dnkey);
"""


class Placed(NamedTuple):
    """One placed person, as :meth:`PlanStore.placed_people` reads them back."""

    person: DesiredPerson
    login: str
    dn: str
    has_account: bool  # False: created in this run
    account: Any  # the entry (an Account) when the store has it; a rehire's is the alias
    manager: tuple[str, bool] | None  # the manager's placement: (DN, created in this run)


class PlanStore:
    """Tables of one run; used by the planning thread only."""

    def __init__(self) -> None:
        self.spill = SpillDB(SCHEMA, prefix="target-ldap-plan-")
        self.key = self.spill.key
        self._seq = 0
        self._accounts = 0
        self._pseq = 0
        self._by_login = 0  # rows offered to by_login (none: no lookup needed)
        self._duplicates = True  # an employee id on several entries (known after index())
        # rows written a chunk at a time (executemany), before anything reads their table
        self._placed: list[tuple[Any, ...]] = []
        self._newcomers: list[tuple[str, int]] = []
        self._creates: list[tuple[Any, ...]] = []
        # sorted by the clear employee id: kept in SQLite's temporary database (an unlinked
        # file, gone with the process), never in the spill file; seq is the person's row
        self.db.execute(
            "CREATE TEMP TABLE newcomers (rank INTEGER PRIMARY KEY, eid TEXT NOT NULL, seq INTEGER)"
        )

    @property
    def db(self) -> sqlite3.Connection:
        """The spill's connection (in memory, then the sealed file past the budget)."""
        return self.spill.db

    def close(self) -> None:
        self.spill.close()

    # -- the batch ---------------------------------------------------------------------------
    def add(self, person: DesiredPerson) -> None:
        """The latest record for an employee wins, and moves to the end of the batch."""
        self.spill.settle()
        self._seq += 1
        self.db.execute(
            "INSERT INTO people VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (eid) DO UPDATE SET "
            "seq = excluded.seq, stream = excluded.stream, enabled = excluded.enabled, "
            "manager = excluded.manager, person = excluded.person",
            (
                self.key(person.employee_id),
                self.spill.seal_text(person.employee_id),
                self._seq,
                person.stream,
                int(person.enabled),
                self.key(person.manager_employee_id),
                self.spill.dumps(person),
            ),
        )

    def person(self, eid: str) -> DesiredPerson | None:
        row = self.db.execute(
            "SELECT seq, person FROM people WHERE eid = ?", (self.key(eid),)
        ).fetchone()
        return self.spill.loads(row[1], "people", row[0]) if row else None

    def in_batch(self, eid: str) -> bool:
        row = self.db.execute("SELECT 1 FROM people WHERE eid = ?", (self.key(eid),)).fetchone()
        return row is not None

    def people(self) -> Iterator[list[DesiredPerson]]:
        """The batch in feed order (of each employee's latest record), a chunk at a time."""
        for rows in self.spill.chunks("SELECT seq, person FROM people WHERE {after} ORDER BY seq"):
            yield [self.spill.loads(blob, "people", seq) for seq, blob in rows]

    def people_accounts(self) -> Iterator[list[tuple[int, DesiredPerson, int | None, Any]]]:
        """The batch in feed order, each person with the account carrying their employee id
        when exactly one entry does (seq, person, account n, account; None, None otherwise):
        :meth:`people` and :meth:`account` in one read."""
        sql = (
            "SELECT p.seq, p.person, a.n, a.account FROM people p "
            "LEFT JOIN eids e ON e.eid = p.eid AND e.accounts = 1 "
            "LEFT JOIN accounts a ON a.n = e.n WHERE {after} ORDER BY p.seq"
        )
        loads = self.spill.loads
        for rows in self.spill.chunks(sql):
            yield [
                (
                    seq,
                    loads(blob, "people", seq),
                    n,
                    None if n is None else loads(account, "accounts", n),
                )
                for seq, blob, n, account in rows
            ]

    def without_account(self) -> Iterator[list[DesiredPerson]]:
        """Active people of the batch whose employee id no entry carries (rehire candidates),
        in feed order."""
        sql = (
            "SELECT p.seq, p.person FROM people p WHERE p.enabled = 1 AND NOT EXISTS "
            "(SELECT 1 FROM eids e WHERE e.eid = p.eid) AND {after} ORDER BY p.seq"
        )
        for rows in self.spill.chunks(sql):
            yield [self.spill.loads(blob, "people", seq) for seq, blob in rows]

    def batch(self) -> Iterator[tuple[str, str]]:
        sql = "SELECT seq, stream, eid_s FROM people WHERE {after} ORDER BY seq"
        for rows in self.spill.chunks(sql):
            for seq, stream, eid in rows:
                yield stream, str(self.spill.open_text(eid, "people", seq))

    # -- the directory -----------------------------------------------------------------------
    def add_account(self, eid: str | None, dnkey: str, account: Any) -> int:
        self.spill.settle()
        self._accounts += 1
        self.db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?)",
            (
                self._accounts,
                self.key(eid),
                self.spill.seal_text(eid),
                self.key(dnkey),
                self.spill.dumps(account),
            ),
        )
        return self._accounts

    def add_login(self, login: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO logins VALUES (?)", (self.key(login),))

    def claim_login(self, login: str) -> bool:
        """Take ``login`` if no one has it (one statement: :meth:`login_taken` then
        :meth:`add_login`)."""
        cursor = self.db.execute("INSERT OR IGNORE INTO logins VALUES (?)", (self.key(login),))
        return cursor.rowcount == 1

    def login_taken(self, login: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM logins WHERE login = ?", (self.key(login),)).fetchone()
            is not None
        )

    def index(self) -> None:
        """After the read: one row per employee id (with how many accounts carry it), the
        unique ones' logins and DNs."""
        self.db.execute(
            "INSERT INTO eids SELECT eid, min(n), count(*) FROM accounts WHERE eid IS NOT NULL "
            "GROUP BY eid"
        )
        (self._duplicates,) = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM eids WHERE accounts > 1)"
        ).fetchone()

    def unique_accounts(self) -> Iterator[list[tuple[int, str, Any]]]:
        """(n, employee id, account) of every employee id carried by exactly one entry, in
        the order the directory returned them."""
        sql = (
            "SELECT a.n, a.eid_s, a.account FROM accounts a JOIN eids e ON e.n = a.n "
            "WHERE e.accounts = 1 AND {after} ORDER BY a.n"
        )
        for rows in self.spill.chunks(sql):
            yield [
                (
                    n,
                    str(self.spill.open_text(eid, "accounts", n)),
                    self.spill.loads(blob, "accounts", n),
                )
                for n, eid, blob in rows
            ]

    def add_by_login(self, login: str, n: int) -> None:
        self._by_login += 1
        self.db.execute("INSERT OR IGNORE INTO by_login VALUES (?, ?)", (self.key(login), n))

    def add_holder(self, dnkey: str, eid: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO holders VALUES (?, ?, ?)",
            (self.key(dnkey), self.key(eid), self.spill.seal_text(eid)),
        )

    def holder(self, dnkey: str) -> str | None:
        row = self.db.execute(
            "SELECT rowid, eid_s FROM holders WHERE dnkey = ?", (self.key(dnkey),)
        ).fetchone()
        return self.spill.open_text(row[1], "holders", row[0]) if row else None

    def account(self, eid: str) -> Any:
        """The account of an employee id carried by exactly one entry (None otherwise)."""
        row = self.db.execute(
            "SELECT a.n, a.account FROM eids e JOIN accounts a ON a.n = e.n "
            "WHERE e.eid = ? AND e.accounts = 1",
            (self.key(eid),),
        ).fetchone()
        return self.spill.loads(row[1], "accounts", row[0]) if row else None

    def duplicates(self, eid: str) -> list[str]:
        """DNs of the entries carrying this employee id, when more than one does."""
        if not self._duplicates:  # no employee id is on more than one entry
            return []
        rows = self.db.execute(
            "SELECT a.n, a.account FROM accounts a JOIN eids e ON e.eid = a.eid "
            "WHERE a.eid = ? AND e.accounts > 1 ORDER BY a.n",
            (self.key(eid),),
        ).fetchall()
        return [self.spill.loads(blob, "accounts", n).dn for n, blob in rows]

    def by_login(self, login: str) -> Any:
        if not self._by_login:  # no unique entry has a login (an empty directory)
            return None
        row = self.db.execute(
            "SELECT a.n, a.account FROM by_login b JOIN accounts a ON a.n = b.n WHERE b.login = ?",
            (self.key(login),),
        ).fetchone()
        return self.spill.loads(row[1], "accounts", row[0]) if row else None

    # -- placement ---------------------------------------------------------------------------
    def add_newcomer(self, eid: str, seq: int) -> None:
        """An employee without an account (``seq``: their row in the batch)."""
        self._newcomers.append((eid, seq))
        if len(self._newcomers) >= spill.CHUNK:
            self._flush_newcomers()

    def _flush_newcomers(self) -> None:
        if self._newcomers:
            self.db.executemany(
                "INSERT INTO temp.newcomers (eid, seq) VALUES (?, ?)", self._newcomers
            )
            self._newcomers = []

    def newcomers(self) -> Iterator[list[DesiredPerson]]:
        """Employees without an account, in employee-id order (new logins resolve the same
        way whatever order the feed came in)."""
        self._flush_newcomers()
        self.db.execute("CREATE TEMP TABLE sorted (rank INTEGER PRIMARY KEY, seq INTEGER)")
        self.db.execute("INSERT INTO temp.sorted (seq) SELECT seq FROM temp.newcomers ORDER BY eid")
        loads = self.spill.loads
        for rows in self.spill.chunks(
            "SELECT s.rank, p.seq, p.person FROM temp.sorted s JOIN people p ON p.seq = s.seq "
            "WHERE {after} ORDER BY s.rank"
        ):
            yield [loads(blob, "people", seq) for _, seq, blob in rows]
        self.db.execute("DROP TABLE temp.sorted")

    def place(self, eid: str, account: int | None, login: str, dn: str, dnkey: str) -> None:
        """``account``: the entry's row (``accounts.n``), -1 for a rehire's linked account,
        None for an entry this run creates."""
        self._pseq += 1
        self._placed.append(
            (
                self._pseq,
                self.key(eid),
                self.spill.seal_text(eid),
                account,
                self.spill.seal_text(login),
                self.spill.seal_text(dn),
                self.key(dnkey),
            )
        )
        if len(self._placed) >= spill.CHUNK:
            self._flush_placed()

    def _flush_placed(self) -> None:
        if self._placed:
            self.db.executemany("INSERT INTO placed VALUES (?, ?, ?, ?, ?, ?, ?, 0)", self._placed)
            self._placed = []

    def placed_rows(self) -> Iterator[list[tuple[int, str, int | None, str, str, str]]]:
        """(pseq, eid, account n, login, dn, dnkey) of everyone placed and not dropped."""
        self._flush_placed()
        sql = (
            "SELECT pseq, eid_s, account, login_s, dn_s FROM placed "
            "WHERE dropped = 0 AND {after} ORDER BY pseq"
        )
        opened = self.spill.open_text
        for rows in self.spill.chunks(sql):
            placed = []
            for pseq, eid, account, login, dn in rows:
                clear_dn = str(opened(dn, "placed", pseq))
                placed.append(
                    (
                        pseq,
                        str(opened(eid, "placed", pseq)),
                        account,
                        str(opened(login, "placed", pseq)),
                        clear_dn,
                        dn_key(clear_dn),
                    )
                )
            yield placed

    def placed_people(self) -> Iterator[list[Placed]]:
        """Everyone placed and not dropped, in placement order, with their person, their
        account (None: created in this run; a rehire's linked account is the caller's) and
        their manager's placement (:meth:`placement`), in one read."""
        self._flush_placed()
        sql = (
            "SELECT p.pseq, p.login_s, p.dn_s, p.account, a.account, x.seq, x.person, "
            "m.pseq, m.dn_s, m.account IS NULL FROM placed p "
            "JOIN people x ON x.eid = p.eid LEFT JOIN accounts a ON a.n = p.account "
            "LEFT JOIN placed m ON m.eid = x.manager AND m.dropped = 0 "
            "WHERE p.dropped = 0 AND {after} ORDER BY p.pseq"
        )
        opened, loads = self.spill.open_text, self.spill.loads
        for rows in self.spill.chunks(sql):
            yield [
                Placed(
                    loads(person, "people", seq),
                    str(opened(login, "placed", pseq)),
                    str(opened(dn, "placed", pseq)),
                    n is not None,
                    None if blob is None else loads(blob, "accounts", n),
                    None if mseq is None else (str(opened(mdn, "placed", mseq)), bool(created)),
                )
                for pseq, login, dn, n, blob, seq, person, mseq, mdn, created in rows
            ]

    def dn_conflicts(self) -> Iterator[list[tuple[int, str, str, str]]]:
        """(pseq, eid, dn, dnkey) of the placed whose DN another placed person (earlier) or
        another employee's entry also has: the only ones :meth:`earlier_target` and
        :meth:`holder` can name someone else for."""
        self._flush_placed()
        sql = (
            "SELECT p.pseq, p.eid_s, p.dn_s FROM placed p WHERE p.dropped = 0 AND {after} AND ("
            "EXISTS (SELECT 1 FROM placed q WHERE q.dnkey = p.dnkey AND q.pseq < p.pseq) OR "
            "EXISTS (SELECT 1 FROM holders h WHERE h.dnkey = p.dnkey AND h.eid <> p.eid)) "
            "ORDER BY p.pseq"
        )
        opened = self.spill.open_text
        for rows in self.spill.chunks(sql):
            out = []
            for pseq, eid, dn in rows:
                clear_dn = str(opened(dn, "placed", pseq))
                out.append((pseq, str(opened(eid, "placed", pseq)), clear_dn, dn_key(clear_dn)))
            yield out

    def earlier_target(self, dnkey: str, pseq: int) -> str | None:
        self._flush_placed()
        row = self.db.execute(
            "SELECT pseq, eid_s FROM placed WHERE dnkey = ? AND pseq < ? AND dropped = 0 "
            "ORDER BY pseq LIMIT 1",
            (self.key(dnkey), pseq),
        ).fetchone()
        return self.spill.open_text(row[1], "placed", row[0]) if row else None

    def is_placed(self, eid: str) -> bool:
        self._flush_placed()
        return (
            self.db.execute(
                "SELECT 1 FROM placed WHERE eid = ? AND dropped = 0", (self.key(eid),)
            ).fetchone()
            is not None
        )

    def drop(self, pseq: int) -> None:
        self._flush_placed()
        self.db.execute("UPDATE placed SET dropped = 1 WHERE pseq = ?", (pseq,))

    def placement(self, eid: str) -> tuple[str, bool] | None:
        """(DN, created in this run) of a placed employee."""
        self._flush_placed()
        row = self.db.execute(
            "SELECT pseq, dn_s, account IS NULL FROM placed WHERE eid = ? AND dropped = 0",
            (self.key(eid),),
        ).fetchone()
        return (str(self.spill.open_text(row[1], "placed", row[0])), bool(row[2])) if row else None

    def account_by_n(self, n: int) -> Any:
        row = self.db.execute("SELECT account FROM accounts WHERE n = ?", (n,)).fetchone()
        return self.spill.loads(row[0], "accounts", n)

    # -- writing -----------------------------------------------------------------------------
    def add_create(self, seq: int, eid: str, depends_on: str | None) -> None:
        self._creates.append(
            (
                self.key(eid),
                self.spill.seal_text(eid),
                seq,
                self.key(depends_on),
                self.spill.seal_text(depends_on),
            )
        )
        if len(self._creates) >= spill.CHUNK:
            self._flush_creates()

    def _flush_creates(self) -> None:
        if self._creates:
            self.db.executemany("INSERT INTO waves VALUES (?, ?, ?, ?, ?, NULL)", self._creates)
            self._creates = []

    def levels(self) -> tuple[int, list[tuple[str, int, str | None]]]:
        """Number the creates by management depth among the new accounts (managers first).

        Returns the number of levels numbered and the creates left in reporting cycles
        (eid, seq, depends_on), which the caller breaks.
        """
        self._flush_creates()
        level = 0
        db = self.db
        while True:
            db.execute("DROP TABLE IF EXISTS temp.remaining")
            db.execute("CREATE TEMP TABLE remaining AS SELECT eid FROM waves WHERE level IS NULL")
            db.execute("CREATE UNIQUE INDEX temp.remaining_eid ON remaining (eid)")
            cursor = db.execute(
                "UPDATE waves SET level = ? WHERE level IS NULL AND (depends_on IS NULL OR NOT "
                "EXISTS (SELECT 1 FROM temp.remaining r WHERE r.eid = waves.depends_on))",
                (level,),
            )
            if cursor.rowcount <= 0:
                break
            level += 1
        db.execute("DROP TABLE IF EXISTS temp.remaining")
        rows = db.execute(
            "SELECT eid_s, seq, depends_on_s FROM waves WHERE level IS NULL ORDER BY seq"
        ).fetchall()
        opened = self.spill.open_text
        return level, [
            (str(opened(e, "waves", s)), int(s), opened(d, "waves", s)) for e, s, d in rows
        ]

    def set_level(self, eid: str, level: int) -> None:
        self.db.execute("UPDATE waves SET level = ? WHERE eid = ?", (level, self.key(eid)))

    def set_final(self, eid: str, dnkey: str, final_dn: str | None) -> None:
        self.set_finals([(eid, dnkey, final_dn)])

    def set_finals(self, rows: list[tuple[str, str, str | None]]) -> None:
        """(employee id, DN key of the planned DN, where the entry is now) of written changes."""
        key, seal = self.key, self.spill.seal_text
        self.db.executemany(
            "INSERT OR REPLACE INTO final VALUES (?, ?, ?)",
            [(key(eid), key(dnkey), seal(final_dn)) for eid, dnkey, final_dn in rows],
        )

    def _final(self, column: str, value: str) -> tuple[int, bytes | None] | None:
        return self.db.execute(
            f"SELECT rowid, final_dn FROM final WHERE {column} = ?",  # noqa: S608 - ours
            (self.key(value),),
        ).fetchone()

    def final_of(self, eid: str) -> str | None:
        row = self._final("eid", eid)
        return self.spill.open_text(row[1], "final", row[0]) if row else None

    def final_row(self, eid: str) -> tuple[bool, str | None]:
        """(this run changed the entry, where it is now: None when nowhere)."""
        row = self._final("eid", eid)
        return (True, self.spill.open_text(row[1], "final", row[0])) if row else (False, None)

    def final_by_dnkey(self, dnkey: str) -> str | None:
        row = self.db.execute(
            "SELECT rowid, final_dn FROM final WHERE dnkey = ? AND final_dn IS NOT NULL",
            (self.key(dnkey),),
        ).fetchone()
        return self.spill.open_text(row[1], "final", row[0]) if row else None
