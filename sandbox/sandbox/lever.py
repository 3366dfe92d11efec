"""Lever Data API v1 fake, served from the seeded :class:`~sandbox.seed.World`.

What it follows, with sources and what is unverified: ``sandbox/docs/lever.md``. In short:

- HTTP Basic with the API key as the user name and a blank password; 401 otherwise.
- ``GET /v1/opportunities`` (``expand=stage|owner|followers|applications|sourcedBy``,
  ``include=<field>`` to project, ``updated_at_start`` / ``updated_at_end`` and
  ``created_at_start`` / ``created_at_end`` in epoch milliseconds, ``archived=true|false``,
  ``contact_id``), ``GET /v1/opportunities/{id}``, ``GET /v1/opportunities/{id}/offers``,
  ``GET /v1/postings`` (``state``), ``GET /v1/users``, ``GET /v1/stages``,
  ``GET /v1/archive_reasons``.
- Lists answer ``{"data": [...], "hasNext": bool, "next": "<token>"}``; ``limit`` 1..100
  (default 100); the next page is the same request plus ``offset=<next>`` (an opaque token that
  also pins the filters it was issued for).
- Errors ``{"code": "...", "message": "..."}``; 429 past ~10 requests/s per key with bursts of
  20 when ``enforce_rate_limit`` is on (unverified numbers).

Lever's people are a block of the world of their own (their ids never collide with the
Greenhouse fake's, so both ATS flows can run against one HRIS): ``world.candidates`` contacts,
one opportunity each, a second earlier (withdrawn) one for every seventh. Hires - the
opportunities archived as *Hired* with a *signed* offer - are every tenth contact plus a
catalogue of hard names (accents, NFD, stray whitespace, a mononym, non-Latin scripts) among
the first 28. Everything is a pure function of the world and the index, so a page of a
million-candidate world costs O(page).
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import FIRST_NAMES, HARD_NAMES, HISTORY_DAYS, LAST_NAMES, Job, World, _ascii_local

MAX_LIMIT = 100
RATE_PER_SECOND = 10.0
RATE_BURST = 20

# id tags (top 32 bits of the UUID): the id says what it is and which index it belongs to
_CONTACT, _OPP, _OFFER, _POSTING, _USER, _STAGE, _REASON, _APP = (
    0x1E7E0001,
    0x1E7E0002,
    0x1E7E0003,
    0x1E7E0004,
    0x1E7E0005,
    0x1E7E0006,
    0x1E7E0007,
    0x1E7E0008,
)
_RESUME, _REFERRAL, _TEMPLATE = 0x1E7E0009, 0x1E7E000A, 0x1E7E000B

STAGES = (
    "New applicant",
    "Reached out",
    "Phone screen",
    "On-site interview",
    "Reference check",
    "Offer",
)
#: (text, type) - Lever archive reasons are tenant-defined; "hired" is their documented type
ARCHIVE_REASONS = (
    ("Hired", "hired"),
    ("Underqualified", "non-hired"),
    ("Withdrew", "non-hired"),
    ("Position filled", "non-hired"),
    ("Offer declined", "non-hired"),
    ("Timing", "non-hired"),
)
COMMITMENTS = ("Full-time", "Full-time", "Full-time", "Part-time", "Contract", "Internship")
EXPANDABLE = frozenset({"stage", "owner", "followers", "applications", "sourcedBy"})
_OPP_FILTERS = frozenset(
    {
        "updated_at_start",
        "updated_at_end",
        "created_at_start",
        "created_at_end",
        "archived",
        "contact_id",
    }
)
_PAGING = frozenset({"limit", "offset", "expand", "include"})


def lever_id(tag: int, index: int) -> str:
    """A UUID-shaped id carrying its kind and index (Lever ids are UUIDs)."""
    h = f"{(tag << 96) | index:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_id(tag: int, text: str) -> int | None:
    """The index of a :func:`lever_id` of kind ``tag``, or None."""
    try:
        value = uuid.UUID(text).int
    except ValueError:
        return None
    return value & ((1 << 96) - 1) if value >> 96 == tag else None


def ms(value: datetime) -> int:
    """Epoch milliseconds, as Lever sends every timestamp."""
    return int(value.timestamp() * 1000)


def day_ms(value: date) -> int:
    """A date field as Lever sends it: epoch ms at midnight UTC (unverified: tenant time zone)."""
    return ms(datetime(value.year, value.month, value.day, tzinfo=UTC))


# --- errors -----------------------------------------------------------------------------------


def lever_error(status: int, code: str, message: str) -> HTTPError:
    return HTTPError(status, {"code": code, "message": message})


def _bad(message: str) -> HTTPError:
    return lever_error(400, "BadRequestError", message)


# --- the Lever world ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    index: int
    name: str
    legal_first: str
    legal_last: str
    email: str | None
    phone: str | None
    job: Job
    kind: str  # hired | offer | declined | archived | active
    second: bool  # has an earlier, withdrawn opportunity


class LeverWorld:
    """Lever's view of a :class:`World`: contacts, opportunities (two slots per contact)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.contacts = world.candidates
        self.slots = 2 * self.contacts  # slot 2j: contact j's main opportunity; 2j-1: earlier one
        self._t0 = world._t0
        self._step_ms = max(1, (HISTORY_DAYS * 86_400_000 - 3_600_000) // self.slots)
        self._lock = threading.RLock()
        #: opportunity slot -> (changes, new updatedAt): updates made through the admin route
        self._overlay: dict[int, tuple[dict[str, Any], int]] = {}
        self._last_stamp = 0
        self.users = world.users
        self.postings = list(world.jobs)

    # identity of contact j ----------------------------------------------------------------

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - lives as long as its app
    def contact(self, j: int) -> Contact:
        if not 1 <= j <= self.contacts:
            raise KeyError(j)
        rng = self.world._rng("lever-contact", j)
        if j <= len(HARD_NAMES):
            first, _, last, _, raw_first, raw_last = HARD_NAMES[j - 1]
            raw_first = first if raw_first is None else raw_first
            raw_last = last if raw_last is None else raw_last
        else:
            raw_first = rng.choice(FIRST_NAMES)
            raw_last = rng.choice(LAST_NAMES).replace("_", " ")
            if j % 7 == 3:
                raw_first, raw_last = f" {raw_first}", f"{raw_last} "
            if j % 11 == 0:
                raw_first = unicodedata.normalize("NFD", raw_first)
                raw_last = unicodedata.normalize("NFD", raw_last)
        name = raw_first if not raw_last else f"{raw_first} {raw_last}"
        hires = getattr(self.world, "ats_hires", True)  # a people-file world: none waiting
        if hires and (j % 10 == 0 or (j <= len(HARD_NAMES) and j % 3 == 1)):
            kind = "hired"
        elif j % 10 == 5:
            kind = "offer"
        elif j % 10 == 3:
            kind = "declined"
        elif j % 3 == 0:
            kind = "archived"
        else:
            kind = "active"
        local = f"{_ascii_local(raw_first)}.{_ascii_local(raw_last)}".strip(".") or "candidate"
        return Contact(
            index=j,
            name=name,
            legal_first=raw_first,
            legal_last=raw_last,
            email=None if j % 13 == 0 else f"{local}.l{j}@mail.example",
            phone=None if j % 6 == 0 else f"+1 555 02{j % 100:02d}",
            job=self.postings[rng.randrange(len(self.postings))],
            kind=kind,
            second=j % 7 == 0,
        )

    # opportunities ------------------------------------------------------------------------

    def slot_exists(self, slot: int) -> bool:
        if not 1 <= slot <= self.slots:
            return False
        return slot % 2 == 0 or self.contact((slot + 1) // 2).second

    def base_updated(self, slot: int) -> int:
        return ms(self._t0) + slot * self._step_ms

    def updated_at(self, slot: int) -> int:
        over = self._overlay.get(slot)
        return over[1] if over else self.base_updated(slot)

    def changes(self, slot: int) -> dict[str, Any]:
        over = self._overlay.get(slot)
        return dict(over[0]) if over else {}

    def slots_between(
        self, after: int, lo_ms: int | None, hi_ms: int | None, limit: int
    ) -> list[int]:
        """Opportunity slots after ``after`` whose updatedAt is in [lo_ms, hi_ms], in slot order.

        O(limit + overlay): base stamps grow with the slot, so the bounds are an index range.
        """
        t0 = ms(self._t0)
        lo, hi = after + 1, self.slots
        if lo_ms is not None:
            lo = max(lo, -(-(lo_ms - t0) // self._step_ms))
        if hi_ms is not None:
            hi = min(hi, (hi_ms - t0) // self._step_ms)
        with self._lock:
            overlay = dict(self._overlay)
        changed = sorted(
            s
            for s, (_, stamp) in overlay.items()
            if s > after and (lo_ms is None or stamp >= lo_ms) and (hi_ms is None or stamp <= hi_ms)
        )
        unchanged = (
            s for s in range(max(lo, 1), hi + 1) if s not in overlay and self.slot_exists(s)
        )
        return list(itertools.islice(heapq.merge(unchanged, changed), limit))

    def touch(self, slot: int, **changes: Any) -> int:
        """Change an opportunity (and its offers): it moves to "now" (the admin route)."""
        if not self.slot_exists(slot):
            raise KeyError(slot)
        with self._lock:
            now = max(int(time.time() * 1000), self._last_stamp + 1)
            self._last_stamp = now
            merged = {**self.changes(slot), **changes}
            self._overlay[slot] = (merged, now)
            return now


# --- pagination tokens -----------------------------------------------------------------------


def _fingerprint(query: dict[str, list[str]]) -> str:
    items = sorted((k, v) for k, vs in query.items() if k not in ("offset", "limit") for v in vs)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:12]


def encode_token(after: int, fingerprint: str) -> str:
    raw = json.dumps({"a": after, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, issued_for = int(data["a"]), str(data["f"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad("Invalid offset token") from None
    if issued_for != fingerprint:
        raise _bad("The offset token belongs to a request with other parameters")
    return after


# --- the app ---------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float = float(RATE_BURST)
    last: float = field(default_factory=time.monotonic)


class LeverApp(App):
    """Lever Data API v1 over the seeded world."""

    name = "lever"

    def __init__(
        self, world: World, credentials: dict[str, str], *, enforce_rate_limit: bool = False
    ) -> None:
        super().__init__()
        self.world = world
        self.lever = LeverWorld(world)
        self.api_key = credentials["api_key"]
        #: answer 429 for real past the token bucket (off by default; faults inject 429s too)
        self.enforce_rate_limit = enforce_rate_limit
        self.rate_per_second = RATE_PER_SECOND
        self.rate_burst = RATE_BURST
        self.rate_limited_count = 0
        self._buckets: dict[str, _Bucket] = collections.defaultdict(_Bucket)
        self._lock = threading.Lock()
        self._ref = ms(world._t0 - timedelta(days=1000))
        self.route("GET", "/v1/opportunities")(self.list_opportunities)
        self.route("GET", "/v1/opportunities/{ident}")(self.get_opportunity)
        self.route("GET", "/v1/opportunities/{ident}/offers")(self.list_offers)
        self.route("GET", "/v1/opportunities/{ident}/resumes")(self.list_resumes)
        self.route("GET", "/v1/opportunities/{ident}/referrals")(self.list_referrals)
        self.route("GET", "/v1/sources")(self.list_sources)
        self.route("GET", "/v1/postings")(self.list_postings)
        self.route("GET", "/v1/users")(self.list_users)
        self.route("GET", "/v1/stages")(self.list_stages)
        self.route("GET", "/v1/archive_reasons")(self.list_archive_reasons)

    # --- vendor-shaped errors -------------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        codes = {404: "ResourceNotFound", 405: "MethodNotAllowed"}
        return Response(status, {"code": codes.get(status, "Error"), "message": message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        return Response(
            429,
            {"code": "TooManyRequests", "message": "Rate limit exceeded, slow down"},
            {"Retry-After": str(retry_after)},
        )

    def server_error(self, req: Request, status: int) -> Response:
        return Response(
            status, {"code": "InternalServerError", "message": "Something went wrong on our end"}
        )

    # --- auth and rate limit ----------------------------------------------------------------

    def _authorize(self, req: Request) -> None:
        scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() != "basic" or not hmac.compare_digest(user, self.api_key):
            raise HTTPError(
                401,
                {"code": "UnauthorizedError", "message": "Invalid API key"},
                {"WWW-Authenticate": 'Basic realm="Lever API"'},
            )
        del password  # Lever ignores it (documented: leave it blank)
        if not self.enforce_rate_limit:
            return
        with self._lock:
            bucket = self._buckets[user]
            now = time.monotonic()
            bucket.tokens = min(
                float(self.rate_burst), bucket.tokens + (now - bucket.last) * self.rate_per_second
            )
            bucket.last = now
            if bucket.tokens < 1:
                self.rate_limited_count += 1
                wait = max(1, int((1 - bucket.tokens) / self.rate_per_second + 0.999))
                limited = self.rate_limited(req, wait)
                raise HTTPError(429, limited.body, limited.headers)
            bucket.tokens -= 1

    # --- parameters -------------------------------------------------------------------------

    @staticmethod
    def _check_params(req: Request, allowed: frozenset[str]) -> None:
        unknown = sorted(set(req.query) - allowed - _PAGING)
        if unknown:
            raise _bad(f"Unrecognized query parameter: {unknown[0]}")

    @staticmethod
    def _limit(req: Request) -> int:
        raw = req.arg("limit")
        if raw is None:
            return MAX_LIMIT
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise _bad(f"limit must be an integer between 1 and {MAX_LIMIT}")
        return int(raw)

    @staticmethod
    def _ms_arg(req: Request, name: str) -> int | None:
        raw = req.arg(name)
        if raw is None:
            return None
        if not raw.lstrip("-").isdigit():
            raise _bad(f"{name} must be a timestamp in milliseconds since the epoch")
        return int(raw)

    @staticmethod
    def _expand(req: Request) -> set[str]:
        wanted = {v for raw in req.query.get("expand", []) for v in raw.split(",") if v}
        unknown = sorted(wanted - EXPANDABLE)
        if unknown:
            raise _bad(f"Cannot expand {unknown[0]}")
        return wanted

    @staticmethod
    def _project(req: Request, record: dict[str, Any]) -> dict[str, Any]:
        include = [v for raw in req.query.get("include", []) for v in raw.split(",") if v]
        if not include:
            return record
        return {k: v for k, v in record.items() if k == "id" or k in include}

    def _page(
        self, req: Request, records: list[dict[str, Any]], more: bool, after: int
    ) -> Response:
        body: dict[str, Any] = {"data": records, "hasNext": more}
        if more:
            body["next"] = encode_token(after, _fingerprint(req.query))
        return Response(200, body)

    def _after(self, req: Request) -> int:
        token = req.arg("offset")
        return 0 if token is None else decode_token(token, _fingerprint(req.query))

    # --- opportunities ------------------------------------------------------------------------

    def list_opportunities(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, _OPP_FILTERS)
        limit, expand = self._limit(req), self._expand(req)
        upd_lo, upd_hi = self._ms_arg(req, "updated_at_start"), self._ms_arg(req, "updated_at_end")
        cre_lo, cre_hi = self._ms_arg(req, "created_at_start"), self._ms_arg(req, "created_at_end")
        archived = req.arg("archived")
        if archived not in (None, "true", "false"):
            raise _bad("archived must be true or false")
        contact = req.arg("contact_id")
        after = self._after(req)
        out: list[dict[str, Any]] = []
        last = after
        while len(out) <= limit:
            slots = self.lever.slots_between(last, upd_lo, upd_hi, max(limit + 1, 200))
            if not slots:
                break
            for slot in slots:
                last = slot
                rec = self.opportunity(slot, expand)
                if cre_lo is not None and rec["createdAt"] < cre_lo:
                    continue
                if cre_hi is not None and rec["createdAt"] > cre_hi:
                    continue
                if archived is not None and (rec["archived"] is not None) != (archived == "true"):
                    continue
                if contact is not None and rec["contact"] != contact:
                    continue
                out.append(self._project(req, rec))
                if len(out) > limit:
                    break
        more = len(out) > limit
        page = out[:limit]
        cursor = parse_id(_OPP, page[-1]["id"]) if page else after
        return self._page(req, page, more, cursor or 0)

    def get_opportunity(self, req: Request, ident: str) -> Response:
        self._authorize(req)
        slot = parse_id(_OPP, ident)
        if slot is None or not self.lever.slot_exists(slot):
            raise lever_error(404, "ResourceNotFound", f"Opportunity {ident} was not found")
        return Response(200, {"data": self.opportunity(slot, self._expand(req))})

    def opportunity(self, slot: int, expand: set[str] | frozenset[str] = frozenset()) -> dict:
        j = (slot + 1) // 2
        main = slot % 2 == 0
        c = self.lever.contact(j)
        changes = self.lever.changes(slot)
        updated = self.lever.updated_at(slot)
        base = self.lever.base_updated(slot)
        created = base - (200 if main else 400) * 86_400_000 // 10
        stage_idx, reason = self._stage_and_reason(c, main)
        stage_idx = changes.get("stage_index", stage_idx)
        reason = changes.get("archive_reason", reason)
        owner = self.world.users[j % len(self.world.users)]
        archived = (
            None
            if reason is None
            else {"reason": lever_id(_REASON, reason + 1), "archivedAt": base - 3_600_000}
        )
        followers = [lever_id(_USER, owner.id), lever_id(_USER, self.world.users[0].id)]
        rec: dict[str, Any] = {
            "id": lever_id(_OPP, slot),
            "name": changes.get("name", c.name),
            "headline": f"{c.job.title} candidate",
            "contact": lever_id(_CONTACT, j),
            "emails": [c.email] if c.email else [],
            "phones": [{"type": "mobile", "value": c.phone}] if c.phone else [],
            "confidentiality": "non-confidential",
            "location": self.world.office(c.job.office_id).city,
            "links": [],
            "createdAt": created,
            "updatedAt": updated,
            "lastInteractionAt": base,
            "lastAdvancedAt": base - 86_400_000,
            "snoozedUntil": None,
            "archived": archived,
            "stage": lever_id(_STAGE, stage_idx + 1),
            "stageChanges": [
                {
                    "toStageId": lever_id(_STAGE, i + 1),
                    "toStageIndex": i,
                    "updatedAt": created + i * 86_400_000,
                    "userId": lever_id(_USER, owner.id),
                }
                for i in range(stage_idx + 1)
            ],
            "owner": lever_id(_USER, owner.id),
            "tags": [c.job.title] + (["rehire-candidate"] if not main else []),
            "sources": ["Job site"] if j % 4 else ["Referral"],
            "origin": "applied" if j % 4 else "referred",
            "sourcedBy": None,
            "applications": [lever_id(_APP, slot)],
            "resume": None,
            "followers": followers,
            "urls": {
                "list": "https://hire.lever.co/candidates",
                "show": f"https://hire.lever.co/candidates/{lever_id(_OPP, slot)}",
            },
            "dataProtection": None,
            "isAnonymized": False,
        }
        if "stage" in expand:
            rec["stage"] = self.stage(stage_idx)
        if "owner" in expand:
            rec["owner"] = self.user(owner)
        if "followers" in expand:
            by_id = {lever_id(_USER, u.id): u for u in self.world.users}
            rec["followers"] = [self.user(by_id[f]) for f in followers]
        if "applications" in expand:
            rec["applications"] = [
                {
                    "id": lever_id(_APP, slot),
                    "opportunityId": rec["id"],
                    "candidateId": rec["contact"],
                    "createdAt": created,
                    "type": "posting",
                    "posting": lever_id(_POSTING, c.job.id),
                    "user": None,
                    "name": rec["name"],
                    "email": c.email,
                    "phone": {"type": "mobile", "value": c.phone} if c.phone else None,
                    "archived": archived,
                }
            ]
        return rec

    @staticmethod
    def _stage_and_reason(c: Contact, main: bool) -> tuple[int, int | None]:
        """(stage index, archive reason index or None) of contact c's main or earlier opening."""
        if not main:
            return 2, 2  # the earlier opportunity: withdrew after a phone screen
        return {
            "hired": (5, 0),
            "offer": (5, None),
            "declined": (5, 4),
            "archived": (1 + c.index % 3, (1, 3, 5)[c.index % 3]),
            "active": (c.index % 5, None),
        }[c.kind]

    # --- offers ---------------------------------------------------------------------------------

    def list_offers(self, req: Request, ident: str) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset())
        slot = parse_id(_OPP, ident)
        if slot is None or not self.lever.slot_exists(slot):
            raise lever_error(404, "ResourceNotFound", f"Opportunity {ident} was not found")
        limit, after = self._limit(req), self._after(req)
        offers = [o for i, o in enumerate(self.offers(slot), start=1) if i > after]
        return self._page(req, offers[:limit], len(offers) > limit, after + min(limit, len(offers)))

    def offers(self, slot: int) -> list[dict[str, Any]]:
        """Offers of the opportunity in ``slot``: hires signed, open offers sent, declines."""
        j = (slot + 1) // 2
        c = self.lever.contact(j)
        if slot % 2 or c.kind not in ("hired", "offer", "declined"):
            return []
        changes = self.lever.changes(slot)
        status = {"hired": "signed", "offer": "sent", "declined": "sent"}[c.kind]
        status = changes.get("offer_status", status)
        base = self.lever.base_updated(slot)
        office = self.world.office(c.job.office_id)
        commitment = self.commitment(c.job)
        hourly = commitment != "Full-time"
        rng = self.world._rng("lever-offer", j)
        start = changes.get("start_date") or self.world.as_of + timedelta(days=14 + j % 40)
        fields: list[dict[str, Any]] = [
            {"text": "Candidate name", "identifier": "candidate_name", "value": c.name},
            {"text": "Legal first name", "identifier": "legal_first_name", "value": c.legal_first},
            {"text": "Legal last name", "identifier": "legal_last_name", "value": c.legal_last},
            {"text": "Job title", "identifier": "job_title", "value": c.job.title},
            {
                "text": "Anticipated start date",
                "identifier": "anticipated_start_date",
                "value": day_ms(start),
            },
            {"text": "Hiring manager", "identifier": "hiring_manager", "value": "Hank Hiring"},
        ]
        if j % 20 != 0:  # every twentieth offer leaves salary off the form: optional field
            amount = rng.randint(2000, 9500) / 100 if hourly else rng.randint(50, 220) * 1000
            fields += [
                {"text": "Salary", "identifier": "salary_amount", "value": amount},
                {"text": "Currency", "identifier": "currency", "value": office.currency},
                {
                    "text": "Salary interval",
                    "identifier": "salary_interval",
                    "value": "per-hour-wage" if hourly else "per-year-salary",
                },
            ]
        signed = status == "signed"
        opened = status in ("opened", "signed")
        return [
            {
                "id": lever_id(_OFFER, slot),
                "posting": lever_id(_POSTING, c.job.id),
                "createdAt": base - 25 * 86_400_000,
                "status": status,
                "creator": lever_id(_USER, self.world.users[0].id),
                "approved": True,
                "approvedAt": base - 24 * 86_400_000,
                "sentAt": base - 21 * 86_400_000,
                "fields": fields,
                "sentDocument": {
                    "fileName": "offer.pdf",
                    "uploadedAt": base - 21 * 86_400_000,
                    "downloadUrl": f"https://api.lever.co/v1/opportunities/{lever_id(_OPP, slot)}"
                    f"/offers/{lever_id(_OFFER, slot)}/download?status=sent",
                },
                "signedDocument": {
                    "fileName": "offer-signed.pdf",
                    "uploadedAt": base - 3_600_000,
                    "downloadUrl": f"https://api.lever.co/v1/opportunities/{lever_id(_OPP, slot)}"
                    f"/offers/{lever_id(_OFFER, slot)}/download?status=signed",
                }
                if signed
                else None,
                # one entry per signer role; the candidate is the only signer here
                "signatures": {
                    "candidate": {
                        "role": "candidate",
                        "name": c.name,
                        "email": c.email,
                        "firstOpenedAt": base - 20 * 86_400_000 if opened else None,
                        "lastOpenedAt": base - 2 * 3_600_000 if opened else None,
                        "signedAt": base - 3_600_000 if signed else None,
                        "signed": signed,
                    }
                },
            }
        ]

    # --- resumes, referrals, sources -------------------------------------------------------------

    def _opportunity_slot(self, ident: str) -> int:
        slot = parse_id(_OPP, ident)
        if slot is None or not self.lever.slot_exists(slot):
            raise lever_error(404, "ResourceNotFound", f"Opportunity {ident} was not found")
        return slot

    def _sub_list(self, req: Request, records: list[dict[str, Any]]) -> Response:
        limit, after = self._limit(req), self._after(req)
        rest = records[after:]
        return self._page(req, rest[:limit], len(rest) > limit, after + min(limit, len(rest)))

    def list_resumes(self, req: Request, ident: str) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset())
        return self._sub_list(req, self.resumes(self._opportunity_slot(ident)))

    def resumes(self, slot: int) -> list[dict[str, Any]]:
        """A resume on every opportunity but every third contact's (added by hand, no file)."""
        j = (slot + 1) // 2
        if j % 3 == 0:
            return []
        c = self.lever.contact(j)
        created = self.lever.base_updated(slot) - 30 * 86_400_000
        opp, rid = lever_id(_OPP, slot), lever_id(_RESUME, slot)
        year = self.world.as_of.year
        return [
            {
                "id": rid,
                "createdAt": created,
                "file": {
                    "name": f"{_ascii_local(c.name) or 'resume'}-cv.pdf",
                    "ext": ".pdf",
                    "downloadUrl": f"https://api.lever.co/v1/opportunities/{opp}/resumes/{rid}"
                    "/download",
                    "uploadedAt": created,
                    "status": "processed",
                    "size": 40_000 + (j * 7919) % 200_000,
                },
                "parsedData": {
                    "positions": [
                        {
                            "org": f"Previous Employer {j % 50}",
                            "title": c.job.title,
                            "summary": "",
                            "location": self.world.office(c.job.office_id).city,
                            "start": {"year": year - 3 - j % 5, "month": 1 + j % 12},
                            "end": {"year": year, "month": 1 + (j * 5) % 12},
                        }
                    ],
                    "schools": [
                        {
                            "org": f"University {j % 30}",
                            "degree": "BSc",
                            "field": "Computer Science",
                            "summary": "",
                            "start": {"year": year - 10 - j % 5, "month": 9},
                            "end": {"year": year - 7 - j % 5, "month": 6},
                        }
                    ],
                },
            }
        ]

    def list_referrals(self, req: Request, ident: str) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset())
        return self._sub_list(req, self.referrals(self._opportunity_slot(ident)))

    def referrals(self, slot: int) -> list[dict[str, Any]]:
        """The referral form of opportunities whose origin is "referred" (every fourth)."""
        j = (slot + 1) // 2
        if j % 4:
            return []
        referrer = self.world.users[(j + 1) % len(self.world.users)]
        created = self.lever.base_updated(slot) - 40 * 86_400_000
        return [
            {
                "id": lever_id(_REFERRAL, slot),
                "type": "referral",
                "text": "Referral",
                "instructions": "Tell us how you know the candidate.",
                "fields": [
                    {
                        "type": "text",
                        "text": "Name of referrer",
                        "description": "",
                        "required": True,
                        "value": f"{referrer.first_name} {referrer.last_name}",
                    },
                    {
                        "type": "textarea",
                        "text": "Relationship",
                        "description": "",
                        "required": True,
                        "value": "Former colleague",
                    },
                ],
                "baseTemplateId": lever_id(_TEMPLATE, 1),
                "user": lever_id(_USER, referrer.id),
                "referrer": lever_id(_USER, referrer.id),
                "stage": lever_id(_STAGE, 1),
                "createdAt": created,
                "completedAt": created,
            }
        ]

    def list_sources(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset())
        counts: collections.Counter[str] = collections.Counter()
        for j in range(1, self.lever.contacts + 1):
            for slot in (2 * j - 1, 2 * j):
                if self.lever.slot_exists(slot):
                    counts["Job site" if j % 4 else "Referral"] += 1
        records = [{"text": text, "count": n} for text, n in sorted(counts.items())]
        return self._list(req, records)

    # --- postings, users, stages ------------------------------------------------------------

    @staticmethod
    def commitment(job: Job) -> str:
        return COMMITMENTS[job.id % len(COMMITMENTS)]

    def posting(self, job: Job) -> dict[str, Any]:
        dept = self.world.department(job.department_id)
        office = self.world.office(job.office_id)
        pid = lever_id(_POSTING, job.id)
        owner = lever_id(_USER, self.world.users[job.id % len(self.world.users)].id)
        return {
            "id": pid,
            "text": job.title,
            "createdAt": ms(job.created_at),
            "updatedAt": ms(job.updated_at),
            "user": owner,
            "owner": owner,
            "hiringManager": lever_id(_USER, self.world.users[1].id),
            "confidentiality": "non-confidential",
            "categories": {
                "team": dept.name,
                "department": dept.division,
                "location": office.name,
                "allLocations": [office.name],
                "commitment": self.commitment(job),
                "level": None,
            },
            "content": {
                "description": f"Join {dept.name} as {job.title}.",
                "descriptionHtml": f"<p>Join {dept.name} as {job.title}.</p>",
                "lists": [],
                "closing": "",
                "closingHtml": "",
            },
            "country": office.country,
            "followers": [owner],
            "reqCode": f"REQ-{job.id}",
            "requisitionCodes": [f"REQ-{job.id}"],
            "tags": [],
            "state": "published" if job.status == "open" else "closed",
            "distributionChannels": ["public"] if job.status == "open" else [],
            "workplaceType": "remote" if "Remote" in office.name else "onsite",
            "urls": {
                "list": "https://jobs.lever.co/acme",
                "show": f"https://jobs.lever.co/acme/{pid}",
                "apply": f"https://jobs.lever.co/acme/{pid}/apply",
            },
        }

    def list_postings(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset({"state"}))
        state = req.arg("state")
        records = [self.posting(j) for j in sorted(self.lever.postings, key=lambda j: j.id)]
        if state is not None:
            records = [r for r in records if r["state"] == state]
        return self._list(req, records)

    def user(self, u: Any) -> dict[str, Any]:
        return {
            "id": lever_id(_USER, u.id),
            "name": f"{u.first_name} {u.last_name}",
            "username": u.email.split("@")[0],
            "email": u.email,
            "accessRole": "super admin" if u.id == self.world.users[0].id else "team member",
            "photo": None,
            "createdAt": self._ref,
            "deactivatedAt": None,
            "externalDirectoryId": None,
            "linkedContactIds": None,
            "jobTitle": None,
            "managerId": None,
        }

    def list_users(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset({"includeDeactivated", "email"}))
        return self._list(req, [self.user(u) for u in self.world.users])

    def stage(self, index: int) -> dict[str, Any]:
        return {"id": lever_id(_STAGE, index + 1), "text": STAGES[index]}

    def list_stages(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset())
        return self._list(req, [self.stage(i) for i in range(len(STAGES))])

    def list_archive_reasons(self, req: Request) -> Response:
        self._authorize(req)
        self._check_params(req, frozenset({"type"}))
        records = [
            {"id": lever_id(_REASON, i + 1), "text": text, "status": "active", "type": kind}
            for i, (text, kind) in enumerate(ARCHIVE_REASONS)
        ]
        if req.arg("type"):
            records = [r for r in records if r["type"] == req.arg("type")]
        return self._list(req, records)

    def _list(self, req: Request, records: list[dict[str, Any]]) -> Response:
        limit, after = self._limit(req), self._after(req)
        rest = records[after:]
        page = [self._project(req, r) for r in rest[:limit]]
        return self._page(req, page, len(rest) > limit, after + len(page))

    # --- helpers for tests and the admin route -------------------------------------------------

    def hires(self) -> list[Contact]:
        """Contacts whose main opportunity is archived as Hired with a signed offer."""
        out = []
        for j in range(1, self.lever.contacts + 1):
            c = self.lever.contact(j)
            status = self.lever.changes(2 * j).get("offer_status")
            if c.kind == "hired" and status in (None, "signed"):
                out.append(c)
        return out

    def contact_id(self, j: int) -> str:
        return lever_id(_CONTACT, j)

    def opportunity_id(self, slot: int) -> str:
        return lever_id(_OPP, slot)

    def touch(self, slot: int, **changes: Any) -> int:
        return self.lever.touch(slot, **changes)


def make_app(world: World, credentials: dict[str, str], **options: Any) -> LeverApp:
    return LeverApp(world, credentials, **options)
