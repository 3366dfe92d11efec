"""Purpose, legal basis, processor and retention are data: every job that moves personal data
states them, and the record of processing lists each such job."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import yaml

from hrsync.processing import current, resolve
from hrsync_ops import processing_record
from hrsync_ops.catalogue import build, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_every_job_that_moves_personal_data_states_its_processing() -> None:
    assert processing_record.gaps(build(ROOT)) == []


def test_a_job_without_a_legal_basis_fails(tmp_path: Path) -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    job = next(j for j in project["jobs"] if j["name"] == "hris-to-lms")
    del job["annotations"]["hrsync"]["processing"]["legal_basis"]
    payroll = next(j for j in project["jobs"] if j["name"] == "hris-to-payroll")
    del payroll["annotations"]["hrsync"]["processing"]["special_category_condition"]
    gusto = next(p for p in project["plugins"]["loaders"] if p["name"] == "target-payroll-api")
    del gusto["annotations"]["hrsync"]["transfer_mechanism"]
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project, allow_unicode=True))
    gaps = processing_record.gaps(build(tmp_path))
    assert gaps == [
        "job hris-to-lms: annotations.hrsync.processing.legal_basis missing",
        "job hris-to-payroll: annotations.hrsync.processing.special_category_condition missing "
        "(sensitive.health, sensitive.national_id flow: state the Article 9 condition)",
        "job hris-to-payroll, loader target-payroll-api: annotations.hrsync.transfer_mechanism "
        "missing (the recipient is in US, outside the EU/EEA)",
        # the same loader in the HiBob job: named for each job that sends to it
        "job hris-to-payroll@hibob, loader target-payroll-api: annotations.hrsync."
        "transfer_mechanism missing (the recipient is in US, outside the EU/EEA)",
    ]


def test_the_record_lists_every_job_that_moves_personal_data() -> None:
    cat = build(ROOT)
    moving = [j.name for j in cat.jobs if j.pii_classes]
    assert moving == [j["name"] for j in yaml.safe_load((ROOT / "meltano.yml").read_text())["jobs"]]
    files = processing_record.files(cat, "x")
    rows = list(csv.DictReader(io.StringIO(files["processing-record.csv"])))
    assert [r["job"] for r in rows] == moving
    for row in rows:
        for column in (
            "purpose",
            "legal_basis",
            "data_subjects",
            "data_categories",
            "recipients",
            "transfers",
            "retention",
            "security",
        ):
            assert row[column], f"{row['job']}: {column} empty"
    payroll = next(r for r in rows if r["job"] == "hris-to-payroll")
    assert "Gusto, Inc." in payroll["recipients"] and "US" in payroll["transfers"]
    assert payroll["special_category_condition"].startswith("Art. 9(2)(b)")
    md = files["processing-record.md"]
    assert all(f"## {name}" in md for name in moving)
    assert "**Legal basis:** Art. 6(1)(b)" in render_markdown(cat)  # and in the catalogue


def test_plugins_find_their_job_processor_and_basis(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HRSYNC_JOB", raising=False)
    monkeypatch.setenv("MELTANO_EXTRACTOR_NAME", "tap-bamboohr")
    monkeypatch.setenv("MELTANO_LOADER_NAME", "target-payroll-api")
    proc = current("tap-bamboohr-to-target-payroll-api", root=ROOT).for_destination(
        "target-payroll-api"
    )
    assert proc.job == "hris-to-payroll"
    assert proc.processor and proc.processor.startswith("Gusto")
    assert proc.basis and "Art. 6(1)(b)" in proc.basis and "Art. 9(2)(b)" in proc.basis
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    assert resolve(project, "hris-to-iam").destinations.keys() == {"target-scim", "target-ldap"}


def test_a_changed_basis_makes_the_record_stale(tmp_path: Path) -> None:
    from hrsync_ops.catalogue import stale_files, write

    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    write(tmp_path, render=False)
    assert (tmp_path / "docs" / "processing-record.csv").exists()
    assert stale_files(tmp_path) == []
    text = (
        (tmp_path / "meltano.yml")
        .read_text()
        .replace("Art. 6(1)(c) GDPR: legal obligation", "Art. 6(1)(f) GDPR: legitimate interest")
    )
    (tmp_path / "meltano.yml").write_text(text)
    assert set(stale_files(tmp_path)) == {
        "integrations.md",
        "processing-record.md",
        "processing-record.csv",
    }
