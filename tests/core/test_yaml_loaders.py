"""libyaml's C parser (used when PyYAML has it) reads every YAML file of the repository exactly
as the pure-Python parser does: the same values, and for map-hr profiles the same line marks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hrsync_ops.ops import safe_load
from map_hr import profile

ROOT = Path(__file__).resolve().parents[2]
FILES = subprocess.run(
    ["git", "ls-files", "*.yml", "*.yaml"], cwd=ROOT, capture_output=True, text=True, check=True
).stdout.split()


def test_libyaml_is_there() -> None:
    """Otherwise the comparisons below compare the Python parser with itself."""
    assert yaml.__with_libyaml__
    assert issubclass(profile._FastLoader, yaml.CSafeLoader)
    assert len(FILES) > 20


@pytest.mark.parametrize("name", FILES)
def test_same_values_and_marks(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert safe_load(text) == yaml.safe_load(text)
    fast_node, fast = profile._parse(text, profile._FastLoader)
    slow_node, slow = profile._parse(text, profile._Loader)
    assert fast == slow
    fast_marks: dict[profile.KeyPath, int] = {}
    slow_marks: dict[profile.KeyPath, int] = {}
    if fast_node is not None and slow_node is not None:
        profile._marks(fast_node, (), fast_marks)
        profile._marks(slow_node, (), slow_marks)
    assert fast_marks == slow_marks
    assert (fast_node is None) == (slow_node is None)


def test_yaml_1_2_booleans_on_the_c_parser() -> None:
    data, marks = profile.load_document("on: yes\nflag: true\nno: N\n", "x.yml")
    assert data == {"on": "yes", "flag": True, "no": "N"}
    assert marks[("no",)] == 3


def test_errors_are_the_python_parsers() -> None:
    broken = "jobs:\n  - name: a\n    tasks: [tap-x, target-y\n"
    with pytest.raises(yaml.YAMLError) as python:
        yaml.safe_load(broken)
    with pytest.raises(yaml.YAMLError) as ours:
        safe_load(broken)
    assert str(ours.value) == str(python.value)
    with pytest.raises(profile.ProfileError, match=r"x\.yml:3: not valid YAML/JSON: while parsing"):
        profile.load_document(broken, "x.yml")
