"""What the tap benchmarks share: the vendor fake in a child process (so its CPU is not the
tap's), the tap run as its console script with its RECORD lines counted per stream, and the
stream selection through ``--discover``."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

PY = Path(sys.executable)
RECORD = b'{"type":"RECORD","stream":"'


def serve(vendor: str, employees: int) -> None:
    """Child mode: run ``vendor``'s fake and print its URL and credentials as one JSON line;
    stop on SIGTERM."""
    import signal
    import threading

    from sandbox.server import Sandbox

    sb = Sandbox(employees=employees, vendors=(vendor,)).start()
    print(json.dumps({"url": sb.url(vendor), **sb.credentials[vendor]}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sb.stop()


@contextlib.contextmanager
def sandbox_process(script: str, employees: int) -> Iterator[dict[str, Any]]:
    """Start ``script --serve --employees N`` (a benchmark calling :func:`serve`); yield what
    it printed; stop it."""
    server = subprocess.Popen(
        [str(PY), script, "--serve", "--employees", str(employees)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())
    finally:
        server.terminate()
        server.wait(timeout=30)


def select_streams(tap: Path, config_path: Path, streams: Collection[str], workdir: Path) -> Path:
    """A catalog (from ``tap --discover``) selecting exactly ``streams``; returns its path."""
    discovered = subprocess.run(
        [str(tap), "--config", str(config_path), "--discover"],
        capture_output=True,
        check=True,
        text=True,
    )
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if not meta["breadcrumb"]:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
    catalog_path = workdir / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))
    return catalog_path


def run_tap(
    tap: Path, config_path: Path, catalog_path: Path | None = None
) -> tuple[Counter[str], float]:
    """Run the tap's console script; (RECORD lines per stream, seconds). Fails on a non-zero
    exit."""
    argv = [str(tap), "--config", str(config_path)]
    if catalog_path is not None:
        argv += ["--catalog", str(catalog_path)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    counts: Counter[str] = Counter()
    start = len(RECORD)
    for line in proc.stdout:
        if line.startswith(RECORD):
            counts[line[start : line.index(b'"', start)].decode()] += 1
    if proc.wait() != 0:
        raise SystemExit(f"{tap.name} exited with {proc.returncode}")
    return counts, time.perf_counter() - started
