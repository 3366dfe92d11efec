"""A tenant's environment: its own settings, stores, Meltano system dir and ops file; nothing
inherited from the process that names another tenant's settings or stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrsync.errors import ConfigError
from hrsync_ops.tenants import Tenant

ROOT = Path(__file__).resolve().parents[2]


def make(base: Path, name: str, dotenv: str, ops: str | None = None) -> Path:
    folder = base / name
    folder.mkdir(parents=True)
    (folder / ".env").write_text(dotenv)
    if ops is not None:
        (folder / "hrsync.yml").write_text(ops)
    return folder


def test_environment_is_the_tenants_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRSYNC_TENANTS_DIR", str(tmp_path))
    folder = make(
        tmp_path,
        "acme",
        "TAP_BAMBOOHR_API_KEY=acme-key\nHRSYNC_ALERT_WEBHOOK_URL=http://127.0.0.1:9/acme\n",
        ops="jobs: {}\n",
    )
    inherited = {
        "PATH": "/usr/bin",
        "TAP_BAMBOOHR_API_KEY": "someone-elses-key",
        "TAP_GREENHOUSE_CLIENT_SECRET": "someone-elses-secret",
        "TARGET_SCIM_BEARER_TOKEN": "x",
        "MAP_HR_HMAC_KEY": "shared-key",
        "HRSYNC_DLQ_PATH": "/shared/deadletters.sqlite",
        "HRSYNC_DLQ_KEY": "shared-seal",
        "MELTANO_DATABASE_URI": "sqlite:////shared/meltano.db",
        "MELTANO_STATE_BACKEND_URI": "file:///shared/state",
        "HRSYNC_OPS_FILE": "/shared/hrsync.yml",
    }
    env = Tenant.open(ROOT, "acme").environ(inherited)
    stores = folder.resolve() / ".hrsync"
    assert env["PATH"] == "/usr/bin"
    assert env["TAP_BAMBOOHR_API_KEY"] == "acme-key"
    assert env["HRSYNC_ALERT_WEBHOOK_URL"] == "http://127.0.0.1:9/acme"
    for gone in ("TAP_GREENHOUSE_CLIENT_SECRET", "TARGET_SCIM_BEARER_TOKEN", "MAP_HR_HMAC_KEY"):
        assert gone not in env
    assert "HRSYNC_DLQ_KEY" not in env and "MELTANO_STATE_BACKEND_URI" not in env
    assert env["HRSYNC_DLQ_PATH"] == str(stores / "deadletters.sqlite")
    assert env["HRSYNC_AUDIT_LOG"] == str(stores / "audit.jsonl")
    assert env["HRSYNC_RUNS_PATH"] == str(stores / "runs.sqlite")
    assert env["HRSYNC_TRANSFER_LEDGER"] == str(stores / "transfers.sqlite")
    assert env["MELTANO_SYS_DIR_ROOT"] == str(folder.resolve() / ".meltano")
    assert env["MELTANO_DATABASE_URI"] == f"sqlite:///{folder.resolve() / '.meltano/meltano.db'}"
    assert env["MELTANO_PROJECT_ROOT"] == str(ROOT)
    assert env["HRSYNC_OPS_FILE"] == str(folder.resolve() / "hrsync.yml")
    assert env["HRSYNC_TENANT"] == "acme"


def test_tenant_env_file_may_choose_its_own_state_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_TENANTS_DIR", str(tmp_path))
    make(tmp_path, "globex", "MELTANO_DATABASE_URI=postgresql://127.0.0.1/globex\n")
    env = Tenant.open(ROOT, "globex").environ({})
    assert env["MELTANO_DATABASE_URI"] == "postgresql://127.0.0.1/globex"
    assert "HRSYNC_OPS_FILE" not in env  # no ops file of its own: the project's


def test_prepare_links_the_plugin_installs_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_TENANTS_DIR", str(tmp_path / "tenants"))
    project = tmp_path / "project"
    (project / ".meltano" / "extractors" / "tap-x").mkdir(parents=True)
    (project / "meltano.yml").write_text("{}\n")
    folder = make(tmp_path / "tenants", "acme", "")
    tenant = Tenant.open(project, "acme")
    tenant.prepare()
    tenant.prepare()  # idempotent
    assert (folder / ".meltano" / "extractors").resolve() == project / ".meltano" / "extractors"
    assert (folder / ".meltano" / "extractors" / "tap-x").is_dir()
    assert (folder / ".meltano" / "loaders").is_symlink()
    assert not (folder / ".meltano" / "run").is_symlink()  # run files are the tenant's own
    assert (folder / ".hrsync").stat().st_mode & 0o077 == 0


def test_all_lists_folders_with_an_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_TENANTS_DIR", str(tmp_path))
    make(tmp_path, "b-co", "")
    make(tmp_path, "a-co", "")
    (tmp_path / "not-a-tenant").mkdir()
    (tmp_path / "Bad Name").mkdir()
    (tmp_path / "Bad Name" / ".env").write_text("")
    assert [t.name for t in Tenant.all(ROOT)] == ["a-co", "b-co"]
    with pytest.raises(ConfigError, match=r"has no \.env"):
        Tenant.open(ROOT, "not-a-tenant")
    with pytest.raises(ConfigError, match="lower-case letters"):
        Tenant.open(ROOT, "../etc")


def test_store_variable_names_are_the_stores_own() -> None:
    from hrsync.transfer import ENV_LEDGER
    from hrsync_ops import tenants
    from hrsync_ops.webhooks.store import ENV_PATH

    assert (tenants.TRANSFER_ENV, tenants.WEBHOOKS_ENV) == (ENV_LEDGER, ENV_PATH)
