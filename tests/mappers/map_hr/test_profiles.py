"""Profiles: every shipped one loads; a malformed one names the file, the line, the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrsync.errors import ConfigError
from hrsync.pseudonym import Pseudonymizer
from map_hr.plan import compile_profile
from map_hr.profile import ProfileError, load_profile, parse_profile, resolve_profile_path

PROFILES = sorted(
    p.stem
    for p in (Path(__file__).parents[3] / "mappers" / "map-hr" / "map_hr" / "profiles").glob(
        "*.yml"
    )
)

GOOD = """\
name: demo
destination: lms
source_system: bamboohr
streams:
  employees:
    fields:
      id: {from: id, required: true}
      name: {from: firstName, transform: name}
"""


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_profiles_load_and_compile(name: str) -> None:
    prof = load_profile(name)
    assert prof.name == name
    assert compile_profile(prof, Pseudonymizer("x" * 32))


def test_expected_profiles_are_shipped() -> None:
    assert {
        "ats_to_hris",
        "hris_to_lms",
        "greenhouse_to_canonical",
        "bamboohr_to_canonical",
    } <= set(PROFILES)


def test_profile_by_dashed_name_or_path(tmp_path: Path) -> None:
    assert resolve_profile_path("ats-to-hris").name == "ats_to_hris.yml"
    path = tmp_path / "mine.yml"
    path.write_text(GOOD)
    assert load_profile(str(path)).name == "demo"
    with pytest.raises(ConfigError, match=r"available: .*ats_to_hris"):
        resolve_profile_path("nope")


def bad(text: str) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, "profiles/bad.yml")
    assert isinstance(info.value, ConfigError)
    return info.value


def test_yaml_syntax_error_names_the_line() -> None:
    err = bad(GOOD + "      oops: {from: x\n")
    assert err.file == "profiles/bad.yml"
    assert err.line == 9
    assert "not valid YAML" in str(err)


def test_unknown_key_is_named_with_its_path_and_line() -> None:
    err = bad(GOOD.replace("transform: name", "transfrom: name"))
    assert err.key_path == ("streams", "employees", "fields", "name")
    assert err.line == 8
    assert "'transfrom'" in err.problem
    assert str(err).startswith("profiles/bad.yml:8: streams.employees.fields.name:")


def test_missing_top_level_key() -> None:
    err = bad(GOOD.replace("source_system: bamboohr\n", ""))
    assert "'source_system' is required" in err.problem


def test_unknown_transform_is_rejected_at_its_line() -> None:
    err = bad(GOOD.replace("transform: name", "transform: titlecase"))
    assert err.key_path[:4] == ("streams", "employees", "fields", "name")
    assert err.line == 8


def test_sensitive_field_needs_acknowledgement() -> None:
    err = bad(GOOD + "      ssn: {from: ssn}\n")
    assert err.key_path == ("streams", "employees", "fields", "ssn")
    assert err.line == 9
    assert "sensitive.national_id" in err.problem and "sensitive_ok" in err.problem
    # by the source path too: an innocent output name does not hide a salary
    err = bad(GOOD + "      amount: {from: compensation.salary}\n")
    assert "sensitive.salary" in err.problem
    parse_profile(GOOD + "      ssn: {from: ssn, sensitive_ok: true}\n")
    parse_profile(GOOD + "      ssn_key: {from: ssn, hmac: true}\n")  # pseudonymised


def test_sensitive_field_cannot_be_declassified() -> None:
    err = bad(GOOD + "      ssn: {from: ssn, pii: identifier}\n")
    assert "cannot declassify" in err.problem


def test_field_needs_exactly_one_source() -> None:
    assert "exactly one of" in bad(GOOD + "      x: {transform: name}\n").problem
    assert "exactly one of" in bad(GOOD + "      x: {from: a, const: 1}\n").problem


def test_join_must_name_a_declared_lookup_and_paths_a_declared_join() -> None:
    text = GOOD.replace(
        "    fields:\n", "    join:\n      boss: {lookup: managers, on: manager_id}\n    fields:\n"
    )
    assert "unknown lookup 'managers'" in bad(text).problem
    err = bad(GOOD + "      boss: {from: $boss.name}\n")
    assert "reads $boss" in err.problem


def test_canonical_output_is_checked_against_the_model() -> None:
    text = GOOD.replace("    fields:\n", "    schema: canonical:worker\n    fields:\n")
    err = bad(text)
    assert "'name' is not a property of canonical Worker" in err.problem


def test_bad_time_zone() -> None:
    err = bad(GOOD + "      t: {from: t, transform: {datetime: {timezone: Mars/Olympus}}}\n")
    assert "unknown time zone" in err.problem


def test_hmac_without_key_is_a_config_error() -> None:
    prof = parse_profile(GOOD + "      email_key: {from: workEmail, hmac: true}\n")
    with pytest.raises(ProfileError, match="no hmac_key"):
        compile_profile(prof, None)


def test_yaml_11_booleans_do_not_bite() -> None:
    prof = parse_profile(
        GOOD + "      flag: {from: f, value_map: {Y: yes, N: no, on: on, off: off}}\n"
    )
    vmap = prof.data["streams"]["employees"]["fields"]["flag"]["value_map"]
    assert vmap == {"Y": "yes", "N": "no", "on": "on", "off": "off"}
