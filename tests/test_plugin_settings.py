"""Settings are declared once, in each plugin's ``config_jsonschema``.

meltano.yml's settings and capabilities of every plugin installed from this repository match
the plugin's own ``--about`` in both directions; every setting has a description;
``scripts/plugin-settings --check`` passes; and an SDK built-in set through the real Meltano
CLI reaches the plugin with the type its schema asks for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from tests import projectkit

from hrsync_ops.ops import safe_load
from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "plugin-settings"
BIN = Path(sys.executable).parent
PROJECT = safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
#: plugins installed from this repository (the others are third-party: declared by hand)
LOCAL = [
    p
    for plugins in PROJECT["plugins"].values()
    for p in plugins
    if str(p.get("pip_url", "")).startswith("-e ./core -e ./")
]
#: JSON type -> Meltano kind
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "decimal",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}
SDK_BUILT_INS = {"stream_maps", "stream_map_config", "flattening_enabled", "flattening_max_depth"}


def _about(plugin: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / plugin["executable"]), "--about", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def abouts() -> dict[str, dict[str, Any]]:
    """Every local plugin's ``--about`` (each one a Python start-up: run them side by side)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip([p["name"] for p in LOCAL], pool.map(_about, LOCAL), strict=True))


def expected_kind(schema: dict[str, Any]) -> str:
    if schema.get("enum"):
        return "options"
    if schema.get("format") in ("date-time", "date"):
        return "date_iso8601"
    declared = schema.get("type", "string")
    types = [t for t in (declared if isinstance(declared, list) else [declared]) if t != "null"]
    if len(types) > 1 and "string" in types:  # the plugin also parses the string form
        return "string"
    return KINDS[types[0]]


def test_every_plugin_of_the_repository_is_covered() -> None:
    # every distribution folder of a plugin (each tap, target and map-hr) is declared
    folders = [*ROOT.glob("taps/tap-*"), *ROOT.glob("targets/target-*"), ROOT / "mappers/map-hr"]
    assert len(LOCAL) == len([f for f in folders if (f / "pyproject.toml").exists()])
    assert {"tap-greenhouse", "map-hr", "target-warehouse"} <= {p["name"] for p in LOCAL}


@pytest.mark.parametrize("plugin", LOCAL, ids=lambda p: p["name"])
def test_settings_match_the_plugins_about_both_ways(
    plugin: dict[str, Any], abouts: dict[str, dict[str, Any]]
) -> None:
    schema = abouts[plugin["name"]]["settings"]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    declared = {s["name"]: s for s in plugin["settings"]}
    assert list(declared) == list(properties), "meltano.yml and --about differ in settings"
    for name, prop in properties.items():
        setting = declared[name]
        where = f"{plugin['name']}.{name}"
        assert setting["kind"] == expected_kind(prop), where
        assert setting.get("sensitive", False) == bool(prop.get("secret") or prop.get("writeOnly"))
        assert setting.get("value") == prop.get("default"), where
        assert setting.get("description") == " ".join(prop.get("description", "").split()), where
        if setting["kind"] == "options":
            assert [o["value"] for o in setting["options"]] == prop["enum"], where
            assert all(o["label"] for o in setting["options"]), where
    if plugin["name"].startswith(("tap-", "target-")):
        assert set(declared) >= SDK_BUILT_INS


@pytest.mark.parametrize("plugin", LOCAL, ids=lambda p: p["name"])
def test_capabilities_are_what_the_plugin_reports(
    plugin: dict[str, Any], abouts: dict[str, dict[str, Any]]
) -> None:
    assert plugin["capabilities"] == abouts[plugin["name"]]["capabilities"]


@pytest.mark.parametrize("plugin", LOCAL, ids=lambda p: p["name"])
def test_every_setting_has_a_description(
    plugin: dict[str, Any], abouts: dict[str, dict[str, Any]]
) -> None:
    """In the plugin's own schema: a sentence, not a bare unit or a blank."""
    properties = abouts[plugin["name"]]["settings"]["properties"]
    terse = {n: p.get("description") for n, p in properties.items()
             if len(str(p.get("description") or "").split()) < 3}  # fmt: skip
    assert terse == {}


@pytest.mark.parametrize("plugin", LOCAL, ids=lambda p: p["name"])
def test_secret_looking_settings_are_secret_in_the_schema(
    plugin: dict[str, Any], abouts: dict[str, dict[str, Any]]
) -> None:
    properties = abouts[plugin["name"]]["settings"]["properties"]
    words = ("secret", "password", "api_key", "token", "hmac_key", "private_key", "passphrase")
    looks_secret = {
        n
        for n in properties
        if any(w in n for w in words)
        and not n.endswith(("_url", "_file", "_path", "_field"))
        and properties[n].get("type") not in ("boolean", ["boolean", "null"], "integer")
    }  # fmt: skip  (a flag such as password_must_change is no secret)
    not_marked = sorted(n for n in looks_secret if not properties[n].get("secret"))
    assert not_marked == []


@pytest.mark.parametrize("plugin", LOCAL, ids=lambda p: p["name"])
def test_readme_definition_is_a_working_meltano_plugin(plugin: dict[str, Any]) -> None:
    """The definition a user pastes from the README: same settings, kinds and capabilities as
    this project's, installed by the distribution's name, with map-hr's mappings."""
    folder = ROOT / plugin["pip_url"].split()[-1]
    readme = (folder / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- settings:start -->")[1].split("```yaml\n")[1].split("```")[0]
    ((plugin_type, (pasted,)),) = yaml.safe_load(block)["plugins"].items()
    assert plugin in PROJECT["plugins"][plugin_type]
    assert pasted["pip_url"] == "hrsync-" + plugin["name"]
    for key in ("name", "namespace", "executable", "capabilities", "mappings"):
        assert pasted.get(key) == plugin.get(key), key
    strip = ("value", "description")
    assert pasted["settings"] == [
        {k: v for k, v in s.items() if k not in strip} for s in plugin["settings"]
    ]


#: third-party plugins: declared by hand (a subset of their settings), checked when installed
THIRD_PARTY = [
    (kind, p)
    for kind, plugins in PROJECT["plugins"].items()
    for p in plugins
    if "pip_url" in p and p not in LOCAL
]


@pytest.mark.parametrize(
    "plugin", [p for plugins in PROJECT["plugins"].values() for p in plugins if "settings" in p],
    ids=lambda p: p["name"],
)  # fmt: skip
def test_every_declared_setting_has_a_description(plugin: dict[str, Any]) -> None:
    """Third-party plugins included: meltano.yml is where a user reads what a setting does."""
    assert [s["name"] for s in plugin["settings"] if not s.get("description")] == []


@pytest.mark.parametrize("kind_plugin", THIRD_PARTY, ids=lambda kp: kp[1]["name"])
def test_third_party_plugins_match_their_about_when_installed(
    kind_plugin: tuple[str, dict[str, Any]],
) -> None:
    kind, plugin = kind_plugin
    projectkit.install_plugins()  # the venv `meltano install` makes, once per test run
    exe = ROOT / ".meltano" / kind / plugin["name"] / "venv" / "bin" / plugin["executable"]
    done = subprocess.run([str(exe), "--about", "--format", "json"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    info = json.loads(done.stdout)
    assert plugin["capabilities"] == info["capabilities"]
    properties = info["settings"]["properties"]
    for setting in plugin["settings"]:
        assert setting["name"] in properties, setting["name"]
        if setting["kind"] != "options":
            assert setting["kind"] == expected_kind(properties[setting["name"]]), setting["name"]


def test_the_generated_files_are_up_to_date() -> None:
    """meltano.yml's settings/capabilities and the README tables: run --write if this fails."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the generator's text edits -------------------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    """scripts/plugin-settings imported as a module (the file has no .py suffix)."""
    loader = SourceFileLoader("plugin_settings", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


PROJECT_TEXT = """\
plugins:
  extractors:
    - name: tap-a
      namespace: tap_a
      # a comment about tap-a
      pip_url: -e ./core -e ./taps/tap-a
      executable: tap-a
      capabilities: [catalog]
      settings:
        - {name: old, kind: string}   # stale
        - name: mode
          kind: options
          options: [{label: The first way, value: one}]
      select:
        - "a.*"
    - name: tap-a-narrow
      inherit_from: tap-a  # keeps this comment
  # a comment between plugin types
  mappers:
    - name: map-b
      pip_url: -e ./core -e ./mappers/map-b
      executable: map-b
      mappings:
        - {name: m1, config: {profile: p}}
jobs: []  # untouched
"""


def test_rewrite_replaces_only_the_settings_and_capabilities_blocks(
    generator: ModuleType,
) -> None:
    info = {
        "capabilities": ["catalog", "discover", "stream-maps"],
        "settings": {
            "properties": {
                "mode": {"type": ["string", "null"], "enum": ["one", "two"], "default": "one",
                         "description": "How to  read"},
                "key": {"type": ["string"], "secret": True, "writeOnly": True,
                        "description": "The API key"},
                "rules": {"type": ["array", "object", "string", "null"], "description": "R"},
                "since": {"type": ["string", "null"], "format": "date-time"},
                "rate": {"type": ["number", "null"], "default": 1.5},
                "stream_maps": {"type": ["object", "null"]},
            }
        },
    }  # fmt: skip
    plugin = yaml.safe_load(PROJECT_TEXT)["plugins"]["extractors"][0]
    settings = generator.meltano_settings(info, generator.existing_labels(plugin))
    text = generator.rewrite_plugin(PROJECT_TEXT, "tap-a", info["capabilities"], settings)
    # map-b has neither block: both are added after its executable
    text = generator.rewrite_plugin(text, "map-b", ["about"], [{"name": "p", "kind": "string"}])
    got = yaml.safe_load(text)
    tap = got["plugins"]["extractors"][0]
    assert tap["capabilities"] == ["catalog", "discover", "stream-maps"]
    assert tap["settings"] == [
        {"name": "mode", "kind": "options", "value": "one", "description": "How to read",
         "options": [{"label": "The first way", "value": "one"},
                     {"label": "Two", "value": "two"}]},
        {"name": "key", "kind": "string", "sensitive": True, "description": "The API key"},
        {"name": "rules", "kind": "string", "description": "R"},
        {"name": "since", "kind": "date_iso8601"},
        {"name": "rate", "kind": "decimal", "value": 1.5},
        {"name": "stream_maps", "kind": "object"},
    ]  # fmt: skip
    assert tap["select"] == ["a.*"]
    assert got["plugins"]["mappers"][0]["capabilities"] == ["about"]
    assert got["plugins"]["mappers"][0]["mappings"] == [{"name": "m1", "config": {"profile": "p"}}]
    kept = [line for line in PROJECT_TEXT.splitlines() if "settings" not in line]
    kept = [line for line in kept if not line.startswith(("        -", "          "))]
    kept = [line for line in kept if "capabilities" not in line]
    for line in kept:  # comments, other keys and plugins: byte for byte
        assert line in text.splitlines(), line
    assert "stale" not in text
    # idempotent
    again = generator.rewrite_plugin(text, "tap-a", info["capabilities"], settings)
    assert again == text


def test_readme_section_is_replaced_between_the_markers_only(generator: ModuleType) -> None:
    info = {"capabilities": ["about"], "settings": {"required": ["a"]}}
    settings = [
        {"name": "a", "kind": "string", "sensitive": True, "description": "x | y"},
        {"name": "b", "kind": "options", "value": "p",
         "options": [{"label": "P", "value": "p"}, {"label": "Q", "value": "q"}]},
    ]  # fmt: skip
    section = generator.readme_section(info, settings)
    assert "| `a` | string |  | yes | yes | x \\| y |" in section
    assert "| `b` | options: `p`, `q` | `p` |  |  |  |" in section
    readme = "# x\n\nIntro.\n\n<!-- settings:start -->\nold\n<!-- settings:end -->\n\nMore.\n"
    new = generator.rewrite_readme(readme, section)
    assert new.startswith("# x\n\nIntro.\n\n<!-- settings:start -->\n")
    assert new.endswith("<!-- settings:end -->\n\nMore.\n")
    assert "old" not in new
    assert generator.rewrite_readme(new, section) == new
    # no markers yet: a Settings section is appended
    appended = generator.rewrite_readme("# y\n", section)
    assert appended.startswith("# y\n\n## Settings\n\n<!-- settings:start -->")


# --- through the real Meltano CLI -------------------------------------------------------------


@pytest.mark.meltano
def test_stream_maps_set_through_meltano_reach_the_tap_as_an_object(tmp_path: Path) -> None:
    """`meltano config set tap-greenhouse stream_maps '{...}'` stores a mapping (before, with the
    setting undeclared, Meltano stored the JSON text and the tap refused its config); the config
    Meltano hands the tap then maps the candidates of a real sync against the sandbox."""
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")  # meltano config set rewrites it
    env = {**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    maps = {"candidates": {"hrsync_probe": "1 + 1"}, "__else__": None}
    meltano = str(BIN / "meltano")
    subprocess.run(
        [meltano, "config", "set", "tap-greenhouse", "stream_maps", json.dumps(maps)],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )  # fmt: skip
    stored = yaml.safe_load((tmp_path / "meltano.yml").read_text(encoding="utf-8"))
    (tap,) = [p for p in stored["plugins"]["extractors"] if p["name"] == "tap-greenhouse"]
    assert tap["config"]["stream_maps"] == maps

    with Sandbox(employees=5, vendors=("greenhouse",)) as sb:
        creds = sb.credentials["greenhouse"]
        env |= {
            "TAP_GREENHOUSE_CLIENT_ID": creds["client_id"],
            "TAP_GREENHOUSE_CLIENT_SECRET": creds["client_secret"],
            "TAP_GREENHOUSE_USER_ID": creds["user_id"],
            "TAP_GREENHOUSE_API_URL": f"{sb.greenhouse_url}/v3",
            "TAP_GREENHOUSE_TOKEN_URL": f"{sb.greenhouse_url}/token",
        }
        dumped = subprocess.run(
            [meltano, "invoke", "--no-install", "--dump=config", "tap-greenhouse"],
            cwd=tmp_path, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        config = json.loads(dumped.stdout)
        assert config["stream_maps"] == maps
        (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
        synced = subprocess.run(
            [str(BIN / "tap-greenhouse"), "--config", str(tmp_path / "config.json")],
            cwd=tmp_path, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert synced.returncode == 0, synced.stderr[-3000:]
    messages = [json.loads(line) for line in synced.stdout.splitlines() if line.strip()]
    candidates = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in messages if m["type"] == "RECORD"} == {"candidates"}
    assert len(candidates) == sb.world.candidates
    assert {r["hrsync_probe"] for r in candidates} == {2}
