"""Malformed API pages into every tap of meltano.yml, each run as a subprocess with a timeout.

1. A small garbage server answers every API request with what hypothesis draws: an HTML error
   page with 200 or 502, truncated JSON, the wrong shape (object for list, list for object,
   ``null``), an empty body (token endpoints get a valid token, so the tap reaches its pages).
   The tap must stop with a non-zero exit and an error that names the problem: no hang, no bare
   crash, nothing but JSON on stdout.
2. The real sandbox of the taps that have one, with ``Faults.rate_malformed`` (truncated bodies):
   the tap either retries its way to exactly the records of a clean run, or stops naming the
   problem — never a short, silently truncated extract.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fuzz_kit import (
    BARE_CRASH,
    Outcome,
    about_schema,
    draw,
    dummy_config,
    executable,
    meltano_plugins,
    record_counts,
    run,
    run_all,
    valid_json_lines,
)
from hypothesis import strategies as st

from sandbox.cli import env_lines
from sandbox.httpbase import App, Faults, Request, Response, serve
from sandbox.server import VENDORS, Sandbox

GARBAGE_EXAMPLES = 3
SANDBOX_EXAMPLES = 2
PROBLEM = re.compile(
    r"json|html|content.type|pars|decod|malformed|expect|shape|invalid|unexpected|not an? |"
    r"\b5\d\d\b|empty|truncat|list|object",
    re.IGNORECASE,
)
KINDS = ("html_200", "html_502", "truncated", "object_for_list", "list_for_object", "null", "empty")
RETRIES = {"max_retries": 2, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}
COUNTS: dict[str, int] = {}
TAPS = [p["name"] for p in meltano_plugins("extractors")]


class GarbageApp(App):
    """Answers every request with the next scripted kind of garbage (the last one repeats)."""

    name = "garbage"

    def __init__(self, script: list[str]) -> None:
        super().__init__()
        self.script = list(script)
        self._lock = threading.Lock()

    def dispatch(self, req: Request) -> Response:
        if "token" in req.path or "oauth" in req.path:
            expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            return Response(
                200,
                {
                    "access_token": "fuzz-token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "expires_at": expires,
                },
            )
        with self._lock:
            kind = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        html = b"<!DOCTYPE html><html><body><h1>Bad Gateway</h1></body></html>"
        if kind == "html_200":
            return Response(200, html, {"Content-Type": "text/html; charset=utf-8"})
        if kind == "html_502":
            return Response(502, html, {"Content-Type": "text/html"})
        if kind == "truncated":
            body = json.dumps([{"id": i, "name": f"row {i}"} for i in range(20)]).encode()
            return Response(200, body[: len(body) // 2], {"Content-Type": "application/json"})
        if kind == "object_for_list":
            return Response(200, {"unexpected": True, "data": "nope"})
        if kind == "list_for_object":
            return Response(200, [1, 2, 3])
        if kind == "null":
            return Response(200, b"null", {"Content-Type": "application/json"})
        return Response(200, b"", {"Content-Type": "application/json"})


def tap_config(plugin: str, exe: Path, url: str, workdir: Path) -> dict[str, Any]:
    schema = about_schema(exe)
    config = dummy_config(schema, url, workdir)
    props = schema.get("properties") or {}
    for name in props:
        if name.endswith("url"):
            config[name] = f"{url}/token" if "token" in name else url
    return config | {k: v for k, v in RETRIES.items() if k in props}


#: (tap, first kind of garbage) -> what goes wrong: bugs this suite found (reported to the
#: owners). A failing case whose first page is of such a kind makes the test xfail with the
#: reason; any other problem fails it; once fixed, the test simply passes.
KNOWN: dict[tuple[str, str], str] = {}  # none today (the tap bugs found are fixed)


def judge(out: Outcome) -> str | None:
    if out.code is None:
        return "hung"
    if out.code == 0:
        return "exit 0 on garbage pages (silently short extract)"
    if BARE_CRASH.match(out.last_line):
        return "bare crash"
    if not PROBLEM.search(out.stderr[-3000:]):
        return "no specific error"
    if not valid_json_lines(out.stdout):
        return "non-JSON on stdout"
    return None


def records(out: Outcome) -> int:
    return sum(1 for ln in out.stdout.splitlines() if ln.startswith('{"type":"RECORD"'))


@pytest.mark.parametrize("plugin", TAPS)
def test_taps_stop_on_garbage_pages(plugin: str, tmp_path: Path) -> None:
    spec = next(p for p in meltano_plugins("extractors") if p["name"] == plugin)
    exe = executable(spec)
    if exe is None:
        pytest.skip(f"{plugin} is not installed in this venv")
    scripts = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3), GARBAGE_EXAMPLES)

    def one(script: list[str], n: int) -> Callable[[], Outcome]:
        def go() -> Outcome:
            server = serve(GarbageApp(script), Faults())
            try:
                path = tmp_path / f"config-{n}.json"
                path.write_text(json.dumps(tap_config(plugin, exe, server.url, tmp_path)))
                env = {**os.environ, "HRSYNC_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
                return run([str(exe), "--config", str(path)], b"", env, "+".join(script))
            finally:
                server.stop()

        return go

    outcomes = run_all([one(s, i) for i, s in enumerate(scripts)])
    problems = [(s[0], why, o) for s, o in zip(scripts, outcomes, strict=True) if (why := judge(o))]
    COUNTS[plugin] = COUNTS.get(plugin, 0) + len(scripts)
    record_counts("malformed API pages into the taps", COUNTS)
    unknown = [
        f"[{o.case}] {why}: {o.describe()}" for k, why, o in problems if (plugin, k) not in KNOWN
    ]
    assert not unknown, "\n\n".join(unknown)
    if problems:
        pytest.xfail("; ".join(sorted({f"{plugin} {KNOWN[(plugin, k)]}" for k, _, _ in problems})))


def sandbox_vendor(plugin: str) -> str | None:
    vendor = plugin.removeprefix("tap-")
    return vendor if vendor in VENDORS else None


def sandbox_config(plugin: str, sb: Sandbox) -> dict[str, Any]:
    """The tap's settings for this sandbox (what ``hrsync-sandbox serve --env-file`` writes)."""
    prefix = plugin.upper().replace("-", "_") + "_"
    config: dict[str, Any] = {}
    for env_line in env_lines(sb.info()):
        name, _, value = env_line.partition("=")
        if name.startswith(prefix):
            config[name.removeprefix(prefix).lower()] = value
    return config | RETRIES


@pytest.mark.parametrize("plugin", TAPS)
def test_taps_on_truncated_sandbox_pages_retry_or_stop(plugin: str, tmp_path: Path) -> None:
    spec = next(p for p in meltano_plugins("extractors") if p["name"] == plugin)
    exe, vendor = executable(spec), sandbox_vendor(plugin)
    if exe is None or vendor is None:
        pytest.skip(f"no sandbox for {plugin} (the garbage-page test covers it)")
    with Sandbox(employees=40, vendors=(vendor,)) as sb:
        config = sandbox_config(plugin, sb)
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        env = {**os.environ, "HRSYNC_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
        argv = [str(exe), "--config", str(path)]
        clean = run(argv, b"", env, "clean")
        assert clean.code == 0, clean.describe()
        rates = draw(st.sampled_from([0.15, 0.5, 1.0]), SANDBOX_EXAMPLES)
        problems = []
        for rate in rates:
            sb.faults.reset()
            sb.faults.rate_malformed = rate
            out = run(argv, b"", env, f"rate_malformed={rate}")
            if out.code == 0:
                if records(out) != records(clean):
                    problems.append(
                        f"{records(out)} records instead of {records(clean)}: {out.describe()}"
                    )
            elif why := judge(out):
                problems.append(f"{why}: {out.describe()}")
    COUNTS[f"{plugin} (sandbox)"] = len(rates)
    record_counts("malformed API pages into the taps", COUNTS)
    assert not problems, "\n\n".join(problems)
