"""The Meltano project the end-to-end tests run in, and the one `meltano install` they share.

Meltano keeps a project's run files in ``.meltano/run/<plugin>/`` (the tap's catalog and the
``state.json`` it starts from) and its state in ``.meltano/meltano.db``; hrsync keeps its locks,
ledgers and token files in ``.hrsync/``. Two pytest-xdist workers running jobs in one project
would start from each other's bookmarks. So under xdist each worker runs in a project of its
own: a folder outside the repository with a copy of ``meltano.yml`` and ``hrsync.yml``, links to
every other file of the repository, its own ``.meltano/`` (the plugin venvs linked from the
repository's, installed once) and its own ``.hrsync/``. Without xdist it is the repository.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
MELTANO = str(Path(sys.executable).parent / "meltano")

#: copied (Meltano and hrsync find the project root where these are, and must not follow a link)
_COPIED = ("meltano.yml", "hrsync.yml")
#: the project's own state: never shared between workers
_OWN = {".meltano", ".hrsync", ".git", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
#: what `meltano install` puts in .meltano/ (shared by every worker: installed once per test run)
_INSTALLED = ("extractors", "loaders", "mappers", "utilities", "orchestrators", "transformers")


def run_folder(run: str | None = None) -> Path:
    """A folder shared by the workers of this test run (and only by them); the controller
    removes it at the end (tests/conftest.py)."""
    xdist_run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    folder = Path(tempfile.gettempdir()) / f"hrsync-tests-{run or xdist_run or os.getpid()}"
    if not folder.exists():
        folder.mkdir(mode=0o700, exist_ok=True)
        if not (run or xdist_run):  # no xdist: this process is the whole test run
            atexit.register(shutil.rmtree, folder, True)
    return folder


def _worker_project(worker: str) -> Path:
    project = run_folder() / worker
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(mode=0o700)
    for entry in REPOSITORY.iterdir():
        if entry.name in _OWN:
            continue
        if entry.name in _COPIED:
            shutil.copy2(entry, project / entry.name)
        else:
            (project / entry.name).symlink_to(entry)
    sys_dir = project / ".meltano"
    sys_dir.mkdir(mode=0o700)
    for kind in _INSTALLED:
        shared = REPOSITORY / ".meltano" / kind
        shared.mkdir(parents=True, exist_ok=True)  # a link to nothing is no folder to use
        (sys_dir / kind).symlink_to(shared, target_is_directory=True)
    (project / ".hrsync").mkdir(mode=0o700)
    # rmtree unlinks the links, never what they point to
    atexit.register(shutil.rmtree, project, True)
    return project


def _project() -> Path:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return _worker_project(worker) if worker else REPOSITORY


#: where the tests run Meltano and hrsync (the repository's files are all there too)
ROOT = _project()


def install_plugins() -> None:
    """`meltano install` in the repository, once per test run: the first worker to get here
    installs while the others wait, then nobody installs again (a re-install rewrites the venvs
    under a running plugin). ``meltano install`` takes ~20 s even when nothing changed."""
    folder = run_folder()
    with (folder / "install.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "installed"
        if done.exists():
            return
        proc = subprocess.run([MELTANO, "install"], cwd=REPOSITORY, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        done.touch()
