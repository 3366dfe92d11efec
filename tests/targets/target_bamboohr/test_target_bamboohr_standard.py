"""target-bamboohr under singer-sdk's own target test harness, with assertions on the HRIS.

singer-sdk's stock target suite feeds arbitrary streams (``test_camelcase``, ``array_data``...)
that a new-hire target must refuse (no ATS candidate id, fields BambooHR lacks), so the stock
tests that make sense for it run as-is (CLI, invalid schema, record before schema) and the rest
are replaced by the same templates fed new-hire ``.singer`` files, each followed by a
``validate()`` that reads back what reached the sandbox HRIS.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import (
    TargetCliPrintsTest,
    TargetInvalidSchemaTest,
    TargetRecordBeforeSchemaTest,
)
from singer_sdk.testing.templates import TargetFileTestTemplate

from sandbox.bamboohr import CANDIDATE_FIELD, BambooHR
from sandbox.server import Sandbox
from target_bamboohr.target import TargetBambooHR

STREAMS = Path(__file__).parent / "streams"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# the harness builds its target from a config fixed at import time: the sandbox port must be too
PORT = _free_port()
CONFIG = {
    "api_url": f"http://127.0.0.1:{PORT}/api/v1",
    "api_key": "sandbox-bamboohr-key",
    "backoff_base_seconds": 0.01,
}
_SANDBOX: dict[str, Sandbox] = {}


def _app() -> BambooHR:
    app = _SANDBOX["sb"].apps["bamboohr"]
    assert isinstance(app, BambooHR)
    return app


def _messages(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class NewHireFileTest(TargetFileTestTemplate):
    """A new-hire ``.singer`` file in; every candidate exactly once in the HRIS, values exact."""

    fields: ClassVar[tuple[str, ...]] = (
        "firstName", "middleName", "lastName", "preferredName", "workEmail", "hireDate",
        "department", "division", "jobTitle", "location", "employmentHistoryStatus",
        "payRate", "payType", "payPer", "mobilePhone",
    )  # fmt: skip

    @property
    def singer_filepath(self) -> Path:  # type: ignore[override]
        return STREAMS / f"{self.name}.singer"

    def expected(self) -> dict[str, dict[str, Any]]:
        """The last record of each candidate in the file, by candidate id."""
        out: dict[str, dict[str, Any]] = {}
        for msg in _messages(self.singer_filepath):
            if msg["type"] == "RECORD":
                out[msg["record"]["ats_candidate_id"]] = msg["record"]
        return out

    def validate(self) -> None:
        app = _app()
        for cid, record in self.expected().items():
            ids = app.find(CANDIDATE_FIELD, cid)
            assert len(ids) == 1, f"candidate {cid}: {len(ids)} employees"
            employee = app.employee(ids[0])
            for name in self.fields:
                if record.get(name) not in (None, ""):
                    assert employee[name] == record[name], (cid, name, employee[name])
            assert int(employee["id"]) > app.world.employees  # created, not matched


class NewHiresHardNames(NewHireFileTest):
    """Accents, apostrophes (straight and typographic), CJK, Cyrillic, Arabic, mononyms."""

    name = "new_hires_hard_names"


class NewHiresReplayed(NewHireFileTest):
    """The same hire four times (and a second SCHEMA) in one run: one employee, one write."""

    name = "new_hires_replayed"

    def validate(self) -> None:
        super().validate()
        (eid,) = _app().find(CANDIDATE_FIELD, "4200000101")
        (write,) = [w for w in _app().writes if w[1] == eid]  # the create, nothing after it
        assert CANDIDATE_FIELD in write[2] and "firstName" in write[2]


class NewHiresOptionalMissing(NewHireFileTest):
    """Only the required fields, or optional ones null: created without inventing values."""

    name = "new_hires_optional_missing"

    def validate(self) -> None:
        super().validate()
        (eid,) = _app().find(CANDIDATE_FIELD, "4200000201")
        employee = _app().employee(eid)
        assert employee["middleName"] is None and employee["hireDate"] is None


class NewHiresSchemaUpdate(NewHireFileTest):
    """A SCHEMA that gains a field mid-stream: later records carry it through."""

    name = "new_hires_schema_update"

    def validate(self) -> None:
        super().validate()
        (eid,) = _app().find(CANDIDATE_FIELD, "4200000302")
        assert _app().employee(eid)["preferredName"] == "Dar"


_Base = get_target_test_class(
    TargetBambooHR,
    config=CONFIG,
    include_target_tests=False,
    custom_suites=[
        SingerTestSuite(
            kind="target",
            tests=[
                TargetCliPrintsTest,
                TargetInvalidSchemaTest,
                TargetRecordBeforeSchemaTest,
                NewHiresHardNames,
                NewHiresReplayed,
                NewHiresOptionalMissing,
                NewHiresSchemaUpdate,
            ],
        )
    ],
)


class TestTargetBambooHRStandard(_Base):  # type: ignore[misc,valid-type]
    """The harness's tests, against one sandbox on the port fixed above."""

    @pytest.fixture(scope="class", autouse=True)
    def _sandbox(self) -> Iterator[Sandbox]:
        with Sandbox(employees=20, vendors=("bamboohr",), ports={"bamboohr": PORT}) as sb:
            _SANDBOX["sb"] = sb
            yield sb
