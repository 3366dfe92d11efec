"""A data team's own Meltano project, outside this repository, with hrsync's plugins.

Follows the README ("Use hrsync plugins in your Meltano project") step by step: the built
wheels found through UV_FIND_LINKS, `meltano add --from-ref hub/...` for tap-greenhouse and
map-hr, the README's YAML for map-hr's mappings, a third-party loader (meltanolabs-target-csv
from the package index) and a job; then `meltano run` against the sandbox, and the operations
CLI, installed from its wheel, runs the same job with `hrsync run`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packkit import ROOT

from sandbox.cli import env_lines
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano
MELTANO = str(Path(sys.executable).parent / "meltano")


def readme_project_yaml() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- user-project:start -->\s*```yaml\n(.*?)```\s*<!-- user-project:end -->", text, re.S
    )
    assert block, "README lost its user-project block"
    return yaml.safe_load(block.group(1))


def merge(project: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """What the README tells the user to do: add the fragment's plugins and jobs; for a plugin
    already in the project (map-hr), add the fragment's keys (its mappings)."""
    for kind, plugins in fragment.get("plugins", {}).items():
        have = project.setdefault("plugins", {}).setdefault(kind, [])
        for plugin in plugins:
            same = next((p for p in have if p["name"] == plugin["name"]), None)
            if same is None:
                have.append(plugin)
            else:
                same.update({k: v for k, v in plugin.items() if k != "name"})
    project.setdefault("jobs", []).extend(fragment.get("jobs", []))
    return project


def meltano(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [MELTANO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"meltano {' '.join(args)}:\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def user_project(
    wheels: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str], Sandbox]]:
    home = tmp_path_factory.mktemp("people-data-team")
    assert ROOT not in home.parents
    env = {
        **os.environ,
        "UV_FIND_LINKS": str(wheels),
        "UV_NATIVE_TLS": "true",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("VIRTUAL_ENV", None)
    meltano(home, env, "init", "project", "--no_usage_stats")
    project = home / "project"
    hub = ROOT / "hub"
    meltano(project, env, "add", "--plugin-type", "extractor", "--from-ref",
            str(hub / "extractors" / "tap-greenhouse.yml"), "tap-greenhouse")  # fmt: skip
    meltano(project, env, "add", "--plugin-type", "mapper", "--from-ref",
            str(hub / "mappers" / "map-hr.yml"), "map-hr")  # fmt: skip
    path = project / "meltano.yml"
    merged = merge(yaml.safe_load(path.read_text(encoding="utf-8")), readme_project_yaml())
    path.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    meltano(project, env, "install")
    with Sandbox(employees=40, vendors=("greenhouse",)) as sb:
        for line in env_lines(sb.info()):
            name, _, value = line.partition("=")
            env[name] = value
        env["MAP_HR_HMAC_KEY"] = "a-user-project-key"
        env["MAP_HR_STATE_DIR"] = str(home / "map-hr-state")
        yield project, env, sb


def test_plugins_install_from_the_wheels_with_their_version(
    user_project: tuple[Path, dict[str, str], Sandbox], wheels: Path
) -> None:
    project, _, _ = user_project
    for kind, name in (("extractors", "tap-greenhouse"), ("mappers", "map-hr")):
        exe = project / ".meltano" / kind / name / "venv" / "bin" / name
        proc = subprocess.run(
            [str(exe), "--about", "--format", "json"], capture_output=True, text=True, check=True
        )
        about = json.loads(proc.stdout)
        wheel = next(wheels.glob(f"hrsync_{name.replace('-', '_')}-*.whl"))
        assert about["version"] == wheel.name.split("-")[1]
        settings = yaml.safe_load((ROOT / "hub" / kind / f"{name}.yml").read_text())["settings"]
        assert {s["name"] for s in settings} <= set(about["settings"]["properties"])


def test_meltano_run_delivers_every_candidate(
    user_project: tuple[Path, dict[str, str], Sandbox],
) -> None:
    project, env, sb = user_project
    meltano(project, env, "run", "greenhouse-to-csv")
    out = project / "output" / "canonical"
    with (out / "candidate.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    world = sb.world
    assert len(rows) == world.candidates
    ids = {r["id"] for r in rows}
    assert len(ids) == len(rows)  # nothing doubled
    by_id = {r["id"]: r for r in rows}
    first = world.candidate(next(iter(sorted(int(i) for i in ids))))
    assert by_id[str(first.id)]["last_name"] == first.last_name.strip()
    # the mapping minimised: canonical fields only, nothing of Greenhouse's own shape
    assert "email_addresses" not in rows[0] and "keyed_custom_fields" not in rows[0]
    assert (out / "offer.csv").exists()


def test_hrsync_run_from_the_ops_wheel(
    user_project: tuple[Path, dict[str, str], Sandbox], ops_bin: Path
) -> None:
    project, env, _ = user_project
    # the team's own meltano (here the dev venv's) on PATH; hrsync itself from its wheel
    run_env = {**env, "HRSYNC_MELTANO": MELTANO}
    proc = subprocess.run(
        [str(ops_bin / "hrsync"), "run", "--json", "greenhouse-to-csv"],
        cwd=project, env=run_env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads(proc.stdout)
    assert record["run"]["outcome"] == "success", record
    status = subprocess.run(
        [str(ops_bin / "hrsync"), "status"], cwd=project, env=run_env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert "greenhouse-to-csv" in status.stdout
