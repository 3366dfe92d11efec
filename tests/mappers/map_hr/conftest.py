"""Helpers for map-hr tests: run the mapper in-process or as the `map-hr` command."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from sandbox.seed import World

HMAC_KEY = "test-key-0123456789abcdef"
MAP_HR = str(Path(sys.executable).parent / "map-hr")

Messages = list[dict[str, Any]]


def schema_msg(stream: str, props: Iterable[str], keys: Iterable[str] = ("id",)) -> dict[str, Any]:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": {p: {} for p in props}},
        "key_properties": list(keys),
    }


def record(stream: str, rec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RECORD", "stream": stream, "record": rec, **extra}


def to_bytes(messages: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in messages)


def from_bytes(data: bytes) -> Messages:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _hmac_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAP_HR_HMAC_KEY", HMAC_KEY)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def run_inprocess(state_dir: Path) -> Callable[..., Messages]:
    """Map messages in this process through the same engine the CLI runs."""
    from map_hr.engine import build_engine, run_stream

    def run(config: dict[str, Any], messages: Iterable[dict[str, Any]]) -> Messages:
        engine = build_engine({"state_dir": str(state_dir), **config})
        out = io.BytesIO()
        run_stream(engine, io.BytesIO(to_bytes(messages)), out)
        return from_bytes(out.getvalue())

    return run


@pytest.fixture
def run_cli(tmp_path: Path, state_dir: Path) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run the `map-hr` console script on the messages."""

    def run(
        config: dict[str, Any], messages: Iterable[dict[str, Any]], *extra: str
    ) -> subprocess.CompletedProcess[bytes]:
        cfg = tmp_path / "config.json"
        cfg.write_bytes(orjson.dumps({"state_dir": str(state_dir), **config}))
        return subprocess.run(
            [MAP_HR, "--config", str(cfg), *extra],
            input=to_bytes(messages),
            capture_output=True,
            check=False,
            timeout=60,
        )

    return run


@pytest.fixture(scope="session")
def world() -> World:
    return World(employees=60, as_of=date(2026, 1, 1))


def greenhouse_streams(world: World) -> dict[str, Messages]:
    """The seed world as Greenhouse Harvest v3-shaped records (as tap-greenhouse emits them)."""
    departments = [
        record("departments", {"id": d.id, "name": d.name, "parent_id": d.parent_id})
        for d in world.departments
    ]
    offices = [
        record("offices", {"id": o.id, "name": o.name, "location": {"name": o.city}})
        for o in world.offices
    ]
    jobs = [
        record(
            "jobs",
            {
                "id": j.id,
                "name": j.title,
                "status": j.status,
                "department_id": j.department_id,
                "office_ids": [j.office_id],
                "created_at": j.created_at.isoformat(),
                "updated_at": j.updated_at.isoformat(),
            },
        )
        for j in world.jobs
    ]
    candidates: Messages = []
    offers: Messages = []
    for k in range(1, world.candidates + 1):
        cand = world.candidate(4_000_000_000 + k)
        emails = [{"value": cand.email, "type": "personal"}] if cand.email else []
        if cand.work_email:
            emails.append({"value": cand.work_email, "type": "work"})
        candidates.append(
            record(
                "candidates",
                {
                    "id": cand.id,
                    "first_name": cand.first_name,
                    "last_name": cand.last_name,
                    "company": cand.company,
                    "title": cand.title,
                    "email_addresses": emails,
                    "phone_numbers": [{"value": cand.phone, "type": "mobile"}]
                    if cand.phone
                    else [],
                    "application_ids": list(cand.application_ids),
                    "created_at": cand.created_at.isoformat(),
                    "updated_at": cand.updated_at.isoformat(),
                },
            )
        )
        for offer in world.offers_for_candidate(cand.id):
            # Harvest v3 custom fields: {name, type, value}
            custom: dict[str, Any] = {
                "employment_type": {
                    "name": "Employment Type",
                    "type": "single_select",
                    "value": offer.employment_type,
                }
            }
            if offer.salary is not None:
                custom["salary"] = {
                    "name": "Salary",
                    "type": "currency",
                    "value": {"amount": float(offer.salary), "unit": offer.currency},
                }
            offers.append(
                record(
                    "offers",
                    {
                        "id": offer.id,
                        "version": offer.version,
                        "application_id": offer.application_id,
                        "candidate_id": offer.candidate_id,
                        "job_id": offer.job_id,
                        "status": offer.status,
                        "sent_on": offer.sent_on.isoformat() if offer.sent_on else None,
                        "starts_on": offer.starts_on.isoformat() if offer.starts_on else None,
                        "opening_id": offer.opening_id,
                        "custom_fields": custom,
                        "created_at": offer.created_at.isoformat(),
                        "updated_at": offer.updated_at.isoformat(),
                    },
                )
            )
    return {
        "departments": departments,
        "offices": offices,
        "jobs": jobs,
        "candidates": candidates,
        "offers": offers,
    }


@pytest.fixture(scope="session")
def greenhouse(world: World) -> dict[str, Messages]:
    return greenhouse_streams(world)


@pytest.fixture(scope="session")
def h() -> Any:
    """Message helpers for tests (conftest modules are not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        schema_msg=schema_msg,
        record=record,
        to_bytes=to_bytes,
        from_bytes=from_bytes,
        greenhouse_streams=greenhouse_streams,
        MAP_HR=MAP_HR,
        HMAC_KEY=HMAC_KEY,
    )
