"""A real PostgreSQL server on a free loopback port, for the target-postgres test::

    pg = start_postgres()                # initdb + pg_ctl start; database "hrsync"
    pg.env("TARGET_POSTGRES")            # TARGET_POSTGRES_HOST/PORT/USER/PASSWORD/DATABASE
    pg.query("SELECT count(*) FROM t")   # rows through psql (tab-separated text)
    pg.stop()                            # and its directory is removed

Debian's server (package postgresql: ``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses
to run as root, so under root (CI) the cluster belongs to the ``postgres`` user the package
creates and every server command runs through ``runuser``; its directory is a new one under
the system temporary directory (pytest's are private to root). Loopback only, ``trust``
authentication (a throwaway cluster in a temporary directory), no Unix socket outside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox.sftp import free_port

__all__ = ["Postgres", "postgres_bin", "start_postgres"]

DATABASE = "hrsync"
USER = "hrsync"


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL program: Debian's newest server directory first, then PATH."""
    versions = [d for d in Path("/usr/lib/postgresql").glob("*") if d.name.isdigit()]
    for version in sorted(versions, key=lambda d: int(d.name), reverse=True):
        if os.access(version / "bin" / name, os.X_OK):
            return str(version / "bin" / name)
    return shutil.which(name)


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class Postgres:
    workdir: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.workdir / "pgdata"

    @property
    def log(self) -> Path:
        return self.workdir / "postgres.log"

    def env(self, prefix: str = "TARGET_POSTGRES") -> dict[str, str]:
        return {
            f"{prefix}_HOST": "127.0.0.1",
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_USER": USER,
            f"{prefix}_PASSWORD": "unused-with-trust",
            f"{prefix}_DATABASE": DATABASE,
        }

    def query(self, sql: str) -> list[list[str]]:
        psql = postgres_bin("psql") or "psql"
        out = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", DATABASE,
             "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self) -> None:
        pg_ctl = postgres_bin("pg_ctl") or "pg_ctl"
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb a new cluster in a new temporary directory; start it on a free loopback port."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError("PostgreSQL server programs not found: apt-get install postgresql")
    workdir = Path(tempfile.mkdtemp(prefix="hrsync-postgres-"))
    datadir, sockets = workdir / "pgdata", workdir / "pgsock"
    sockets.mkdir(parents=True, exist_ok=True)
    log = workdir / "postgres.log"
    log.touch()
    if os.geteuid() == 0:
        for path in (workdir, sockets, log):
            shutil.chown(path, "postgres", "postgres")
    subprocess.run(
        _as_owner([initdb, "-D", str(datadir), "-U", USER, "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8"]),
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    for _ in range(5):
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
        started = subprocess.run(
            _as_owner([pg_ctl, "-D", str(datadir), "-l", str(log), "-o", options, "-w",
                       "-t", "60", "start"]),
            capture_output=True, text=True, check=False, timeout=90,
        )  # fmt: skip
        if started.returncode == 0:
            pg = Postgres(workdir, port)
            createdb = postgres_bin("createdb") or "createdb"
            subprocess.run(
                [createdb, "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
                capture_output=True,
                check=True,
                timeout=60,
            )
            return pg
    raise RuntimeError(f"postgres did not start: {log.read_text()[-2000:]}")
