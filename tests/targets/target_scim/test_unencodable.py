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
