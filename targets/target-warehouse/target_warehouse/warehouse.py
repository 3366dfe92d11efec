"""The DuckDB side of target-warehouse: tables from JSON schemas, batch upserts, drift.

A batch is written by the sink as newline-delimited JSON to a buffer in memory while records
arrive (one batch at a time: memory stays flat as input grows), then loaded in one
transaction:

1. DuckDB's JSON reader stages every column as text (``read_json``, vectorised: ~100x faster
   than ``executemany``);
2. rows whose value does not convert to its column's type (``TRY_CAST``), or whose key is
   null, are reported back to the sink with the column and the reason (never the value), and
   go to the dead-letter store;
3. the other rows are de-duplicated on the key properties (the last one in the stream wins),
   the table's rows with those keys are deleted and the new ones inserted (an upsert that
   needs no index, so key properties and columns may change between runs);
4. every row gets ``_loaded_at`` (the load's time, UTC);
5. with ``replace_by_parent``, a set of rows owned by one record (a response's answers) is
   replaced as a whole the first time the run sees that record (:meth:`Warehouse.load`).

Types come from the JSON schema (:func:`column_type`). A new property adds a column; a
property whose type changed widens its column (integer -> double, anything else -> text) so
old rows survive; a property that disappeared keeps its column (null for new rows). Every
change is logged: vendor drift is visible, never silent.
"""

# SQL here is built from identifiers quoted by quote() and literals quoted by _sql_str(); values
# travel as parameters or through the batch file, never inside the SQL text.
# ruff: noqa: S608

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

LOADED_AT = "_loaded_at"
LINE = "__hrsync_line"
SEP = chr(31)  # separates column and reason in the rejection query

logger = logging.getLogger("target_warehouse")

__all__ = ["LINE", "LOADED_AT", "Rejected", "Warehouse", "column_type", "quote"]


def quote(name: str) -> str:
    """A DuckDB identifier, quoted (any Unicode name works; quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _types(prop: Mapping[str, Any]) -> tuple[set[str], Mapping[str, Any]]:
    """Non-null JSON types of a property (``type`` list or ``anyOf``) and the sub-schema."""
    if "anyOf" in prop or "oneOf" in prop:
        found: set[str] = set()
        sub: Mapping[str, Any] = prop
        for option in prop.get("anyOf") or prop.get("oneOf") or []:
            kinds, inner = _types(option)
            if kinds:
                found |= kinds
                sub = inner
        return found, sub
    kind = prop.get("type")
    kinds = {kind} if isinstance(kind, str) else set(kind or [])
    kinds.discard("null")
    return kinds, prop


def column_type(prop: Mapping[str, Any]) -> str:
    """DuckDB column type of a JSON-schema property.

    string -> VARCHAR (format date -> DATE, date-time -> TIMESTAMPTZ, time -> TIME),
    integer -> BIGINT, number -> DOUBLE, boolean -> BOOLEAN, object/array -> JSON;
    integer-or-number -> DOUBLE; any other mix, or no type at all -> JSON.
    """
    kinds, sub = _types(prop)
    if kinds == {"string"}:
        return {"date-time": "TIMESTAMPTZ", "date": "DATE", "time": "TIME"}.get(
            str(sub.get("format")), "VARCHAR"
        )
    if kinds == {"integer"}:
        return "BIGINT"
    if kinds <= {"integer", "number"} and kinds:
        return "DOUBLE"
    if kinds == {"boolean"}:
        return "BOOLEAN"
    return "JSON"


#: information_schema spellings of the types column_type() uses
_ALIASES = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}

#: how a column may change type and keep its rows: (old, new) -> widened type
_WIDEN = {("BIGINT", "DOUBLE"): "DOUBLE", ("DOUBLE", "BIGINT"): "DOUBLE"}


@dataclass(frozen=True)
class Rejected:
    """A staged row that could not be loaded: its line in the batch file, column, reason."""

    line: int
    column: str
    reason: str


class Warehouse:
    """One DuckDB database file (a single writer: DuckDB locks the file while it is open)."""

    def __init__(self, path: str | Path, schema: str = "main") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.con = duckdb.connect(self.path)
        self._replaced: dict[str, str] = {}  # table -> temp table of parents replaced this run
        self.con.execute("SET TimeZone = 'UTC'")  # naive date-times are UTC
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")

    def close(self) -> None:
        self.con.close()

    def table(self, name: str) -> str:
        return f"{quote(self.schema)}.{quote(name)}"

    def columns(self, table: str) -> dict[str, str]:
        """Existing columns of a table (name -> DuckDB type), empty if it does not exist."""
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.schema, table],
        ).fetchall()
        return {str(n): _ALIASES.get(str(t), str(t)) for n, t in rows}

    def ensure_table(self, table: str, wanted: Mapping[str, str]) -> dict[str, str]:
        """Create the table, or evolve it to hold ``wanted`` columns; returns the columns."""
        have = self.columns(table)
        if not have:
            cols = ", ".join(f"{quote(c)} {t}" for c, t in wanted.items())
            sep = ", " if cols else ""
            self.con.execute(
                f"CREATE TABLE {self.table(table)} ({cols}{sep}{quote(LOADED_AT)} TIMESTAMPTZ)"
            )
            logger.info("created table %s (%d columns)", self.table(table), len(wanted))
            return {**wanted, LOADED_AT: "TIMESTAMPTZ"}
        lower = {c.casefold(): c for c in have}
        for col, kind in wanted.items():
            existing = lower.get(col.casefold())
            if existing is None:
                self.con.execute(f"ALTER TABLE {self.table(table)} ADD COLUMN {quote(col)} {kind}")
                logger.warning("table %s: new column %s %s", table, col, kind)
                have[col] = kind
                continue
            old = have[existing]
            if old == kind or old == "VARCHAR":
                continue  # text holds anything: keep it
            widened = _WIDEN.get((old, kind), "VARCHAR")
            if widened != old:
                self.con.execute(
                    f"ALTER TABLE {self.table(table)} ALTER COLUMN {quote(existing)} "
                    f"SET DATA TYPE {widened}"
                )
                logger.warning(
                    "table %s: column %s was %s, the schema now says %s: widened to %s",
                    table,
                    existing,
                    old,
                    kind,
                    widened,
                )
                have[existing] = widened
        gone = [c for c in have if c != LOADED_AT and c.casefold() not in _folded(wanted)]
        if gone:
            logger.warning(
                "table %s: columns no longer in the schema, kept (null for new rows): %s",
                table,
                ", ".join(gone),
            )
        return have

    def load(
        self,
        table: str,
        batch: Path | BinaryIO,
        columns: Mapping[str, str],
        keys: Sequence[str],
        parent: Sequence[str] = (),
    ) -> tuple[int, list[Rejected]]:
        """Upsert the rows of one NDJSON batch (a file, or bytes in memory); returns (rows
        written, rejected rows).

        ``parent``: columns naming the record that owns a set of rows (a survey response's
        answers). The first time this load sees a parent, every row the table holds for it is
        removed before the batch's rows go in: an answer the respondent removed does not stay.
        Parents already replaced earlier in this run are not cleared again (one response's
        answers may span two batches)."""
        target_cols = self.columns(table)
        folded = {c.casefold(): c for c in target_cols}
        # the table's spelling of each column (DuckDB names are case-insensitive)
        names = {c: folded.get(c.casefold(), c) for c in columns}
        spec = {LINE: "BIGINT", **dict.fromkeys(columns, "VARCHAR")}
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            if isinstance(batch, Path):
                source: str | BinaryIO = str(batch)
            else:
                batch.seek(0)  # DuckDB reads from where the stream is
                source = batch
            con.register(
                "hrsync_batch", con.read_json(source, format="newline_delimited", columns=spec)
            )
            try:
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE hrsync_stage AS SELECT * FROM hrsync_batch"
                )
            finally:
                con.unregister("hrsync_batch")
            rejected = self._rejected(columns, names, target_cols, keys)
            bad = {r.line for r in rejected}
            keep = ""  # every staged row, unless some were rejected
            if bad:
                con.execute("CREATE OR REPLACE TEMP TABLE hrsync_bad (line BIGINT)")
                con.executemany("INSERT INTO hrsync_bad VALUES (?)", [[n] for n in sorted(bad)])
                keep = f" WHERE {quote(LINE)} NOT IN (SELECT line FROM hrsync_bad)"
            select = ", ".join(
                f"CAST({quote(c)} AS {target_cols[names[c]]}) AS {quote(names[c])}" for c in columns
            )
            dedup = ""
            if keys:
                part = ", ".join(quote(k) for k in keys)
                dedup = (
                    f" QUALIFY row_number() OVER (PARTITION BY {part} "
                    f"ORDER BY {quote(LINE)} DESC) = 1"
                )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE hrsync_good AS SELECT "
                f"{select}{', ' if select else ''}? AS {quote(LOADED_AT)} FROM hrsync_stage"
                f"{keep}{dedup}",
                [datetime.now(UTC)],
            )
            if parent:
                self._replace_parents(table, [names[c] for c in parent])
            if keys:
                match = " AND ".join(f"t.{quote(names[k])} = g.{quote(names[k])}" for k in keys)
                con.execute(
                    f"DELETE FROM {self.table(table)} AS t USING hrsync_good AS g WHERE {match}"
                )
            out = [*(quote(names[c]) for c in columns), quote(LOADED_AT)]
            con.execute(
                f"INSERT INTO {self.table(table)} ({', '.join(out)}) "
                f"SELECT {', '.join(out)} FROM hrsync_good"
            )
            (written,) = con.execute("SELECT count(*) FROM hrsync_good").fetchone() or (0,)
            con.execute(
                "DROP TABLE hrsync_stage; DROP TABLE hrsync_good; DROP TABLE IF EXISTS hrsync_bad"
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(written), rejected

    def _replace_parents(self, table: str, parent: list[str]) -> None:
        """Delete the table's rows of the parents in hrsync_good not yet replaced this run."""
        seen = self._replaced.setdefault(table, f"hrsync_replaced_{len(self._replaced)}")
        cols = ", ".join(quote(c) for c in parent)
        con = self.con
        con.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {seen} AS SELECT {cols} FROM hrsync_good LIMIT 0"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE hrsync_new_parents AS SELECT DISTINCT {cols} "
            f"FROM hrsync_good EXCEPT SELECT {cols} FROM {seen}"
        )
        match = " AND ".join(f"t.{quote(c)} = n.{quote(c)}" for c in parent)
        con.execute(
            f"DELETE FROM {self.table(table)} AS t USING hrsync_new_parents AS n WHERE {match}"
        )
        con.execute(f"INSERT INTO {seen} SELECT {cols} FROM hrsync_new_parents")
        con.execute("DROP TABLE hrsync_new_parents")

    def _rejected(
        self,
        columns: Mapping[str, str],
        names: Mapping[str, str],
        target_cols: Mapping[str, str],
        keys: Sequence[str],
    ) -> list[Rejected]:
        """Staged rows with a null key or a value that does not convert to its column."""
        checks: list[str] = []
        for k in keys:
            checks.append(
                f"WHEN {quote(k)} IS NULL THEN {_sql_str(k + SEP + 'key property is null')}"
            )
        for c in columns:
            kind = target_cols[names[c]]
            if kind == "VARCHAR":
                continue
            checks.append(
                f"WHEN {quote(c)} IS NOT NULL AND TRY_CAST({quote(c)} AS {kind}) IS NULL "
                f"THEN {_sql_str(c + SEP + f'value does not convert to the column type {kind}')}"
            )
        if not checks:
            return []
        rows = self.con.execute(
            f"SELECT {quote(LINE)}, CASE {' '.join(checks)} END AS why FROM hrsync_stage "
            "WHERE why IS NOT NULL ORDER BY 1"
        ).fetchall()
        out = []
        for line, why in rows:
            column, _, reason = str(why).partition(SEP)
            out.append(Rejected(int(line), column, reason))
        return out


def _folded(names: Mapping[str, str]) -> set[str]:
    return {n.casefold() for n in names}


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
