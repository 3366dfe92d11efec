"""The record of processing activities (GDPR Article 30 style), one row per job.

Built from the catalogue (which personal data each job moves, traced through the map-hr
profiles) and the processing annotations in meltano.yml (:mod:`hrsync.processing`): purpose,
legal basis, data subjects, recipients and where they process, transfers outside the EU/EEA
with their mechanism, retention and security measures. ``hrsync docs`` writes it as
``docs/processing-record.md`` and ``docs/processing-record.csv``; :func:`gaps` lists what a
job that moves personal data leaves unstated (the catalogue test fails on any).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hrsync import pii
from hrsync.processing import Processing, resolve

if TYPE_CHECKING:
    from hrsync_ops.catalogue import Catalogue, Job

__all__ = ["Row", "gaps", "job_processing", "processing_lines", "render_csv", "render_markdown"]

#: PII classes that need an Article 9 condition (special categories) or that the issue's
#: data-protection review treats alike (national identification numbers, Article 87)
SPECIAL = frozenset({pii.HEALTH, pii.DEMOGRAPHIC, pii.NATIONAL_ID})
COLUMNS = (
    "job",
    "purpose",
    "legal_basis",
    "special_category_condition",
    "data_subjects",
    "data_categories",
    "recipients",
    "transfers",
    "retention",
    "security",
    "controller_contact",
)


def _eu(location: str | None) -> bool:
    return bool(location) and str(location).upper().startswith(("EU", "EEA"))


def _terms(project: Mapping[str, Any], job: str) -> dict[str, Any]:
    for entry in project.get("jobs") or []:
        if entry.get("name") == job:
            note = (entry.get("annotations") or {}).get("hrsync") or {}
            return dict(note.get("processing") or {})
    return {}


def job_processing(project: Mapping[str, Any]) -> dict[str, tuple[Processing, dict[str, Any]]]:
    """job -> (its processing as resolved for plugins, the raw annotation terms)."""
    return {
        str(j["name"]): (resolve(project, str(j["name"])), _terms(project, str(j["name"])))
        for j in project.get("jobs") or []
    }


def _listed(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Row:
    job: str
    purpose: str
    legal_basis: str
    special_category_condition: str
    data_subjects: str
    data_categories: str
    recipients: str
    transfers: str
    retention: str
    security: str
    controller_contact: str

    def cells(self) -> list[str]:
        return [str(getattr(self, c)) for c in COLUMNS]


def rows(cat: Catalogue) -> list[Row]:
    """One row per job that moves personal data."""
    out = []
    for job in cat.jobs:
        if not job.pii_classes:
            continue
        proc, terms = cat.processing.get(job.name, (Processing(), {}))
        recipients, transfers = [], []
        for task in job.tasks:
            dest = proc.for_destination(task.loader)
            who = f"{task.destination.name}: {dest.processor or '?'} ({dest.location or '?'})"
            if who not in recipients:
                recipients.append(who)
            if dest.location and not _eu(dest.location):
                moved = (
                    f"{task.destination.name} ({dest.location}): {dest.transfer_mechanism or '?'}"
                )
                if moved not in transfers:
                    transfers.append(moved)
        out.append(
            Row(
                job=job.name,
                purpose=proc.purpose or "",
                legal_basis=proc.legal_basis or "",
                special_category_condition=proc.special_category_condition or "",
                data_subjects=_listed(terms.get("data_subjects")),
                data_categories=", ".join(job.pii_classes),
                recipients="; ".join(recipients),
                transfers="; ".join(transfers) or "none (EU/EEA only)",
                retention=proc.retention or "",
                security=_listed(terms.get("security")),
                controller_contact=job.owner,
            )
        )
    return out


def gaps(cat: Catalogue) -> list[str]:
    """What each job that moves personal data leaves unstated (empty: complete)."""
    problems = []
    for job in cat.jobs:
        if not job.pii_classes:
            continue
        proc, terms = cat.processing.get(job.name, (Processing(), {}))
        where = f"job {job.name}: annotations.hrsync.processing"
        for key in ("purpose", "legal_basis", "retention"):
            if not getattr(proc, key):
                problems.append(f"{where}.{key} missing")
        for key in ("data_subjects", "security"):
            if not terms.get(key):
                problems.append(f"{where}.{key} missing")
        special = sorted(SPECIAL.intersection(job.pii_classes))
        if special and not proc.special_category_condition:
            problems.append(
                f"{where}.special_category_condition missing ({', '.join(special)} flow: "
                "state the Article 9 condition)"
            )
        for task in job.tasks:
            dest = proc.for_destination(task.loader)
            at = f"job {job.name}, loader {task.loader}: annotations.hrsync"
            if not dest.processor:
                problems.append(f"{at}.processor missing")
            if not dest.location:
                problems.append(f"{at}.location missing")
            elif not _eu(dest.location) and not dest.transfer_mechanism:
                problems.append(
                    f"{at}.transfer_mechanism missing (the recipient is in {dest.location}, "
                    "outside the EU/EEA)"
                )
    return problems


def processing_lines(cat: Catalogue, job: Job) -> list[str]:
    """The job's processing terms as Markdown bullet lines for the catalogue."""
    proc, terms = cat.processing.get(job.name, (Processing(), {}))
    if not (proc.legal_basis or terms):
        return []
    lines = [
        f"- **Purpose:** {proc.purpose or '-'}",
        f"- **Legal basis:** {proc.legal_basis or '-'}",
    ]
    if proc.special_category_condition:
        lines.append(f"- **Special categories (Art. 9):** {proc.special_category_condition}")
    for task in job.tasks:
        dest = proc.for_destination(task.loader)
        transfer = (
            f"; transfer: {dest.transfer_mechanism}"
            if dest.location and not _eu(dest.location)
            else ""
        )
        line = (
            f"- **Recipient ({task.destination.name}):** {dest.processor or '-'}, "
            f"{dest.location or '-'}{transfer}"
        )
        if line not in lines:
            lines.append(line)
    lines.append(f"- **Retention:** {proc.retention or '-'}")
    return lines


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def render_markdown(cat: Catalogue, generated: str) -> str:
    out = [
        "# Record of processing activities",
        "",
        f"_{generated} Do not edit by hand: run `hrsync docs`._",
        "",
        "Article 30 GDPR style: one entry per job that moves personal data. The controller is "
        "the employer running hrsync; each job's owner is its contact. Categories of data are "
        "the PII classes the catalogue traces through the job's mapping profiles.",
        "",
    ]
    for row in rows(cat):
        out += [f"## {row.job}", ""]
        for column, value in zip(COLUMNS[1:], row.cells()[1:], strict=True):
            label = column.replace("_", " ").capitalize()
            out.append(f"- **{label}:** {_cell(value) or '-'}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_csv(cat: Catalogue) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows(cat):
        writer.writerow(row.cells())
    return buf.getvalue()


def files(cat: Catalogue, generated: str) -> dict[str, str]:
    """docs file name -> text."""
    return {
        "processing-record.md": render_markdown(cat, generated),
        "processing-record.csv": render_csv(cat),
    }
