"""Crash safety of ``hrsync run`` (hrsync_ops.supervise) over a stand-in ``meltano`` that does
what the real one does to a process tree: it starts a tap and a target as its children (in its
own process group), writes a config file for each into ``.meltano/run/<plugin>/`` and marks
its run ``RUNNING`` in a SQLite ``runs`` table. Processes are killed with SIGKILL for real.
tests/e2e/test_crash_safety.py does the same with the real Meltano and plugins."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hrsync_ops.runs import PluginLocks, RunLedger
from hrsync_ops.supervise import (
    close_dead_meltano_runs,
    end_group,
    failure_cause,
    group_members,
    running_meltano_runs,
    wait_for_foreign_runs,
)

HRSYNC = str(Path(sys.executable).parent / "hrsync")

# a plugin: records its pid, then works until it is ended (recording when, if by SIGTERM)
PLUGIN = """
import os, signal, sys, time
out = sys.argv[1]
def stop(*_):
    time.sleep(float(os.environ.get("FAKE_STOP", "0")))  # a plugin slow to finish
    with open(out, "a") as fh:
        fh.write(f"ended {os.getpid()} {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with open(out, "a") as fh:
    fh.write(f"started {os.getpid()} {time.time()}\\n")
while True:
    time.sleep(0.05)
"""

FAKE_MELTANO = """
import json, os, sqlite3, subprocess, sys, time
from datetime import UTC, datetime
root, work = os.getcwd(), os.environ["FAKE_WORK"]
with open(os.path.join(work, "meltano.starts"), "a") as fh:
    fh.write(f"{os.getpid()} {time.time()}\\n")
db = sqlite3.connect(os.path.join(root, ".meltano", "meltano.db"))
with db:
    db.execute("INSERT INTO runs (job_name, state, started_at, trigger, payload) "
               "VALUES ('dev:tap-a-to-target-b', 'RUNNING', ?, ?, '{}')",
               (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                os.environ.get("MELTANO_JOB_TRIGGER")))
    run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
procs = []
for plugin in ("tap-a", "target-b"):
    folder = os.path.join(root, ".meltano", "run", plugin)
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, f"{plugin.split('-')[0]}.{os.getpid()}.config.json")
    with open(config, "w") as fh:
        json.dump({"api_key": "secret"}, fh)
    procs.append(subprocess.Popen([sys.executable, os.environ["FAKE_PLUGIN"],
                                   os.path.join(work, plugin + ".log")]))
if os.environ.get("FAKE_FAIL"):
    time.sleep(0.5)
    print("2026-12-06T02:40:00.1Z [info     ] tap-a 2026-12-06 02:40:00,100 | ERROR    | "
          "tap-a | 'base_url' is a required property", file=sys.stderr)
    print("2026-12-06T02:40:00.2Z [error    ] meltano      Extractor failed", file=sys.stderr)
    for p in procs:
        p.terminate()
    sys.exit(1)
while True:
    time.sleep(0.05)
"""

MELTANO_YML = """
default_environment: dev
jobs:
  - name: job-a
    tasks: [tap-a target-b]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "project"
    (root / ".meltano").mkdir(parents=True)
    (root / "meltano.yml").write_text(MELTANO_YML)
    with sqlite3.connect(root / ".meltano" / "meltano.db") as db:
        db.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_name TEXT, state TEXT, "
            "started_at DATETIME, last_heartbeat_at DATETIME, ended_at DATETIME, payload TEXT, "
            "trigger TEXT)"
        )
    (tmp_path / "meltano.py").write_text(FAKE_MELTANO)
    (tmp_path / "plugin.py").write_text(PLUGIN)
    monkeypatch.setenv("HRSYNC_MELTANO", f"{sys.executable} {tmp_path / 'meltano.py'}")
    monkeypatch.setenv("FAKE_WORK", str(tmp_path))
    monkeypatch.setenv("FAKE_PLUGIN", str(tmp_path / "plugin.py"))
    for name in ("HRSYNC_AUDIT_LOG", "HRSYNC_DLQ_PATH", "HRSYNC_RUNS_PATH", "HRSYNC_OPS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MELTANO_DATABASE_URI", raising=False)
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    yield root


def hrsync_run(project: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HRSYNC, "run", "--project-root", str(project), "job-a"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def plugin_pids(work: Path) -> dict[str, int]:
    pids = {}
    for plugin in ("tap-a", "target-b"):
        log = work / f"{plugin}.log"
        lines = log.read_text().split("\n") if log.exists() else []
        starts = [line.split() for line in lines if line.startswith("started")]
        if starts:
            pids[plugin] = int(starts[-1][1])
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def meltano_pid(work: Path) -> int:
    return int((work / "meltano.starts").read_text().split("\n")[-2].split()[0])


@pytest.mark.parametrize("victim", ["meltano", "group"])
def test_a_killed_process_ends_its_whole_pipeline_and_the_next_run_starts_clean(
    project: Path, tmp_path: Path, victim: str
) -> None:
    first = hrsync_run(project)
    wait_for(lambda: len(plugin_pids(tmp_path)) == 2)
    pids = plugin_pids(tmp_path)
    meltano = meltano_pid(tmp_path)
    assert os.getpgid(pids["tap-a"]) == meltano  # the plugins are in meltano's group
    config = next((project / ".meltano" / "run" / "tap-a").glob("*.config.json"))
    assert config.stat().st_mode & 0o777 == 0o600  # umask 077 for the run
    if victim == "group":
        os.killpg(meltano, signal.SIGKILL)
    else:
        os.kill(meltano, signal.SIGKILL)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 137, err
    assert "cause: meltano killed by SIGKILL" in err
    assert group_members(meltano) == []
    assert not any(alive(p) for p in pids.values())

    # the next run starts at once: it removes the config files the killed one left, closes
    # its Meltano run (still RUNNING), and is itself stopped cleanly by SIGTERM
    second = hrsync_run(project)
    wait_for(lambda: meltano_pid(tmp_path) != meltano)
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=60)
    assert "removed 2 config file(s) a killed run left" in err
    assert "closed Meltano run 1 of dev:tap-a-to-target-b" in err
    assert "cause: stopped by SIGTERM" in err
    assert not config.exists()
    with sqlite3.connect(project / ".meltano" / "meltano.db") as db:
        rows = db.execute("SELECT id, state, payload FROM runs ORDER BY id").fetchall()
    assert rows[0][:2] == (1, "FAIL") and "killed" in json.loads(rows[0][2])["error"]
    assert not any(alive(p) for p in plugin_pids(tmp_path).values())
    outcomes = [r.outcome for r in RunLedger(project / ".hrsync/runs.sqlite").history("job-a")]
    assert outcomes == ["failed", "failed"]


def test_a_killed_hrsync_run_ends_its_pipeline_and_holds_the_locks_until_it_is_gone(
    project: Path, tmp_path: Path
) -> None:
    first = hrsync_run(project, FAKE_STOP="6")  # plugins slow to stop
    wait_for(lambda: len(plugin_pids(tmp_path)) == 2)
    pids = plugin_pids(tmp_path)
    first.kill()
    first.wait()
    second = hrsync_run(project, FAKE_FAIL="1")  # at once
    _, err = second.communicate(timeout=60)
    # the reaper ended meltano and its plugins (SIGTERM: each plugin records its end)
    assert not any(alive(p) for p in pids.values())
    ended = [
        float(line.split()[2])
        for plugin in pids
        for line in (tmp_path / f"{plugin}.log").read_text().splitlines()
        if line.startswith("ended") and int(line.split()[1]) == pids[plugin]
    ]
    assert len(ended) == 2
    started = float((tmp_path / "meltano.starts").read_text().split("\n")[-2].split()[1])
    assert started > max(ended)  # the tap-a lock was held until the old plugins were gone
    assert second.returncode == 1
    # the summary names the plugin and its error line from Meltano's log
    assert "cause: tap-a: 'base_url' is a required property" in err


def test_locks_stay_held_by_a_process_that_was_handed_them(tmp_path: Path) -> None:
    locks = PluginLocks(tmp_path, ["tap-a"], "job-a", shared=["map-x"])
    assert locks.acquire(1) is None and locks.alone == ["map-x"]
    locks.share()
    other = PluginLocks(tmp_path, ["tap-z"], "job-z", shared=["map-x"])
    assert other.acquire(1) is None and other.alone == []  # shared with the first
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=locks.fds
    )
    locks.release()
    again = PluginLocks(tmp_path, ["tap-a"], "job-b")
    assert again.acquire(0.3) == "tap-a"  # the child still holds it
    holder.kill()
    holder.wait()
    assert again.acquire(5) is None
    again.release()
    other.release()


def test_end_group_ends_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
         "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
        process_group=0, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    assert end_group(stubborn.pid, grace=0.2) == [stubborn.pid]
    assert stubborn.wait(10) == -signal.SIGKILL


def test_only_runs_started_by_hrsync_are_closed(tmp_path: Path) -> None:
    db = tmp_path / "meltano.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_name TEXT, state TEXT, "
            "started_at DATETIME, last_heartbeat_at DATETIME, ended_at DATETIME, "
            "payload TEXT, trigger TEXT)"
        )
        conn.executemany(
            "INSERT INTO runs (job_name, state, started_at, trigger, payload) VALUES (?,?,?,?,?)",
            [
                ("dev:a-to-b", "RUNNING", "2026-01-01 00:00:00", "hrsync run (pid 1)", "{}"),
                ("dev:a-to-b", "RUNNING", "2026-01-01 00:00:00", None, None),  # bare meltano
                ("dev:c-to-d", "RUNNING", "2026-01-01 00:00:00", "hrsync run (pid 2)", "{}"),
                ("dev:a-to-b", "SUCCESS", "2026-01-01 00:00:00", "hrsync run (pid 3)", "{}"),
            ],
        )
    closed = close_dead_meltano_runs(db, ["dev:a-to-b"])
    assert [r.id for r in closed] == [1]
    assert [r.id for r in running_meltano_runs(db, ["dev:a-to-b", "dev:c-to-d"])] == [2, 3]


def test_a_run_hrsync_did_not_start_is_waited_out_not_closed(tmp_path: Path) -> None:
    """A bare `meltano run` marked RUNNING with a fresh heartbeat: hrsync waits (saying so
    once) until its deadline; once the heartbeat is older than Meltano's 5 minutes, Meltano
    closes it itself and hrsync does not wait."""
    db = tmp_path / "meltano.db"
    beat = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_name TEXT, state TEXT, "
            "started_at DATETIME, last_heartbeat_at DATETIME, ended_at DATETIME, "
            "payload TEXT, trigger TEXT)"
        )
        conn.execute(
            "INSERT INTO runs (job_name, state, started_at, last_heartbeat_at) "
            "VALUES ('dev:a-to-b', 'RUNNING', ?, ?)",
            (beat, beat),
        )
    told: list[int] = []
    live = wait_for_foreign_runs(
        db, ["dev:a-to-b"], time.monotonic() + 1.5, lambda r: told.append(r.id)
    )
    assert live is not None and live.id == 1 and told == [1]
    assert close_dead_meltano_runs(db, ["dev:a-to-b"]) == []  # not hrsync's: left alone
    old = (datetime.now(UTC) - timedelta(minutes=6)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET last_heartbeat_at=?", (old,))
    assert wait_for_foreign_runs(db, ["dev:a-to-b"], None, lambda r: told.append(r.id)) is None


def test_failure_cause_names_the_failed_plugin_or_meltanos_error() -> None:
    """Lines as Meltano 4.4 prints them (``<time> [<level>] <source> <message>``)."""
    sdk = "2026-12-06 03:01:08,963 | {} | tap-greenhouse                 | {}"
    lines = [
        "2026-12-06T03:00:11.9Z [info     ] meltano      Running catalog discovery",
        "2026-12-06T03:00:30.8Z [info     ] tap-greenhouse "
        + sdk.format("WARNING ", "Logging config file not found: /x/tap.singer_logging.json"),
        "2026-12-06T03:00:30.9Z [info     ] tap-greenhouse "
        + sdk.format("ERROR   ", "'base_url' is a required property"),
        "2026-12-06T03:00:30.9Z [info     ] tap-greenhouse "
        + sdk.format("ERROR   ", "Config validation failed"),
        "2026-12-06T03:00:31.0Z [info     ] target-bamboohr BrokenPipeError: [Errno 32] Broken",
        "2026-12-06T03:00:33.3Z [error    ] meltano      Extractor failed",
        "2026-12-06T03:00:33.3Z [error    ] meltano      Block run completed",
    ]
    assert failure_cause(lines) == (
        "tap-greenhouse: 'base_url' is a required property (+1 more error line(s))"
    )
    crash = [
        "2026-12-06T03:00:30.8Z [info     ] target-moodle Traceback (most recent call last):",
        '2026-12-06T03:00:30.8Z [info     ] target-moodle   File "/x/sinks.py", line 9',
        "2026-12-06T03:00:30.8Z [info     ] target-moodle KeyError: 'id'",
        "2026-12-06T03:00:33.3Z [error    ] meltano      Loader failed",
    ]
    assert failure_cause(crash) == "target-moodle: KeyError: 'id'"
    killed = [
        "2026-12-06T03:07:58.6Z [info     ] target-bamboohr target-bamboohr v0.1, Meltano SDK",
        "2026-12-06T03:08:00.2Z [error    ] meltano      Loader failed",
        "2026-12-06T03:08:00.2Z [error    ] meltano      Block run completed",
    ]
    assert failure_cause(killed) == (
        "target-bamboohr: ended without an error message (killed?); Meltano: loader failed"
    )
    # the key=value layout of other Meltano versions
    fields = "cmd_type=elb consumer=True job_name=dev:t-to-u name=target-y stdio=stderr"
    assert (
        failure_cause([f"2026-12-06T03:00:01Z [info     ] ValueError: bad date {fields}"])
        == "target-y: ValueError: bad date"
    )
    own = [
        "2026-12-06T03:00:33.3Z [error    ] meltano      Cannot start plugin tap-bamboohr: "
        "[Errno 2] No such file or directory: 'tap.properties.json'",
        "2026-12-06T03:00:33.3Z [error    ] meltano      Block run completed",
    ]
    assert failure_cause(own) == (
        "Cannot start plugin tap-bamboohr: [Errno 2] No such file or directory: "
        "'tap.properties.json'"
    )
    assert failure_cause(["all fine"]) is None
