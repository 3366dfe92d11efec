"""Greenhouse Harvest **v3** fake, served from the seeded :class:`~sandbox.seed.World`.

Which documented behaviours it follows, and where each is documented, is listed in
``sandbox/docs/greenhouse.md``. In short:

- ``POST /token``: OAuth 2.0 client credentials, HTTP Basic ``client_id:client_secret``, form
  ``grant_type=client_credentials`` and ``sub=<user id>``; answers ``access_token``,
  ``token_type`` and ``expires_at`` (a JWT-shaped bearer token that expires).
- ``GET /v3/{candidates,applications,offers,jobs,departments,offices,users}``: a bare JSON array,
  ``per_page`` 1..500, cursor pagination through ``Link: <...?cursor=...>; rel="next"`` where the
  cursor must be the only query parameter, ``ids=``, ``created_at=`` / ``updated_at=`` filters
  such as ``gte|2024-01-01T00:00:00Z|lt|2024-02-01T00:00:00Z`` (operators gte, gt, lte, lt).
- ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` on every API answer; 429 with ``Retry-After``
  and ``X-RateLimit-Reset`` (from fault injection, or for real when ``enforce_rate_limit``).

Pages cost O(page) whatever the size of the world: the large kinds are listed through
:meth:`World.ids`, which never scans.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.httpbase import App, HTTPError, Request, Response
from sandbox.seed import Application, Candidate, Department, Job, Offer, Office, User, World
from sandbox.webhooks import WebhookSender, add_routes

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 100
RATE_WINDOW_SECONDS = 10
_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)
_OPS = ("gte", "gt", "lte", "lt")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$")

#: kinds listed through World.ids (large) -> World kind
_LARGE = {"candidates": "candidates", "applications": "applications", "offers": "offers"}
_SMALL = ("jobs", "departments", "offices", "users")
_FILTERS: dict[str, frozenset[str]] = {
    "candidates": frozenset(),
    "applications": frozenset({"candidate_ids", "job_ids", "status"}),
    "offers": frozenset({"candidate_ids", "application_ids", "job_ids", "status"}),
    "jobs": frozenset({"status", "department_ids", "office_ids"}),
    "departments": frozenset(),
    "offices": frozenset(),
    "users": frozenset(),
}
_COMMON = frozenset({"per_page", "ids", "created_at", "updated_at"})


# --- formatting -----------------------------------------------------------------------------


def iso_ms(value: datetime) -> str:
    """Harvest v3 date-time: ISO 8601 in UTC with milliseconds, e.g. 2024-12-15T03:55:00.000Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _iso_date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _amount(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def opening_id(raw: str | None) -> int | None:
    """The seed's opening reference ("4501-3") as the integer opening id v3 returns."""
    if raw is None:
        return None
    job, _, slot = raw.partition("-")
    return int(job) * 1000 + int(slot or 0)


def _floor_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def _ceil_ms(value: datetime) -> datetime:
    floor = _floor_ms(value)
    return floor if floor == value else floor + _MS


def parse_timestamp(text: str) -> datetime:
    if not _TS.match(text):
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- errors -----------------------------------------------------------------------------------


def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> HTTPError:
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    return HTTPError(status, body)


def _invalid(field_name: str, message: str) -> HTTPError:
    return _error(422, "Validation error", [{"message": message, "field": field_name}])


# --- filters ----------------------------------------------------------------------------------


@dataclass
class Bounds:
    """Inclusive bounds on a record's *displayed* (millisecond) timestamp, as true instants."""

    gte: datetime | None = None
    lte: datetime | None = None

    def add(self, op: str, at: datetime) -> None:
        # A record is compared on the value the API shows (truncated to ms), so that a client
        # filtering on a value it received never gets that record back with ``gt``.
        if op == "gte":
            low = _ceil_ms(at)
        elif op == "gt":
            low = _floor_ms(at) + _MS
        elif op == "lte":
            high = _floor_ms(at) + _MS - _US
        else:  # lt
            high = _ceil_ms(at) - _US
        if op in ("gte", "gt"):
            self.gte = low if self.gte is None else max(self.gte, low)
        else:
            self.lte = high if self.lte is None else min(self.lte, high)

    def __contains__(self, value: datetime) -> bool:
        return (self.gte is None or value >= self.gte) and (self.lte is None or value <= self.lte)


def parse_bounds(field_name: str, raw: str | None) -> Bounds:
    """``gte|2024-01-01T00:00:00Z|lt|2024-02-01T00:00:00Z`` -> :class:`Bounds`."""
    bounds = Bounds()
    if raw is None:
        return bounds
    parts = raw.split("|")
    if len(parts) % 2 or not raw:
        raise _invalid(field_name, f"expected operator|timestamp pairs, got {raw!r}")
    for op, text in zip(parts[::2], parts[1::2], strict=True):
        if op not in _OPS:
            raise _invalid(field_name, f"unknown operator {op!r} (use gte, gt, lte or lt)")
        try:
            bounds.add(op, parse_timestamp(text))
        except ValueError as exc:
            raise _invalid(field_name, str(exc)) from None
    return bounds


def _int_list(field_name: str, raw: str | None) -> list[int] | None:
    if raw is None:
        return None
    try:
        return sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise _invalid(field_name, f"expected comma-separated integer ids, got {raw!r}") from None


@dataclass
class Query:
    """Everything the first request asked for; the cursor carries it to the next pages."""

    resource: str
    per_page: int = DEFAULT_PER_PAGE
    ids: list[int] | None = None
    created: str | None = None
    updated: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    after: int | None = None

    def encode(self) -> str:
        payload = {
            "r": self.resource,
            "n": self.per_page,
            "i": self.ids,
            "c": self.created,
            "u": self.updated,
            "x": self.extra,
            "a": self.after,
        }
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, resource: str, cursor: str) -> Query:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            query = cls(
                resource=data["r"],
                per_page=int(data["n"]),
                ids=data["i"],
                created=data["c"],
                updated=data["u"],
                extra=dict(data["x"]),
                after=data["a"],
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise _invalid("cursor", "cursor is invalid or corrupted") from None
        if query.resource != resource:
            raise _invalid("cursor", f"cursor belongs to /v3/{query.resource}, not /v3/{resource}")
        return query


# --- the app ----------------------------------------------------------------------------------


@dataclass
class _Token:
    sub: int
    expires_at: float
    uses: int = 0


class GreenhouseApp(App):
    """Harvest v3 over the seeded world. Knobs (mutable while running) are instance attributes."""

    name = "greenhouse"

    def __init__(
        self,
        world: World,
        credentials: dict[str, str],
        *,
        token_ttl: float = 3600,
        per_page_default: int = DEFAULT_PER_PAGE,
        rate_limit: int = 50,
        enforce_rate_limit: bool = False,
    ) -> None:
        super().__init__()
        self.world = world
        self.client_id = credentials["client_id"]
        self.client_secret = credentials["client_secret"]
        #: seconds a new access token lives (a test sets this low to make tokens expire)
        self.token_ttl = token_ttl
        #: sandbox-only knob: a token stops working after this many API calls (None: never);
        #: makes "token expired mid-run" deterministic without sleeping
        self.token_max_uses: int | None = None
        self.per_page_default = per_page_default
        #: X-RateLimit-Limit: requests per rolling 10 s window and token
        self.rate_limit = rate_limit
        #: answer 429 for real once the window is full (off by default: the headers are still sent)
        self.enforce_rate_limit = enforce_rate_limit
        self.tokens_issued = 0
        self.clock: Callable[[], float] = time.time
        self._tokens: dict[str, _Token] = {}
        self._windows: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._ref_stamp = world.base_updated_at("candidates", 0) - timedelta(days=1000)
        self._users = {u.id for u in world.users}
        self._routes_for_world()
        #: outgoing web hooks (sandbox.webhooks): hire_candidate, offer_created, offer_updated
        self.webhooks = WebhookSender("greenhouse")
        add_routes(self, self.webhooks)

    # --- vendor-shaped errors -------------------------------------------------------------

    def error(self, req: Request, status: int, message: str) -> Response:
        return Response(status, {"message": message})

    def rate_limited(self, req: Request, retry_after: int) -> Response:
        reset = int(self.clock()) + retry_after
        return Response(
            429,
            {"message": "Rate limit exceeded. Retry after the number of seconds in Retry-After."},
            {
                "Retry-After": str(retry_after),
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            },
        )

    # --- OAuth ------------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the next API call answers 401)."""
        with self._lock:
            self._tokens.clear()

    def _jwt(self, sub: int, issued: float, expires: float) -> str:
        def part(obj: dict[str, Any]) -> str:
            raw = json.dumps(obj, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        head = part({"alg": "HS256", "typ": "JWT"})
        body = part(
            {
                "iss": "https://auth.greenhouse.io",
                "sub": str(sub),
                "aud": "harvest",
                "iat": int(issued),
                "exp": int(expires),
                "jti": secrets.token_hex(8),
            }
        )
        sig = hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}." + base64.urlsafe_b64encode(sig).decode().rstrip("=")

    def token(self, req: Request) -> Response:
        auth = req.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        try:
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id, secret = "", ""
        if scheme.lower() != "basic" or not (
            hmac.compare_digest(client_id, self.client_id)
            and hmac.compare_digest(secret, self.client_secret)
        ):
            return Response(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                {"WWW-Authenticate": 'Basic realm="auth.greenhouse.io"'},
            )
        form = req.form()
        if form.get("grant_type") != "client_credentials":
            return Response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        sub_raw = form.get("sub", "").strip()
        if not sub_raw.isdigit() or int(sub_raw) not in self._users:
            return Response(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "sub must be the numeric id of a user in this account",
                },
            )
        now = self.clock()
        expires = now + self.token_ttl
        token = self._jwt(int(sub_raw), now, expires)
        with self._lock:
            self._tokens[token] = _Token(sub=int(sub_raw), expires_at=expires)
            self.tokens_issued += 1
        return Response(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_at": iso_ms(datetime.fromtimestamp(expires, UTC)),
            },
            {"Cache-Control": "no-store"},
        )

    def _authorize(self, req: Request) -> tuple[str, dict[str, str]]:
        auth = req.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPError(
                401,
                {"message": "Missing bearer token: get one from POST /token"},
                {"WWW-Authenticate": 'Bearer realm="harvest"'},
            )
        now = self.clock()
        with self._lock:
            info = self._tokens.get(token.strip())
            expired = info is not None and (
                now >= info.expires_at
                or (self.token_max_uses is not None and info.uses >= self.token_max_uses)
            )
            if info is None or expired:
                raise HTTPError(
                    401,
                    {"message": "Access token expired" if expired else "Invalid access token"},
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            info.uses += 1
            window = self._windows.setdefault(token, collections.deque())
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            if self.enforce_rate_limit and len(window) >= self.rate_limit:
                retry = max(1, int(window[0] + RATE_WINDOW_SECONDS - now + 0.999))
                limited = self.rate_limited(req, retry)
                raise HTTPError(429, limited.body, limited.headers)
            window.append(now)
            remaining = max(0, self.rate_limit - len(window))
        return token, {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
        }

    # --- listing ----------------------------------------------------------------------------

    # --- changes that send web hooks (what a recruiter does in the UI) ----------------------

    def update_offer(self, offer_id: int, **changes: Any) -> Offer:
        """Change an offer; sends ``offer_updated`` (and ``hire_candidate`` once accepted)."""
        before = self.world.offer(offer_id)
        offer = self.world.update_offer(offer_id, **changes)
        self.webhooks.emit("offer_updated", self.offer(offer))
        if offer.status == "Accepted" and before.status != "Accepted":
            self.webhooks.emit("hire_candidate", self.hire_payload(offer))
        return offer

    def accept_offer(self, offer_id: int) -> Offer:
        """The candidate accepts and is marked hired."""
        return self.update_offer(offer_id, status="Accepted", sent_on=self.world.as_of)

    def hire_payload(self, offer: Offer) -> dict[str, Any]:
        """``hire_candidate`` payload: the application with its candidate, jobs and offer."""
        application = self.application(self.world.application(offer.application_id))
        job = self.world.job(offer.job_id)
        return {
            "application": {
                **application,
                "status": "hired",
                "candidate": self.candidate(self.world.candidate(offer.candidate_id)),
                "jobs": [self.job(job)],
                "offer": self.offer(offer),
            }
        }

    def _routes_for_world(self) -> None:
        self.route("POST", "/token")(self.token)

        @self.route("POST", "/_sandbox/greenhouse/offers/{ident}")
        def change_offer(req: Request, ident: str) -> Response:
            changes = dict(req.json() or {})
            for name in ("starts_on", "sent_on"):
                if isinstance(changes.get(name), str):
                    changes[name] = date.fromisoformat(changes[name])
            try:
                offer = self.update_offer(int(ident), **changes)
            except (KeyError, ValueError, TypeError) as exc:
                raise HTTPError(400, {"message": f"cannot change offer {ident}: {exc}"}) from None
            return Response(200, self.offer(offer))

        @self.route("POST", "/_sandbox/greenhouse/offers/{ident}/accept")
        def accept(req: Request, ident: str) -> Response:
            try:
                offer = self.accept_offer(int(ident))
            except (KeyError, ValueError) as exc:
                raise HTTPError(404, {"message": f"no offer {ident}: {exc}"}) from None
            return Response(200, self.offer(offer))

        for resource in (*_LARGE, *_SMALL):
            self.route("GET", f"/v3/{resource}")(self._lister(resource))

    def _lister(self, resource: str) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            _, headers = self._authorize(req)
            query = self._query(resource, req)
            records, more = self._page(query)
            if more:
                nxt = Query(**{**query.__dict__, "after": records[-1]["id"]})
                host = req.headers.get("Host") or "127.0.0.1"
                headers["Link"] = f'<http://{host}/v3/{resource}?cursor={nxt.encode()}>; rel="next"'
            return Response(200, records, headers)

        handler.__name__ = f"list_{resource}"
        return handler

    def _query(self, resource: str, req: Request) -> Query:
        if "cursor" in req.query:
            others = sorted(set(req.query) - {"cursor"})
            if others:
                raise _invalid(
                    "cursor",
                    "cursor must be the only query parameter; also got " + ", ".join(others),
                )
            return Query.decode(resource, req.query["cursor"][0])
        allowed = _COMMON | _FILTERS[resource]
        unknown = sorted(set(req.query) - allowed)
        if unknown:
            raise _invalid(unknown[0], f"unknown query parameter for /v3/{resource}")
        repeated = sorted(k for k, v in req.query.items() if len(v) > 1)
        if repeated:
            raise _invalid(repeated[0], "parameter given more than once")
        per_page_raw = req.arg("per_page")
        per_page = self.per_page_default
        if per_page_raw is not None:
            if not per_page_raw.isdigit() or not 1 <= int(per_page_raw) <= MAX_PER_PAGE:
                raise _invalid("per_page", f"per_page must be an integer from 1 to {MAX_PER_PAGE}")
            per_page = int(per_page_raw)
        ids = _int_list("ids", req.arg("ids"))
        created, updated = req.arg("created_at"), req.arg("updated_at")
        parse_bounds("created_at", created)  # validate now, not on page 2
        parse_bounds("updated_at", updated)
        extra = {k: req.arg(k) or "" for k in sorted(_FILTERS[resource]) if k in req.query}
        for key, value in extra.items():
            if key.endswith("_ids"):
                _int_list(key, value)
        return Query(resource, per_page, ids, created, updated, extra)

    def _page(self, query: Query) -> tuple[list[dict[str, Any]], bool]:
        created = parse_bounds("created_at", query.created)
        updated = parse_bounds("updated_at", query.updated)
        wanted = query.per_page + 1
        out: list[dict[str, Any]] = []
        for obj in self._objects(query, updated):
            if _created_at(obj) not in created or not self._matches(query, obj):
                continue
            out.append(self.render(query.resource, obj))
            if len(out) == wanted:
                break
        more = len(out) > query.per_page
        return out[: query.per_page], more

    def _objects(self, query: Query, updated: Bounds) -> Iterable[Any]:
        """Objects of the resource in id order after the cursor, within the updated bounds."""
        resource, after = query.resource, query.after
        if resource in _LARGE:
            kind = _LARGE[resource]
            if query.ids is not None:
                for ident in query.ids:
                    if after is not None and ident <= after:
                        continue
                    try:
                        obj = self.world.get(kind, ident)
                    except KeyError:
                        continue
                    if obj.updated_at in updated:
                        yield obj
                return
            chunk = max(query.per_page + 1, 100)
            while True:
                ids = self.world.ids(
                    kind,
                    after=after,
                    updated_gte=updated.gte,
                    updated_lte=updated.lte,
                    limit=chunk,
                )
                for ident in ids:
                    yield self.world.get(kind, ident)
                if len(ids) < chunk:
                    return
                after = ids[-1]
        else:
            lists: dict[str, list[Any]] = {
                "jobs": self.world.jobs,
                "departments": self.world.departments,
                "offices": self.world.offices,
                "users": self.world.users,
            }
            objects = lists[resource]
            wanted = set(query.ids) if query.ids is not None else None
            for obj in sorted(objects, key=lambda o: o.id):
                if after is not None and obj.id <= after:
                    continue
                if wanted is not None and obj.id not in wanted:
                    continue
                if self._updated_at(obj) in updated:
                    yield obj

    def _matches(self, query: Query, obj: Any) -> bool:
        for key, value in query.extra.items():
            if key == "status":
                rendered = self.render(query.resource, obj)
                if str(rendered.get("status", "")).lower() != value.lower():
                    return False
            else:
                attr = key[: -len("_ids")] + "_id"
                have: Any = getattr(obj, attr, None)
                if have not in set(_int_list(key, value) or []):
                    return False
        return True

    def _updated_at(self, obj: Any) -> datetime:
        stamp = getattr(obj, "updated_at", None)
        return stamp if isinstance(stamp, datetime) else self._ref_stamp

    # --- records (Harvest v3 field names and shapes) ---------------------------------------

    def render(self, resource: str, obj: Any) -> dict[str, Any]:
        renderers: dict[str, Callable[[Any], dict[str, Any]]] = {
            "candidates": self.candidate,
            "applications": self.application,
            "offers": self.offer,
            "jobs": self.job,
            "departments": self.department,
            "offices": self.office,
            "users": self.user,
        }
        return renderers[resource](obj)

    def candidate(self, c: Candidate) -> dict[str, Any]:
        emails = []
        if c.email:
            emails.append({"value": c.email, "type": "personal"})
        if c.work_email:
            emails.append({"value": c.work_email, "type": "work"})
        recruiter = self.world.users[c.id % len(self.world.users)]
        return {
            "id": c.id,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "preferred_name": None,
            "company": c.company,
            "title": c.title,
            "created_at": iso_ms(c.created_at),
            "updated_at": iso_ms(c.updated_at),
            "last_activity_at": iso_ms(c.updated_at),
            "private": False,
            "can_email": True,
            "time_zone": None,
            "email_addresses": emails,
            "phone_numbers": [{"value": c.phone, "type": "mobile"}] if c.phone else [],
            "addresses": [],
            "website_addresses": [],
            "social_media_addresses": [],
            "tags": ["hired"] if c.employee_id else [],
            "linked_user_ids": [],
            "custom_fields": {
                "recruiter_email": {
                    "name": "Recruiter email",
                    "type": "short_text",
                    "value": recruiter.email,
                }
            },
        }

    def application(self, a: Application) -> dict[str, Any]:
        status = {"active": "in_process"}.get(a.status, a.status)
        recruiter = self.world.users[a.id % len(self.world.users)]
        return {
            "id": a.id,
            "candidate_id": a.candidate_id,
            "job_id": a.job_id,
            "prospect": False,
            "prospective_job_ids": [],
            "status": status,
            "stage_id": None,
            "stage_name": a.current_stage,
            "job_interview_stage_id": None,
            "job_post_id": None,
            "source_id": None,
            "referrer_id": None,
            "recruiter_id": recruiter.id,
            "coordinator_id": None,
            "rejection_reason_id": None,
            "rejected_at": iso_ms(a.updated_at) if a.status == "rejected" else None,
            "needs_decision": a.status == "active",
            "location_address": None,
            "agency_note_id": None,
            "answers": [],
            "custom_fields": {},
            "created_at": iso_ms(a.applied_at),
            "last_activity_at": iso_ms(a.updated_at),
            "updated_at": iso_ms(a.updated_at),
        }

    def offer(self, o: Offer) -> dict[str, Any]:
        custom: dict[str, Any] = {
            "employment_type": {
                "name": "Employment Type",
                "type": "single_select",
                "value": o.employment_type,
            }
        }
        if o.salary is not None:
            custom["salary"] = {
                "name": "Salary",
                "type": "currency",
                "value": {"amount": _amount(o.salary), "unit": o.currency},
            }
        resolved = o.status in ("Accepted", "Rejected")
        return {
            "id": o.id,
            "version": o.version,
            "application_id": o.application_id,
            "candidate_id": o.candidate_id,
            "job_id": o.job_id,
            "opening_id": opening_id(o.opening_id),
            "status": o.status,
            "sent_on": _iso_date(o.sent_on),
            "starts_on": _iso_date(o.starts_on),
            "resolved_at": iso_ms(o.updated_at) if resolved else None,
            "custom_fields": custom,
            "created_at": iso_ms(o.created_at),
            "updated_at": iso_ms(o.updated_at),
        }

    def job(self, j: Job) -> dict[str, Any]:
        return {
            "id": j.id,
            "name": j.title,
            "requisition_id": f"REQ-{j.id}",
            "notes": None,
            "confidential": False,
            "is_template": False,
            "copied_from_id": None,
            "status": j.status,
            "department_id": j.department_id,
            "office_ids": [j.office_id],
            "opened_at": iso_ms(j.created_at),
            "closed_at": iso_ms(j.updated_at) if j.status == "closed" else None,
            "custom_fields": {
                "employment_type": {
                    "name": "Employment Type",
                    "type": "single_select",
                    "value": j.employment_type,
                }
            },
            "created_at": iso_ms(j.created_at),
            "updated_at": iso_ms(j.updated_at),
        }

    def department(self, d: Department) -> dict[str, Any]:
        return {
            "id": d.id,
            "name": d.name,
            "parent_id": d.parent_id,
            "external_id": None,
            "created_at": iso_ms(self._ref_stamp),
            "updated_at": iso_ms(self._ref_stamp),
        }

    def office(self, o: Office) -> dict[str, Any]:
        where = ", ".join(p for p in (o.city, o.state, o.country) if p)
        return {
            "id": o.id,
            "name": o.name,
            "location": where,
            "parent_id": None,
            "external_id": None,
            "primary_in_house_contact_user_id": None,
            "created_at": iso_ms(self._ref_stamp),
            "updated_at": iso_ms(self._ref_stamp),
        }

    def user(self, u: User) -> dict[str, Any]:
        return {
            "id": u.id,
            "name": f"{u.first_name} {u.last_name}",
            "first_name": u.first_name,
            "last_name": u.last_name,
            "primary_email": u.email,
            "emails": [u.email],
            "employee_id": None,
            "job_title": None,
            "site_admin": u.id == self.world.users[0].id,
            "deactivated": False,
            "agency_id": None,
            "department_ids": [],
            "office_ids": [],
            "linked_candidate_ids": [],
            "interviewer_tags": [],
            "custom_fields": {},
            "created_at": iso_ms(self._ref_stamp),
            "updated_at": iso_ms(self._ref_stamp),
        }


def _created_at(obj: Any) -> datetime:
    for name in ("created_at", "applied_at"):
        stamp = getattr(obj, name, None)
        if isinstance(stamp, datetime):
            return stamp
    return datetime(2000, 1, 1, tzinfo=UTC)


def make_app(world: World, credentials: dict[str, str], **options: Any) -> GreenhouseApp:
    """The Harvest v3 fake for ``world`` (options: token_ttl, per_page_default, rate_limit...)."""
    return GreenhouseApp(world, credentials, **options)
