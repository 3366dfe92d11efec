"""The integration catalogue is generated from the project and can never drift from it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from hrsync_ops.catalogue import (
    MapperError,
    build,
    render_dot,
    render_markdown,
    stale_files,
    write,
)
from hrsync_ops.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_committed_catalogue_is_current() -> None:
    stale = stale_files(ROOT)
    assert stale == [], f"{stale} out of date: run `hrsync docs` and commit docs/"


def test_every_job_and_plugin_is_described() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    cat = build(ROOT)
    assert [j.name for j in cat.jobs] == [j["name"] for j in project["jobs"]]
    for job in cat.jobs:
        assert job.owner != "unassigned", f"job {job.name}: annotations.hrsync.owner missing"
        for task in job.tasks:
            for system in (task.source, task.destination):
                assert system.kind, f"{task.chain}: annotations.hrsync.system/kind missing"


def test_fields_are_traced_through_a_chain_of_profiles() -> None:
    cat = build(ROOT)
    iam = next(j for j in cat.jobs if j.name == "hris-to-iam")
    flows = {f.destination: f for f in iam.tasks[0].flows}
    # hris_to_iam reads worker.first_name, which bamboohr_to_canonical reads from firstName
    given = flows["iam_users.given_name"]
    assert given.sources == ("employees.firstName", "employees.lastName")
    assert given.pii == "name"
    assert given.system_of_record == "BambooHR"
    assert flows["iam_users.work_email"].pii == "contact"
    # nothing sensitive leaves for the directories
    assert not [f for f in iam.tasks[0].flows if (f.pii or "").startswith("sensitive.")]
    ats = next(j for j in cat.jobs if j.name == "ats-to-hris")
    first = {f.destination: f for f in ats.tasks[0].flows}["bamboohr_new_hires.firstName"]
    assert first.sources == ("candidates.first_name",)  # a joined lookup, named by its stream


def test_a_changed_project_makes_the_catalogue_stale(tmp_path: Path) -> None:
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    written = write(tmp_path)
    assert {p.name for p in written} == {
        "integrations.md",
        "integrations.dot",
        "integrations.svg",
        "processing-record.md",
        "processing-record.csv",
    }
    assert (tmp_path / "docs" / "integrations.svg").read_text().lstrip().startswith("<?xml")
    assert stale_files(tmp_path) == []
    project = yaml.safe_load((tmp_path / "meltano.yml").read_text())
    project["jobs"][0]["annotations"]["hrsync"]["owner"] = "Someone Else"
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project, allow_unicode=True))
    # the owner is also the contact in the record of processing
    assert stale_files(tmp_path) == [
        "integrations.md",
        "processing-record.md",
        "processing-record.csv",
    ]
    assert main(["docs", "--root", str(tmp_path), "--check"]) == 1
    assert main(["docs", "--root", str(tmp_path), "--no-render"]) == 0
    assert main(["docs", "--root", str(tmp_path), "--check"]) == 0


def test_markdown_and_dot_are_deterministic() -> None:
    cat = build(ROOT)
    assert render_markdown(cat) == render_markdown(build(ROOT))
    dot = render_dot(cat)
    assert dot.startswith("// Generated") and "->" in dot


def test_profiles_are_read_through_the_projects_installed_map_hr(tmp_path: Path) -> None:
    """The ops CLI imports no plugin: it asks the map-hr that Meltano installed for the project
    (``.meltano/mappers/map-hr/venv/bin/map-hr``) before the one on PATH."""
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    real = shutil.which("map-hr") or shutil.which("map-hr", path=str(Path(sys.executable).parent))
    assert real
    installed = tmp_path / ".meltano" / "mappers" / "map-hr" / "venv" / "bin" / "map-hr"
    installed.parent.mkdir(parents=True)
    calls = tmp_path / "calls.log"
    installed.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    installed.chmod(0o755)
    assert render_markdown(build(tmp_path)) == render_markdown(build(ROOT))
    assert calls.read_text().startswith("--describe ")


def test_a_mapper_that_is_not_installed_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    for mapper in project["plugins"]["mappers"]:
        mapper["executable"] = "map-hr-not-installed"
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump(project, allow_unicode=True))
    with pytest.raises(MapperError, match="meltano install mappers map-hr"):
        build(tmp_path)
    assert main(["docs", "--root", str(tmp_path), "--no-render"]) == 2
    assert "executable 'map-hr-not-installed'" in capsys.readouterr().err
