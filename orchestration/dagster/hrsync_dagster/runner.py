"""Running ``hrsync run <job>`` from an orchestrator: the command, its result, the cause.

An orchestrator calls ``hrsync run`` as a subprocess rather than ``meltano run``: the run ledger,
the per-plugin locks, the dead-letter count and the alerts are hrsync's, and the run's exit code
is Meltano's verdict. Retries are hrsync's and the plugins' own (HTTP retries, ``--wait`` for a
busy plugin): the orchestrator does not retry a failed run on top.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrsync.deadletter import DEFAULT_PATH as DLQ_DEFAULT
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.deadletter import DeadLetterStore
from hrsync_ops.ops import under_root
from hrsync_ops.tenants import Tenant

__all__ = ["HrsyncRun", "failure_cause", "hrsync_run", "waiting_dead_letters"]

# Meltano's console log: "<time> [error    ] <plugin> <message>" ("meltano" for its own lines);
# its key=value format: "... <message> ... name=<plugin> ..."; JSON: {"event": ..., "name": ...}.
# (plugin names are hyphenated: tap-x, map-hr, target-y)
_CONSOLE = re.compile(
    r"^\S+\s+\[\s*\w+\s*\]\s+(?P<plugin>[a-z0-9_.]+-[\w.-]+|meltano)\s+(?P<message>.*)$"
)
_KEYED = re.compile(r"\bname=(?P<plugin>[\w.-]+)")
_ERRORISH = re.compile(
    r"(Traceback|Error\b|Error:|Exception\b|error:|\bfailed\b|CRITICAL|FATAL"
    r"|is a required property|-> [45]\d\d\b)"
)
_NOISE = re.compile(
    r"(Block run completed|Run invocation could not be completed|Extractor failed|Loader failed"
    r"|Mappers? failed|^raise |^File \"|^\^+$|^~+$|^Traceback)"
)
_LEVEL = re.compile(r"^\S*\s*\[\s*\w+\s*\]\s*")


@dataclass
class HrsyncRun:
    """What one ``hrsync run`` did."""

    job: str
    tenant: str | None
    command: list[str]
    exit_code: int
    record: dict[str, Any] | None  # the run ledger's row (``hrsync run --json``)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""
    reported_cause: str | None = None  # what ``hrsync run --json`` names as the cause

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def cause(self) -> str:
        """hrsync run's own verdict (it reads Meltano's log as the run goes); the last error
        line of the output only when hrsync run could not say (it died)."""
        return self.reported_cause or failure_cause(self.stderr, self.exit_code)


def _parse(line: str) -> tuple[str | None, str]:
    """(plugin or None, message) of one line of Meltano's output."""
    text = line.strip()
    if text.startswith("{"):
        try:
            event = json.loads(text)
        except ValueError:
            return None, text
        if isinstance(event, dict):
            name = event.get("name") or event.get("string_id")
            return (str(name) if name else None), str(event.get("event") or text)
    if keyed := _KEYED.search(text):
        message = re.sub(r"\s+\w+=\S+(?=\s|$)", "", _LEVEL.sub("", text)).strip()
        return keyed["plugin"], message
    if console := _CONSOLE.match(text):
        plugin = console["plugin"]
        return (None if plugin == "meltano" else plugin), console["message"].strip()
    return None, text


def failure_cause(stderr: str, exit_code: int) -> str:
    """The line that says why a run failed, with the plugin it came from when known.

    Prefers the last error line a plugin wrote (Meltano relays each plugin's stderr under its
    name), then hrsync's own message, then Meltano's last error line, then the last line."""
    parsed = [_parse(ln) for ln in stderr.splitlines() if ln.strip()]
    for plugin, message in reversed(parsed):
        if plugin and _ERRORISH.search(message) and not _NOISE.search(message):
            return f"{plugin}: {message}"
    for _, message in reversed(parsed):
        if message.startswith("hrsync run") and "records moved" not in message:
            return message
    for _, message in reversed(parsed):
        if _ERRORISH.search(message) and not _NOISE.search(message):
            return message
    return parsed[-1][1] if parsed else f"exit {exit_code} without output"


def hrsync_run(
    root: Path,
    job: str,
    *,
    tenant: Tenant | None = None,
    meltano_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    echo: bool = True,
) -> HrsyncRun:
    """``hrsync run --json [--tenant T] <job> [meltano args]`` from ``root``; its output is
    echoed to this process's stderr (an orchestrator's compute log) when ``echo``."""
    command = [sys.executable, "-m", "hrsync_ops.cli", "run", "--json"]
    command += ["--project-root", str(root)]
    if tenant is not None:
        command += ["--tenant", tenant.name]
    command += [job, *(meltano_args or [])]
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if echo:
        sys.stderr.write(proc.stderr)
        sys.stderr.flush()
    record: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = []
    cause: str | None = None
    try:
        parsed = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        record = parsed.get("run")
        alerts = list(parsed.get("alerts") or [])
        cause = parsed.get("cause") or None
    return HrsyncRun(
        job,
        tenant.name if tenant else None,
        command,
        proc.returncode,
        record,
        alerts,
        proc.stderr,
        cause,
    )


def waiting_dead_letters(root: Path, job: str, tenant: Tenant | None = None) -> int:
    """Dead letters of ``job`` still waiting in the (tenant's) store."""
    if tenant is not None:
        path = Path(tenant.environ()[DLQ_ENV])
    else:
        path = under_root(root, DLQ_ENV, DLQ_DEFAULT)
    if not path.exists():
        return 0
    return DeadLetterStore(path).counts().get(job, 0)
