"""Tenants: one hrsync deployment, many companies, each with its own folder.

A tenant is a folder ``<tenants dir>/<name>/`` (``$HRSYNC_TENANTS_DIR``, else ``tenants/`` at
the project root) holding everything that is the company's own::

    tenants/acme/
      .env            its credentials and settings (Meltano's names: TAP_BAMBOOHR_API_KEY=...,
                      and the variables its alert channels name); the only settings it gets
      hrsync.yml      optional: its own ops file (owners, alert channels); else the project's
      .hrsync/        its audit log, dead letters, run ledger, map-hr stores, transfer ledger,
                      target stores (Moodle, warehouse, payroll token, 834 ledger) and locks
      .meltano/       its Meltano system dir: state (meltano.db), run files, logs; the plugin
                      installs are links to the project's (installed once, shared read-only)

``hrsync run --tenant acme <job>`` runs ``meltano --cwd tenants/acme --env-file
tenants/acme/.env run <job>`` with ``MELTANO_PROJECT_ROOT`` at the project (one meltano.yml for
every tenant) and ``MELTANO_SYS_DIR_ROOT`` in the tenant's folder. Plugins start in the tenant's
folder, so every relative store path (``.hrsync/...``) is the tenant's. The tenant's ``.env``
wins over the process environment; inherited plugin settings (``TAP_*``, ``TARGET_*``,
``MAP_HR_*``) and store locations are dropped first, so a tenant sees only its own settings.

Why a folder and not a Meltano environment per tenant: environments live in meltano.yml (adding
a customer would change the shared project), their secrets still come from one environment
namespace, and Meltano keeps one ``.meltano/run/<plugin>/`` (catalog, starting bookmark) per
project whatever the environment, so two tenants' runs at once would share those files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from hrsync.audit import ENV_PATH as AUDIT_ENV
from hrsync.deadletter import ENV_PATH as DLQ_ENV
from hrsync.errors import ConfigError

from .ops import ENV_OPS_FILE, OPS_FILE
from .runs import ENV_PATH as RUNS_ENV

# hrsync.transfer.ENV_LEDGER and hrsync_ops.webhooks.store.ENV_PATH, spelled out: importing
# those modules would load the Singer SDK and Starlette into every `hrsync run` (tested equal)
TRANSFER_ENV = "HRSYNC_TRANSFER_LEDGER"
WEBHOOKS_ENV = "HRSYNC_WEBHOOK_DB"
ENV_TENANTS_DIR = "HRSYNC_TENANTS_DIR"
ENV_TENANT = "HRSYNC_TENANT"
TENANTS_DIR = "tenants"
#: Meltano's system-dir subfolders that hold plugin installs: linked, not copied
PLUGIN_DIRS = ("extractors", "mappers", "loaders", "utilities", "transformers", "orchestrators")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: inherited variables a tenant never sees: other settings and other stores
_DROPPED_PREFIXES = ("TAP_", "TARGET_", "MAP_HR_", "MELTANO_STATE_BACKEND_")
_DROPPED = (
    "MELTANO_DATABASE_URI",
    "MELTANO_SYS_DIR_ROOT",
    "MELTANO_PROJECT_ROOT",
    "HRSYNC_DLQ_KEY",
    AUDIT_ENV,
    DLQ_ENV,
    RUNS_ENV,
    TRANSFER_ENV,
    WEBHOOKS_ENV,
    ENV_OPS_FILE,
)

__all__ = ["ENV_TENANTS_DIR", "Tenant", "tenants_dir"]


def tenants_dir(root: Path) -> Path:
    """``$HRSYNC_TENANTS_DIR``, else ``<project root>/tenants``."""
    configured = os.environ.get(ENV_TENANTS_DIR)
    return Path(configured).resolve() if configured else root / TENANTS_DIR


@dataclass(frozen=True)
class Tenant:
    name: str
    path: Path  # the tenant's folder (absolute)
    root: Path  # the Meltano project every tenant shares

    @classmethod
    def open(cls, root: Path, name: str) -> Tenant:
        """The tenant ``name``; :class:`ConfigError` when the name or its folder is wrong."""
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"tenant {name!r}: a tenant name is lower-case letters, digits, - and _ "
                "(it names a folder)"
            )
        folder = tenants_dir(root) / name
        if not (folder / ".env").is_file():
            raise ConfigError.at(
                f"tenant {name!r} has no .env (its credentials and settings)", file=folder / ".env"
            )
        return cls(name, folder.resolve(), root.resolve())

    @classmethod
    def all(cls, root: Path) -> list[Tenant]:
        """Every tenant folder (one with a ``.env``), by name."""
        base = tenants_dir(root)
        if not base.is_dir():
            return []
        return [
            cls(p.name, p.resolve(), root.resolve())
            for p in sorted(base.iterdir())
            if _NAME.fullmatch(p.name) and (p / ".env").is_file()
        ]

    @property
    def dotenv(self) -> Path:
        return self.path / ".env"

    @property
    def sys_dir(self) -> Path:
        return self.path / ".meltano"

    @property
    def home(self) -> Path:
        """Where the tenant's hrsync stores live (``.hrsync/`` under it)."""
        return self.path

    def settings(self) -> dict[str, str]:
        """The tenant's ``.env`` (variables without a value are left out)."""
        return {k: v for k, v in dotenv_values(self.dotenv).items() if v is not None}

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of the tenant's run: ``base`` (default: this process's) without
        other tenants' settings and stores, the tenant's store locations, then its ``.env``."""
        inherited = dict(os.environ if base is None else base)
        env = {
            k: v
            for k, v in inherited.items()
            if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)
        }
        stores = self.path / ".hrsync"
        env.update(
            {
                ENV_TENANT: self.name,
                "MELTANO_PROJECT_ROOT": str(self.root),
                "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
                # Meltano's default, spelled out for the hrsync commands that read it
                "MELTANO_DATABASE_URI": f"sqlite:///{self.sys_dir / 'meltano.db'}",
                AUDIT_ENV: str(stores / "audit.jsonl"),
                DLQ_ENV: str(stores / "deadletters.sqlite"),
                RUNS_ENV: str(stores / "runs.sqlite"),
                TRANSFER_ENV: str(stores / "transfers.sqlite"),
                WEBHOOKS_ENV: str(stores / "webhooks.sqlite"),
            }
        )
        if (self.path / OPS_FILE).is_file():
            env[ENV_OPS_FILE] = str(self.path / OPS_FILE)
        env.update(self.settings())
        return env

    def meltano_args(self) -> list[str]:
        """Meltano's global options for the tenant: start in its folder, read only its .env."""
        return ["--cwd", str(self.path), "--env-file", str(self.dotenv)]

    def prepare(self) -> None:
        """Create the tenant's stores and Meltano system dir; link the project's plugin
        installs into it (``meltano install`` once, at the project, serves every tenant)."""
        (self.path / ".hrsync").mkdir(mode=0o700, exist_ok=True)
        self.sys_dir.mkdir(mode=0o700, exist_ok=True)
        shared = self.root / ".meltano"
        for kind in PLUGIN_DIRS:
            link = self.sys_dir / kind
            target = shared / kind
            if link.is_symlink() or link.exists():
                continue
            target.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)

    def activate(self) -> None:
        """Make this process the tenant's: its stores, ops file and alert variables."""
        self.prepare()
        environ = self.environ()
        for key in [k for k in os.environ if k not in environ]:
            del os.environ[key]
        os.environ.update(environ)
