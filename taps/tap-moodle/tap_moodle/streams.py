"""Moodle streams: one small declaration per web-service function (schemas/<name>.json).

Both streams are full-table: a read-back tap lists everything the LMS holds on every run (an
account deleted or made by hand is only seen that way), and Moodle's user and enrolment
functions take no modified-since filter.
"""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError

from hrsync.http import OneAhead
from hrsync.shapes import expect, read_json
from tap_moodle.client import VENDOR, MoodleStream

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk.helpers.types import Context

ENROLLED_USERS = "core_enrol_get_enrolled_users"


class UsersStream(MoodleStream):
    """``core_user_get_users`` with ``criteria[0][key]=email``, ``criteria[0][value]=%``: every
    user of the site (Moodle returns no user without a criterion, and ``%`` is its documented
    wildcard; deleted users are never returned). Moodle pages no user list: one answer."""

    name = "users"
    wsfunction = "core_user_get_users"
    primary_keys: t.ClassVar[list[str]] = ["id"]

    def arguments(self, context: Context | None, next_page_token: t.Any) -> dict[str, t.Any]:
        return {"criteria": [{"key": "email", "value": "%"}]}

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        body = expect(response, VENDOR, read_json(response, VENDOR), dict, 'an object with "users"')
        warnings = body.get("warnings") or []
        if warnings:
            # a criterion Moodle ignored would make the list silently short (or empty)
            words = "; ".join(
                f"{w.get('warningcode')}: {w.get('message')}"
                for w in warnings
                if isinstance(w, dict)
            )
            raise FatalAPIError(f"Moodle answered {self.wsfunction} with warnings: {words}")
        yield from self.rows(response, body.get("users"), '"users"')

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        self.report_drift(row)
        for flag in ("suspended", "confirmed"):
            if flag in row:
                row[flag] = bool(row[flag])
        return row


class EnrolmentsStream(MoodleStream):
    """One record per user and course: ``core_enrol_get_enrolled_users`` for every course that
    ``core_course_get_courses`` lists (the front page left out), ordered by user id and paged
    with ``limitfrom`` / ``limitnumber``.

    ``status`` is ``active`` or ``suspended``: Moodle's ``onlysuspended`` option lists the
    enrolments that are not active now (suspended, not started yet, or ended), read first for
    each course. ``timestart`` / ``timeend`` stay null: Moodle's web services do not return
    enrolment times (the schema keeps them for sites that expose them through a plugin).

    Paging is by offset over a list that can change while it is read: each page overlaps the
    previous one by a row, a page whose first row lies past the last one read means rows before
    it went away (so rows may have moved back past the offset) and the page is read again from
    further back, and rows already emitted are skipped. Nothing that existed for the whole run
    is lost or doubled.
    """

    name = "enrolments"
    wsfunction = ENROLLED_USERS
    primary_keys: t.ClassVar[list[str]] = ["userid", "courseid"]
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @property
    def partitions(self) -> list[dict] | None:
        courses = self.call("core_course_get_courses", {})
        if not isinstance(courses, list):
            raise FatalAPIError(
                f"Moodle answered core_course_get_courses with {type(courses).__name__}, "
                "expected an array of courses"
            )
        return [
            {"courseid": int(c["id"]), "course_shortname": str(c.get("shortname") or "")}
            for c in courses
            if isinstance(c, dict) and c.get("format") != "site" and int(c.get("id", 1)) != 1
        ]

    def enrolled(self, courseid: int, options: list[dict[str, t.Any]]) -> Iterator[dict]:
        """Every enrolled user of the course (with ``options``), each once, in id order; the
        next page is asked for while this one's rows are written (one page ahead)."""
        ahead = OneAhead(self._enrolled_pages(courseid, options), name="enrolments-read-ahead")
        try:
            for page in ahead:
                yield from page
        finally:
            ahead.close()

    def _enrolled_pages(
        self, courseid: int, options: list[dict[str, t.Any]]
    ) -> Iterator[list[dict]]:
        size = self.page_size
        offset, last = 0, 0
        while True:
            paging = [
                {"name": "limitfrom", "value": offset},
                {"name": "limitnumber", "value": size},
            ]
            body = self.call(ENROLLED_USERS, {"courseid": courseid, "options": options + paging})
            if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
                raise FatalAPIError(
                    f"Moodle answered {ENROLLED_USERS} (course {courseid}) with something other "
                    "than an array of users"
                )
            if offset > 0 and body and int(body[0]["id"]) > last:
                offset = max(0, offset - size)  # rows went away before this page: read back
                continue
            rows: list[dict] = []
            for row in body:
                if int(row["id"]) > last:
                    last = int(row["id"])
                    rows.append(row)
            yield rows
            if len(body) < size:
                return
            offset += size - 1  # overlap by one row: a moved list shows at the first row

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        if not context:
            return
        courseid = int(context["courseid"])
        suspended = {
            int(row["id"])
            for row in self.enrolled(courseid, [{"name": "onlysuspended", "value": 1}])
        }
        for row in self.enrolled(courseid, []):
            userid = int(row["id"])
            roles = [
                {k: r.get(k) for k in ("roleid", "shortname", "name")}
                for r in row.get("roles") or []
                if isinstance(r, dict)
            ]
            yield {
                "userid": userid,
                "courseid": courseid,
                "course_shortname": context["course_shortname"],
                "status": "suspended" if userid in suspended else "active",
                "timestart": None,
                "timeend": None,
                "roles": roles,
            }


#: Emission order: users first, then the enrolments that refer to them.
STREAM_TYPES: tuple[type[MoodleStream], ...] = (UsersStream, EnrolmentsStream)
