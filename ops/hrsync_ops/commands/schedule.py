"""``hrsync schedule crontab``: a crontab for every schedule in meltano.yml.

One line per schedule (``schedules:`` with a ``job`` and a cron ``interval``, or one of
Meltano's aliases ``@hourly`` ... ``@yearly``; ``@once`` and schedules without an interval
are left out, with a comment), each running ``hrsync run <job>`` from the project root with
the ``hrsync`` of this installation (its venv: cron's PATH does not have it), appending to
``.hrsync/logs/<job>.log``. ``hrsync run`` already keeps jobs that share a plugin apart, so
overlapping schedules are safe. Install with ``hrsync schedule crontab | crontab -`` (that
replaces the user's crontab) or paste the lines into it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from hrsync.errors import ConfigError
from hrsync_ops.ops import project_root, safe_load

LOG_DIR = Path(".hrsync/logs")
_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")


def register(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="scheduling helpers (a crontab from meltano.yml)")
    what = schedule.add_subparsers(dest="schedule_command", required=True)
    crontab = what.add_parser(
        "crontab",
        help="print a crontab running `hrsync run <job>` for every schedule in meltano.yml",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    crontab.add_argument("--project-root", type=Path, help="default: nearest dir with meltano.yml")
    crontab.add_argument(
        "--log-dir",
        type=Path,
        default=LOG_DIR,
        help=f"where each job's log goes, relative to the project root (default {LOG_DIR})",
    )
    crontab.set_defaults(func=cmd_crontab)


def hrsync_executable() -> str:
    """This installation's ``hrsync``: next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "hrsync"
    if beside.exists():
        return str(beside)
    return shutil.which("hrsync") or "hrsync"


def schedules(root: Path) -> list[dict[str, Any]]:
    path = root / "meltano.yml"
    if not path.exists():
        raise ConfigError.at("no meltano.yml here: run hrsync from the project root", file=path)
    data = safe_load(path.read_text(encoding="utf-8")) or {}
    return [dict(s) for s in data.get("schedules") or [] if isinstance(s, dict)]


def _valid_cron(interval: str) -> bool:
    if interval.startswith("@"):
        return interval in _ALIASES
    fields = interval.split()
    return len(fields) == 5 and all(set(f) <= set("0123456789*/,-") for f in fields)


#: jobs whose schedule runs an hrsync command that runs the job (through `hrsync run`) and then
#: acts on what it loaded: the reconcile job's line writes the drift report
JOB_COMMANDS: dict[str, tuple[str, ...]] = {"reconcile": ("reconcile", "--run", "--quiet")}


def crontab(root: Path, log_dir: Path = LOG_DIR) -> str:
    """The crontab text for every schedule of the project at ``root``."""
    hrsync = hrsync_executable()
    bin_dir = str(Path(hrsync).parent) if "/" in hrsync else None
    path = ":".join(filter(None, [bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    logs = log_dir if log_dir.is_absolute() else root / log_dir
    lines = [
        f"# hrsync: the schedules of {root / 'meltano.yml'} (`hrsync schedule crontab`)",
        "SHELL=/bin/sh",
        f"PATH={path}",
    ]
    for schedule in schedules(root):
        name, job = schedule.get("name", "?"), schedule.get("job")
        interval = str(schedule.get("interval") or "").strip()
        if not job:
            lines.append(f"# {name}: not a job schedule (no `job`): left out")
            continue
        if not interval or interval == "@once" or not _valid_cron(interval):
            lines.append(f"# {name}: interval {interval or 'none'!r} is not a cron: left out")
            continue
        log = logs / f"{job}.log"
        argv = " ".join(shlex.quote(a) for a in JOB_COMMANDS.get(str(job), ("run", str(job))))
        command = (
            f"cd {shlex.quote(str(root))} && mkdir -p {shlex.quote(str(logs))} && "
            f"{shlex.quote(hrsync)} {argv} >> {shlex.quote(str(log))} 2>&1"
        )
        lines.append(f"# {name}")
        lines.append(f"{interval} {command.replace('%', chr(92) + '%')}")
    return "\n".join(lines) + "\n"


def cmd_crontab(args: argparse.Namespace) -> int:
    root = (args.project_root or project_root()).resolve()
    try:
        text = crontab(root, args.log_dir)
    except ConfigError as exc:
        print(f"hrsync schedule: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
