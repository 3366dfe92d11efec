"""A record with an unpaired UTF-16 surrogate is its own dead letter; the others reach the
SCIM server."""

from __future__ import annotations

from typing import Any

import pytest

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
    scim: Any, make_person: Any, bad: dict, field: str
) -> None:
    records = [make_person("S1"), make_person("S2", **bad), make_person("S3")]
    target = scim.run(records)
    assert target.summary.failures == []
    assert {"S1", "S3"} <= set(scim.users()) and "S2" not in scim.users()
    [letter] = DeadLetterStore().list()
    assert (letter.plugin, letter.stream, letter.record_key) == ("target-scim", "iam_users", "S2")
    assert f"record S2: field {field}: unpaired UTF-16 surrogate" in letter.error
    assert letter.error_class == "unpaired_surrogate"
    assert letter.record == records[1]


@pytest.mark.parametrize(
    "bad",
    [{"given_name": "B\ud800"}, {"termination_date": "next tuesday"}],
    ids=["lone-surrogate", "bad-date"],
)
def test_a_refused_record_is_not_a_leaver_in_a_full_feed(
    scim: Any, make_person: Any, bad: dict
) -> None:
    people = [make_person("S1"), make_person("S2"), make_person("S3")]
    scim.run(people)
    target = scim.run([people[0], {**people[1], **bad}, people[2]], deactivate_missing_users=True)
    assert scim.users()["S2"].active  # in the feed, refused: the account stays as it is
    assert [x.record_key for x in DeadLetterStore().list()] == ["S2"]
    assert target.summary.outcomes.get("deactivated", 0) == 0
