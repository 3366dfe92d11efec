"""Errors name the record, the field and the reason (or the file, key/line and problem)."""

from __future__ import annotations

import pickle

from hrsync.errors import ConfigError, RecordError


def test_record_error_message_and_attributes() -> None:
    err = RecordError(
        "offers", 9000000012, "starts_on", "'next tuesday' is not a date (expected YYYY-MM-DD)"
    )
    assert str(err) == (
        "stream offers, record 9000000012: field starts_on: "
        "'next tuesday' is not a date (expected YYYY-MM-DD)"
    )
    assert (err.stream, err.record_key, err.field) == ("offers", 9000000012, "starts_on")
    whole = RecordError("workers", "E-ß1", None, "no employee_id")
    assert str(whole) == "stream workers, record E-ß1: no employee_id"


def test_record_error_crosses_process_boundaries() -> None:
    err = RecordError("offers", 1, "salary", "not a number")
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert isinstance(back, RecordError) and str(back) == str(err) and back.field == "salary"


def test_config_error() -> None:
    assert isinstance(ConfigError("x"), ValueError) and str(ConfigError("x")) == "x"
    err = ConfigError.at(
        "unknown transform 'uppercase'", file="profiles/ats_to_hris.yml", line=12, key="fields.name"
    )
    assert str(err) == "profiles/ats_to_hris.yml:12: fields.name: unknown transform 'uppercase'"
    assert (err.file, err.line, err.key, err.problem) == (
        "profiles/ats_to_hris.yml",
        12,
        "fields.name",
        "unknown transform 'uppercase'",
    )
    assert str(ConfigError.at("required", key="base_dn")) == "base_dn: required"
    assert str(ConfigError.at("bad", line=3)) == "line 3: bad"

    class Sub(ConfigError):
        pass

    assert isinstance(Sub.at("p", file="f"), Sub)
