"""Operations config: the ops file ``hrsync.yml`` and what ``meltano.yml`` says about jobs.

``hrsync.yml`` (at the project root, or ``$HRSYNC_OPS_FILE``) is validated against
``schemas/ops.schema.json``::

    defaults: {alert_after_failures: 3}
    jobs:
      ats-to-hris: {owner: people-eng, critical: true, expected_interval: 26h}
    alerts:
      channels:
        - {type: webhook, url_env: HRSYNC_ALERT_WEBHOOK_URL}
        - {type: email, host: smtp.example.com, port: 587, security: starttls,
           username_env: HRSYNC_SMTP_USER, password_env: HRSYNC_SMTP_PASSWORD,
           from: hrsync@example.com, to: [people-eng-oncall@example.com]}

Secrets are never in the file: channels name the environment variables that hold them.
A job's expected interval is ``expected_interval`` when set, else its Meltano schedule's
period (the longest gap between two firings of its cron) plus a quarter, else unknown.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hrsync.errors import ConfigError

OPS_FILE = "hrsync.yml"
ENV_OPS_FILE = "HRSYNC_OPS_FILE"
DEFAULT_ALERT_AFTER_FAILURES = 3
#: a schedule's period is stretched by this much before a job counts as stale
SCHEDULE_GRACE = 0.25

__all__ = [
    "JobOps",
    "MeltanoProject",
    "OpsConfig",
    "cron_period",
    "load_ops",
    "meltano_command",
    "parse_duration",
    "project_root",
    "under_root",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Meltano's schedule aliases (meltano.core.schedule.CRON_INTERVALS)
_ALIASES = {
    "@once": None,
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` on libyaml's C parser when PyYAML has it (meltano.yml: ~8x faster).

    The same values (tests/core/test_yaml_loaders.py); a document libyaml rejects is parsed
    again by the pure-Python parser, so errors keep PyYAML's usual messages and marks.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        return yaml.safe_load(text)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``26h``, ``1.5d``, ``2w`` -> a timedelta."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*", str(text))
    if not match:
        raise ConfigError(f"{text!r} is not a duration (e.g. 90m, 26h, 8d)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True)
class JobOps:
    """What operations knows about one job (defaults when the ops file is silent)."""

    name: str
    owner: str | None = None
    critical: bool = False
    expected_interval: timedelta | None = None
    alert_after_failures: int = DEFAULT_ALERT_AFTER_FAILURES


@dataclass
class OpsConfig:
    path: Path | None
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)

    def job(self, name: str) -> JobOps:
        entry = {**self.defaults, **self.jobs.get(name, {})}
        interval = entry.get("expected_interval")
        return JobOps(
            name=name,
            owner=entry.get("owner"),
            critical=bool(entry.get("critical", False)),
            expected_interval=parse_duration(interval) if interval else None,
            alert_after_failures=int(
                entry.get("alert_after_failures", DEFAULT_ALERT_AFTER_FAILURES)
            ),
        )


def _schema() -> dict[str, Any]:
    text = resources.files("hrsync_ops").joinpath("schemas/ops.schema.json").read_text("utf-8")
    return dict(json.loads(text))


def load_ops(path: str | Path | None = None, *, root: str | Path = ".") -> OpsConfig:
    """The ops file (``path``, ``$HRSYNC_OPS_FILE`` or ``<root>/hrsync.yml``); none: defaults.

    A file that does not match the schema raises :class:`ConfigError` naming the key.
    """
    chosen = Path(path or os.environ.get(ENV_OPS_FILE) or Path(root) / OPS_FILE)
    if not chosen.exists():
        if path:
            raise ConfigError.at("no such file", file=chosen)
        return OpsConfig(None)
    try:
        data = safe_load(chosen.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError.at(f"not valid YAML: {exc}", file=chosen) from exc
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        key = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ConfigError.at(first.message, file=chosen, key=key)
    return OpsConfig(
        chosen,
        jobs=dict(data.get("jobs") or {}),
        defaults=dict(data.get("defaults") or {}),
        channels=list((data.get("alerts") or {}).get("channels") or []),
    )


# --- meltano.yml -----------------------------------------------------------------------------


@dataclass
class MeltanoProject:
    """The jobs, schedules and environment of a Meltano project (read from meltano.yml)."""

    root: Path
    jobs: dict[str, list[str]]  # job -> tasks ("tap-x map-y target-z")
    schedules: dict[str, str]  # job -> cron interval (the first schedule of the job)
    default_environment: str | None
    owners: dict[str, str] = field(default_factory=dict)  # annotations: {hrsync: {owner}}
    mappings: dict[str, str] = field(default_factory=dict)  # mapping name -> mapper plugin

    @classmethod
    def load(cls, root: str | Path = ".") -> MeltanoProject:
        root = Path(root)
        path = root / "meltano.yml"
        if not path.exists():
            raise ConfigError.at("no meltano.yml here: run hrsync from the project root", file=path)
        data = safe_load(path.read_text(encoding="utf-8")) or {}
        jobs: dict[str, list[str]] = {}
        owners: dict[str, str] = {}
        for job in data.get("jobs") or []:
            note = ((job.get("annotations") or {}).get("hrsync") or {}).get("owner")
            if note:
                owners[str(job["name"])] = str(note)
            tasks = job.get("tasks") or []
            tasks = [tasks] if isinstance(tasks, str) else tasks
            jobs[str(job["name"])] = [str(t) for t in tasks]
        schedules: dict[str, str] = {}
        for schedule in data.get("schedules") or []:
            if schedule.get("job") and schedule.get("interval"):
                schedules.setdefault(str(schedule["job"]), str(schedule["interval"]))
        mappings = {
            str(mapping["name"]): str(mapper["name"])
            for mapper in ((data.get("plugins") or {}).get("mappers") or [])
            for mapping in (mapper.get("mappings") or [])
            if mapping.get("name")
        }
        return cls(root, jobs, schedules, data.get("default_environment"), owners, mappings)

    def exclusive_plugins(self, job: str) -> list[str]:
        """The job's extractors and loaders: the plugins whose run files Meltano shares.

        ``.meltano/run/<tap>/`` holds one ``tap.properties.json`` and ``state.json`` (the
        bookmark the tap starts from) and ``.meltano/run/<target>/`` one ``new_state.json``
        for every run of the plugin; mappers write only per-invocation files, so mappings are
        left out (every job maps through map-hr: locking it would serialise them all)."""
        mappers = set(self.mappings) | set(self.mappings.values())
        words = (w for task in self.jobs.get(job, []) for w in task.split())
        return list(dict.fromkeys(w for w in words if w not in mappers))

    def job_ops(self, ops: OpsConfig, name: str) -> JobOps:
        """The ops file's view of a job; its owner, when the ops file names none, from the
        job's ``annotations: {hrsync: {owner: ...}}`` in meltano.yml (what the catalogue
        shows)."""
        job = ops.job(name)
        if job.owner is None and name in self.owners:
            job = dataclasses.replace(job, owner=self.owners[name])
        return job

    @property
    def environment(self) -> str | None:
        return os.environ.get("MELTANO_ENVIRONMENT") or self.default_environment

    def state_ids(self, job: str) -> list[str]:
        """Meltano's state ids of a job's tasks: ``<env>:<extractor>-to-<loader>``."""
        ids = []
        for task in self.jobs.get(job, []):
            words = task.split()
            if len(words) >= 2:
                state_id = f"{words[0]}-to-{words[-1]}"
                ids.append(f"{self.environment}:{state_id}" if self.environment else state_id)
        return list(dict.fromkeys(ids))

    def expected_interval(self, ops: JobOps) -> tuple[timedelta | None, str]:
        """(interval, where it came from): hrsync.yml, else the schedule, else unknown."""
        if ops.expected_interval is not None:
            return ops.expected_interval, "hrsync.yml"
        cron = self.schedules.get(ops.name)
        period = cron_period(cron) if cron else None
        if period is None:
            return None, "none"
        return period * (1 + SCHEDULE_GRACE), f"schedule {cron!r}"


# --- cron ------------------------------------------------------------------------------------


def _field_values(spec: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return values


def cron_period(expression: str) -> timedelta | None:
    """The longest gap between two firings of a 5-field cron (or a Meltano alias) over the
    next 15 days (monthly and yearly aliases: 31 and 366 days). None when it cannot tell."""
    expr = expression.strip().lower()
    if expr == "@monthly":
        return timedelta(days=31)
    if expr == "@yearly":
        return timedelta(days=366)
    if expr in _ALIASES:
        resolved = _ALIASES[expr]
        if resolved is None:
            return None
        expr = resolved
    fields = expr.split()
    if len(fields) != 5:
        return None
    try:
        minute, hour = _field_values(fields[0], 0, 59), _field_values(fields[1], 0, 23)
        dom, month = _field_values(fields[2], 1, 31), _field_values(fields[3], 1, 12)
        dow = {d % 7 for d in _field_values(fields[4], 0, 7)}
    except ValueError:
        return None
    if fields[2] != "*" or fields[3] != "*":
        return None  # day-of-month / month schedules: set expected_interval in hrsync.yml
    start = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    fired: list[datetime] = []
    for offset in range(15 * 24 * 60):
        at = start + timedelta(minutes=offset)
        if (
            at.minute in minute
            and at.hour in hour
            and at.day in dom
            and at.month in month
            and (at.isoweekday() % 7) in dow
        ):
            fired.append(at)
    if len(fired) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(fired))


# --- where things are ------------------------------------------------------------------------


def project_root(start: str | Path | None = None) -> Path:
    """The nearest directory (the cwd or a parent) holding meltano.yml; else the cwd."""
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "meltano.yml").exists():
            return candidate
    return here


def under_root(root: Path, env: str, default: Path) -> Path:
    """``$env`` if set, else ``default`` relative to the project root (where Meltano starts
    plugins, so the targets and the hrsync commands share one file)."""
    value = os.environ.get(env)
    return Path(value) if value else root / default


def meltano_command() -> list[str]:
    """``$HRSYNC_MELTANO`` (split on spaces), else ``meltano`` on PATH, else the one next to
    this Python (a venv that is not activated)."""
    if configured := os.environ.get("HRSYNC_MELTANO"):
        return shlex.split(configured)
    if found := shutil.which("meltano"):
        return [found]
    beside = Path(sys.executable).parent / "meltano"
    return [str(beside)] if beside.exists() else ["meltano"]
