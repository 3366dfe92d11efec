"""Reconciliation: what each destination holds, against what the HRIS says it should hold.

The ``reconcile`` Meltano job loads two kinds of tables into one DuckDB warehouse:

- the **expected** view of each destination: the HRIS records run through the destination's own
  map-hr profile (``hris_to_iam``, ``hris_to_lms``, ``hris_to_payroll``), so every value is the
  one the destination's job would send (tables ``hris_iam_users``, ``hris_lms_users``,
  ``hris_payroll_employees``), and the canonical workers (``hris_worker``: id, status and dates
  only) that say whether someone is in the HRIS at all;
- the **read-back** streams of the destinations (tap-scim ``scim_users``, tap-ldap
  ``ldap_people``, tap-moodle ``moodle_users`` / ``moodle_enrolments``, tap-gusto
  ``gusto_employees`` / ``gusto_terminations``).

:func:`reconcile` compares them per destination. Whether someone should have an active account
is decided by the one rule every target applies (``hrsync.identity.should_be_active``). Values
are never copied into a finding: a finding names the destination, the kind of drift, the HRIS
id, the destination's own record key and, for a difference, the field names.

What is compared is the profile's output field against the destination attribute the target
writes it to (:data:`DESTINATIONS`): names only, the values come from the profile engine.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hrsync.errors import RecordError
from hrsync.identity import parse_flag, should_be_active

#: exit statuses for monitors (``hrsync reconcile``)
EXIT_CLEAN = 0
EXIT_COULD_NOT_RUN = 2
EXIT_DRIFT = 3

ORPHANED = "orphaned"  # active there, terminated or absent in the HRIS
MISSING = "missing"  # active in the HRIS, no active account there
PAID_AFTER_LAST_DAY = "paid_after_last_day"  # payroll: still paid, last day has passed
ENROLLED_AFTER_LAST_DAY = "enrolled_after_last_day"  # LMS: active enrolment, last day passed
FIELD_DIFFERS = "field_differs"  # a field differs from its system of record
FINDINGS = (ORPHANED, MISSING, PAID_AFTER_LAST_DAY, ENROLLED_AFTER_LAST_DAY, FIELD_DIFFERS)

#: the canonical workers (id, status, dates), optional: they name why an account is orphaned
WORKERS = "hris_worker"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

Path_ = tuple[str, ...]  # a column, then keys inside its JSON value


class ReconcileError(Exception):
    """Reconciliation could not run (a table or column is missing, a record is unreadable)."""


@dataclasses.dataclass(frozen=True)
class Destination:
    """How one destination's read-back is compared with its expected view.

    ``fields`` maps a field of the profile's output (or a ``derived`` one) to the path of the
    attribute the target writes it to in the read-back table.
    """

    name: str
    title: str
    expected: str  # table of the profile's output
    expected_key: str  # its HRIS id column
    accounts: str  # read-back table of accounts
    account_key: Path_  # the destination's own record key
    hris_key: Path_  # where the destination holds the HRIS id
    active: Path_  # the account's active flag
    active_when: bool  # the flag's value that means active (Moodle/Gusto store the opposite)
    fields: Mapping[str, Path_]
    #: HRIS people whose last day has passed and who are still paid (payroll)
    paid_after_last_day: bool = False
    #: read-back table of enrolments (userid, courseid, status) keyed by the account key
    enrolments: str | None = None
    #: derived expected fields: name -> function of the expected record
    derived: Mapping[str, Callable[[Mapping[str, Any]], Any]] = dataclasses.field(
        default_factory=dict
    )
    #: only expected records that pass this are owed an account (e.g. a login to create one)
    owed: Callable[[Mapping[str, Any]], bool] | None = None
    #: the destination's own accounts that no HRIS manages (by account key)
    unmanaged: frozenset[str] = frozenset()


def _titles(rec: Mapping[str, Any]) -> list[str]:
    """target-ldap (OpenLDAP mode) writes every position's title to the multi-valued title."""
    values = [rec.get("title")]
    for pos in _json(rec.get("positions")) or []:
        if isinstance(pos, Mapping):
            values.append(pos.get("title"))
    return [str(v) for v in values if v not in (None, "")]


DESTINATIONS: dict[str, Destination] = {
    "scim": Destination(
        name="scim",
        title="SCIM directory",
        expected="hris_iam_users",
        expected_key="employee_id",
        accounts="scim_users",
        account_key=("id",),
        hris_key=("externalId",),
        active=("active",),
        active_when=True,
        fields={
            "user_name": ("userName",),
            "given_name": ("name", "givenName"),
            "family_name": ("name", "familyName"),
            "title": ("title",),
            "department": (ENTERPRISE, "department"),
            "employee_number": (ENTERPRISE, "employeeNumber"),
        },
    ),
    "ldap": Destination(
        name="ldap",
        title="LDAP directory",
        expected="hris_iam_users",
        expected_key="employee_id",
        accounts="ldap_people",
        account_key=("dn",),
        hris_key=("employee_id",),  # tap-ldap: the target's employee id attribute
        active=("enabled",),
        active_when=True,
        fields={
            "given_name": ("givenName",),
            "family_name": ("sn",),
            "work_email": ("mail",),
            "titles": ("title",),
        },
        derived={"titles": _titles},
    ),
    "moodle": Destination(
        name="moodle",
        title="Moodle",
        expected="hris_lms_users",
        expected_key="worker_id",
        accounts="moodle_users",
        account_key=("id",),
        hris_key=("idnumber",),
        active=("suspended",),
        active_when=False,
        fields={
            "first_name": ("firstname",),
            "last_name": ("lastname",),
            "email": ("email",),
            "department": ("department",),
        },
        enrolments="moodle_enrolments",
        # every Moodle site has them from its installation: the guest user and the first admin
        unmanaged=frozenset({"1", "2"}),
        # target-moodle makes no account without a work e-mail (the login is made from it)
        owed=lambda rec: rec.get("email") not in (None, ""),
    ),
    "gusto": Destination(
        name="gusto",
        title="Gusto payroll",
        expected="hris_payroll_employees",
        expected_key="employee_id",
        accounts="gusto_employees",
        account_key=("uuid",),
        hris_key=("hris_employee_id",),
        active=("terminated",),
        active_when=False,
        fields={
            "first_name": ("first_name",),
            "last_name": ("last_name",),
        },
        paid_after_last_day=True,
    ),
}


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    destination: str
    finding: str
    hris_id: str  # empty: the account names no HRIS id
    account: str  # the destination's record key; empty for a missing account
    detail: str = ""  # field names, or the course of an enrolment

    def row(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    as_of: dt.date
    destinations: list[str]
    findings: list[Finding]
    checked: dict[str, int]  # destination -> accounts read back

    @property
    def drift(self) -> bool:
        return bool(self.findings)

    def counts(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {d: Counter() for d in self.destinations}
        for f in self.findings:
            out[f.destination][f.finding] += 1
        return out


# --- reading ----------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _get(row: Mapping[str, Any], path: Path_) -> Any:
    """The value at ``path``: a column (case-insensitive, as DuckDB names are), then JSON keys."""
    value: Any = row
    for i, step in enumerate(path):
        if not isinstance(value, Mapping):
            return None
        if step in value:
            value = value[step]
        else:
            folded = step.casefold()
            value = next((v for k, v in value.items() if k.casefold() == folded), None)
        if i == 0:
            value = _json(value)
    return value


class Warehouse:
    """The reconcile warehouse (DuckDB), read only."""

    def __init__(self, database: Path, schema: str = "main") -> None:
        import duckdb

        if not database.exists():
            raise ReconcileError(f"no warehouse at {database}: run the reconcile job first")
        self.schema = schema
        self.conn = duckdb.connect(str(database), read_only=True)
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
        ).fetchall()
        self.tables = {str(r[0]).casefold(): str(r[0]) for r in rows}

    def close(self) -> None:
        self.conn.close()

    def has(self, table: str) -> bool:
        return table.casefold() in self.tables

    def columns(self, table: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [self.schema, self.tables[table.casefold()]],
        ).fetchall()
        return {str(r[0]).casefold() for r in rows}

    def rows(self, table: str, needed: Iterable[str], *, what: str) -> Iterable[dict[str, Any]]:
        if not self.has(table):
            raise ReconcileError(
                f"table {self.schema}.{table} is not in the warehouse ({what}): did the "
                "reconcile job load it?"
            )
        have = self.columns(table)
        absent = sorted({c for c in needed if c.casefold() not in have})
        if absent:
            raise ReconcileError(
                f"table {self.schema}.{table} ({what}) has no column {', '.join(absent)}"
            )
        name = self.tables[table.casefold()].replace('"', '""')
        cur = self.conn.execute(f'SELECT * FROM "{self.schema}"."{name}"')  # noqa: S608
        cols = [d[0] for d in cur.description]
        while batch := cur.fetchmany(10_000):
            for values in batch:
                yield dict(zip(cols, values, strict=True))


# --- comparing --------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    """Values as a destination stores them: trimmed text, a multi-valued attribute as a set
    (case kept), empty and absent alike."""
    value = _json(value)
    if isinstance(value, list | tuple | set):
        items = {str(v).strip() for v in value if v not in (None, "")}
        items.discard("")
        if len(items) == 1:
            return next(iter(items))
        return frozenset(items) or None
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    return text or None


def _key(value: Any) -> str:
    value = _norm(value)
    if value is None:
        return ""
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)


def _last_day_passed(rec: Mapping[str, Any], today: dt.date, *, stream: str, key: str) -> bool:
    return not should_be_active(rec, today, stream=stream, key=key)


def compare(
    dest: Destination,
    expected: Iterable[Mapping[str, Any]],
    accounts: Iterable[Mapping[str, Any]],
    *,
    today: dt.date,
    enrolments: Iterable[Mapping[str, Any]] = (),
    workers: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """The findings of one destination (see the module's docstring). ``workers`` (canonical
    workers by id) only refines why an orphaned account's owner is not expected there."""

    def _absent(hris_id: str) -> str:
        worker = (workers or {}).get(hris_id) if hris_id else None
        if worker is None:
            return "not in the HRIS" if hris_id else "no HRIS id"
        if _last_day_passed(worker, today, stream="worker", key=hris_id):
            return "terminated in the HRIS"
        return "not owed an account by the profile"

    want: dict[str, Mapping[str, Any]] = {}
    for rec in expected:
        key = _key(rec.get(dest.expected_key))
        if key:
            want[key] = rec
    findings: list[Finding] = []
    seen: set[str] = set()
    active_accounts: dict[str, str] = {}  # account key -> HRIS id, accounts that are active
    for acc in accounts:
        account = _key(_get(acc, dest.account_key))
        if account in dest.unmanaged:
            continue
        hris_id = _key(_get(acc, dest.hris_key))
        flag = _get(acc, dest.active)
        # a missing flag is not "inactive" (RFC 7643 for SCIM; Moodle leaves out empty fields)
        active = True if flag is None else parse_flag(flag) == dest.active_when
        expected_rec = want.get(hris_id) if hris_id else None
        if hris_id:
            seen.add(hris_id)
        if active:
            active_accounts[account] = hris_id
        if expected_rec is None:
            if active:
                findings.append(Finding(dest.name, ORPHANED, hris_id, account, _absent(hris_id)))
            continue
        rec = expected_rec
        try:
            ended = _last_day_passed(rec, today, stream=dest.expected, key=hris_id)
        except RecordError as exc:
            raise ReconcileError(str(exc)) from exc
        if active and ended:
            kind = PAID_AFTER_LAST_DAY if dest.paid_after_last_day else ORPHANED
            findings.append(Finding(dest.name, kind, hris_id, account, "last day has passed"))
            continue
        if not active and not ended:
            if dest.owed is None or dest.owed(rec):
                findings.append(Finding(dest.name, MISSING, hris_id, account, "account inactive"))
            continue
        if not active:
            continue
        differ = []
        for field, path in dest.fields.items():
            getter = dest.derived.get(field)
            expected_value = getter(rec) if getter else rec.get(field)
            if _norm(expected_value) != _norm(_get(acc, path)):
                differ.append(field)
        if differ:
            findings.append(Finding(dest.name, FIELD_DIFFERS, hris_id, account, ",".join(differ)))
    for key, rec in want.items():
        if key in seen:
            continue
        try:
            owed = not _last_day_passed(rec, today, stream=dest.expected, key=key)
        except RecordError as exc:
            raise ReconcileError(str(exc)) from exc
        if owed and (dest.owed is None or dest.owed(rec)):
            findings.append(Finding(dest.name, MISSING, key, "", "no account"))
    if dest.enrolments is not None:
        for row in enrolments:
            if str(row.get("status") or "").lower() != "active":
                continue
            account = _key(row.get("userid"))
            hris_id = active_accounts.get(account) or ""
            if not hris_id or hris_id not in want:
                continue  # an orphaned account is reported once, as an account
            if _last_day_passed(want[hris_id], today, stream=dest.expected, key=hris_id):
                course = _key(row.get("courseid"))
                findings.append(
                    Finding(
                        dest.name, ENROLLED_AFTER_LAST_DAY, hris_id, account, f"course {course}"
                    )
                )
    return sorted(findings)


def reconcile(
    database: Path,
    *,
    destinations: Sequence[str] | None = None,
    today: dt.date | None = None,
    schema: str = "main",
) -> Result:
    """Compare every destination (or those named) in the warehouse at ``database``."""
    names = list(destinations or DESTINATIONS)
    unknown = [n for n in names if n not in DESTINATIONS]
    if unknown:
        raise ReconcileError(
            f"no destination {', '.join(unknown)} (known: {', '.join(DESTINATIONS)})"
        )
    today = today or dt.datetime.now(dt.UTC).date()
    wh = Warehouse(database, schema)
    try:
        findings: list[Finding] = []
        checked: dict[str, int] = {}
        workers: dict[str, dict[str, Any]] | None = None
        if wh.has(WORKERS):
            cols = ["id", "employment_status", "hire_date", "termination_date"]
            workers = {_key(r["id"]): r for r in wh.rows(WORKERS, cols, what="canonical workers")}
        for name in names:
            dest = DESTINATIONS[name]
            expected_cols = [dest.expected_key, "employment_status", "termination_date"] + [
                f for f in dest.fields if f not in dest.derived
            ]
            expected = list(
                wh.rows(dest.expected, expected_cols, what=f"expected view of {dest.title}")
            )
            needed = {p[0] for p in (dest.account_key, dest.hris_key, dest.active)}
            needed |= {p[0] for p in dest.fields.values()}
            accounts = list(wh.rows(dest.accounts, needed, what=f"read-back of {dest.title}"))
            checked[name] = len(accounts)
            enrolments: list[dict[str, Any]] = []
            if dest.enrolments is not None:
                enrolments = list(
                    wh.rows(
                        dest.enrolments,
                        ["userid", "courseid", "status"],
                        what=f"enrolments read back from {dest.title}",
                    )
                )
            findings += compare(
                dest, expected, accounts, today=today, enrolments=enrolments, workers=workers
            )
        return Result(as_of=today, destinations=names, findings=findings, checked=checked)
    finally:
        wh.close()


# --- output -----------------------------------------------------------------------------------

CSV_FIELDS = ("destination", "finding", "hris_id", "account", "detail")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """OWASP CSV injection: a cell a spreadsheet would read as a formula is quoted."""
    return "'" + value if value.startswith(_FORMULA) else value


def to_csv(result: Result) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for f in result.findings:
        writer.writerow({k: _cell(v) for k, v in f.row().items()})
    return buf.getvalue()


def _md(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("\n", " ")


def to_markdown(result: Result, *, limit: int = 200) -> str:
    counts = result.counts()
    lines = [
        f"# Reconciliation {result.as_of.isoformat()}",
        "",
        "Destinations against the HRIS (as each destination's map-hr profile maps it). "
        + ("Drift found." if result.drift else "No drift."),
        "",
        "| destination | accounts read | " + " | ".join(FINDINGS) + " |",
        "|---|---:|" + "---:|" * len(FINDINGS),
    ]
    for name in result.destinations:
        cells = [str(counts[name][k]) for k in FINDINGS]
        lines.append(f"| {name} | {result.checked.get(name, 0)} | " + " | ".join(cells) + " |")
    if result.findings:
        lines += [
            "",
            "| destination | finding | HRIS id | account | detail |",
            "|---|---|---|---|---|",
        ]
        for f in result.findings[:limit]:
            lines.append(
                f"| {f.destination} | {f.finding} | {_md(f.hris_id)} | {_md(f.account)} | "
                f"{_md(f.detail)} |"
            )
        if len(result.findings) > limit:
            lines.append(f"\n{len(result.findings) - limit} more finding(s): see the CSV.")
    return "\n".join(lines) + "\n"


def write_outputs(result: Result, out_dir: Path) -> list[Path]:
    """``reconcile-<date>.md`` and ``.csv`` (0600: they name accounts); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"reconcile-{result.as_of.isoformat()}"
    written = []
    for suffix, text in ((".md", to_markdown(result)), (".csv", to_csv(result))):
        path = stem.with_suffix(suffix)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
