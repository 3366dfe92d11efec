"""``hrsync run`` and ``hrsync status`` over a small Meltano project whose ``meltano`` is a
stand-in script ($HRSYNC_MELTANO): it audits writes, adds dead letters and exits as told, the
way the real targets do under ``meltano run``. (tests/e2e/test_operations.py runs the real
thing.) Alerts go to a real local HTTP receiver."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hrsync_ops.cli import main
from hrsync_ops.ops import MeltanoProject, cron_period
from hrsync_ops.runs import RunLedger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from opskit import WebhookReceiver

FAKE_MELTANO = """
import json, os, sys, time
from hrsync.audit import AuditLog
from hrsync.deadletter import DeadLetterStore

began = time.time()
if os.environ.get("FAKE_TOUCH"):  # tell another job's fake that this one has started
    open(os.environ["FAKE_TOUCH"], "w").close()
if os.environ.get("FAKE_UNTIL"):  # run until that file appears (at most two minutes)
    deadline = time.time() + 120
    while not os.path.exists(os.environ["FAKE_UNTIL"]) and time.time() < deadline:
        time.sleep(0.05)
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
if os.environ.get("FAKE_TIMES"):
    with open(os.environ["FAKE_TIMES"], "a") as fh:
        fh.write(json.dumps([sys.argv[-1], began, time.time()]) + "\\n")

with open(os.environ["FAKE_ARGV"], "a") as fh:
    fh.write(json.dumps([sys.argv[1:], os.environ.get("HRSYNC_INTEGRATION"), os.getcwd()]) + "\\n")
audit = AuditLog()
for i, outcome in enumerate(os.environ.get("FAKE_OUTCOMES", "").split()):
    audit.record(stream="s", record_key=str(i), fields=["a"], destination="d", outcome=outcome)
audit.record(stream="s", record_key="x", fields=["a"], destination="d", outcome="created",
             integration="another-job")
store = DeadLetterStore()
for i in range(int(os.environ.get("FAKE_LETTERS", "0"))):
    store.add(plugin="target-b", stream="s", record_key=f"k{i}", record={"name": "Zoë"},
              error="field name: refused", error_class="http_400")
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""

MELTANO_YML = """
default_environment: dev
plugins:
  mappers:
    - name: mapper-x
      mappings: [{name: map-x}]
jobs:
  - name: job-a
    tasks:
      - tap-a map-x target-b
  - name: job-b
    tasks: [tap-c target-d, tap-c target-e]
  - name: job-c
    tasks:
      - tap-a map-x target-z
schedules:
  - name: job-a-hourly
    job: job-a
    interval: "@hourly"
  - name: job-b-daily
    job: job-b
    interval: "0 6 * * *"
  - name: job-c-weekly
    job: job-c
    interval: "@weekly"
"""


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "meltano.yml").write_text(MELTANO_YML)
    (root / "hrsync.yml").write_text(
        textwrap.dedent(
            """
            jobs:
              job-a: {owner: team-a, critical: true, alert_after_failures: 2}
            alerts:
              channels: [{type: webhook, url_env: TEST_ALERT_URL}]
            """
        )
    )
    script = tmp_path / "fake_meltano.py"
    script.write_text(FAKE_MELTANO)
    monkeypatch.setenv("HRSYNC_MELTANO", f"{sys.executable} {script}")
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv.jsonl"))
    monkeypatch.setenv("TEST_ALERT_URL", hook.url)
    # the project's own files (not the isolated test ones): hrsync run points plugins at them
    for name in ("HRSYNC_AUDIT_LOG", "HRSYNC_DLQ_PATH", "HRSYNC_RUNS_PATH", "HRSYNC_OPS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MELTANO_DATABASE_URI", raising=False)
    return root


def run(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str, **fake: Any) -> int:
    for key in ("FAKE_EXIT", "FAKE_OUTCOMES", "FAKE_LETTERS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in fake.items():
        monkeypatch.setenv(f"FAKE_{key.upper()}", str(value))
    return main(["run", "--project-root", str(project), *args])


def status(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["status", "--project-root", str(project), "--json"])
    doc = json.loads(capsys.readouterr().out)
    return code, {j["job"]: j for j in doc["jobs"]}


def test_run_records_the_run_moved_records_and_passes_arguments(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcomes = "created created updated unchanged"
    code = run(project, monkeypatch, "job-a", "--full-refresh", outcomes=outcomes)
    assert code == 0
    argv, integration, cwd = json.loads((tmp_path / "argv.jsonl").read_text())
    assert argv == ["run", "--full-refresh", "job-a"]
    assert integration == "job-a" and cwd == str(project)
    (last,) = RunLedger(project / ".hrsync/runs.sqlite").history("job-a")
    assert (last.outcome, last.exit_code, last.args) == ("success", 0, ["--full-refresh"])
    # unchanged is not moved; another job's events in the same window are not this job's
    assert last.records_moved == 3
    assert last.moved_by_outcome == {"created": 2, "updated": 1}
    assert last.duration_s is not None and last.ended_at is not None


def test_failures_alert_after_the_configured_count_and_a_success_resets(
    project: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    assert run(project, monkeypatch, "job-a", exit=1) == 1
    assert hook.bodies == []
    assert run(project, monkeypatch, "job-a", exit=1) == 1
    (alert,) = hook.bodies
    assert alert["hrsync"]["kind"] == "failures"
    assert alert["hrsync"]["consecutive_failures"] == 2
    assert alert["hrsync"]["owner"] == "team-a"
    assert run(project, monkeypatch, "job-a", exit=1) == 1  # 3: not a multiple of 2
    assert len(hook.bodies) == 1
    assert run(project, monkeypatch, "job-a") == 0
    assert RunLedger(project / ".hrsync/runs.sqlite").consecutive_failures("job-a") == 0
    # a job without alert settings gets the default (3)
    for _ in range(3):
        run(project, monkeypatch, "job-b", exit=2)
    assert [b["hrsync"]["job"] for b in hook.bodies] == ["job-a", "job-b"]


def test_dead_letters_of_a_critical_job_alert_without_personal_data(
    project: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    assert run(project, monkeypatch, "job-a", letters=2) == 0
    (alert,) = hook.bodies
    assert alert["hrsync"]["kind"] == "dead_letters"
    assert alert["hrsync"]["new_dead_letters"] == 2
    assert alert["hrsync"]["error_classes"] == {"http_400": 2}
    assert "Zoë" not in hook.raw[0].decode() and "refused" not in hook.raw[0].decode()
    (last,) = RunLedger(project / ".hrsync/runs.sqlite").history("job-a")
    assert last.dead_letters == 2
    # the same letters failing again on the next run are news again (attempts grow)
    run(project, monkeypatch, "job-a", letters=2)
    assert len(hook.bodies) == 2
    run(project, monkeypatch, "job-b", letters=1)  # job-b is not critical
    assert len(hook.bodies) == 2


def test_placeholder_alert_channels_are_one_warning_per_run_not_a_failure_per_alert(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    hook: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """hrsync.yml with a channel whose variable is unset and an example SMTP host, and a real
    one: a run raising two alerts (failures and dead letters) warns once, and the real
    channel gets both."""
    (project / "hrsync.yml").write_text(
        "jobs:\n  job-a: {critical: true, alert_after_failures: 1}\n"
        "alerts:\n  channels:\n"
        "    - {type: webhook, name: chat, url_env: UNSET_ALERT_URL}\n"
        "    - {type: email, name: mail, host: smtp.example.com, from: a@b.org, to: [c@d.org]}\n"
        "    - {type: webhook, name: real, url_env: TEST_ALERT_URL}\n"
    )
    monkeypatch.delenv("UNSET_ALERT_URL", raising=False)
    capsys.readouterr()
    assert run(project, monkeypatch, "--json", "job-a", exit=1, letters=1) == 1
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "not configured" in line]
    assert warnings == [
        "hrsync run job-a: warning: alert channel(s) not configured, skipped: chat "
        "(UNSET_ALERT_URL is not set); mail (host smtp.example.com is a placeholder)"
    ]
    assert sorted(b["hrsync"]["kind"] for b in hook.bodies) == ["dead_letters", "failures"]
    sent = json.loads(captured.out)["alerts"]
    assert [d["channel"] for a in sent for d in a["deliveries"]] == ["real", "real"]
    assert "ERROR" not in captured.err


def test_unknown_job_and_a_missing_meltano(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--project-root", str(project), "nope"]) == 2
    assert "no job 'nope' in meltano.yml (jobs: job-a, job-b, job-c)" in capsys.readouterr().err
    monkeypatch.setenv("HRSYNC_MELTANO", "/nonexistent/meltano")
    assert main(["run", "--project-root", str(project), "job-a"]) == 127
    (last,) = RunLedger(project / ".hrsync/runs.sqlite").history("job-a")
    assert last.outcome == "failed"


def _hrsync_run(project: Path, job: str, *args: str, **fake: Any) -> subprocess.Popen[str]:
    env = {**os.environ, **{f"FAKE_{k.upper()}": str(v) for k, v in fake.items()}}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "hrsync"), "run", "--project-root", str(project),
         *args, job],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_jobs_sharing_a_tap_run_one_after_the_other(project: Path, tmp_path: Path) -> None:
    """job-a and job-c both run tap-a (Meltano would give both taps one state.json): job-c
    waits, naming what it waits for. job-b shares nothing with job-a and runs alongside."""
    times = tmp_path / "times.jsonl"
    lock = project / ".hrsync" / "locks" / "tap-a.lock"
    # job-a runs until job-b has started: if job-b waited for job-a, job-a would end first
    # (after two minutes) and the span check below fails; no wall-clock guess involved
    started_b = tmp_path / "job-b-started"
    first = _hrsync_run(project, "job-a", until=started_b, times=times)
    deadline = time.monotonic() + 30
    while not (lock.exists() and "job-a (pid" in lock.read_text()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = _hrsync_run(project, "job-c", sleep=0, times=times)
    # job-b (which ends job-a) starts only once job-c says it waits: started together, job-c's
    # interpreter could come up after job-a had already ended, and then it rightly waits for none
    assert second.stderr is not None
    waiting = second.stderr.readline()
    assert f"waiting for tap-a, in use by job-a (pid {first.pid})" in waiting
    alongside = _hrsync_run(project, "job-b", touch=started_b, times=times)
    assert [p.wait(300) for p in (first, second, alongside)] == [0, 0, 0]
    spans = {job: (began, ended) for job, began, ended in map(json.loads, times.open())}
    assert spans["job-c"][0] >= spans["job-a"][1]  # after job-a's meltano ended
    assert spans["job-b"][0] < spans["job-a"][1]  # not held up by job-a
    ledger = RunLedger(project / ".hrsync/runs.sqlite")
    assert [r.outcome for job in ("job-a", "job-b", "job-c") for r in ledger.history(job)] == [
        "success"
    ] * 3


def test_a_run_that_waits_too_long_fails_and_is_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lock = project / ".hrsync" / "locks" / "tap-a.lock"
    holder = _hrsync_run(project, "job-c", sleep=5, times=tmp_path / "t.jsonl")
    deadline = time.monotonic() + 30
    while not (lock.exists() and "job-c (pid" in lock.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run(project, monkeypatch, "--wait", "0.5", "job-a") == 75
    (last,) = RunLedger(project / ".hrsync/runs.sqlite").history("job-a")
    assert (last.outcome, last.exit_code) == ("failed", 75)
    assert (
        not (tmp_path / "argv.jsonl").exists()
        or "job-a" not in (tmp_path / "argv.jsonl").read_text()
    )  # meltano never started for job-a
    assert holder.wait(60) == 0


def test_exclusive_plugins_are_the_extractors_and_loaders() -> None:
    """In the real meltano.yml: mappings (all through map-hr) are left out."""
    project = MeltanoProject.load(Path(__file__).resolve().parents[2])
    iam = ["tap-bamboohr-iam", "target-scim", "target-ldap"]  # its own view: its own run files
    assert project.exclusive_plugins("hris-to-iam") == iam
    assert project.exclusive_plugins("ats-to-hris") == ["tap-greenhouse", "target-bamboohr"]


def test_a_killed_run_counts_as_failed_on_the_next_start(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "runs.sqlite")
    ledger.start("job-a", [])  # never finished: the process was killed
    second = ledger.start("job-a", [])
    ledger.finish(second, outcome="failed", exit_code=1, moved={}, dead_letters=0)
    assert [r.outcome for r in ledger.history("job-a")] == ["failed", "failed"]
    assert ledger.consecutive_failures("job-a") == 2


# --- status -----------------------------------------------------------------------------------


def write_state(project: Path, state_id: str, saved: datetime) -> None:
    db = project / ".meltano" / "meltano.db"
    db.parent.mkdir(exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS state (state_id TEXT PRIMARY KEY, updated_at DATETIME, "
            "partial_state JSON, completed_state JSON)"
        )
        state = {"singer_state": {"bookmarks": {"s": {"replication_key_value": "2020-01-01"}}}}
        conn.execute(
            "INSERT OR REPLACE INTO state VALUES (?, ?, '{}', ?)",
            (state_id, saved.replace(tzinfo=None).isoformat(sep=" "), json.dumps(state)),
        )


def test_status_reports_each_job_and_flags_what_needs_a_person(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, jobs = status(project, capsys)
    assert code == 0  # a fresh deployment: nothing has run yet, and nothing is overdue
    assert jobs["job-a"]["never_run"] and not jobs["job-a"]["stale"] and jobs["job-a"]["ok"]
    assert jobs["job-a"]["expected_interval_from"] == "schedule '@hourly'"
    assert jobs["job-a"]["expected_interval_s"] == 3600 * 1.25

    write_state(project, "dev:tap-a-to-target-b", datetime.now(UTC) - timedelta(hours=3))
    run(project, monkeypatch, "job-a", outcomes="created")
    run(project, monkeypatch, "job-b", outcomes="updated updated")
    code, jobs = status(project, capsys)
    assert code == 0, jobs
    a = jobs["job-a"]
    assert (a["last_outcome"], a["records_moved"], a["owner"], a["ok"]) == (
        "success", 1, "team-a", True,
    )  # fmt: skip
    assert a["bookmark"]["state_ids"] == ["dev:tap-a-to-target-b"]
    assert 3 * 3600 - 60 < a["bookmark"]["age_s"] < 3 * 3600 + 600
    b_ids = ["dev:tap-c-to-target-d", "dev:tap-c-to-target-e"]
    assert jobs["job-b"]["bookmark"]["state_ids"] == b_ids
    assert jobs["job-b"]["bookmark"]["age_s"] is None  # no state saved for its tasks yet

    run(project, monkeypatch, "job-b", exit=1, letters=1)
    code, jobs = status(project, capsys)
    assert code == 1
    assert jobs["job-b"]["problems"] == [
        "last run failed (exit 1)",
        "1 dead letter(s) waiting",
    ]
    assert jobs["job-a"]["ok"]

    # a success older than the expected interval: stale
    ledger = RunLedger(project / ".hrsync/runs.sqlite")
    old = datetime.now(UTC) - timedelta(hours=5)
    rid = ledger.start("job-a", [], old)
    ledger.finish(rid, outcome="success", exit_code=0, moved={}, dead_letters=0, ended=old)
    monkeypatch.setattr("hrsync_ops.runs.RunLedger.last_success", lambda self, job: ledger.get(rid))
    code, jobs = status(project, capsys)
    assert jobs["job-a"]["stale"] and "stale: no success since" in jobs["job-a"]["problems"][0]

    capsys.readouterr()
    assert main(["status", "--project-root", str(project)]) == 1
    table = capsys.readouterr().out
    assert "job-a" in table and "stale" in table and "last run failed" in table


def test_a_fresh_deployment_is_not_an_alarm_until_a_schedule_is_overdue(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """job-c runs @weekly (stale after 7 days plus a quarter: 8.75 days). Deployed 8 days ago
    and never run: "not run yet", exit 0; deployed 9 days ago: stale. A job that has run and
    failed is a problem at once, never "not run yet"."""
    ledger = RunLedger(project / ".hrsync/runs.sqlite")
    ledger.first_seen("job-c", datetime.now(UTC) - timedelta(days=8))
    code, jobs = status(project, capsys)
    assert code == 0 and jobs["job-c"]["ok"] and jobs["job-c"]["never_run"]
    assert jobs["job-c"]["expected_interval_s"] == 8.75 * 86400
    capsys.readouterr()
    assert main(["status", "--project-root", str(project)]) == 0
    table = capsys.readouterr().out
    assert "not run yet, stale after" in table and "never" in table

    with sqlite3.connect(project / ".hrsync/runs.sqlite") as db:
        db.execute(
            "UPDATE jobs SET first_seen=? WHERE job='job-c'",
            ((datetime.now(UTC) - timedelta(days=9)).isoformat(),),
        )
    code, jobs = status(project, capsys)
    assert code == 1 and jobs["job-c"]["stale"] and not jobs["job-a"]["stale"]

    run(project, monkeypatch, "job-a", exit=1)
    code, jobs = status(project, capsys)
    assert not jobs["job-a"]["never_run"]
    assert jobs["job-a"]["problems"] == ["last run failed (exit 1)"]


def test_expected_interval_from_hrsync_yml_wins_over_the_schedule(tmp_path: Path) -> None:
    from hrsync_ops.ops import JobOps

    (tmp_path / "meltano.yml").write_text(MELTANO_YML)
    project = MeltanoProject.load(tmp_path)
    interval, source = project.expected_interval(JobOps("job-b", expected_interval=timedelta(3)))
    assert (interval, source) == (timedelta(days=3), "hrsync.yml")
    interval, source = project.expected_interval(JobOps("job-b"))
    assert interval == timedelta(days=1.25) and source == "schedule '0 6 * * *'"
    assert cron_period("*/15 * * * *") == timedelta(minutes=15)
    assert cron_period("0 6 * * 1-5") == timedelta(days=3)  # Friday to Monday
    assert cron_period("0 0 1 * *") is None  # day-of-month: say it in hrsync.yml
