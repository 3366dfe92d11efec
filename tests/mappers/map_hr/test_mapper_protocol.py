"""Singer mapper behaviour: message order, pass-through, unknown streams, output schema, errors."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from hrsync.errors import ConfigError, RecordError

PROFILE = """\
name: proto
destination: lms
source_system: bamboohr
streams:
  employees:
    output_stream: lms_users
    key_properties: [worker_id]
    filter: {field: status, equals: Active}
    fields:
      worker_id: {from: id, transform: string}
      first_name: {from: firstName, transform: name, required: true}
      hire_date: {from: hireDate, transform: {date: {formats: [M/D/YYYY, iso]}}}
      email_key: {from: workEmail, hmac: true}
      employment: {from: employmentType, value_map: {Full-Time: FT, Part-Time: PT}}
"""

EMP_PROPS = ("id", "firstName", "lastName", "hireDate", "workEmail", "ssn", "status")


@pytest.fixture
def cfg(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "proto.yml"
    path.write_text(PROFILE)
    return {"profile": str(path)}


def emp(k: int, **over: Any) -> dict[str, Any]:
    rec = {
        "id": k,
        "firstName": "Zoë",
        "lastName": "O'Brien",
        "hireDate": "3/7/2021",
        "workEmail": f"e{k}@acme.example",
        "ssn": "123-45-6789",
        "salary": 99,
        "status": "Active",
        "employmentType": "Full-Time",
    }
    rec.update(over)
    return rec


def test_schema_before_record_and_state_in_order(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    msgs = [
        h.schema_msg("employees", EMP_PROPS),
        h.record("employees", emp(1), version=3, time_extracted="2026-01-01T00:00:00Z"),
        {"type": "STATE", "value": {"bookmarks": {"employees": 1}}},
        h.record("employees", emp(2, status="Inactive")),  # filtered out
        h.record("employees", emp(3)),
        {"type": "STATE", "value": {"bookmarks": {"employees": 3}}},
        {"type": "ACTIVATE_VERSION", "stream": "employees", "version": 3},
    ]
    out = run_inprocess(cfg, msgs)
    kinds = [(m["type"], m.get("stream")) for m in out]
    assert kinds == [
        ("SCHEMA", "lms_users"),
        ("RECORD", "lms_users"),
        ("STATE", None),
        ("RECORD", "lms_users"),
        ("STATE", None),
        ("ACTIVATE_VERSION", "lms_users"),
    ]
    assert out[2] == msgs[2] and out[4] == msgs[5]  # STATE unchanged
    assert out[5]["version"] == 3
    first = out[1]
    assert first["version"] == 3 and first["time_extracted"] == "2026-01-01T00:00:00Z"
    assert first["record"]["worker_id"] == "1"
    assert first["record"]["hire_date"] == "2021-03-07"
    assert first["record"]["employment"] == "FT"
    assert len(first["record"]["email_key"]) == 64
    assert "ssn" not in first["record"] and "salary" not in first["record"]


def test_output_schema_is_exactly_what_is_emitted(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    schema = h.schema_msg("employees", EMP_PROPS)
    schema["schema"]["required"] = ["id", "ssn", "firstName"]
    schema["schema"]["properties"]["ssn"] = {"type": "string", "x-pii": "sensitive.national_id"}
    out = run_inprocess(cfg, [schema, h.record("employees", emp(1))])
    out_schema = out[0]["schema"]
    assert set(out_schema["properties"]) == {
        "worker_id",
        "first_name",
        "hire_date",
        "email_key",
        "employment",
    }
    # a dropped field leaves `required` too; required = what the profile guarantees
    assert out_schema["required"] == ["worker_id", "first_name"]
    assert out_schema["additionalProperties"] is False
    assert out_schema["properties"]["hire_date"] == {"type": ["string", "null"], "format": "date"}
    assert out[0]["key_properties"] == ["worker_id"]
    assert set(out[1]["record"]) <= set(out_schema["properties"])


def test_record_before_schema_is_refused_naming_line_and_stream(
    cfg: dict[str, Any], run_cli: Callable[..., subprocess.CompletedProcess[bytes]], h: Any
) -> None:
    state = {"type": "STATE", "value": {"x": 1}}
    proc = run_cli(cfg, [state, h.record("employees", emp(1))])
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "stream employees, record id=1" in err
    assert "RECORD before any SCHEMA message of stream 'employees' (input line 2)" in err
    assert b"lms_users" not in proc.stdout  # nothing mapped from it


@pytest.mark.parametrize(
    ("line", "kind"),
    [(b"42", "number"), (b"true", "boolean"), (b"[1, 2]", "array"), (b'"x"', "string")],
)
def test_a_line_that_is_not_an_object_is_refused_naming_the_line(
    cfg: dict[str, Any], state_dir: Path, line: bytes, kind: str, h: Any
) -> None:
    from map_hr.engine import build_engine, run_stream

    engine = build_engine({"state_dir": str(state_dir), **cfg})
    data = h.to_bytes([h.schema_msg("employees", EMP_PROPS)]) + line + b"\n"
    with pytest.raises(
        ConfigError, match=f"line 2: a Singer message must be a JSON object, got {kind}"
    ):
        run_stream(engine, io.BytesIO(data), io.BytesIO())


def test_unknown_streams_denied_by_default_or_passed(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    msgs = [
        h.schema_msg("payroll", ("id", "ssn")),
        h.record("payroll", {"id": 1, "ssn": "123-45-6789"}),
        {"type": "ACTIVATE_VERSION", "stream": "payroll", "version": 1},
        {"type": "STATE", "value": {"x": 1}},
    ]
    denied = run_inprocess(cfg, msgs)
    assert denied == [msgs[3]]
    passed = run_inprocess({**cfg, "unknown_streams": "pass"}, msgs)
    assert passed == msgs


def test_untransformable_value_fails_a_strict_run_with_key_and_field(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    msgs = [
        h.schema_msg("employees", EMP_PROPS),
        h.record("employees", emp(7, hireDate="2/30/2021")),
    ]
    with pytest.raises(RecordError) as info:
        run_inprocess({**cfg, "bad_records": "fail"}, msgs)
    assert "id=7" in str(info.value) and "hire_date" in str(info.value)
    assert "2/30/2021" in str(info.value)


def test_missing_required_value_and_unmapped_code_fail_a_strict_run(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    schema = h.schema_msg("employees", EMP_PROPS)
    strict = {**cfg, "bad_records": "fail"}
    with pytest.raises(RecordError, match=r"first_name.*required value is missing"):
        run_inprocess(strict, [schema, h.record("employees", emp(8, firstName="  "))])
    with pytest.raises(RecordError, match="'Seasonal' is not in the value map"):
        run_inprocess(strict, [schema, h.record("employees", emp(9, employmentType="Seasonal"))])


def test_unmappable_records_are_dead_letters_and_the_others_are_delivered(
    cfg: dict[str, Any], run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    """One bad record never stops anyone else's: each is a dead letter holding only what the
    destination may receive, naming field and reason without the value; a later run that maps
    the corrected record resolves its letter."""
    schema = h.schema_msg("employees", EMP_PROPS)
    msgs = [
        schema,
        h.record("employees", emp(1)),
        h.record("employees", emp(2, hireDate="2/30/2021", workEmail="x@acme.example")),
        h.record("employees", emp(3, firstName="  ")),
        h.record("employees", emp(4, employmentType="Seasonal")),
        h.record("employees", emp(5)),
    ]
    out = run_inprocess(cfg, msgs)
    assert [m["record"]["worker_id"] for m in out if m["type"] == "RECORD"] == ["1", "5"]
    store = DeadLetterStore()
    letters = {x.record_key: x for x in store.list(plugin="map-hr:proto")}
    assert set(letters) == {"id=2", "id=3", "id=4"}
    two = letters["id=2"]
    assert two.stream == "lms_users" and two.error_class == "unmappable_hire_date"
    assert "field hire_date:" in two.error and "2/30/2021" not in two.error
    # minimised: the fields this destination gets (the e-mail as its pseudonym), never the
    # input record (no ssn, salary or raw e-mail)
    assert two.record is not None and set(two.record) == {"worker_id", "first_name", "email_key",
                                                          "employment"}  # fmt: skip
    assert "x@acme.example" not in json.dumps(two.record)
    assert "first_name: required value is missing" in letters["id=3"].error
    assert "employment: the value is not in the value map" in letters["id=4"].error
    # fixed in the source: the next run delivers it and resolves its letter; the others wait
    out = run_inprocess(cfg, [schema, h.record("employees", emp(2))])
    assert [m["record"]["worker_id"] for m in out if m["type"] == "RECORD"] == ["2"]
    assert {x.record_key for x in store.list(plugin="map-hr:proto")} == {"id=3", "id=4"}
    assert store.list(status="delivered")[0].record_key == "id=2"


def test_schema_annotation_blocks_an_unacknowledged_sensitive_field(
    tmp_path: Path, run_inprocess: Callable[..., list[dict[str, Any]]], h: Any
) -> None:
    path = tmp_path / "p.yml"
    path.write_text(PROFILE + "      notes: {from: notes}\n")
    schema = h.schema_msg("employees", (*EMP_PROPS, "notes"))
    schema["schema"]["properties"]["notes"] = {"type": "string", "x-pii": "sensitive.health"}
    with pytest.raises(Exception, match=r"p\.yml:\d+: .*notes.*sensitive\.health"):
        run_inprocess({"profile": str(path)}, [schema])


def test_system_of_record_drops_and_counts_non_owner_fields(
    cfg: dict[str, Any],
    run_inprocess: Callable[..., list[dict[str, Any]]],
    h: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    msgs = [
        h.schema_msg("employees", EMP_PROPS),
        *(h.record("employees", emp(k)) for k in range(3)),
    ]
    with caplog.at_level("INFO"):
        out = run_inprocess({**cfg, "system_of_record": {"hire_date": "workday"}}, msgs)
    assert "hire_date" not in out[0]["schema"]["properties"]
    assert all("hire_date" not in m["record"] for m in out[1:])
    assert (
        "dropped lms_users.hire_date from bamboohr in 3 record(s) (owner: workday)" in caplog.text
    )


def test_cli_end_to_end_and_failure_exit(
    cfg: dict[str, Any], run_cli: Callable[..., subprocess.CompletedProcess[bytes]], h: Any
) -> None:
    msgs = [h.schema_msg("employees", EMP_PROPS), h.record("employees", emp(1))]
    proc = run_cli(cfg, msgs)
    assert proc.returncode == 0, proc.stderr.decode()
    out = h.from_bytes(proc.stdout)
    assert [m["type"] for m in out] == ["SCHEMA", "RECORD"]
    assert out[1]["record"]["first_name"] == "Zoë"

    bad = [
        *msgs,
        h.record("employees", emp(5, hireDate="not a date")),
        h.record("employees", emp(6)),
    ]
    proc = run_cli(cfg, bad)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "record id=5 of stream 'employees' is a dead letter" in err and "hire_date" in err
    assert "1 record(s) for 'lms_users' are dead letters" in err
    # the records after the bad one were delivered too
    out = h.from_bytes(proc.stdout)
    assert [m["record"]["worker_id"] for m in out if m["type"] == "RECORD"] == ["1", "6"]

    proc = run_cli({**cfg, "bad_records": "fail"}, bad)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "id=5" in err and "hire_date" in err and "not a date" in err
    # strict: what came before the bad record was delivered; nothing after it
    assert [m["type"] for m in h.from_bytes(proc.stdout)] == ["SCHEMA", "RECORD"]


def test_cli_malformed_profile_exits_with_the_location(
    tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[bytes]]
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(PROFILE.replace("transform: name", "transform: nmae"))
    proc = run_cli({"profile": str(path)}, [])
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert (
        "broken.yml:11: streams.employees.fields.first_name.transform: 'nmae' is not one of" in err
    )
    assert "name, nfc" in err


def test_about_json(h: Any) -> None:
    proc = subprocess.run(
        [h.MAP_HR, "--about", "--format", "json"], capture_output=True, check=True, timeout=60
    )
    about = json.loads(proc.stdout)
    assert about["name"] == "map-hr"
    props = about["settings"]["properties"]
    assert {"profile", "profiles_dir", "hmac_key", "system_of_record", "state_dir"} <= set(props)
    assert props["hmac_key"].get("secret") is True


def test_singer_sdk_listen_path(cfg: dict[str, Any], h: Any) -> None:
    """In-process through singer-sdk's own reader/writer (what SDK test harnesses use)."""
    from map_hr.mapper import MapHR

    mapper = MapHR(config=cfg)
    lines = "\n".join(
        json.dumps(m)
        for m in [
            h.schema_msg("employees", EMP_PROPS),
            h.record("employees", emp(1, salary=85000.5)),
            {"type": "STATE", "value": {"a": 1}},
            h.record("other", {"id": 1}),
        ]
    )
    buf = io.StringIO()
    with redirect_stdout(buf):
        mapper.listen(io.StringIO(lines + "\n"))
    out = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [m["type"] for m in out] == ["SCHEMA", "RECORD", "STATE"]
    assert out[1]["record"]["hire_date"] == "2021-03-07"


def test_the_engine_finds_the_dead_letter_store_where_the_core_keeps_it() -> None:
    from hrsync import deadletter
    from map_hr import engine

    assert (
        deadletter.ENV_PATH,
        str(deadletter.DEFAULT_PATH),
    ) == (engine.DLQ_ENV, engine.DLQ_DEFAULT)


def test_a_profile_compiled_ahead_maps_the_same_and_a_changed_one_is_compiled_again(
    cfg: dict[str, Any], state_dir: Path, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """map-hr's warm-up (the webhook fast path compiles the profile once, before forking its
    runs): the warmed engine maps byte for byte as a cold one; an edited profile is not served
    from the warm-up."""
    from map_hr import engine as eng

    monkeypatch.setattr(eng, "_WARMED", {})
    config = {"state_dir": str(state_dir), **cfg}
    data = h.to_bytes([h.schema_msg("employees", EMP_PROPS), h.record("employees", emp(1))])

    def mapped(engine: Any) -> bytes:
        out = io.BytesIO()
        eng.run_stream(engine, io.BytesIO(data), out)
        return out.getvalue()

    cold = mapped(eng.build_engine(config))
    eng.warm(config)
    (warmed,) = eng._WARMED.values()
    engine = eng.build_engine(config)
    assert engine.profile is warmed[0]
    assert mapped(engine) == cold
    Path(cfg["profile"]).write_text(PROFILE + "# edited\n", "utf-8")
    assert eng.build_engine(config).profile is not warmed[0]
