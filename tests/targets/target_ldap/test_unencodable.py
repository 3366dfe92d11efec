"""A record with an unpaired UTF-16 surrogate is its own dead letter; the others reach slapd."""

from __future__ import annotations

from pathlib import Path

import pytest
from ldap_testkit import DISABLED, RunTarget, Slapd, openldap_config, person

from hrsync.deadletter import DeadLetterStore


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"given_name": "\ud800"}, "given_name"),
        ({"positions": [{"title": "Lead", "department": "R\udfffD"}]}, "positions[0].department"),
    ],
    ids=["top-level", "nested"],
)
def test_a_lone_surrogate_is_that_records_dead_letter(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, bad: dict, field: str
) -> None:
    records = [
        person("7001", "Ann", "Lee"),
        person("7002", "Bad", "Text"),
        person("7003", "Bo", "Ek"),
    ]
    records[1].update(bad)
    target = run_target(openldap_config(slapd, tmp_path), records)
    managed = {a["employeeNumber"][0] for a in slapd.entries().values() if "employeeNumber" in a}
    assert managed == {"7001", "7003"}
    assert target.summary.outcomes["created"] == 2
    [letter] = DeadLetterStore().list()
    assert (letter.plugin, letter.stream, letter.record_key) == ("target-ldap", "iam_users", "7002")
    assert f"record 7002: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.error_class == "unpaired_surrogate"
    assert letter.record == records[1]  # kept as it came, for a replay once fixed
    assert letter.key_properties == ["employee_id"]


@pytest.mark.parametrize(
    "bad",
    [{"given_name": "B\ud800"}, {"termination_date": "next tuesday"}],
    ids=["lone-surrogate", "bad-date"],
)
def test_a_refused_record_is_not_a_leaver_in_a_full_feed(
    slapd: Slapd, tmp_path: Path, run_target: RunTarget, bad: dict
) -> None:
    people = [
        person("7001", "Ann", "Lee"),
        person("7002", "Bad", "Text"),
        person("7003", "Bo", "Ek"),
    ]
    run_target(openldap_config(slapd, tmp_path), people)
    config = openldap_config(slapd, tmp_path, deactivate_missing_users=True)
    target = run_target(config, [people[0], {**people[1], **bad}, people[2]])
    assert slapd.entries(DISABLED) == {}  # in the feed, refused: the account stays as it is
    assert "disabled" not in target.summary.outcomes
    assert [x.record_key for x in DeadLetterStore().list()] == ["7002"]
    target = run_target(config, [people[0], people[2]])  # really missing: disabled
    assert target.summary.outcomes["disabled"] == 1
