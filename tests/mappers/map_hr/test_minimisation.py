"""Default deny, as a property: nothing outside a destination's allowlist ever leaves."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrsync.errors import RecordError
from map_hr.engine import build_engine, run_stream
from map_hr.profile import load_profile

os.environ.setdefault("MAP_HR_HMAC_KEY", "test-key-0123456789abcdef")

LMS_ALLOWED = set(load_profile("hris_to_lms").data["streams"]["worker"]["fields"])
CANONICAL_WORKER_FIELDS = [
    *("id", "first_name", "last_name", "preferred_name", "work_email", "personal_email"),
    *("date_of_birth", "national_id", "gender", "home_address", "job_title", "department"),
    *("location", "country", "is_manager", "hire_date", "employment_status", "manager_id"),
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
field_names = st.sampled_from(CANONICAL_WORKER_FIELDS) | st.text(min_size=1, max_size=10)
worker = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "first_name": st.text(min_size=1, max_size=10).filter(str.strip),
        "employment_status": st.sampled_from(["active", "pending", "inactive", None]),
    },
    optional={"work_email": st.just("x@y.example"), "hire_date": st.just("2021-03-07")},
).flatmap(
    lambda base: st.dictionaries(field_names, values, max_size=12).map(
        lambda extra: {**extra, **base}
    )
)


def run(records: list[dict[str, Any]], tmp: str) -> list[dict[str, Any]]:
    import orjson

    engine = build_engine({"profile": "hris_to_lms", "state_dir": tmp})
    lines = [
        orjson.dumps(
            {
                "type": "SCHEMA",
                "stream": "worker",
                "schema": {"properties": {}},
                "key_properties": ["id"],
            }
        )
    ]
    lines += [orjson.dumps({"type": "RECORD", "stream": "worker", "record": r}) for r in records]
    lines += [orjson.dumps({"type": "RECORD", "stream": "payroll", "record": r}) for r in records]
    out = io.BytesIO()
    # a record error stops the run; whatever left before it must still be clean
    with contextlib.suppress(RecordError):
        run_stream(engine, io.BytesIO(b"\n".join(lines) + b"\n"), out)
    return [orjson.loads(x) for x in out.getvalue().splitlines()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(worker, min_size=1, max_size=5))
def test_no_field_outside_the_allowlist_ever_leaves(records: list[dict[str, Any]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = run(records, tmp)
    for msg in out:
        assert msg.get("stream") in (None, "lms_users")  # unknown streams denied
        if msg["type"] == "SCHEMA":
            assert set(msg["schema"]["properties"]) == LMS_ALLOWED
            assert set(msg["schema"].get("required", [])) <= LMS_ALLOWED
        elif msg["type"] == "RECORD":
            assert set(msg["record"]) <= LMS_ALLOWED
            for sensitive in ("national_id", "date_of_birth", "home_address", "gender"):
                assert sensitive not in msg["record"]
