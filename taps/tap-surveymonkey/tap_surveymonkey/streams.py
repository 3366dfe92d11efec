"""SurveyMonkey streams: surveys, questions, responses and answers (schemas in schemas/).

surveys -> questions (one row per question of ``/details``) and responses (``/responses/bulk``,
incremental per survey); then answers (one row per answer, no request of its own: the answers of
the responses emitted in this run, with the choice's position, weight and text from the survey's
details).
"""

from __future__ import annotations

import tempfile
import typing as t
from datetime import datetime, timedelta

import orjson
from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams import Stream

from hrsync.drift import ReportsDrift
from hrsync.errors import ConfigError
from hrsync.incremental import DateTimeWindows, Window
from hrsync.output import SelectedRecordMessages
from hrsync.paging import FollowNextLink
from hrsync.shapes import UnexpectedPage, expect, expect_rows
from tap_surveymonkey.client import (
    SCHEMAS,
    Keyset,
    KeysetPaginator,
    LinksNextPaginator,
    SurveyMonkeyStream,
    format_bound,
    parse_json,
    parse_stamp,
)

_SECOND = timedelta(seconds=1)

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context


class SurveysStream(FollowNextLink, SurveyMonkeyStream):
    """``GET /v3/surveys`` (``include=...`` for counts and dates); ``survey_ids`` narrows it."""

    name = "surveys"
    path = "/surveys"
    primary_keys: t.ClassVar[list[str]] = ["id"]

    def get_new_paginator(self) -> BaseAPIPaginator:
        return LinksNextPaginator()

    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        return {
            "per_page": 100,
            "include": "response_count,date_created,date_modified,language,question_count",
        }

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        wanted = self.config.get("survey_ids")
        if wanted and str(row["id"]) not in {str(s) for s in wanted}:
            return None
        return {k: row.get(k) for k in self.schema["properties"]}

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[dict | None]:
        yield {"survey_id": str(record["id"])}


class QuestionsStream(SurveyMonkeyStream):
    """``GET /v3/surveys/{id}/details``: one row per question, choices with position/weight."""

    name = "questions"
    path = "/surveys/{survey_id}/details"
    parent_stream_type = SurveysStream
    primary_keys: t.ClassVar[list[str]] = ["survey_id", "id"]
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        details = expect(
            response, "SurveyMonkey", parse_json(response), dict, "the survey's details object"
        )
        if details.get("id") is None:
            raise UnexpectedPage("SurveyMonkey", response, 'survey details without an "id"')
        pages = details.get("pages")
        for page in expect_rows(
            response, "SurveyMonkey", [] if pages is None else pages, '"pages"'
        ):
            expect_rows(response, "SurveyMonkey", page.get("questions") or [], '"questions"')
        survey_id = str(details["id"])
        rows = list(question_rows(details))
        survey_questions(self._tap)[survey_id] = {r["id"]: r for r in rows}
        yield from rows


def question_rows(details: dict[str, t.Any]) -> Iterable[dict[str, t.Any]]:
    """The questions of a ``/details`` body as flat rows."""
    for page in details.get("pages") or []:
        for q in page.get("questions") or []:
            answers = q.get("answers") or {}
            headings = q.get("headings") or [{}]
            yield {
                "survey_id": str(details["id"]),
                "id": str(q["id"]),
                "page_id": str(page["id"]),
                "page_position": page.get("position"),
                "position": q.get("position"),
                "heading": headings[0].get("heading"),
                "family": q.get("family"),
                "subtype": q.get("subtype"),
                "display_type": (q.get("display_options") or {}).get("display_type"),
                "choices": [
                    {
                        "id": str(c["id"]),
                        "position": c.get("position"),
                        "text": c.get("text"),
                        "weight": c.get("weight"),
                    }
                    for c in answers.get("choices") or []
                ],
                "rows": [
                    {"id": str(r["id"]), "position": r.get("position"), "text": r.get("text")}
                    for r in answers.get("rows") or []
                ],
            }


def survey_questions(tap: t.Any) -> dict[str, dict[str, dict[str, t.Any]]]:
    """survey id -> question id -> question row (filled from ``/details``), one per tap."""
    cache: dict[str, dict[str, dict[str, t.Any]]] | None = getattr(tap, "_sm_questions", None)
    if cache is None:
        cache = {}
        tap._sm_questions = cache
    return cache


class ResponsesStream(ReportsDrift, DateTimeWindows, SurveyMonkeyStream):
    """``GET /v3/surveys/{id}/responses/bulk``, incremental on ``date_modified`` per survey.

    Emits the link fields only: ``employee_id`` from the custom variable named by
    ``employee_id_variable`` (null when absent or empty: such respondents are kept, unlinked),
    ``respondent_email`` only with ``include_respondent_email``. IP addresses and edit links are
    never emitted. The answers go to the ``answers`` stream.
    """

    name = "responses"
    path = "/surveys/{survey_id}/responses/bulk"
    parent_stream_type = SurveysStream
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "date_modified"
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE  # rows are built in post_process
    #: one window per survey (its state partition), to the second (the API's bounds)
    window_precision = _SECOND
    drift_vendor = "SurveyMonkey"
    drift_nested = False
    drift_declared_in = "KNOWN_RESPONSE_FIELDS (tap_surveymonkey/streams.py)"
    #: pages in turn: the keyset paginator prunes ``_seen`` when it advances, which must
    #: follow post_process of the page's rows (read ahead, re-served rows would be doubled)
    read_ahead = False

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: ids already emitted at or after the current keyset start (re-served by design)
        self._seen: dict[str, datetime] = {}
        self._spool_answers: bool | None = None  # answers selected (read once: a sort each)

    def drift_schema(self) -> dict[str, t.Any]:
        """The fields of a bulk response (the output rows are built from them)."""
        return {"properties": {name: {} for name in KNOWN_RESPONSE_FIELDS}}

    def on_new_window(self, context: Context | None, window: Window[datetime]) -> None:
        self._seen = {}

    def get_new_paginator(self) -> BaseAPIPaginator:
        return KeysetPaginator(None, self._new_start)

    def _new_start(self, start: datetime) -> None:
        self._seen = {k: v for k, v in self._seen.items() if v >= start}

    def get_url_params(self, context: Context | None, next_page_token: Keyset | None) -> dict:
        window = self.window(context)
        low, high = window.low, t.cast(datetime, window.high)
        start = next_page_token.start if next_page_token and next_page_token.start else low
        params: dict[str, t.Any] = {
            "per_page": self.page_size(),
            "page": next_page_token.page if next_page_token else 1,
            "sort_by": "date_modified",
            "sort_order": "ASC",
            # the window's upper bound: responses changed from the run start on are the next run's
            "end_modified_at": format_bound(high - _SECOND),
        }
        if start is not None:
            params["start_modified_at"] = format_bound(start)
        return params

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        modified = parse_stamp(str(row["date_modified"]))
        if str(row["id"]) in self._seen:
            return None  # re-served by the keyset paging
        if not self.window(context).admits(modified):
            return None  # the bookmark's run's, before start_date, or the next run's
        self._seen[str(row["id"])] = modified
        self.report_drift(row)
        variables = row.get("custom_variables") or {}
        name = str(self.config.get("employee_id_variable") or "employee_id")
        employee_id = str(variables.get(name) or "").strip() or None
        email = (row.get("email_address") or "").strip().lower() or None
        out = {
            "id": str(row["id"]),
            "survey_id": str(row.get("survey_id") or (context or {}).get("survey_id")),
            "collector_id": row.get("collector_id"),
            "recipient_id": row.get("recipient_id") or None,
            "response_status": row.get("response_status"),
            "collection_mode": row.get("collection_mode"),
            "custom_variables": {str(k): str(v) for k, v in variables.items()},
            "employee_id": employee_id,
            "respondent_email": email if self.config.get("include_respondent_email") else None,
            "date_created": row.get("date_created"),
            "date_modified": row["date_modified"],
            "total_time": row.get("total_time"),
        }
        if self._spool_answers is None:
            self._spool_answers = self._tap.streams["answers"].selected
        if self._spool_answers:
            spool = answers_spool(self._tap)
            spool.write(orjson.dumps([out, row.get("pages") or []]) + b"\n")
        return out


#: every field SurveyMonkey documents on a bulk response; others are reported once (drift)
KNOWN_RESPONSE_FIELDS = frozenset(
    {
        "id",
        "recipient_id",
        "collection_mode",
        "response_status",
        "custom_value",
        "first_name",
        "last_name",
        "email_address",
        "ip_address",
        "logic_path",
        "metadata",
        "page_path",
        "collector_id",
        "survey_id",
        "custom_variables",
        "edit_url",
        "analyze_url",
        "total_time",
        "date_modified",
        "date_created",
        "href",
        "pages",
    }
)


def answers_spool(tap: t.Any) -> t.IO[bytes]:
    """The responses emitted in this run, with their pages, for the answers stream (on disk:
    memory stays flat however many responses there are)."""
    spool: t.IO[bytes] | None = getattr(tap, "_sm_spool", None)
    if spool is None:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the tap
        tap._sm_spool = spool
    return spool


class QuestionKey(t.NamedTuple):
    """What every answer to one question shares, read once per survey from ``/details``."""

    family: t.Any
    subtype: t.Any
    #: choice id -> (position, weight, text)
    choices: dict[str, tuple[t.Any, t.Any, t.Any]]
    #: row id -> text
    rows: dict[str, t.Any]


_NO_CHOICE: tuple[t.Any, t.Any, t.Any] = (None, None, None)
_UNKNOWN_QUESTION = QuestionKey(None, None, {}, {})


def question_key(meta: dict[str, t.Any]) -> QuestionKey:
    """A question row (see :func:`question_rows`) as the lookups its answers need."""
    return QuestionKey(
        meta.get("family"),
        meta.get("subtype"),
        {
            c["id"]: (c.get("position"), c.get("weight"), c.get("text"))
            for c in meta.get("choices") or []
        },
        {r["id"]: r.get("text") for r in meta.get("rows") or []},
    )


class AnswersStream(SelectedRecordMessages, Stream):
    """One row per response x question x answer, with the choice's position, weight and text.

    No request of its own: it explodes the responses the responses stream emitted in this run
    (spooled to disk), after them. The choice details come from the survey's ``/details`` (read
    by the questions stream, or here if that stream is not selected). A response that changes
    is emitted again with all its answers: consumers replace the answers of a ``response_id``
    as a whole. (Not a singer-sdk child stream: one child sync per response costs more than
    the answers themselves, and logs a line and two metrics each.)
    """

    name = "answers"
    primary_keys: t.ClassVar[list[str]] = ["response_id", "question_id", "answer_position"]
    schema = StreamSchema(SchemaDirectory(SCHEMAS))
    #: rows are built here with the schema's types: singer-sdk's per-field pass is pure cost
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: survey id -> question id -> its answers' lookups (built once per survey)
        self._keys: dict[str, dict[str, QuestionKey]] = {}

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if not self._tap.streams["responses"].selected:
            raise ConfigError(
                "tap-surveymonkey: the answers stream is read from the responses of the same "
                "run; select the responses stream too"
            )
        self._keys = {}  # the questions of this run (a tap may sync twice)
        spool = answers_spool(self._tap)
        spool.seek(0)
        for line in spool:
            response, pages = orjson.loads(line)
            yield from self._explode(response, pages)
        spool.seek(0)
        spool.truncate()

    def _explode(self, response: dict[str, t.Any], pages: list[t.Any]) -> Iterable[dict]:
        survey_id = response["survey_id"]
        keys = self._keys.get(survey_id)
        if keys is None:
            keys = self._keys[survey_id] = {
                qid: question_key(meta) for qid, meta in self._questions(str(survey_id)).items()
            }
        response_id, modified = response["id"], response["date_modified"]
        for page in pages:
            page_id = str(page.get("id"))
            for q in page.get("questions") or []:
                qid = str(q["id"])
                key = keys.get(qid, _UNKNOWN_QUESTION)
                choices, rows = key.choices, key.rows
                for position, answer in enumerate(q.get("answers") or [], start=1):
                    cid = str(answer["choice_id"]) if answer.get("choice_id") else None
                    rid = str(answer["row_id"]) if answer.get("row_id") else None
                    choice_position, choice_weight, choice_text = choices.get(cid or "", _NO_CHOICE)
                    yield {
                        "response_id": response_id,
                        "survey_id": survey_id,
                        "page_id": page_id,
                        "question_id": qid,
                        "answer_position": position,
                        "question_family": key.family,
                        "question_subtype": key.subtype,
                        "row_id": rid,
                        "row_text": rows.get(rid or ""),
                        "choice_id": cid,
                        "choice_position": choice_position,
                        "choice_weight": choice_weight,
                        "choice_text": choice_text,
                        "other_id": str(answer["other_id"]) if answer.get("other_id") else None,
                        "text": answer.get("text"),
                        "date_modified": modified,
                    }

    def _questions(self, survey_id: str) -> dict[str, dict[str, t.Any]]:
        cache = survey_questions(self._tap)
        if survey_id not in cache:
            # the questions stream is not selected: read the details ourselves (once)
            questions = t.cast(SurveyMonkeyStream, self._tap.streams["questions"])
            cache[survey_id] = {
                r["id"]: r for r in questions.request_records({"survey_id": survey_id})
            }
        return cache[survey_id]


#: Emission order (singer-sdk syncs children right after each parent record).
STREAM_TYPES: tuple[type[Stream], ...] = (
    SurveysStream,
    QuestionsStream,
    ResponsesStream,
    AnswersStream,
)
