"""hris_to_payroll and hris_to_benefits read the canonical model, and BambooHR's destinations get
exactly what they got when the two profiles read BambooHR's own streams.

The profiles as they were (reading tap-bamboohr's streams) are kept here as fixtures
(tests/mappers/map_hr/fixtures/*_bamboohr.yml). One tap-bamboohr run against the seeded sandbox
(every stream selected) feeds both pipelines:

- before: ``tap-bamboohr | map-hr <fixture profile> | target``
- now:    ``tap-bamboohr | map-hr bamboohr_to_canonical | map-hr hris_to_<x> | target``

and the test compares the mapped records (the bytes each target reads), then what each target
produced from them: the Gusto fake's state (target-payroll-api, one fresh fake per pipeline),
and the decrypted files that reached a real sshd: the payroll file (target-payroll-file) and
the pyx12-valid 834 (target-benefits-834), byte for byte but for the 834 interchange's creation
date and time.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from map_hr.engine import build_engine, run_stream
from sandbox.demo import meltano_env
from sandbox.gusto import Gusto
from sandbox.pgp import Recipient
from sandbox.server import Sandbox
from sandbox.sftp import Sshd, start_sshd, target_env

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
FIXTURES = ROOT / "tests" / "mappers" / "map_hr" / "fixtures"
OLD = {
    "hris_to_payroll": FIXTURES / "hris_to_payroll_bamboohr.yml",
    "hris_to_benefits": FIXTURES / "hris_to_benefits_bamboohr.yml",
}
# Where the output SCHEMAs differ, and why: annotations only (types, required and the field
# list are the same). The canonical schema documents the national id, files home-address
# parts and pay rates under their PII classes, and files plan_id as an identifier.
SCHEMA_ANNOTATION_CHANGES = {
    ("payroll_employees", "ssn"),
    ("payroll_compensations", "rate"),
    ("payroll_compensations", "pay_type"),
    ("benefit_subscribers", "ssn"),
    ("benefit_subscribers", "city"),
    ("benefit_subscribers", "state"),
    ("benefit_elections", "plan_id"),
}

Messages = list[dict[str, Any]]


def tap_output(sb: Sandbox, workdir: Path) -> bytes:
    """One tap-bamboohr run with every stream selected (the benefits ones are opt-in)."""
    env = meltano_env(sb, workdir)
    config = workdir / "tap.json"
    config.write_text(
        json.dumps({"api_url": env["TAP_BAMBOOHR_API_URL"], "api_key": env["TAP_BAMBOOHR_API_KEY"]})
    )
    tap = str(BIN / "tap-bamboohr")
    catalog = json.loads(
        subprocess.run(
            [tap, "--config", str(config), "--discover"], capture_output=True, check=True
        ).stdout
    )
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    (workdir / "catalog.json").write_text(json.dumps(catalog))
    run = [tap, "--config", str(config), "--catalog", str(workdir / "catalog.json")]
    return subprocess.run(run, capture_output=True, check=True).stdout


def map_hr(profile: str | Path, data: bytes, state_dir: Path) -> bytes:
    engine = build_engine({"profile": str(profile), "state_dir": str(state_dir)})
    out = io.BytesIO()
    run_stream(engine, io.BytesIO(data), out)
    return out.getvalue()


def messages(data: bytes) -> Messages:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def records(data: bytes) -> Messages:
    return [m for m in messages(data) if m["type"] == "RECORD"]


def by_stream(msgs: Messages) -> dict[str, Messages]:
    out: dict[str, Messages] = {}
    for m in msgs:
        out.setdefault(m["stream"], []).append(m)
    return out


Outputs = dict[str, tuple[bytes, bytes]]  # profile -> (before, now)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Outputs, Path]]:
    workdir = tmp_path_factory.mktemp("canonical-pay")
    with Sandbox(employees=60, vendors=("bamboohr",)) as sb:
        tapped = tap_output(sb, workdir)
    canonical = map_hr("bamboohr_to_canonical", tapped, workdir / "state-canonical")
    result: Outputs = {}
    for profile, old in OLD.items():
        before = map_hr(old, tapped, workdir / f"state-old-{profile}")
        now = map_hr(profile, canonical, workdir / f"state-new-{profile}")
        result[profile] = (before, now)
    yield result, workdir


def test_payroll_records_are_identical_and_in_the_same_order(
    outputs: tuple[Outputs, Path],
) -> None:
    before, now = outputs[0]["hris_to_payroll"]
    old, new = records(before), records(now)
    streams = {m["stream"] for m in old}
    assert streams == {
        "payroll_employees", "payroll_jobs", "payroll_compensations",
        "payroll_employment_status", "payroll_deductions",
    }  # fmt: skip
    assert len(old) > 100
    assert orjson.dumps(new) == orjson.dumps(old)


def test_benefits_records_are_identical_stream_by_stream(outputs: tuple[Outputs, Path]) -> None:
    """Subscribers now come after dependants and elections (canonical workers wait for their
    positions): each stream's records are the same, in the same order."""
    before, now = outputs[0]["hris_to_benefits"]
    old, new = by_stream(records(before)), by_stream(records(now))
    assert set(old) == {"benefit_subscribers", "benefit_dependents", "benefit_elections"}
    for stream in old:
        assert orjson.dumps(new[stream]) == orjson.dumps(old[stream]), stream


def test_schemas_differ_in_annotations_only(outputs: tuple[Outputs, Path]) -> None:
    changed = set()
    for before, now in outputs[0].values():
        old = {m["stream"]: m for m in messages(before) if m["type"] == "SCHEMA"}
        new = {m["stream"]: m for m in messages(now) if m["type"] == "SCHEMA"}
        assert set(new) == set(old)
        for stream, o in old.items():
            n = new[stream]
            assert n["key_properties"] == o["key_properties"]
            assert n["schema"].get("required") == o["schema"].get("required")
            o_props, n_props = o["schema"]["properties"], n["schema"]["properties"]
            assert list(n_props) == list(o_props), stream
            for name, prop in o_props.items():
                assert n_props[name]["type"] == prop["type"], (stream, name)
                assert n_props[name].get("format") == prop.get("format"), (stream, name)
                if n_props[name] != prop:
                    changed.add((stream, name))
    assert changed == SCHEMA_ANNOTATION_CHANGES


def run_target(name: str, data: bytes, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BIN / name), "--config", "ENV"], input=data, env=env, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr[-4000:].decode()


def test_the_gusto_fake_ends_in_the_same_state(outputs: tuple[Outputs, Path]) -> None:
    results, workdir = outputs
    states = []
    for i, data in enumerate(results["hris_to_payroll"]):
        run_dir = workdir / f"gusto-{i}"
        run_dir.mkdir()
        with Sandbox(employees=60, vendors=("gusto",)) as sb:
            gusto = sb.apps["gusto"]
            assert isinstance(gusto, Gusto)
            gusto.rate_limit = 100_000
            env = meltano_env(sb, run_dir) | {
                "HRSYNC_INTEGRATION": "hris-to-payroll",
                "TARGET_PAYROLL_API_TOKEN_FILE": str(run_dir / "token.json"),
            }
            run_target("target-payroll-api", data, env)
            state = requests.get(f"{sb.url('gusto')}/_sandbox/gusto/state", timeout=30)
            states.append(stable(state.json(), {}))
    assert states[0]["employees"] and states[1] == states[0]


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def stable(value: Any, seen: dict[str, str]) -> Any:
    """The fake's state with the uuids it generated numbered in order of appearance, and no
    object versions (random tokens): what two runs must agree on."""
    if isinstance(value, dict):
        return {k: stable(v, seen) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [stable(v, seen) for v in value]
    if isinstance(value, str) and UUID.match(value):
        return seen.setdefault(value, f"uuid-{len(seen)}")
    return value


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Recipient]]:
    sshd = start_sshd(tmp_path_factory.mktemp("sshd"))
    recipient = Recipient.create()
    try:
        yield sshd, recipient
    finally:
        sshd.stop()
        recipient.close()


def test_the_payroll_file_is_the_same(
    outputs: tuple[Outputs, Path], drop: tuple[Sshd, Recipient]
) -> None:
    (results, workdir), (sshd, recipient) = outputs, drop
    files = []
    for i, data in enumerate(results["hris_to_payroll"]):
        run_dir = workdir / f"file-{i}"
        run_dir.mkdir()
        remote = sshd.upload_dir / f"payroll-{i}"
        env = {
            **os.environ,
            **target_env("TARGET_PAYROLL_FILE", sshd, recipient.public_key, remote, run_dir),
            "TARGET_PAYROLL_FILE_COMPANY_CODE": "ACME",
            "HRSYNC_AUDIT_LOG": str(run_dir / "audit.jsonl"),
            "HRSYNC_DLQ_PATH": str(run_dir / "dlq.sqlite"),
        }
        run_target("target-payroll-file", data, env)
        (sent,) = remote.iterdir()
        # payroll_ACME_<timestamp>_<checksum of the lines>.csv.pgp
        files.append((sent.name.split("_")[-1], recipient.decrypt_file(sent)))
    assert files[0][1].count(b"\n") > 100
    assert files[1] == files[0]


INTERCHANGE_TIME = (
    re.compile(rb"^(ISA(?:\*[^*]*){8}\*)\d{6}\*\d{4}"),  # ISA09 date, ISA10 time
    re.compile(rb"^(GS(?:\*[^*]*){3}\*)\d{8}\*\d{4}"),  # GS04 date, GS05 time
    re.compile(rb"^(BGN(?:\*[^*]*){2}\*)\d{8}\*\d{4,8}"),  # BGN03 date, BGN04 time
)


def test_the_834_file_is_the_same(
    outputs: tuple[Outputs, Path], drop: tuple[Sshd, Recipient]
) -> None:
    (results, workdir), (sshd, recipient) = outputs, drop
    built = []
    for i, data in enumerate(results["hris_to_benefits"]):
        run_dir = workdir / f"834-{i}"
        run_dir.mkdir()
        remote = sshd.upload_dir / f"carrier-{i}"
        env = {
            **os.environ,
            **target_env("TARGET_BENEFITS_834", sshd, recipient.public_key, remote, run_dir),
            "HRSYNC_AUDIT_LOG": str(run_dir / "audit.jsonl"),
            "HRSYNC_DLQ_PATH": str(run_dir / "dlq.sqlite"),
            "TARGET_BENEFITS_834_SENDER_ID": "ACMEHR",
            "TARGET_BENEFITS_834_RECEIVER_ID": "BLUEPRAIRIE",
            "TARGET_BENEFITS_834_USAGE_INDICATOR": "T",
            "TARGET_BENEFITS_834_SPONSOR_NAME": "Acme Inc",
            "TARGET_BENEFITS_834_SPONSOR_ID": "123456789",
            "TARGET_BENEFITS_834_PAYER_NAME": "Blue Prairie Health",
            "TARGET_BENEFITS_834_PAYER_ID": "987654321",
            "TARGET_BENEFITS_834_WORK_DIR": str(run_dir / "work"),
            "TARGET_BENEFITS_834_VALIDATION_WORKERS": "1",
            "TARGET_BENEFITS_834_LEDGER_KEY": "test-ledger-passphrase",
        }
        run_target("target-benefits-834", data, env)
        (sent,) = remote.iterdir()
        segments = recipient.decrypt_file(sent).replace(b"\r", b"").split(b"~")
        for i_seg, seg in enumerate(segments):
            seg = seg.strip(b"\n")
            for pattern in INTERCHANGE_TIME:
                seg = pattern.sub(rb"\1<time>", seg)
            segments[i_seg] = seg
        built.append(segments)
    assert sum(s.startswith(b"INS*") for s in built[0]) > 50
    assert built[1] == built[0]
