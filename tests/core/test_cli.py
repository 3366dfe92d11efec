"""Every console script (hrsync, map-hr, each tap and target, hrsync-sandbox) ends quietly on a
closed pipe and says in one line, without a traceback, which input is missing (hrsync.cli).
Each runs as a real process with a pipe whose reader is already gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLUGINS = sorted(
    p.parent.name for p in ROOT.glob("*/*/pyproject.toml") if p.parts[-3] in ("taps", "targets")
)
SCRIPTS = [*PLUGINS, "map-hr", "hrsync", "hrsync-sandbox"]


def run_into_closed_pipe(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose read end is closed before the command writes a byte."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, **kwargs
        )  # type: ignore[call-overload, no-any-return]
    finally:
        os.close(write_end)


def test_every_plugin_is_listed() -> None:
    assert len(PLUGINS) >= 12 and "tap-greenhouse" in PLUGINS and "target-scim" in PLUGINS


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_closed_pipe_ends_the_command_quietly(script: str) -> None:
    args = ["--help"] if script in ("hrsync", "hrsync-sandbox") else ["--about"]
    proc = run_into_closed_pipe([str(BIN / script), *args])
    assert proc.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
    # 141 (128 + SIGPIPE); 1 where singer-sdk ends on it first (--about); 0 where argparse's
    # help already ignores a failed write
    assert proc.returncode in (141, 1, 0)


def test_map_hr_into_head_ends_quietly_with_141(tmp_path: Path) -> None:
    """``map-hr --config c.json --input in.jsonl | head``: the reader leaves after a few
    bytes; map-hr stops without a traceback (it printed one before)."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"profile": "hris_to_lms", "hmac_key": "x" * 32}))
    source = tmp_path / "in.jsonl"
    schema = {"properties": {"id": {"type": "string"}, "first_name": {"type": "string"},
                             "last_name": {"type": "string"}}}  # fmt: skip
    lines = [{"type": "SCHEMA", "stream": "worker", "schema": schema, "key_properties": ["id"]}]
    lines += [
        {
            "type": "RECORD",
            "stream": "worker",
            "record": {"id": str(i), "first_name": "Zoë", "last_name": "Ng"},
        }
        for i in range(5000)
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    head = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert head.stdin is not None
    mapper = subprocess.run(
        [str(BIN / "map-hr"), "--config", str(config), "--input", str(source)],
        stdout=head.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    head.stdin.close()
    assert head.stdout is not None
    out = head.stdout.read()
    head.wait(30)
    assert out.startswith(b'{"type"')
    assert mapper.returncode == 141
    assert "Traceback" not in mapper.stderr and "BrokenPipe" not in mapper.stderr


@pytest.mark.parametrize("script", [*PLUGINS, "map-hr"])
def test_a_missing_config_file_is_one_line(script: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    proc = subprocess.run(
        [str(BIN / script), "--config", str(missing)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (1, 2)  # map-hr's own config reader: 1
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert str(missing) in lines[0] or "nowhere.json" in lines[0]


def test_a_missing_input_file_and_a_missing_neighbour_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"profile": "hris_to_lms", "hmac_key": "x" * 32}))
    proc = subprocess.run(
        [str(BIN / "map-hr"), "--config", str(config), "--input", str(tmp_path / "in.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"map-hr: {tmp_path / 'in.jsonl'}: No such file or directory\n"
    # hrsync run without the meltano it runs: one line saying so, and the run's summary
    (tmp_path / "meltano.yml").write_text("jobs: [{name: job-x, tasks: [tap-a target-b]}]\n")
    proc = subprocess.run(
        [str(BIN / "hrsync"), "run", "--project-root", str(tmp_path), "job-x"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HRSYNC_MELTANO": str(tmp_path / "no-meltano")},
    )
    assert proc.returncode == 127 and "Traceback" not in proc.stderr
    first, summary = proc.stderr.splitlines()
    assert first == f"hrsync run: cannot start {tmp_path / 'no-meltano'}: No such file or directory"
    assert summary.endswith(f"cause: cannot start {tmp_path / 'no-meltano'}")


@pytest.mark.parametrize("script", ["target-bamboohr", "tap-greenhouse"])
def test_a_missing_input_or_catalog_of_a_plugin_is_one_line(script: str, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text("{}")
    option = "--input" if script.startswith("target-") else "--catalog"
    proc = subprocess.run(
        [str(BIN / script), "--config", str(config), option, str(tmp_path / "missing.json")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"{script}: Invalid value for '{option}': '{tmp_path / 'missing.json'}': "
        "No such file or directory\n"
    )
