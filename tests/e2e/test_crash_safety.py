"""Crash safety of `hrsync run` with the real Meltano and plugins: `hrsync run ats-to-hris`
(tap-greenhouse | map-hr | target-bamboohr against the sandbox, the HRIS answering slowly)
has one of its processes - meltano, the tap, the mapper, the target, the whole process group,
or `hrsync run` itself - killed with SIGKILL while new hires are being delivered; the job is
run again at once. The re-run succeeds (no "another pipeline is already running"), every
accepted offer is in the HRIS exactly once, no process of the killed run is left, and no
config file (API keys) is left in .meltano/run/."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests import projectkit

from hrsync_ops.supervise import group_members
from sandbox.demo import meltano_env
from sandbox.server import Sandbox

pytestmark = pytest.mark.meltano

ROOT = projectkit.ROOT
HRSYNC = str(Path(sys.executable).parent / "hrsync")
VICTIMS = ["meltano", "tap-greenhouse", "map-hr", "target-bamboohr", "group", "hrsync"]


@pytest.fixture
def crash(tmp_path: Path) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    """A fresh HRIS and Meltano system database for each test."""
    workdir = tmp_path
    (workdir / "hrsync.yml").write_text("jobs: {}\n")
    with Sandbox(employees=400, vendors=("greenhouse", "bamboohr")) as sb:
        env = meltano_env(sb, workdir) | {
            "HRSYNC_OPS_FILE": str(workdir / "hrsync.yml"),
            "HRSYNC_RUNS_PATH": str(workdir / "runs.sqlite"),
        }
        yield sb, env


def new_hires(sb: Sandbox) -> list[str]:
    creds = sb.credentials["bamboohr"]
    resp = requests.post(
        f"{sb.bamboohr_url}/api/v1/reports/custom",
        params={"format": "JSON", "onlyCurrent": "false"},
        json={"fields": ["id", "customATSCandidateID"]},
        auth=(creds["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=30,
    )
    resp.raise_for_status()
    employees = resp.json()["employees"]
    return [str(e["customATSCandidateID"]) for e in employees if int(e["id"]) > sb.world.employees]


def processes() -> dict[int, tuple[int, list[str]]]:
    """pid -> (ppid, argv) of every live process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            argv = (entry / "cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X"):
            found[int(entry.name)] = (int(fields[1]), argv)
    return found


def descendants(root: int) -> dict[int, list[str]]:
    table = processes()
    out: dict[int, list[str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, argv) in table.items():
            if ppid == parent and pid not in out:
                out[pid] = argv
                frontier.append(pid)
    return out


def find(tree: dict[int, list[str]], name: str) -> int | None:
    for pid, argv in tree.items():
        if name == "meltano" and any(a.endswith("/meltano") for a in argv) and "run" in argv:
            return pid
        if name != "meltano" and any(Path(a).name == name for a in argv[:2]):
            return pid
    return None


def leftover_config_files() -> list[Path]:
    return sorted((ROOT / ".meltano" / "run").glob("*/*.config.json"))


def plugin_processes() -> list[int]:
    """Live plugin processes of this project: Meltano starts each with a config file in the
    project's own run folder (the venvs may be shared with other projects)."""
    run = f"{ROOT / '.meltano' / 'run'}/"
    return [pid for pid, (_, argv) in processes().items() if any(run in a for a in argv)]


def hrsync_run(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HRSYNC, "run", "ats-to-hris", *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("victim", VICTIMS)
def test_a_pipeline_killed_anywhere_reruns_at_once_without_loss_or_leftovers(
    crash: tuple[Sandbox, dict[str, str]], victim: str
) -> None:
    sb, env = crash
    pending = {str(c.id) for c in sb.world.pending_hires()}
    assert len(pending) >= 4
    sb.faults.reset()
    sb.faults.paths = "/employees/?$"
    sb.faults.rate_slow, sb.faults.slow_seconds = 1.0, 0.4  # each new hire takes 0.4 s
    before = len(new_hires(sb))
    assert before == 0

    first = hrsync_run(env, "--full-refresh")  # the tap reads everything again
    deadline = time.monotonic() + 300
    while True:
        assert first.poll() is None, first.communicate()[1][-4000:]
        assert time.monotonic() < deadline, "the pipeline never started"
        tree = descendants(first.pid)
        meltano = find(tree, "meltano")
        pid = find(tree, victim)
        if victim in ("tap-greenhouse", "map-hr"):
            if pid is not None:  # they finish first: killed as soon as they run
                break
        elif find(tree, "target-bamboohr") is not None and len(new_hires(sb)) > before:
            break  # the others: once the HRIS has some of the new hires
        time.sleep(0.2)
    modes = {p.stat().st_mode & 0o777 for p in leftover_config_files()}
    assert meltano is not None
    assert modes == {0o600}, modes  # Meltano's config files of a run are private (umask 077)
    if victim == "group":
        os.killpg(meltano, signal.SIGKILL)
    elif victim == "hrsync":
        os.kill(first.pid, signal.SIGKILL)
    else:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while group_members(meltano):  # a figure, not an assertion: how long the rest lived on
        time.sleep(0.02)
    lived_on = time.monotonic() - killed
    err = first.communicate(timeout=300)[1]
    summary = err.strip().splitlines()[-1] if err.strip() else ""
    if victim != "hrsync":
        assert first.returncode != 0 and "cause: " in err, err[-4000:]
        assert group_members(meltano) == []  # hrsync run returned after its group was gone
        assert plugin_processes() == []

    # at once: the re-run is not refused, and starts from whatever state the killed run saved
    second = hrsync_run(env)
    err = second.communicate(timeout=600)[1]
    assert second.returncode == 0, err[-6000:]
    assert "already running" not in err
    hires = new_hires(sb)
    assert len(hires) == len(set(hires)), "a new hire was created twice"
    assert set(hires) == pending, "a new hire is missing"
    assert group_members(meltano) == [] and plugin_processes() == []
    assert leftover_config_files() == []
    sb.faults.reset()
    print(
        f"\ncrash {victim}: killed run exit {first.returncode}, its processes gone "
        f"{lived_on:.2f} s after the kill; re-run ok; {len(hires)} hires once each; "
        + json.dumps({"closed": "closed Meltano run" in err, "swept": "removed" in err})
        + f"\n  killed run: {summary}"
    )
