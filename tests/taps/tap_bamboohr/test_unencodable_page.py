"""A vendor page holding an unpaired UTF-16 surrogate (valid JSON ``"\\ud800"``, which orjson
refuses): the tap reads it with a warning and passes the text on as it came; map-hr makes
that one record a dead letter naming the field and maps the others. Before: the tap stopped
(UnexpectedPage), and the sandbox could not even serve it. Real HTTP, console scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from hrsync.deadletter import DeadLetterStore
from sandbox.server import Sandbox

BIN = Path(sys.executable).parent


def test_a_lone_surrogate_from_the_vendor_is_that_records_dead_letter(tmp_path: Path) -> None:
    with Sandbox(employees=3, vendors=("bamboohr",)) as sb:
        info = sb.info()["bamboohr"]
        changed = requests.post(
            f"{info['api_url']}/employees/2",
            json={"firstName": "Bo\ud800"},  # requests writes the JSON escape
            auth=(info["api_key"], "x"),
            timeout=10,
        )
        assert changed.status_code == 200, changed.text
        tap_cfg = tmp_path / "tap.json"
        tap_cfg.write_text(json.dumps({"api_key": info["api_key"], "api_url": info["api_url"]}))
        tap = subprocess.run(
            [str(BIN / "tap-bamboohr"), "--config", str(tap_cfg)],
            capture_output=True,
            check=False,
            timeout=120,
        )
    assert tap.returncode == 0, tap.stderr.decode(errors="replace")[-2000:]
    assert b"unpaired UTF-16 surrogate '\\ud800' at character 2 at data[1].firstName" in tap.stderr
    records = [
        json.loads(line)["record"]
        for line in tap.stdout.splitlines()
        if b'"RECORD","stream":"employees"' in line
    ]
    assert [r["firstName"][:2] for r in records] == ["Zo", "Bo", records[2]["firstName"][:2]]
    assert records[1]["firstName"] == "Bo\ud800"  # passed on as it came, not replaced
    map_cfg = tmp_path / "map.json"
    map_cfg.write_text(json.dumps({
        "profile": "bamboohr_to_canonical",
        "hmac_key": "test-key-test-key-test-key-test-key",
        "state_dir": str(tmp_path / "map-hr"),
    }))  # fmt: skip
    mapped = subprocess.run(
        [str(BIN / "map-hr"), "--config", str(map_cfg)],
        input=tap.stdout,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert mapped.returncode == 0, mapped.stderr.decode(errors="replace")[-2000:]
    workers = [
        json.loads(line)["record"]["id"]
        for line in mapped.stdout.splitlines()
        if b'"RECORD","stream":"worker"' in line
    ]
    assert workers == ["1", "3"]
    (letter,) = DeadLetterStore().list(plugin="map-hr:bamboohr_to_canonical")
    assert (letter.stream, letter.record_key) == ("worker", "id=2")
    assert "stream employees, record id=2: field firstName: unpaired UTF-16" in letter.error
