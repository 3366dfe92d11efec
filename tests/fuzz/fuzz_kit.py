"""Shared pieces of the fuzz tests: the plugins of meltano.yml, drawing cases with hypothesis
(generation only, so that the cases can run as subprocesses in parallel), judging an outcome,
and recording the counts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hrsync_ops.ops import safe_load

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The committed figures are refreshed with HRSYNC_RECORD_RESULTS=1; a plain test run leaves
# the repository alone and keeps its figures in the temp dir.
RESULTS = (
    ROOT / "benchmarks" / "results"
    if os.environ.get("HRSYNC_RECORD_RESULTS")
    else Path(tempfile.gettempdir()) / "hrsync-results"
) / "fuzz.md"
TIMEOUT = 60
#: the last stderr line of a crash that says nothing useful ("KeyError: 'type'")
BARE_CRASH = re.compile(
    r"^(KeyError|TypeError|AttributeError|IndexError|NameError|UnboundLocalError|"
    r"AssertionError|ZeroDivisionError)\b"
)


def meltano_plugins(kind: str) -> list[dict[str, Any]]:
    project = safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    return list(project["plugins"].get(kind) or [])


def executable(plugin: dict[str, Any]) -> Path | None:
    path = BIN / str(plugin.get("executable") or plugin["name"])
    return path if path.exists() else None


def about_schema(exe: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(exe), "--about", "--format", "json"], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        return {}
    return dict(json.loads(out.stdout).get("settings") or {})


def dummy_config(schema: dict[str, Any], url: str, workdir: Path) -> dict[str, Any]:
    """Values for every required setting of a plugin we have no fixture for."""
    config: dict[str, Any] = {}
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        spec = props.get(name) or {}
        types = spec.get("type") or "string"
        types = types if isinstance(types, list) else [types]
        if spec.get("enum"):
            config[name] = spec["enum"][0]
        elif "integer" in types:
            config[name] = 1
        elif "number" in types:
            config[name] = 1.0
        elif "boolean" in types:
            config[name] = False
        elif "array" in types:
            config[name] = []
        elif "object" in types:
            config[name] = {}
        elif "url" in name or "host" in name or name.endswith("_uri"):
            config[name] = url
        elif "path" in name or "dir" in name or "file" in name:
            config[name] = str(workdir / name)
        else:
            config[name] = "fuzz"
    return config


def draw(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy`` (generation phase only; no database)."""
    out: list[Any] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        out.append(case)

    collect()
    return out


@dataclass
class Outcome:
    case: str
    code: int | None  # None: killed after the timeout
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def describe(self) -> str:
        return f"{self.case}: exit {self.code}; stderr tail:\n{self.stderr[-1500:]}"


def run(argv: list[str], data: bytes, env: dict[str, str], case: str) -> Outcome:
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return Outcome(
            case,
            None,
            (exc.stdout or b"").decode(errors="replace"),
            (exc.stderr or b"").decode(errors="replace"),
        )
    return Outcome(
        case,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def run_all(jobs: list[Callable[[], Outcome]], workers: int = 3) -> list[Outcome]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


def valid_json_lines(text: str) -> bool:
    for line in text.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                return False
    return True


def record_counts(area: str, counts: dict[str, int]) -> None:
    """Print the examples per plugin and keep them in benchmarks/results/fuzz.md."""
    print(f"\nfuzz {area}: " + ", ".join(f"{p} {n}" for p, n in sorted(counts.items())))
    sections: dict[str, str] = {}
    if RESULTS.exists():
        current = None
        for line in RESULTS.read_text(encoding="utf-8").splitlines():
            if line.startswith("## "):
                current = line[3:].strip()
                sections[current] = ""
            elif current:
                sections[current] += line + "\n"
    table = "| plugin | examples |\n|---|---:|\n" + "".join(
        f"| {p} | {n} |\n" for p, n in sorted(counts.items())
    )
    sections[area] = f"\n{table}\nTotal: {sum(counts.values())}\n\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Fuzz counts\n\nWritten by `tests/fuzz/` (hypothesis-generated cases, each run as a "
        "subprocess with a timeout).\n\n"
        + "".join(f"## {name}\n{body}" for name, body in sorted(sections.items())),
        encoding="utf-8",
    )
