"""``hrsync schedule crontab``: one cron line per schedule of meltano.yml, each of which runs
``hrsync run <job>`` from the project root with this venv's hrsync, even from cron's bare
environment, and logs to ``.hrsync/logs/<job>.log``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hrsync_ops.cli import main
from hrsync_ops.commands.schedule import JOB_COMMANDS, crontab
from hrsync_ops.runs import RunLedger

ROOT = Path(__file__).resolve().parents[2]


def entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_every_schedule_of_the_projects_meltano_yml_gets_a_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schedule", "crontab", "--project-root", str(ROOT)]) == 0
    text = capsys.readouterr().out
    data = yaml.safe_load((ROOT / "meltano.yml").read_text())
    lines = [line for line in entries(text) if not re.match(r"^[A-Z]+=", line)]
    assert len(lines) == len(data["schedules"]) >= 7
    hrsync = str(Path(sys.executable).parent / "hrsync")
    for schedule, line in zip(data["schedules"], lines, strict=True):
        assert line.startswith(schedule["interval"] + " ")
        assert f"cd {ROOT} && " in line
        log = f"{ROOT}/.hrsync/logs/{schedule['job']}.log"
        # the reconcile job's line runs it and writes the drift report (hrsync reconcile --run)
        command = JOB_COMMANDS.get(schedule["job"], ("run", schedule["job"]))
        assert line.endswith(f"{hrsync} {' '.join(command)} >> {log} 2>&1")
    assert f"PATH={Path(sys.executable).parent}:" in text


def test_a_crontab_line_runs_the_job_from_crons_bare_environment(tmp_path: Path) -> None:
    """The line, run as cron runs it (``sh -c`` with only the crontab's variables), starts
    ``hrsync run`` in the project root with the real Meltano: this project has no plugins
    installed, so the run fails, is recorded, and the log names the cause."""
    (tmp_path / "meltano.yml").write_text(
        "version: 1\ndefault_environment: dev\nenvironments: [{name: dev}]\n"
        "project_id: 5d1f0d4e-0000-4000-8000-000000000001\n"
        "plugins:\n  extractors: [{name: tap-x, namespace: tap_x, pip_url: tap-x}]\n"
        "  loaders: [{name: target-y, namespace: target_y, pip_url: target-y}]\n"
        "jobs: [{name: job-x, tasks: [tap-x target-y]}]\n"
        "schedules:\n  - {name: job-x-daily, job: job-x, interval: '0 6 * * *'}\n"
        "  - {name: once, job: job-x, interval: '@once'}\n"
    )
    text = crontab(tmp_path)
    assert "# once: interval '@once' is not a cron: left out" in text
    variables = dict(line.split("=", 1) for line in entries(text) if re.match(r"^[A-Z]+=", line))
    (line,) = [x for x in entries(text) if x.startswith("0 6 * * * ")]
    command = line.removeprefix("0 6 * * * ")
    proc = subprocess.run(
        ["/bin/sh", "-c", command],
        env={**variables, "HOME": str(tmp_path), "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (tmp_path / ".hrsync" / "logs" / "job-x.log").read_text()
    assert proc.returncode != 0 and proc.stdout == proc.stderr == ""  # all of it in the log
    assert "hrsync run job-x: failed" in log and "cause: " in log, log[-3000:]
    (run,) = RunLedger(tmp_path / ".hrsync" / "runs.sqlite").history("job-x")
    assert run.outcome == "failed"
