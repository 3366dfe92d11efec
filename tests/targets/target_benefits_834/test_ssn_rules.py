"""The 834 never carries an SSN the SSA never issued: the subscriber is refused naming the field
(the target files it as a dead letter); masked dependant SSNs are still never sent."""

from __future__ import annotations

from typing import Any

import pytest

from hrsync.errors import RecordError
from target_benefits_834.members import dependant, subscriber


def _subscriber(**kw: Any) -> dict[str, Any]:
    rec = {"employee_id": "501", "first_name": "Ann", "last_name": "Lee",
           "date_of_birth": "1980-01-02", "gender": "F", "ssn": "123-45-6789"}  # fmt: skip
    return {**rec, **kw}


@pytest.mark.parametrize(
    "ssn", ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"]
)
def test_a_never_issued_ssn_is_refused_naming_the_field(ssn: str) -> None:
    with pytest.raises(RecordError, match=r"record 501: field ssn: .*never issues.*\(NM109\)"):
        subscriber(_subscriber(ssn=ssn))


def test_valid_masked_and_missing_ssns() -> None:
    assert subscriber(_subscriber())["ssn"] == "123456789"
    assert subscriber(_subscriber(ssn=None))["ssn"] == ""
    assert subscriber(_subscriber(ssn="xxx-xx-6789"))["ssn"] == ""  # masked: never half-sent
    dep = {"dependent_id": "9", "employee_id": "501", "first_name": "Bo", "last_name": "Lee",
           "relationship": "19", "ssn": "000-00-0000"}  # fmt: skip
    assert dependant(dep)["ssn"] == ""
