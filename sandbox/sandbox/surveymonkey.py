"""SurveyMonkey API v3 fake: an engagement survey answered by the seeded world's employees.

What it follows, with sources and what is unverified: ``sandbox/docs/surveymonkey.md``. In short:

- ``Authorization: Bearer <access token>``; 401 otherwise.
- ``GET /v3/surveys`` (``page``, ``per_page`` <= 1000, ``include=response_count,...``),
  ``GET /v3/surveys/{id}/details`` (pages, questions with ``headings``, ``family``,
  ``subtype``, ``answers.choices[{id, position, text, weight}]`` and ``answers.rows``),
  ``GET /v3/surveys/{id}/responses/bulk`` (``per_page`` <= 100, ``page``, ``simple=true``,
  ``start_modified_at`` / ``end_modified_at``, ``sort_by=date_modified``, ``sort_order``,
  ``status``).
- List bodies ``{"data", "per_page", "page", "total", "links": {"self", "next"?, "prev"?,
  "last"}}``; errors ``{"error": {"id", "name", "docs", "message", "http_status_code"}}``;
  ``X-Ratelimit-App-Global-Minute-Remaining`` / ``-Reset`` and ``...-Day-...`` on every answer.

Respondents: active employees (about three in four answer). Two in three came through a web
link carrying ``custom_variables.employee_id``, one in three through an e-mail collector
(``recipient_id`` + ``email_address`` = the work address). Some respondents cannot be linked: no
custom variable, an empty one, or an id that is nobody's. Every ninth response is ``partial``
(the second page unanswered). Everything is a pure function of the world and the index.
"""

from __future__ import annotations

import bisect
import collections
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import World

DOCS = "https://developer.surveymonkey.com/api/v3/#error-codes"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
MINUTE_LIMIT = 120
DAY_LIMIT = 500
SURVEY_DAYS = 30

LIKERT = (
    "Strongly disagree",
    "Disagree",
    "Neither agree nor disagree",
    "Agree",
    "Strongly agree",
)


@dataclass(frozen=True)
class Question:
    id: str
    page: int  # 1-based page number
    heading: str
    family: str  # single_choice | matrix | open_ended
    subtype: str  # vertical | rating | essay
    kind: str  # likert | enps | comment


@dataclass(frozen=True)
class Survey:
    id: str
    title: str
    nickname: str
    questions: tuple[Question, ...]
    #: share of eligible employees who answer; every nth employee is eligible
    answer_rate: float
    every: int


def _q(n: int, page: int, heading: str, kind: str) -> Question:
    family, subtype = {
        "likert": ("single_choice", "vertical"),
        "enps": ("matrix", "rating"),
        "comment": ("open_ended", "essay"),
    }[kind]
    return Question(str(700_000_000 + n), page, heading, family, subtype, kind)


SURVEYS = (
    Survey(
        id="500000001",
        title="Employee engagement survey",
        nickname="Engagement 2026",
        questions=(
            _q(101, 1, "I am proud to work for Acme.", "likert"),
            _q(102, 1, "I would like to still be working at Acme in two years' time.", "likert"),
            _q(103, 1, "My manager gives me useful feedback.", "likert"),
            _q(104, 2, "I have the tools and resources to do my job well.", "likert"),
            _q(105, 2, "I see a clear path for my career here.", "likert"),
            _q(
                106,
                2,
                "How likely is it that you would recommend Acme as a place to work?",
                "enps",
            ),
            _q(107, 2, "What one thing would make Acme a better place to work?", "comment"),
        ),
        answer_rate=0.75,
        every=1,
    ),
    Survey(
        id="500000002",
        title="Onboarding pulse",
        nickname="Onboarding",
        questions=(
            _q(201, 1, "My first weeks prepared me well for my role.", "likert"),
            _q(202, 1, "How likely is it that you would recommend Acme to a friend?", "enps"),
        ),
        answer_rate=0.6,
        every=10,
    ),
)
COMMENTS = (
    "Plus de télétravail, s'il vous plaît.",
    "Clearer career paths — and fewer meetings.",
    "Better coffee ☕",
    "Más formación para los equipos nuevos.",
    "Nothing: it's great here!",
    "Onboarding was a bit chaotic.\nThe buddy programme helped though.",
    "Faster laptops",
    "Gehaltsbänder offenlegen.",
)


def choice_id(question: Question, position: int) -> str:
    return str(900_000_000 + int(question.id[-3:]) * 100 + position)


def row_id(question: Question) -> str:
    return str(800_000_000 + int(question.id[-3:]))


def stamp(value: datetime) -> str:
    """SurveyMonkey date-times: ISO 8601 with an explicit offset, second precision."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def sm_error(status: int, ident: str, name: str, message: str) -> HTTPError:
    return HTTPError(
        status,
        {
            "error": {
                "id": ident,
                "name": name,
                "docs": DOCS,
                "message": message,
                "http_status_code": status,
            }
        },
    )


def _bad(message: str) -> HTTPError:
    return sm_error(400, "1002", "Bad Request", message)


def _parse_when(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"Invalid value for {name}: expected YYYY-MM-DDTHH:MM:SS") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SurveyMonkeyApp(App):
    """SurveyMonkey v3 over the seeded world."""

    name = "surveymonkey"

    def __init__(
        self, world: World, credentials: dict[str, str], *, enforce_rate_limit: bool = False
    ) -> None:
        super().__init__()
        self.world = world
        self.token = credentials["access_token"]
        self.enforce_rate_limit = enforce_rate_limit
        self.minute_limit, self.day_limit = MINUTE_LIMIT, DAY_LIMIT
        self.surveys = {s.id: s for s in SURVEYS}
        start = datetime(world.as_of.year, world.as_of.month, world.as_of.day, tzinfo=UTC)
        self.opened = start - timedelta(days=SURVEY_DAYS)
        self.unknown = max(3, world.employees // 20)
        self.slots = world.employees + self.unknown
        self._step = max(1, (SURVEY_DAYS * 86_400 - 3_600) // self.slots)
        #: (survey id, slot) -> (changes, date_modified) made by tests
        self._overlay: dict[tuple[str, int], tuple[dict[str, Any], datetime]] = {}
        self._calls: collections.deque[float] = collections.deque()
        self._day_calls = 0
        self._base_slots: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.route("GET", "/v3/surveys")(self.list_surveys)
        self.route("GET", "/v3/surveys/{ident}/details")(self.details)
        self.route("GET", "/v3/surveys/{ident}/responses/bulk")(self.responses)

    # --- vendor-shaped errors and limits ------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        names = {404: ("1020", "Resource Not Found"), 405: ("1003", "Method Not Allowed")}
        ident, name = names.get(status, ("1000", "Error"))
        return sm_error(status, ident, name, message).response

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        resp = sm_error(
            429, "1040", "Rate limit reached", "Too many requests were made, try again later."
        ).response
        resp.headers.update(self._limit_headers(0, retry_after))
        resp.headers["Retry-After"] = str(retry_after)
        return resp

    def server_error(self, req: Request, status: int) -> Response:
        return sm_error(
            status, "1050", "Internal Server Error", "Oh bananas! We couldn't process your request."
        ).response

    def _limit_headers(self, minute_left: int, reset: int) -> dict[str, str]:
        return {
            "X-Ratelimit-App-Global-Minute-Limit": str(self.minute_limit),
            "X-Ratelimit-App-Global-Minute-Remaining": str(minute_left),
            "X-Ratelimit-App-Global-Minute-Reset": str(reset),
            "X-Ratelimit-App-Global-Day-Limit": str(self.day_limit),
            "X-Ratelimit-App-Global-Day-Remaining": str(max(0, self.day_limit - self._day_calls)),
            "X-Ratelimit-App-Global-Day-Reset": str(86_400 - int(time.time()) % 86_400),
        }

    def _authorize(self, req: Request) -> dict[str, str]:
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise sm_error(
                401, "1011", "Authorization Error", "The authorization token provided was invalid."
            )
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0] <= now - 60:
                self._calls.popleft()
            if self.enforce_rate_limit and len(self._calls) >= self.minute_limit:
                wait = max(1, math.ceil(self._calls[0] + 60 - now))
                limited = self.rate_limited(req, wait)
                raise HTTPError(429, limited.body, limited.headers)
            self._calls.append(now)
            self._day_calls += 1
            reset = math.ceil(self._calls[0] + 60 - now) if self._calls else 60
            return self._limit_headers(max(0, self.minute_limit - len(self._calls)), reset)

    # --- paging helpers -------------------------------------------------------------------

    @staticmethod
    def _int_arg(req: Request, name: str, default: int, high: int) -> int:
        raw = req.arg(name)
        if raw is None:
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= high:
            raise _bad(f"Invalid value for {name}: must be an integer from 1 to {high}")
        return int(raw)

    @staticmethod
    def _links(req: Request, page: int, per_page: int, total: int) -> dict[str, str]:
        host = req.headers.get("Host") or "127.0.0.1"
        base = f"http://{host}{req.path}"
        args = {k: v[0] for k, v in req.query.items() if k not in ("page", "per_page")}

        def url(p: int) -> str:
            return f"{base}?{urlencode({**args, 'page': p, 'per_page': per_page})}"

        last = max(1, math.ceil(total / per_page))
        links = {"self": url(page), "last": url(last)}
        if page < last:
            links["next"] = url(page + 1)
        if page > 1:
            links["prev"] = url(page - 1)
        return links

    # --- surveys and details ------------------------------------------------------------------

    def _survey(self, ident: str) -> Survey:
        survey = self.surveys.get(ident)
        if survey is None:
            raise sm_error(404, "1020", "Resource Not Found", f"Survey {ident} was not found")
        return survey

    def list_surveys(self, req: Request) -> Response:
        headers = self._authorize(req)
        per_page = self._int_arg(req, "per_page", DEFAULT_PER_PAGE, 1000)
        page = self._int_arg(req, "page", 1, 10**9)
        include = {v for raw in req.query.get("include", []) for v in raw.split(",") if v}
        rows = []
        for s in SURVEYS:
            row: dict[str, Any] = {
                "id": s.id,
                "title": s.title,
                "nickname": s.nickname,
                "href": f"https://api.surveymonkey.com/v3/surveys/{s.id}",
            }
            if "response_count" in include:
                row["response_count"] = self.response_count(s)
            if "date_modified" in include:
                row["date_modified"] = stamp(self.opened)
            if "date_created" in include:
                row["date_created"] = stamp(self.opened - timedelta(days=3))
            if "question_count" in include:
                row["question_count"] = len(s.questions)
            if "language" in include:
                row["language"] = "en"
            rows.append(row)
        chunk = rows[(page - 1) * per_page : page * per_page]
        body = {
            "data": chunk,
            "per_page": per_page,
            "page": page,
            "total": len(rows),
            "links": self._links(req, page, per_page, len(rows)),
        }
        return Response(200, body, headers)

    def details(self, req: Request, ident: str) -> Response:
        headers = self._authorize(req)
        return Response(200, self.survey_details(self._survey(ident)), headers)

    def survey_details(self, s: Survey) -> dict[str, Any]:
        pages = []
        for number in sorted({q.page for q in s.questions}):
            questions = [q for q in s.questions if q.page == number]
            pages.append(
                {
                    "id": str(600_000_000 + int(s.id[-1]) * 100 + number),
                    "title": "" if number > 1 else "About your work",
                    "description": "",
                    "position": number,
                    "question_count": len(questions),
                    "questions": [self.question(q, i) for i, q in enumerate(questions, 1)],
                }
            )
        return {
            "id": s.id,
            "title": s.title,
            "nickname": s.nickname,
            "language": "en",
            "category": "human_resources",
            "question_count": len(s.questions),
            "page_count": len(pages),
            "response_count": self.response_count(s),
            "date_created": stamp(self.opened - timedelta(days=3)),
            "date_modified": stamp(self.opened),
            "custom_variables": {"employee_id": "Employee ID"},
            "href": f"https://api.surveymonkey.com/v3/surveys/{s.id}",
            "pages": pages,
        }

    def question(self, q: Question, position: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": q.id,
            "position": position,
            "visible": True,
            "family": q.family,
            "subtype": q.subtype,
            "headings": [{"heading": q.heading}],
            "required": None,
            "href": f"https://api.surveymonkey.com/v3/questions/{q.id}",
        }
        if q.kind == "likert":
            out["answers"] = {
                "choices": [
                    {
                        "id": choice_id(q, pos),
                        "position": pos,
                        "text": text,
                        "weight": pos,
                        "visible": True,
                        "is_na": False,
                    }
                    for pos, text in enumerate(LIKERT, 1)
                ]
            }
        elif q.kind == "enps":
            out["display_options"] = {"display_type": "nps"}
            out["answers"] = {
                "rows": [{"id": row_id(q), "position": 1, "text": "", "visible": True}],
                "choices": [
                    {
                        "id": choice_id(q, pos),
                        "position": pos,
                        "text": str(pos - 1),
                        "weight": pos - 1,
                        "visible": True,
                        "is_na": False,
                    }
                    for pos in range(1, 12)
                ],
            }
        return out

    # --- responses ------------------------------------------------------------------------------

    def _answers(self, s: Survey, slot: int) -> bool:
        """Whether slot ``slot`` of survey ``s`` holds a response."""
        if slot > self.world.employees:
            return s.every == 1  # unknown respondents answer the main survey only
        if slot % s.every != (1 % s.every):
            return False
        person = self.world.person(slot)
        if person.hire_date > self.world.as_of - timedelta(days=7) or person.status != "Active":
            return False
        return self.world._rng(f"sm-{s.id}", slot).random() < s.answer_rate

    def response_count(self, s: Survey) -> int:
        return len(self._base(s))

    def modified(self, s: Survey, slot: int) -> datetime:
        over = self._overlay.get((s.id, slot))
        return over[1] if over else self.opened + timedelta(seconds=slot * self._step)

    def touch(
        self, survey_id: str, slot: int, at: datetime | None = None, **changes: Any
    ) -> datetime:
        """Edit a response (a respondent going back to finish it): it moves to ``at`` (now)."""
        s = self._survey(survey_id)
        if not self._answers(s, slot):
            raise KeyError(slot)
        with self._lock:
            now = (at or datetime.now(UTC)).replace(microsecond=0)
            old = self._overlay.get((survey_id, slot), ({}, now))[0]
            self._overlay[(survey_id, slot)] = ({**old, **changes}, now)
            return now

    def response(self, s: Survey, slot: int, simple: bool = False) -> dict[str, Any]:
        rng = self.world._rng(f"sm-answers-{s.id}", slot)
        changes = (self._overlay.get((s.id, slot)) or ({}, None))[0]
        created = self.opened + timedelta(seconds=slot * self._step - 600)
        email_collector = slot <= self.world.employees and slot % 3 == 0
        custom: dict[str, str] = {}
        email = ""
        recipient = ""
        if slot <= self.world.employees:
            person = self.world.person(slot)
            if email_collector and person.work_email:
                email, recipient = person.work_email, str(3_000_000_000 + slot)
            else:
                email_collector = False
                custom = {"employee_id": str(person.employee_id)}
            dept = person.positions[0].department
            bias = (sum(map(ord, dept)) % 7 - 3) * 0.25
        else:
            k = slot - self.world.employees
            custom = ({}, {"employee_id": ""}, {"employee_id": str(10**8 + k)})[k % 3]
            bias = 0.0
        status = changes.get("response_status") or ("partial" if slot % 9 == 0 else "completed")
        mood = rng.gauss(3.4 + bias, 0.8)
        pages: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        for q in s.questions:
            if status == "partial" and q.page > 1:
                continue
            answers: list[dict[str, Any]]
            if q.kind == "likert":
                score = min(5, max(1, round(rng.gauss(mood, 0.7))))
                if rng.random() < 0.04:
                    continue  # skipped (questions are optional)
                answers = [{"choice_id": choice_id(q, score)}]
                if simple:
                    answers[0]["simple_text"] = LIKERT[score - 1]
            elif q.kind == "enps":
                value = min(10, max(0, round((mood - 1) * 2.5 + rng.gauss(0, 1.2))))
                answers = [{"row_id": row_id(q), "choice_id": choice_id(q, value + 1)}]
                if simple:
                    answers[0]["simple_text"] = str(value)
            else:
                if rng.random() >= 0.35:
                    continue
                answers = [{"text": COMMENTS[slot % len(COMMENTS)]}]
                if simple:
                    answers[0]["simple_text"] = answers[0]["text"]
            entry: dict[str, Any] = {"id": q.id, "answers": answers}
            if simple:
                entry["heading"] = q.heading
                entry["family"], entry["subtype"] = q.family, q.subtype
            pages[q.page].append(entry)
        page_ids = {q.page: str(600_000_000 + int(s.id[-1]) * 100 + q.page) for q in s.questions}
        rid = str(1_100_000_000 + int(s.id[-1]) * 10_000_000 + slot)
        return {
            "id": rid,
            "recipient_id": recipient,
            "collection_mode": "default",
            "response_status": status,
            "custom_value": "",
            "first_name": "",
            "last_name": "",
            "email_address": email,
            "ip_address": f"10.0.{slot // 250 % 250}.{slot % 250}",
            "logic_path": {},
            "metadata": {},
            "page_path": [],
            "collector_id": "410000002" if email_collector else "410000001",
            "survey_id": s.id,
            "custom_variables": custom,
            "edit_url": f"https://www.surveymonkey.com/r/?sm={rid}",
            "analyze_url": f"https://www.surveymonkey.com/analyze/browse/{s.id}?respondent_id={rid}",
            "total_time": 60 + slot % 600,
            "date_modified": stamp(self.modified(s, slot)),
            "date_created": stamp(created),
            "href": f"https://api.surveymonkey.com/v3/surveys/{s.id}/responses/{rid}",
            "pages": [
                {"id": page_ids[number], "questions": pages.get(number, [])}
                for number in sorted(page_ids)
            ],
        }

    def _base(self, s: Survey) -> list[int]:
        """Slots of ``s`` that hold a response, ascending (computed once per survey)."""
        with self._lock:
            cached = self._base_slots.get(s.id)
        if cached is None:
            cached = [slot for slot in range(1, self.slots + 1) if self._answers(s, slot)]
            with self._lock:
                self._base_slots[s.id] = cached
        return cached

    def _window(
        self,
        s: Survey,
        lo: datetime | None,
        hi: datetime | None,
        order: str,
        page: int,
        per_page: int,
    ) -> tuple[int, list[int]]:
        """(total, the page's slots) of responses with date_modified in [lo, hi].

        Base responses are stamped in slot order, so the window is a bisected range of the
        precomputed slots: a page costs O(page) whatever the size of the world.
        """
        base = self._base(s)
        first, last = 1, self.slots
        if lo is not None:
            first = max(first, math.ceil((lo - self.opened).total_seconds() / self._step))
        if hi is not None:
            last = min(last, math.floor((hi - self.opened).total_seconds() / self._step))
        i, j = bisect.bisect_left(base, first), bisect.bisect_right(base, last)
        changed = {slot for (sid, slot) in self._overlay if sid == s.id}
        start = (page - 1) * per_page
        if not changed:
            total = max(0, j - i)
            if order == "ASC":
                return total, base[i + start : min(j, i + start + per_page)]
            hi_idx = j - start
            return total, base[max(i, hi_idx - per_page) : max(i, hi_idx)][::-1]
        stamped = [slot for slot in base[i:j] if slot not in changed]
        stamped += [
            slot
            for slot in changed
            if (lo is None or self.modified(s, slot) >= lo)
            and (hi is None or self.modified(s, slot) <= hi)
        ]
        stamped.sort(key=lambda slot: (self.modified(s, slot), slot), reverse=order == "DESC")
        return len(stamped), stamped[start : start + per_page]

    def responses(self, req: Request, ident: str) -> Response:
        headers = self._authorize(req)
        s = self._survey(ident)
        per_page = self._int_arg(req, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
        page = self._int_arg(req, "page", 1, 10**9)
        sort_by = req.arg("sort_by", "date_modified")
        if sort_by != "date_modified":
            raise _bad("Invalid value for sort_by: only date_modified is supported here")
        order = (req.arg("sort_order") or "DESC").upper()
        if order not in ("ASC", "DESC"):
            raise _bad("Invalid value for sort_order: ASC or DESC")
        status = req.arg("status")
        if status not in (None, "completed", "partial", "overquota", "disqualified"):
            raise _bad("Invalid value for status")
        lo = _parse_when("start_modified_at", req.arg("start_modified_at"))
        hi = _parse_when("end_modified_at", req.arg("end_modified_at"))
        if status is not None:
            raise _bad("status filtering is not supported by this sandbox")
        total, chunk = self._window(s, lo, hi, order, page, per_page)
        simple = (req.arg("simple") or "").lower() == "true"
        body = {
            "data": [self.response(s, slot, simple) for slot in chunk],
            "per_page": per_page,
            "page": page,
            "total": total,
            "links": self._links(req, page, per_page, total),
        }
        return Response(200, body, headers)


def make_app(world: World, credentials: dict[str, str], **options: Any) -> SurveyMonkeyApp:
    return SurveyMonkeyApp(world, credentials, **options)
