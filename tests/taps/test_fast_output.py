"""Every tap writes RECORD lines through hrsync.output's writer (HRTap): over a real pipe, each
line is byte-for-byte what singer-sdk's own serializer writes for it, accented names included,
and the records are the ones singer-sdk's own writer emits in this process."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from singer_sdk import Tap
from singer_sdk.singerlib.encoding import SimpleSingerWriter
from singer_sdk.singerlib.json import serialize_json

from hrsync.output import OrjsonRecordWriter
from sandbox.demo import env_lines
from sandbox.server import Sandbox
from tap_bamboohr.tap import TapBambooHR
from tap_greenhouse.tap import TapGreenhouse
from tap_lever.tap import TapLever
from tap_surveymonkey.tap import TapSurveyMonkey

BIN = Path(sys.executable).parent
TAPS: dict[str, type[Tap]] = {
    "tap-bamboohr": TapBambooHR,
    "tap-greenhouse": TapGreenhouse,
    "tap-lever": TapLever,
    "tap-surveymonkey": TapSurveyMonkey,
}


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    with Sandbox(employees=40, vendors=("bamboohr", "greenhouse", "lever")) as sb:
        yield dict(line.partition("=")[::2] for line in env_lines(sb.info()))


def record_pairs(lines: list[str]) -> list[tuple[str, object]]:
    msgs = [json.loads(line) for line in lines]
    return [(m["stream"], m["record"]) for m in msgs if m["type"] == "RECORD"]


@pytest.mark.parametrize("name", ["tap-bamboohr", "tap-greenhouse", "tap-lever"])
def test_every_tap_writes_singer_sdks_bytes(name: str, env: dict[str, str]) -> None:
    assert TAPS[name].message_writer_class is OrjsonRecordWriter
    run = subprocess.run(
        [str(BIN / name), "--config", "ENV"],
        capture_output=True,
        check=True,
        env={**env, "PYTHONUNBUFFERED": "1", "PATH": str(BIN)},
    )
    lines = run.stdout.decode("ascii").splitlines()
    assert len(record_pairs(lines)) > 40
    for line in lines:
        assert serialize_json(json.loads(line)) == line
    assert any("\\u00" in line for line in lines), "the sandbox's accented names were not seen"
    # singer-sdk's own writer, in this process: the same records in the same order
    tap_class = type(name, (TAPS[name],), {"message_writer_class": SimpleSingerWriter})
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tap = tap_class(config=None, parse_env_config=True)
        tap.sync_all()
    assert record_pairs(lines) == record_pairs(out.getvalue().splitlines())
