"""meltano.yml declares every plugin in full, with secrets marked sensitive and never set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests import projectkit

from hrsync_ops.ops import safe_load

ROOT = Path(__file__).resolve().parents[1]
PROJECT = safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
ALL_PLUGINS = [p for kind in PROJECT["plugins"].values() for p in kind]
#: plugins declared in full; the others inherit one of them (a job's own stream selection)
PLUGINS = [p for p in ALL_PLUGINS if "inherit_from" not in p]
SECRET_WORDS = ("secret", "password", "api_key", "token", "hmac_key")
BIN = Path(sys.executable).parent


def test_inherited_plugins_only_narrow_a_declared_one() -> None:
    names = {p["name"] for p in PLUGINS}
    for plugin in ALL_PLUGINS:
        if "inherit_from" in plugin:
            assert plugin["inherit_from"] in names, plugin["name"]
            assert set(plugin) <= {"name", "inherit_from", "annotations", "select", "config"}


def test_every_plugin_is_declared_in_full() -> None:
    names = {p["name"] for p in PLUGINS}
    assert {"tap-greenhouse", "tap-bamboohr", "map-hr", "target-bamboohr"} <= names
    for plugin in PLUGINS:
        for key in ("namespace", "pip_url", "executable", "capabilities", "settings"):
            assert plugin.get(key), f"{plugin['name']}: {key} missing"
        assert plugin["executable"] == plugin["name"]


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p["name"])
def test_secrets_are_sensitive_and_have_no_value(plugin: dict[str, Any]) -> None:
    for setting in plugin["settings"]:
        name = setting["name"]
        # a flag or a number (password_must_change) is no secret, whatever its name says
        looks_secret = any(word in name for word in SECRET_WORDS) and setting.get("kind") not in (
            "boolean", "integer", "decimal")  # fmt: skip
        if looks_secret and not name.endswith(("_url", "_file")):
            assert setting.get("sensitive") is True, f"{plugin['name']}.{name} must be sensitive"
            assert "value" not in setting, f"{plugin['name']}.{name}: secrets never in meltano.yml"
        assert setting.get("kind") != "password", "kind: password is deprecated: sensitive: true"


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p["name"])
def test_declared_settings_exist_in_the_plugin(plugin: dict[str, Any]) -> None:
    """Every setting meltano.yml declares is one the plugin's --about knows (no typos)."""
    exe = BIN / plugin["executable"]
    if not plugin["pip_url"].startswith(
        "-e ./core"
    ):  # third-party: in its own venv, made by `meltano install`
        kind = next(k for k, ps in PROJECT["plugins"].items() if plugin in ps)
        projectkit.install_plugins()  # the venv `meltano install` makes, once per test run
        exe = ROOT / ".meltano" / kind / plugin["name"] / "venv" / "bin" / plugin["executable"]
    about = subprocess.run(
        [str(exe), "--about", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(about.stdout)
    known = set((info.get("settings") or {}).get("properties", {}))
    if not known:
        pytest.skip(f"{plugin['name']} publishes no settings schema in --about")
    unknown = sorted({s["name"] for s in plugin["settings"]} - known)
    assert unknown == [], f"{plugin['name']}: meltano.yml declares unknown settings {unknown}"


def test_jobs_reference_declared_plugins_and_mappings() -> None:
    mappings = {m["name"] for p in PLUGINS for m in p.get("mappings", [])}
    plugins = {p["name"] for p in ALL_PLUGINS}
    assert not mappings & {j["name"] for j in PROJECT["jobs"]}, "a job named like a mapping"
    for job in PROJECT["jobs"]:
        for task in job["tasks"]:
            for block in task.split():
                assert block in plugins | mappings, f"job {job['name']}: unknown block {block}"
