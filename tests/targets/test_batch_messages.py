"""BATCH messages (singer-sdk batch files) reach every target as records: a real tap run with
``batch_config`` loads into target-warehouse exactly what the same run as RECORD messages loads;
an encoding a target cannot read is refused naming the stream and the format."""

from __future__ import annotations

import importlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from hrsync.batch import BatchAsRecords, BatchMessageError
from sandbox.server import Sandbox
from tap_bamboohr.tap import TapBambooHR
from target_warehouse.target import TargetWarehouse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "taps"))
from tapkit import Messages, sync

TARGETS = {
    "target_bamboohr.target": "TargetBambooHR",
    "target_benefits_834.target": "TargetBenefits834",
    "target_ldap.target": "TargetLDAP",
    "target_moodle.target": "TargetMoodle",
    "target_payroll_api.target": "TargetPayrollAPI",
    "target_payroll_file.target": "TargetPayrollFile",
    "target_scim.target": "TargetSCIM",
    "target_warehouse.target": "TargetWarehouse",
}


def tap_messages(sandbox: Sandbox, **extra: Any) -> Messages:
    creds = sandbox.credentials["bamboohr"]
    config = {"api_key": creds["api_key"], "api_url": f"{sandbox.bamboohr_url}/api/v1", **extra}
    tap = TapBambooHR(config=config, parse_env_config=False)
    for stream in tap.streams.values():  # the employees and their job history
        stream.selected = stream.name in ("employees", "job_info")
    return sync(tap)


def load(messages: Messages, database: Path) -> dict[str, list[tuple[Any, ...]]]:
    text = "".join(json.dumps(m) + "\n" for m in messages)
    TargetWarehouse(config={"database": str(database)}).listen(io.StringIO(text))
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            table: sorted(con.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)  # noqa: S608
            for table in ("employees", "job_info")
        }


def test_a_tap_run_with_batch_config_loads_the_same_rows(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_INTEGRATION", "batch-test")
    as_records = tap_messages(sandbox)
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "hr-"},
        "batch_size": 25,
    }
    (tmp_path / "batches").mkdir()
    as_batches = tap_messages(sandbox, batch_config=batch_config)
    kinds = {m["type"] for m in as_batches}
    assert "BATCH" in kinds and "RECORD" not in kinds  # the tap really sent batch files
    manifests = [m for m in as_batches if m["type"] == "BATCH"]
    assert all(m["encoding"] == {"format": "jsonl", "compression": "gzip"} for m in manifests)

    expected = load(as_records, tmp_path / "records.duckdb")
    got = load(as_batches, tmp_path / "batches.duckdb")
    assert len(expected["employees"]) == len(
        [m for m in as_records if m["type"] == "RECORD" and m["stream"] == "employees"]
    )
    assert expected["employees"] and expected["job_info"]
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in expected.items()}
    strip = lambda rows: [r[:-3] for r in rows]  # noqa: E731 - minus the _sdc load columns
    assert strip(got["employees"]) == strip(expected["employees"])


def test_an_unreadable_batch_encoding_is_refused_naming_stream_and_format(
    tmp_path: Path,
) -> None:
    messages = [
        {"type": "SCHEMA", "stream": "employees", "key_properties": ["id"],
         "schema": {"type": "object", "properties": {"id": {"type": "string"}}}},
        {"type": "BATCH", "stream": "employees",
         "encoding": {"format": "parquet", "compression": "none"},
         "manifest": [f"file://{tmp_path}/x.parquet"]},
    ]  # fmt: skip
    text = "".join(json.dumps(m) + "\n" for m in messages)
    target = TargetWarehouse(config={"database": str(tmp_path / "w.duckdb")})
    with pytest.raises(BatchMessageError, match=r"stream employees: format 'parquet'"):
        target.listen(io.StringIO(text))


@pytest.mark.parametrize("module", sorted(TARGETS))
def test_every_target_reads_batch_files_as_records(module: str) -> None:
    target = getattr(importlib.import_module(module), TARGETS[module])
    assert issubclass(target, BatchAsRecords)
