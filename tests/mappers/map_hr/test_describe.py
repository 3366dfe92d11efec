"""``map-hr --describe``: what profiles read and write, as JSON, for tools that must not import
map-hr (the operations CLI's catalogue)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def map_hr() -> str:
    exe = shutil.which("map-hr") or shutil.which("map-hr", path=str(Path(sys.executable).parent))
    assert exe, "map-hr is not installed in this environment"
    return exe


def test_a_chain_of_profiles_is_described() -> None:
    proc = subprocess.run(
        [map_hr(), "--describe", "bamboohr_to_canonical", "hris_to_iam"],
        capture_output=True,
        text=True,
        check=True,
    )
    described = json.loads(proc.stdout)
    assert set(described) == {"bamboohr_to_canonical", "hris_to_iam"}
    iam = described["hris_to_iam"]
    users = next(s for s in iam["streams"] if s["output_stream"] == "iam_users")
    assert users["input_stream"] == "worker"
    given = users["fields"]["given_name"]
    assert given == {
        "spec": {"from": ["first_name", "last_name"], "transform": "name", "required": True},
        "reads": ["first_name", "last_name"],
        "pii": "name",
    }
    assert iam["heads"]["first_name"] == "first_name"
    # a path through a joined record: its head is the join, and what follows has its own
    ats = json.loads(
        subprocess.run(
            [map_hr(), "--describe", "ats_to_hris"], capture_output=True, text=True, check=True
        ).stdout
    )["ats_to_hris"]
    joined = [p for p in ats["heads"] if p.startswith("$")]
    assert joined, "ats_to_hris reads joined records"
    for path in joined:
        assert ats["heads"][path] == path.split(".")[0]
        rest = path.split(".", 1)[1]
        assert ats["heads"][rest] == rest.split(".")[0].split("[")[0]


def test_an_unknown_profile_fails_naming_it() -> None:
    proc = subprocess.run(
        [map_hr(), "--describe", "no_such_profile"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "profile 'no_such_profile' not found" in proc.stderr
    assert proc.stdout == ""
