"""Engagement scores by segment, from the warehouse, with a minimum group size.

Scores (over one survey's completed responses):

* **favourable %**: of all answers to 5-point Likert items (strongly disagree .. strongly
  agree), the share that are 4 or 5, in percent (items pooled; a respondent who skipped an item
  just has fewer answers). Its *contributors* are the respondents with at least one answer.
* **eNPS**: on the 0-10 "would you recommend" item, % promoters (9-10) minus % detractors
  (0-6), from -100 to 100. Its contributors are the respondents who answered it.

Segments: ``department``, ``tenure_band``, ``location``, ``manager``, one or combined
(``department,tenure_band``). A respondent whose id is not in the HRIS is kept, *unlinked*,
and counted: in the overall row, and as the segment ``(unlinked)``; a missing value is
``(not recorded)``. The tenure band is the time from the hire month to the response's month.

Nobody is identifiable (``min_group``, default 5):

1. A segment with fewer respondents than ``min_group`` is never shown: it is merged into an
   ``Other`` bucket; if that bucket is still too small, the smallest shown segments join it
   until it is big enough (so no difference "total minus the shown rows" is a small group: the
   rows always partition the respondents and every row has at least ``min_group``). If even all
   respondents together are too few, nothing is shown.
2. A score is shown only if at least ``min_group`` respondents contributed to it; if the
   contributors of the hidden cells of one column add up to fewer than ``min_group``, the
   smallest shown cells are hidden too (complementary suppression), so the overall score minus
   the shown ones never reveals a small group.
3. Combined segments are built as a refinement of their first dimensions: ``department,location``
   splits each *shown* department row of the ``department`` report (which it computes the same
   way) and merges small cells into ``<department> · Other``; the ``Other`` of the coarser report
   stays one row. Rules 1 and 2 then hold within each parent too, and the cells of a parent whose
   score is hidden stay hidden, so comparing the two reports reveals no small group either.
   Reports that share a dimension without one being a prefix of the other
   (``department,location`` and ``location``) are refused in one run: they would cut the same
   people two incompatible ways. Cuts with no dimension in common (``department`` and
   ``location``) are allowed, but not proof against outside knowledge: someone who knows that
   every Sales respondent works in Berlin learns the other Berliners' scores from Berlin minus
   Sales. That, and comparing separate runs, is the operator's part: publish a fixed, small set
   of cuts (nested ones are safe together).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

DIMENSIONS = ("department", "tenure_band", "location", "manager")
DEFAULT_MIN_GROUP = 5
OTHER = "Other"
WHOLE = "(all)"
UNLINKED = "(unlinked)"
NOT_RECORDED = "(not recorded)"
ALL = "All respondents"
SEP = " · "

#: tenure bands by whole months since the hire month: (upper bound exclusive, label)
TENURE_BANDS: tuple[tuple[int | None, str], ...] = (
    (12, "< 1 year"),
    (24, "1-2 years"),
    (60, "2-5 years"),
    (120, "5-10 years"),
    (None, "10+ years"),
)


class ReportError(ValueError):
    """A report that cannot be made as asked (bad dimension, incompatible cuts, no data)."""


@dataclass(frozen=True)
class Respondent:
    """One completed response: its segment values and its answers."""

    id: str
    segments: Mapping[str, str]  # dimension -> label (never None)
    likert: Sequence[int] = ()  # 1..5 answers
    nps: int | None = None  # 0..10
    linked: bool = True


@dataclass
class Row:
    labels: tuple[str, ...]
    members: list[Respondent]
    other: bool = False  # an Other bucket (carried unchanged into finer reports)
    favourable: float | None = None
    enps: float | None = None
    likert_n: int = 0  # contributors to favourable %
    nps_n: int = 0  # contributors to eNPS

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def label(self) -> str:
        return SEP.join(self.labels)


@dataclass
class Report:
    dimensions: tuple[str, ...]
    min_group: int
    total: Row  # the overall row (scores shown or hidden like any cell)
    rows: list[Row] = field(default_factory=list)  # empty when even the total is too small
    unlinked: int = 0
    survey: str = ""

    @property
    def suppressed(self) -> bool:
        return not self.rows


def tenure_band(hire_month: str | None, answered: date | datetime | None) -> str:
    """Band of the months from ``YYYY-MM`` to the answer's month (a future hire: < 1 year)."""
    if not hire_month or answered is None:
        return NOT_RECORDED
    try:
        year, month = (int(p) for p in str(hire_month)[:7].split("-"))
    except ValueError:
        return NOT_RECORDED
    months = (answered.year - year) * 12 + (answered.month - month)
    for bound, label in TENURE_BANDS:
        if bound is None or months < bound:
            return label
    return TENURE_BANDS[-1][1]


def parse_dimensions(spec: str) -> tuple[str, ...]:
    """``"department,tenure_band"`` -> ("department", "tenure_band"), checked."""
    dims = tuple(d.strip() for d in spec.split(",") if d.strip())
    if not dims:
        raise ReportError("--by needs at least one dimension")
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ReportError(
            f"unknown segment dimension(s) {', '.join(unknown)}; "
            f"choose from {', '.join(DIMENSIONS)}"
        )
    if len(set(dims)) != len(dims):
        raise ReportError(f"--by {spec}: a dimension appears twice")
    return dims


def check_compatible(cuts: Sequence[tuple[str, ...]]) -> None:
    """Refuse two cuts that share a dimension unless one is a prefix of the other."""
    for i, a in enumerate(cuts):
        for b in cuts[i + 1 :]:
            short, long = sorted((a, b), key=len)
            if set(a) & set(b) and long[: len(short)] != short:
                if set(short) <= set(long):
                    fixed = (*short, *(d for d in long if d not in short))
                    hint = f"use --by {','.join(fixed)} with --by {','.join(short)}"
                else:
                    hint = "publish one of them"
                raise ReportError(
                    f"--by {','.join(a)} and --by {','.join(b)} cut the same people two "
                    f"incompatible ways (comparing them could single out a small group): {hint}"
                )


# --- the computation ---------------------------------------------------------------------------


def _scores(row: Row) -> None:
    answers = [a for r in row.members for a in r.likert]
    row.likert_n = sum(1 for r in row.members if r.likert)
    row.favourable = 100.0 * sum(1 for a in answers if a >= 4) / len(answers) if answers else None
    nps = [r.nps for r in row.members if r.nps is not None]
    row.nps_n = len(nps)
    if nps:
        promoters = sum(1 for s in nps if s >= 9)
        detractors = sum(1 for s in nps if s <= 6)
        row.enps = 100.0 * (promoters - detractors) / len(nps)
    else:
        row.enps = None


def _merge(parent: Row, dim: str, k: int) -> list[Row]:
    """Split a shown parent row by ``dim``; small groups go to one Other bucket of >= k."""
    groups: dict[str, list[Respondent]] = {}
    for r in parent.members:
        groups.setdefault(r.segments.get(dim) or NOT_RECORDED, []).append(r)
    shown = sorted(
        ((label, members) for label, members in groups.items() if len(members) >= k),
        key=lambda g: (len(g[1]), g[0]),
    )
    other = [r for members in groups.values() if len(members) < k for r in members]
    while other and len(other) < k and shown:
        _label, members = shown.pop(0)  # the smallest shown group joins the bucket
        other.extend(members)
    rows = [Row((*parent.labels, label), members) for label, members in shown]
    rows.sort(key=lambda row: row.labels)
    if other:
        # a parent whose every group is too small stays whole: "Sales · (all)"
        label = WHOLE if not rows and parent.labels else OTHER
        rows.append(Row((*parent.labels, label), other, other=True))
    return rows


def _hide_column(siblings: list[Row], column: str, k: int, parent_hidden: bool) -> None:
    """Hide a score column's small cells, and enough others that the hidden ones sum to >= k."""
    count = f"{'likert' if column == 'favourable' else 'nps'}_n"
    if parent_hidden:
        for row in siblings:
            setattr(row, column, None)
        return
    hidden = [r for r in siblings if getattr(r, count) < k or getattr(r, column) is None]
    hidden_ids = {id(r) for r in hidden}
    shown = sorted(
        (r for r in siblings if id(r) not in hidden_ids),
        key=lambda r: (getattr(r, count), r.labels),
    )
    hidden_n = sum(getattr(r, count) for r in hidden)
    while 0 < hidden_n < k and shown:
        extra = shown.pop(0)
        hidden.append(extra)
        hidden_n += getattr(extra, count)
    for row in hidden:
        setattr(row, column, None)


def segment_report(
    respondents: Iterable[Respondent],
    dimensions: Sequence[str],
    min_group: int = DEFAULT_MIN_GROUP,
    survey: str = "",
) -> Report:
    """The report for one cut (see the module docstring for the rules)."""
    if min_group < 1:
        raise ReportError("the minimum group size must be at least 1")
    people = list(respondents)
    total = Row((ALL,), people)
    _scores(total)
    report = Report(
        tuple(dimensions), min_group, total, unlinked=sum(1 for r in people if not r.linked)
    )
    report.survey = survey
    if total.n < min_group:
        total.favourable = total.enps = None
        return report
    for column, count in (("favourable", "likert_n"), ("enps", "nps_n")):
        if getattr(total, count) < min_group:
            setattr(total, column, None)
    level: list[Row] = [Row((), people)]
    hidden_parent: dict[int, tuple[bool, bool]] = {
        id(level[0]): (total.favourable is None, total.enps is None)
    }
    for depth, dim in enumerate(dimensions):
        next_level: list[Row] = []
        for parent in level:
            if parent.other and depth > 0:
                carried = Row((*parent.labels, ""), parent.members, other=True)
                carried.favourable, carried.enps = parent.favourable, parent.enps
                carried.likert_n, carried.nps_n = parent.likert_n, parent.nps_n
                hidden_parent[id(carried)] = (True, True)  # nothing below it: decided already
                next_level.append(carried)
                continue
            children = _merge(parent, dim, min_group)
            for child in children:
                _scores(child)
            fav_hidden, enps_hidden = hidden_parent[id(parent)]
            _hide_column(children, "favourable", min_group, fav_hidden)
            _hide_column(children, "enps", min_group, enps_hidden)
            for child in children:
                hidden_parent[id(child)] = (child.favourable is None, child.enps is None)
            next_level.extend(children)
        level = next_level
    for row in level:
        # an Other carried down from a coarser cut keeps its one label, not empty padding
        row.labels = tuple(label for label in row.labels if label) or (OTHER,)
    report.rows = level
    return report


# --- output ------------------------------------------------------------------------------------


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.0f}" if signed else f"{value:.0f}%"


def table_rows(report: Report) -> list[dict[str, Any]]:
    """The report as plain rows (segment, respondents, scores; hidden scores are None)."""
    out = [
        {
            "segment": row.label,
            "respondents": row.n,
            "favourable_pct": None if row.favourable is None else round(row.favourable, 1),
            "enps": None if row.enps is None else round(row.enps, 1),
        }
        for row in report.rows
    ]
    if report.rows:
        t = report.total
        out.append(
            {
                "segment": ALL,
                "respondents": t.n,
                "favourable_pct": None if t.favourable is None else round(t.favourable, 1),
                "enps": None if t.enps is None else round(t.enps, 1),
            }
        )
    return out


def to_markdown(report: Report) -> str:
    title = f"Engagement by {' and '.join(report.dimensions)}"
    if report.survey:
        title += f" — {report.survey}"
    lines = [f"### {title}", ""]
    if report.suppressed:
        lines.append(
            f"Fewer than {report.min_group} respondents: nothing is shown (minimum group size)."
        )
        return "\n".join(lines) + "\n"
    lines += [
        "| segment | respondents | favourable | eNPS |",
        "|---|---:|---:|---:|",
    ]
    for row in [*report.rows, report.total]:
        label = row.label.replace("|", "\\|")
        lines.append(
            f"| {label} | {row.n} | {_fmt(row.favourable)} | {_fmt(row.enps, signed=True)} |"
        )
    lines += [
        "",
        f"Minimum group size {report.min_group}: smaller segments are merged into Other; "
        "— = too few answers to show. "
        f"Unlinked respondents (not found in the HRIS): {report.unlinked}.",
    ]
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["segment", "respondents", "favourable_pct", "enps"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(table_rows(report))
    return buf.getvalue()


def to_png(report: Report, path: Path) -> None:
    """Horizontal bars of favourable % per segment, eNPS written beside each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [*report.rows, report.total] if report.rows else []
    fig, ax = plt.subplots(figsize=(8, max(2.0, 0.45 * len(rows) + 1.2)))
    try:
        if not rows:
            ax.text(0.5, 0.5, f"fewer than {report.min_group} respondents", ha="center")
            ax.axis("off")
        else:
            labels = [f"{r.label} (n={r.n})" for r in rows][::-1]
            values = [r.favourable or 0.0 for r in rows][::-1]
            colours = ["#9aa5b1" if r.favourable is None else "#2f6f9f" for r in rows][::-1]
            bars = ax.barh(labels, values, color=colours)
            for bar, row in zip(bars, rows[::-1], strict=True):
                text = f"{_fmt(row.favourable)}  eNPS {_fmt(row.enps, signed=True)}"
                ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, text,
                        va="center", fontsize=8)  # fmt: skip
            ax.set_xlim(0, 120)
            ax.set_xlabel("favourable % (answers 4-5 of 5)")
        ax.set_title(
            f"Engagement by {' and '.join(report.dimensions)} (min group {report.min_group})"
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def write_outputs(reports: Sequence[Report], out_dir: Path) -> list[Path]:
    """``engagement-<cut>.md/.csv/.png`` per report; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for report in reports:
        stem = out_dir / f"engagement-{'-'.join(report.dimensions)}"
        md, csv_path, png = (stem.with_suffix(s) for s in (".md", ".csv", ".png"))
        md.write_text(to_markdown(report), encoding="utf-8")
        csv_path.write_text(to_csv(report), encoding="utf-8")
        to_png(report, png)
        written += [md, csv_path, png]
    return written


# --- reading the warehouse ---------------------------------------------------------------------

#: the tables the survey-to-analytics job loads (map-hr profiles hris_to_analytics and
#: survey_to_analytics): employees(employee_key, email_key, department, location, manager_key,
#: hire_month); survey_responses(response_id, survey_id, employee_key, email_key,
#: response_status, date_modified); survey_questions(survey_id, question_id, display_type,
#: choices JSON); survey_answers(response_id, survey_id, question_id, choice_position).
#: A question with 5 options is a Likert item (position 1-5); one with 11 options, or shown as
#: NPS, is the eNPS item (position 1-11 = score 0-10); other questions are not scored.
LIKERT_CHOICES = 5
NPS_CHOICES = 11

_RESPONDENTS_SQL = """
WITH r AS (
    SELECT r.response_id, r.date_modified AS answered_at,
           coalesce(e1.employee_key, e2.employee_key) AS employee,
           coalesce(e1.department, e2.department) AS department,
           coalesce(e1.location, e2.location) AS location,
           coalesce(e1.manager_key, e2.manager_key) AS manager_key,
           coalesce(e1.hire_month, e2.hire_month) AS hire_month
    FROM {schema}.survey_responses r
    LEFT JOIN {schema}.employees e1 ON e1.employee_key = r.employee_key
    LEFT JOIN {schema}.employees e2
           ON e1.employee_key IS NULL AND r.email_key IS NOT NULL AND e2.email_key = r.email_key
    WHERE r.survey_id = $survey AND coalesce(r.response_status, 'completed') = 'completed'
)
SELECT * FROM r
-- one response per linked employee (the latest); unlinked responses all count
QUALIFY employee IS NULL
     OR row_number() OVER (PARTITION BY employee ORDER BY answered_at DESC, response_id DESC) = 1
"""

_SCORES_SQL = """
WITH q AS (
    SELECT question_id,
           CASE WHEN display_type = 'nps' OR json_array_length(choices) = {nps} THEN 'nps'
                WHEN json_array_length(choices) = {likert} THEN 'likert' END AS kind
    FROM {schema}.survey_questions
    WHERE survey_id = $survey
)
SELECT a.response_id, q.kind, a.choice_position
FROM {schema}.survey_answers a
JOIN q ON q.question_id = a.question_id
WHERE a.survey_id = $survey AND q.kind IS NOT NULL AND a.choice_position IS NOT NULL
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def latest_survey(con: Any, schema: str = "main") -> tuple[str, str]:
    """(survey id, title) of the survey with the latest completed response."""
    schema = _ident(schema)
    row = con.execute(
        f"SELECT r.survey_id, coalesce(s.title, r.survey_id) FROM {schema}.survey_responses r "  # noqa: S608
        f"LEFT JOIN {schema}.surveys s ON s.survey_id = r.survey_id "
        "ORDER BY r.date_modified DESC NULLS LAST LIMIT 1"
    ).fetchone()
    if row is None:
        raise ReportError("the warehouse holds no survey responses yet: run survey-to-analytics")
    return str(row[0]), str(row[1])


def manager_label(key: str | None) -> str:
    return f"manager {key[:8]}" if key else NOT_RECORDED


def load_respondents(con: Any, survey_id: str, schema: str = "main") -> list[Respondent]:
    """Every completed response of a survey with its segments and scored answers."""
    params = {"survey": survey_id}
    schema = _ident(schema)
    people = con.execute(_RESPONDENTS_SQL.format(schema=schema), params).fetchall()
    scores: dict[str, tuple[list[int], list[int]]] = {}
    sql = _SCORES_SQL.format(schema=schema, likert=LIKERT_CHOICES, nps=NPS_CHOICES)
    for response_id, kind, position in con.execute(sql, params).fetchall():
        likert, nps = scores.setdefault(str(response_id), ([], []))
        if kind == "likert" and 1 <= position <= LIKERT_CHOICES:
            likert.append(int(position))
        elif kind == "nps" and 1 <= position <= NPS_CHOICES:
            nps.append(int(position) - 1)
    out = []
    for response_id, answered_at, employee, department, location, manager, hire in people:
        likert, nps = scores.get(str(response_id), ([], []))
        if employee is None:
            segments = dict.fromkeys(DIMENSIONS, UNLINKED)
        else:
            segments = {
                "department": department or NOT_RECORDED,
                "location": location or NOT_RECORDED,
                "manager": manager_label(manager),
                "tenure_band": tenure_band(hire, answered_at),
            }
        out.append(
            Respondent(
                id=str(response_id),
                segments=segments,
                likert=tuple(likert),
                nps=nps[-1] if nps else None,
                linked=employee is not None,
            )
        )
    return out


def engagement(
    database: str | Path,
    cuts: Sequence[tuple[str, ...]],
    *,
    min_group: int = DEFAULT_MIN_GROUP,
    survey_id: str | None = None,
    schema: str = "main",
) -> list[Report]:
    """One report per cut from the warehouse (opened read-only)."""
    import duckdb

    check_compatible(cuts)
    with duckdb.connect(str(database), read_only=True) as con:
        if survey_id is None:
            survey_id, title = latest_survey(con, schema)
        else:
            row = con.execute(
                f"SELECT title FROM {_ident(schema)}.surveys WHERE survey_id = ?",  # noqa: S608
                [survey_id],
            ).fetchone()
            title = str(row[0]) if row and row[0] else survey_id
        people = load_respondents(con, survey_id, schema)
    return [segment_report(people, cut, min_group, survey=title) for cut in cuts]
