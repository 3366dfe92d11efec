"""Moodle web services (REST protocol), as documented, holding users, courses and enrolments.

What it follows (sources and assumptions: ``sandbox/docs/moodle.md``):

- One endpoint, ``/webservice/rest/server.php``, GET or POST; ``wstoken``, ``wsfunction`` and
  ``moodlewsrestformat=json`` in the query or the form body; arguments form-encoded as PHP
  arrays (``users[0][username]=...``, ``values[0]=...``).
- Every error is an HTTP 200 with ``{"exception", "errorcode", "message"}`` (plus ``debuginfo``
  when the site has debugging on, as this sandbox does by default): ``invalidtoken``,
  ``invalidrecord`` (unknown function), ``invalidparameter`` (with Moodle's own debuginfo texts
  for duplicate usernames and e-mail addresses), ``accessexception``.
- A write function runs in one transaction: the first bad item fails the whole call and
  nothing of it is kept (``enrol_manual_enrol_users``, ``core_user_create_users``, ...).
- Functions: ``core_webservice_get_site_info``, ``core_user_get_users_by_field``,
  ``core_user_get_users``, ``core_user_create_users``, ``core_user_update_users``,
  ``core_course_get_courses``, ``enrol_manual_enrol_users`` (one enrolment per user and
  course: enrolling again updates it, as ``enrol_plugin::enrol_user`` does),
  ``enrol_manual_unenrol_users``, ``core_enrol_get_users_courses`` (active enrolments only),
  ``core_enrol_get_enrolled_users`` (every enrolment, or ``onlyactive`` / ``onlysuspended``
  ones, ordered by user id and paged with ``limitfrom`` / ``limitnumber``).
- The site starts as a fresh Moodle does: guest (id 1) and admin (id 2), the front page
  (course 1) and a catalogue of seeded courses (``COURSES``).

Sandbox-only admin routes (never faulted): ``GET /_sandbox/moodle/state`` (users and
enrolments with their times, for tests and the demo) and ``POST /_sandbox/moodle/completions``
(``{"userid", "courseid"}``: mark a course completed, which a learner would do in the LMS).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from sandbox.httpbase import App, Request, Response
from sandbox.seed import World

ENDPOINT = "/webservice/rest/server.php"
STUDENT_ROLE = 5
#: roleid -> (shortname, name) of the course roles a manual enrolment may assign
ROLES = {
    3: ("editingteacher", "Teacher"),
    4: ("teacher", "Non-editing teacher"),
    5: ("student", "Student"),
}
SITE_COURSE = 1
#: (id, shortname, fullname, category) of the seeded courses; course 1 is the front page
COURSES: tuple[tuple[int, str, str, int], ...] = (
    (2, "COMP-CODE", "Code of Conduct", 2),
    (3, "COMP-SEC", "Security Awareness", 2),
    (4, "CA-SHP-EMP", "California Sexual Harassment Prevention (employees, 1 h)", 3),
    (5, "CA-SHP-SUP", "California Sexual Harassment Prevention (supervisors, 2 h)", 3),
    (6, "NY-SHP", "New York Sexual Harassment Prevention", 3),
    (7, "EU-GDPR", "GDPR: Data Protection Essentials", 3),
    (8, "DE-AGG", "AGG: Equal Treatment at Work (Germany)", 3),
    (9, "ENG-SECCODE", "Secure Coding", 4),
    (10, "MGR-ESSENTIALS", "Leading People: Manager Essentials", 4),
    (11, "SALES-ABC", "Anti-Bribery and Corruption", 4),
    (12, "WELCOME", "Welcome to the Learning Portal", 1),
)
AUTH_PLUGINS = frozenset(
    {"manual", "nologin", "email", "ldap", "oauth2", "cas", "db", "lti", "shibboleth", "none"}
)
USER_FIELDS = (
    "username",
    "firstname",
    "lastname",
    "email",
    "auth",
    "idnumber",
    "department",
    "institution",
    "city",
    "country",
    "lang",
    "timezone",
    "middlename",
    "alternatename",
    "phone1",
    "phone2",
    "address",
    "description",
)
_USERNAME_OK = re.compile(r"^[-.@_a-z0-9]+$")
_EMAIL_OK = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TAGS = re.compile(r"<[^>]*>")


class MoodleException(Exception):
    """A Moodle exception: answered with HTTP 200 and its JSON description."""

    def __init__(
        self, exception: str, errorcode: str, message: str, debuginfo: str | None = None
    ) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {
            "exception": exception,
            "errorcode": errorcode,
            "message": message,
        }
        if debuginfo is not None:
            self.body["debuginfo"] = debuginfo


def invalid_parameter(debuginfo: str) -> MoodleException:
    return MoodleException(
        "invalid_parameter_exception",
        "invalidparameter",
        "Invalid parameter value detected",
        debuginfo,
    )


def php_args(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode PHP-style form keys (``users[0][username]``) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + (re.findall(r"([^\[\]]*)\]", "[" + rest) if rest else [])
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):  # a scalar then a nested key: keep the nesting
                    raise invalid_parameter(f"{key}: mixes a value and a structure")
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _require_list(args: dict[str, Any], name: str) -> list[Any]:
    value = args.get(name)
    if value is None:
        raise invalid_parameter(f"Missing required key in single structure: {name}")
    if not isinstance(value, list):
        raise invalid_parameter(
            f"{name} => Only arrays accepted. The param '{name}' is not an array"
        )
    return value


def _int(item: dict[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = item.get(name)
    if value is None or value == "":
        if default is not None:
            return default
        raise invalid_parameter(f"{where} => Missing required key in single structure: {name}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter(
            f'{where} => Invalid external api parameter: the value is "{value}", '
            'the server was expecting "int" type'
        ) from None


class Moodle(App):
    name = "moodle"

    def __init__(self, world: World, credentials: dict[str, str], *, debug: bool = True) -> None:
        super().__init__()
        self.world = world
        self.token = credentials["token"]
        self.debug = debug
        self.lock = threading.RLock()
        now = int(time.time())
        self.users: dict[int, dict[str, Any]] = {
            1: self._user_row(1, "guest", "Guest user", " ", "root@localhost", "manual", now),
            2: self._user_row(2, "admin", "Admin", "User", "admin@acme.example", "manual", now),
        }
        self.next_user_id = 3
        self.courses = {
            cid: {"id": cid, "shortname": short, "fullname": full, "categoryid": cat}
            for cid, short, full, cat in COURSES
        }
        #: (courseid, userid) -> the user_enrolments row of the course's manual instance
        self.enrolments: dict[tuple[int, int], dict[str, Any]] = {}
        self.completions: set[tuple[int, int]] = set()
        #: every write call, in order: (wsfunction, item) — what tests count "sent twice" by
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.functions: dict[str, Callable[[dict[str, Any]], Any]] = {
            "core_webservice_get_site_info": self.get_site_info,
            "core_user_get_users_by_field": self.get_users_by_field,
            "core_user_get_users": self.get_users,
            "core_user_create_users": self.create_users,
            "core_user_update_users": self.update_users,
            "core_course_get_courses": self.get_courses,
            "enrol_manual_enrol_users": self.enrol_users,
            "enrol_manual_unenrol_users": self.unenrol_users,
            "core_enrol_get_users_courses": self.get_users_courses,
            "core_enrol_get_enrolled_users": self.get_enrolled_users,
        }
        self.route("GET", ENDPOINT)(self.server)
        self.route("POST", ENDPOINT)(self.server)
        self.route("GET", "/_sandbox/moodle/state")(self.state)
        self.route("POST", "/_sandbox/moodle/completions")(self.complete)

    @staticmethod
    def _user_row(
        uid: int, username: str, first: str, last: str, email: str, auth: str, now: int
    ) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(USER_FIELDS, "")
        row.update(
            id=uid,
            username=username,
            firstname=first,
            lastname=last,
            email=email,
            auth=auth,
            lang="en",
            suspended=0,
            confirmed=1,
            timecreated=now,
            timemodified=now,
        )
        return row

    # --- protocol -------------------------------------------------------------------------

    def server(self, req: Request) -> Response:
        pairs = parse_qsl(req.raw_query, keep_blank_values=True)
        if req.method == "POST" and req.body:
            pairs += parse_qsl(req.body.decode("utf-8"), keep_blank_values=True)
        params = dict(pairs)
        fmt = params.get("moodlewsrestformat", "xml")
        try:
            if params.get("wstoken") != self.token:
                raise MoodleException(
                    "moodle_exception", "invalidtoken", "Invalid token - token not found"
                )
            function = self.functions.get(params.get("wsfunction", ""))
            if function is None:
                raise MoodleException(
                    "dml_missing_record_exception",
                    "invalidrecord",
                    "Can't find data record in database table external_functions.",
                )
            args = php_args(
                [
                    (k, v)
                    for k, v in pairs
                    if k not in ("wstoken", "wsfunction", "moodlewsrestformat")
                ]
            )
            with self.lock:
                result = function(args)
        except MoodleException as exc:
            body = dict(exc.body)
            if not self.debug:
                body.pop("debuginfo", None)
            return self._answer(fmt, body)
        return self._answer(fmt, result)

    def _answer(self, fmt: str, result: Any) -> Response:
        if fmt != "json":  # Moodle's default is XML; this sandbox speaks JSON only
            return Response(
                200,
                '<?xml version="1.0" encoding="UTF-8" ?>\n<EXCEPTION class="moodle_exception">'
                "<ERRORCODE>sandbox</ERRORCODE><MESSAGE>the sandbox answers "
                "moodlewsrestformat=json only</MESSAGE></EXCEPTION>\n",
                {"Content-Type": "application/xml; charset=utf-8"},
            )
        # Moodle answers a function that returns nothing with the JSON literal null
        if result is None:
            return Response(200, b"null", {"Content-Type": "application/json; charset=utf-8"})
        return Response(200, result)

    # --- users ----------------------------------------------------------------------------

    def _details(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if v not in ("", None)}
        out["fullname"] = f"{row['firstname']} {row['lastname']}".strip()
        out["suspended"] = bool(row["suspended"])
        out["confirmed"] = bool(row["confirmed"])
        out["profileimageurl"] = (
            f"https://moodle.example/theme/image.php/boost/core/1/u/f1?u={row['id']}"
        )
        return out

    def get_site_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "sitename": "Acme Learning (hrsync sandbox)",
            "username": "admin",
            "userid": 2,
            "siteurl": "https://moodle.example",
            "release": "4.5 (Build: 20241007)",
            "version": "2024100700",
            "functions": [{"name": n, "version": "2024100700"} for n in sorted(self.functions)],
        }

    def get_users_by_field(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        field = args.get("field")
        if field not in ("id", "idnumber", "username", "email"):
            raise MoodleException(
                "coding_exception",
                "codingerror",
                "Coding error detected, it must be fixed by a programmer: invalid field parameter",
                f"The search field '{field}' is not supported, look at the web service "
                "documentation",
            )
        values = args.get("values") or []
        if not isinstance(values, list):
            raise invalid_parameter("values => Only arrays accepted.")
        wanted = {str(v) for v in values}
        return [
            self._details(row)
            for uid, row in sorted(self.users.items())
            if uid > 1 and str(row[field]) in wanted and str(row[field]) != ""
        ]

    def get_users(self, args: dict[str, Any]) -> dict[str, Any]:
        criteria = args.get("criteria") or []
        rows = [row for uid, row in sorted(self.users.items()) if uid > 1]
        warnings = []
        for c in criteria:
            key, value = c.get("key"), str(c.get("value", ""))
            if key not in ("id", "idnumber", "username", "email", "auth", "firstname", "lastname"):
                warnings.append(
                    {
                        "item": key,
                        "warningcode": "invalidfieldparameter",
                        "message": f"The search key '{key}' is not supported, look at the web "
                        "service documentation",
                    }
                )
                continue
            if key in ("email", "firstname", "lastname") and "%" in value:
                pattern = re.compile(
                    "^" + ".*".join(map(re.escape, value.lower().split("%"))) + "$"
                )
                rows = [r for r in rows if pattern.match(str(r[key]).lower())]
            else:
                rows = [r for r in rows if str(r[key]) == value]
        return {"users": [self._details(r) for r in rows], "warnings": warnings}

    def _check_user_values(self, item: dict[str, Any], where: str, uid: int | None) -> None:
        username = item.get("username")
        if username is not None and (
            not _USERNAME_OK.match(str(username)) or str(username) != str(username).lower()
        ):
            raise invalid_parameter(
                f'{where} => Invalid external api parameter: the value is "{username}", '
                'the server was expecting "username" type'
            )
        for name in ("firstname", "lastname", "department", "city"):
            value = item.get(name)
            if value is not None and _TAGS.search(str(value)):
                raise invalid_parameter(
                    f'{where} => Invalid external api parameter: the value is "{value}", '
                    'the server was expecting "notags" type'
                )
        country = item.get("country")
        if country not in (None, "") and not re.fullmatch(r"[A-Za-z]+", str(country)):
            raise invalid_parameter(
                f'{where} => Invalid external api parameter: the value is "{country}", '
                'the server was expecting "alpha" type'
            )
        if "auth" in item and item["auth"] not in AUTH_PLUGINS:
            raise invalid_parameter(f"Invalid authentication type: {item['auth']}")
        if username is not None:
            clash = next(
                (r for r in self.users.values() if r["username"] == username and r["id"] != uid),
                None,
            )
            if clash is not None:
                raise invalid_parameter(f"Username already exists: {username}")
        email = item.get("email")
        if email is not None:
            if not _EMAIL_OK.match(str(email)):
                raise invalid_parameter(f"Email address is invalid: {email}")
            clash = next(
                (
                    r
                    for r in self.users.values()
                    if str(r["email"]).lower() == str(email).lower() and r["id"] != uid
                ),
                None,
            )
            if clash is not None:
                raise invalid_parameter(f"Email address already exists: {email}")

    def create_users(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        items = _require_list(args, "users")
        staged: dict[int, dict[str, Any]] = {}
        saved, next_id = dict(self.users), self.next_user_id
        try:
            for i, item in enumerate(items):
                where = f"users => {i}"
                for required in ("username", "firstname", "lastname", "email"):
                    if item.get(required) in (None, ""):
                        raise invalid_parameter(
                            f"{where} => Missing required key in single structure: {required}"
                        )
                auth = item.get("auth") or "manual"
                if (
                    auth == "manual"
                    and not item.get("password")
                    and item.get("createpassword") not in ("1", "true")
                ):
                    raise invalid_parameter(
                        "Invalid password: you must provide a password, or set createpassword."
                    )
                self._check_user_values({**item, "auth": auth}, where, None)
                uid = self.next_user_id
                self.next_user_id += 1
                row = self._user_row(
                    uid,
                    item["username"],
                    item["firstname"],
                    item["lastname"],
                    item["email"],
                    auth,
                    int(time.time()),
                )
                for name in USER_FIELDS:
                    if name in item and name not in ("password",):
                        row[name] = item[name]
                row["suspended"] = int(item.get("suspended") or 0)
                self.users[uid] = row
                staged[uid] = row
        except MoodleException:
            self.users, self.next_user_id = saved, next_id  # the transaction rolls back
            raise
        for row in staged.values():
            self.writes.append(("core_user_create_users", {"id": row["id"]}))
        return [{"id": uid, "username": row["username"]} for uid, row in staged.items()]

    def update_users(self, args: dict[str, Any]) -> None:
        items = _require_list(args, "users")
        changes: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, item in enumerate(items):
            where = f"users => {i}"
            uid = _int(item, "id", where)
            row = self.users.get(uid)
            if row is None or uid == 1:
                raise invalid_parameter(f"Invalid user id: {uid}")
            self._check_user_values(item, where, uid)
            update = {k: v for k, v in item.items() if k in USER_FIELDS}
            if "suspended" in item:
                if uid == 2 and str(item["suspended"]) == "1":
                    raise MoodleException(
                        "moodle_exception", "useradminodelete", "Administrators can't be suspended"
                    )
                update["suspended"] = int(item["suspended"] or 0)
            changes.append((row, update))
        now = int(time.time())
        for row, update in changes:  # validated as a whole first: one transaction
            row.update(update, timemodified=now)
            self.writes.append(("core_user_update_users", {"id": row["id"], **update}))
        return

    # --- courses and enrolments -----------------------------------------------------------

    def get_courses(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        ids = ((args.get("options") or {}).get("ids")) or []
        wanted = {int(i) for i in ids} if ids else set(self.courses) | {SITE_COURSE}
        out = []
        for cid in sorted(wanted):
            if cid == SITE_COURSE:
                out.append(
                    {
                        "id": 1,
                        "shortname": "acme",
                        "fullname": "Acme Learning",
                        "categoryid": 0,
                        "format": "site",
                    }
                )
            elif cid in self.courses:
                out.append({**self.courses[cid], "format": "topics", "visible": 1})
        return out

    def _course(self, courseid: int, where: str) -> None:
        if courseid not in self.courses:
            raise invalid_parameter(f"{where} => Context does not exist")

    def enrol_users(self, args: dict[str, Any]) -> None:
        items = _require_list(args, "enrolments")
        staged: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for i, item in enumerate(items):
            where = f"enrolments => {i}"
            roleid = _int(item, "roleid", where)
            userid = _int(item, "userid", where)
            courseid = _int(item, "courseid", where)
            self._course(courseid, where)
            if userid not in self.users or userid == 1:
                raise invalid_parameter(f"{where} => Invalid user id: {userid}")
            if not self.courses[courseid].get("manual", True):
                raise MoodleException(
                    "moodle_exception",
                    "wsnoinstance",
                    "Manual enrolment plugin instance doesn't exist or is disabled for the "
                    f"course (id = {courseid})",
                )
            if roleid not in (3, 4, 5):
                raise MoodleException(
                    "moodle_exception",
                    "wsusercannotassign",
                    "You don't have the permission to assign this role "
                    f"({roleid}) to this user ({userid}) in this course({courseid}).",
                )
            staged.append(
                (
                    (courseid, userid),
                    {
                        "roleid": roleid,
                        "timestart": _int(item, "timestart", where, 0),
                        "timeend": _int(item, "timeend", where, 0),
                        "status": 1 if str(item.get("suspend") or "0") not in ("0", "") else 0,
                    },
                )
            )
        now = int(time.time())
        for key, values in staged:
            row = self.enrolments.get(key)
            if row is None:
                self.enrolments[key] = {**values, "timecreated": now, "timemodified": now}
            elif any(row[k] != v for k, v in values.items()):
                row.update(values, timemodified=now)  # enrol_user updates, never duplicates
            self.writes.append(
                ("enrol_manual_enrol_users", {"courseid": key[0], "userid": key[1], **values})
            )
        return

    def unenrol_users(self, args: dict[str, Any]) -> None:
        items = _require_list(args, "enrolments")
        keys = []
        for i, item in enumerate(items):
            where = f"enrolments => {i}"
            userid = _int(item, "userid", where)
            courseid = _int(item, "courseid", where)
            self._course(courseid, where)
            if userid not in self.users:
                raise invalid_parameter(f"User id not exist: {userid}")
            keys.append((courseid, userid))
        for key in keys:
            self.enrolments.pop(key, None)
            self.writes.append(
                ("enrol_manual_unenrol_users", {"courseid": key[0], "userid": key[1]})
            )
        return

    @staticmethod
    def _active(row: dict[str, Any], now: int) -> bool:
        return (
            row["status"] == 0
            and row["timestart"] <= now
            and (row["timeend"] == 0 or row["timeend"] > now)
        )

    def get_users_courses(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        userid = _int(args, "userid", "userid")
        if userid not in self.users:
            raise invalid_parameter(f"Invalid user id: {userid}")
        now = int(time.time())
        out = []
        for (cid, uid), row in sorted(self.enrolments.items()):
            if uid == userid and self._active(row, now):
                course = self.courses[cid]
                done = (cid, uid) in self.completions
                out.append(
                    {
                        "id": cid,
                        "shortname": course["shortname"],
                        "fullname": course["fullname"],
                        "displayname": course["fullname"],
                        "enrolledusercount": sum(1 for c, _ in self.enrolments if c == cid),
                        "idnumber": "",
                        "visible": 1,
                        "enablecompletion": True,
                        "completed": done,
                        "progress": 100.0 if done else 0.0,
                        "category": course["categoryid"],
                    }
                )
        return out

    def get_enrolled_users(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        courseid = _int(args, "courseid", "courseid")
        self._course(courseid, "courseid")
        options = {o.get("name"): o.get("value") for o in (args.get("options") or [])}
        onlyactive = str(options.get("onlyactive") or "0") not in ("0", "", "false")
        onlysuspended = str(options.get("onlysuspended") or "0") not in ("0", "", "false")
        if onlyactive and onlysuspended:
            raise MoodleException(
                "coding_exception",
                "codingerror",
                "Coding error detected, it must be fixed by a programmer: Both onlyactive and "
                "onlysuspended are set, this is not allowed",
            )
        limitfrom = _int(options, "limitfrom", "limitfrom", 0)
        limitnumber = _int(options, "limitnumber", "limitnumber", 0)
        now = int(time.time())
        out = []
        # ordered by user id, as Moodle's SQL does (ORDER BY u.id); limitfrom/limitnumber page it
        for (cid, uid), row in sorted(self.enrolments.items()):
            if cid != courseid:
                continue
            active = self._active(row, now)
            # onlysuspended: enrolled but not active now (suspended, not started or ended),
            # as get_enrolled_join() defines it
            if (onlyactive and not active) or (onlysuspended and active):
                continue
            out.append((uid, row))
        out = out[limitfrom : limitfrom + limitnumber if limitnumber > 0 else None]
        users = []
        for uid, row in out:
            user = self._details(self.users[uid])
            role = ROLES.get(row["roleid"], ("", ""))
            user["roles"] = [
                {"roleid": row["roleid"], "name": role[1], "shortname": role[0], "sortorder": 0}
            ]
            users.append(user)
        return users

    # --- sandbox admin --------------------------------------------------------------------

    def state(self, req: Request) -> Response:
        with self.lock:
            return Response(
                200,
                {
                    "users": [self._details(r) for uid, r in sorted(self.users.items()) if uid > 2],
                    "enrolments": [
                        {"courseid": c, "userid": u, **row, "completed": (c, u) in self.completions}
                        for (c, u), row in sorted(self.enrolments.items())
                    ],
                    "writes": len(self.writes),
                },
            )

    def complete(self, req: Request) -> Response:
        body = req.json() or {}
        with self.lock:
            self.completions.add((int(body["courseid"]), int(body["userid"])))
        return Response(200, {"completed": True})


def make_app(world: World, credentials: dict[str, str]) -> Moodle:
    return Moodle(world, credentials)
