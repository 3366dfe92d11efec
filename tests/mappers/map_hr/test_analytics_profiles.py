"""hris_to_analytics + survey_to_analytics: pseudonyms that join, and nothing that names anyone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hrsync.pseudonym import Pseudonymizer

from .conftest import HMAC_KEY, Messages, record, schema_msg

WORKER = [
    "id", "first_name", "last_name", "work_email", "personal_email", "date_of_birth",
    "department", "location", "manager_id", "hire_date", "job_title",
]  # fmt: skip
RESPONSE = [
    "id", "survey_id", "collector_id", "recipient_id", "custom_variables", "employee_id",
    "respondent_email", "response_status", "date_created", "date_modified", "total_time",
]  # fmt: skip
ANSWER = [
    "response_id", "survey_id", "question_id", "answer_position", "row_id", "choice_id",
    "choice_position", "choice_weight", "choice_text", "text", "date_modified",
]  # fmt: skip


def records(out: Messages, stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in out if m["type"] == "RECORD" and m["stream"] == stream]


def test_hris_side_keeps_only_segments_and_pseudonyms(
    run_inprocess: Callable[..., Messages],
) -> None:
    out = run_inprocess(
        {"profile": "hris_to_analytics"},
        [
            schema_msg("worker", WORKER),
            record("worker", {
                "id": "17", "first_name": "Zoë", "last_name": "O'Brien-Łukasiewicz",
                "work_email": " Zoe.OBrien@Example.COM ", "personal_email": "zoe@home.example",
                "date_of_birth": "1990-01-02", "department": " Sales ", "location": "Berlin",
                "manager_id": "4", "hire_date": "2019-03-04", "job_title": "AE",
            }),
            record("worker", {"id": "18", "first_name": "王", "department": "Sales"}),
        ],
    )  # fmt: skip
    keyed = Pseudonymizer(HMAC_KEY).context("analytics")
    assert records(out, "employees") == [
        {
            "employee_key": keyed("17"),
            "email_key": keyed("zoe.obrien@example.com"),
            "department": "Sales",
            "location": "Berlin",
            "manager_key": keyed("4"),
            "hire_month": "2019-03",
        },
        {"employee_key": keyed("18"), "department": "Sales"},
    ]
    # analytics pseudonyms are not the plain-key pseudonyms of any other flow
    assert keyed("17") != Pseudonymizer(HMAC_KEY)("17")


def test_survey_side_links_by_the_same_pseudonyms_and_drops_free_text(
    run_inprocess: Callable[..., Messages],
) -> None:
    out = run_inprocess(
        {"profile": "survey_to_analytics"},
        [
            schema_msg("responses", RESPONSE),
            record("responses", {
                "id": "r1", "survey_id": "s", "custom_variables": {"employee_id": "17",
                "name": "Zoë"}, "employee_id": "17", "respondent_email": None,
                "response_status": "completed", "recipient_id": "3000000003",
                "date_modified": "2026-03-01T10:00:00+00:00", "total_time": 88,
            }),
            record("responses", {
                "id": "r2", "survey_id": "s", "employee_id": None,
                "respondent_email": "zoe.obrien@example.com", "response_status": "completed",
                "date_modified": "2026-03-01T10:00:00+00:00",
            }),
            record("responses", {  # nobody: kept, unlinked
                "id": "r3", "survey_id": "s", "employee_id": None, "respondent_email": None,
                "response_status": "completed", "date_modified": "2026-03-01T10:00:00+00:00",
            }),
            schema_msg("answers", ANSWER, ["response_id", "question_id", "answer_position"]),
            record("answers", {
                "response_id": "r1", "survey_id": "s", "question_id": "q1", "answer_position": 1,
                "choice_id": "c4", "choice_position": 4, "choice_weight": 4,
                "choice_text": "Agree", "date_modified": "2026-03-01T10:00:00+00:00",
            }),
            record("answers", {
                "response_id": "r1", "survey_id": "s", "question_id": "q9", "answer_position": 1,
                "text": "My manager Jane Doe is great",
                "date_modified": "2026-03-01T10:00:00+00:00",
            }),
        ],
    )  # fmt: skip
    keyed = Pseudonymizer(HMAC_KEY).context("analytics")
    responses = records(out, "survey_responses")
    assert [r["response_id"] for r in responses] == ["r1", "r2", "r3"]
    assert responses[0]["employee_key"] == keyed("17")  # joins employees.employee_key
    assert responses[1]["email_key"] == keyed("zoe.obrien@example.com")  # joins email_key
    assert "employee_key" not in responses[2] and "email_key" not in responses[2]
    assert records(out, "survey_answers") == [
        {
            "response_id": "r1", "survey_id": "s", "question_id": "q1", "answer_position": 1,
            "choice_id": "c4", "choice_position": 4, "choice_weight": 4,
        }
    ]  # fmt: skip
    text = str(out)
    for leaked in ("Zoë", "Jane Doe", "3000000003", "@", "custom_variables", "total_time"):
        assert leaked not in text
