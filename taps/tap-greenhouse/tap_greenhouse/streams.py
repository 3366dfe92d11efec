"""Harvest v3 streams: one small declaration per list endpoint (schemas in schemas/<name>.json)."""

from __future__ import annotations

from tap_greenhouse.client import GreenhouseStream


class DepartmentsStream(GreenhouseStream):
    """``GET /v3/departments``: the department tree (``parent_id``)."""

    name = "departments"


class OfficesStream(GreenhouseStream):
    """``GET /v3/offices``: offices; ``location`` is a free-form string in v3."""

    name = "offices"


class UsersStream(GreenhouseStream):
    """``GET /v3/users``: recruiters, hiring managers and other Greenhouse users."""

    name = "users"


class JobsStream(GreenhouseStream):
    """``GET /v3/jobs``: requisitions with ``department_id`` and ``office_ids``."""

    name = "jobs"


class CandidatesStream(GreenhouseStream):
    """``GET /v3/candidates``: people, with typed ``email_addresses`` and ``phone_numbers``."""

    name = "candidates"


class ApplicationsStream(GreenhouseStream):
    """``GET /v3/applications``: a candidate on a job (``candidate_id``, ``job_id``)."""

    name = "applications"


class OffersStream(GreenhouseStream):
    """``GET /v3/offers``: ``status`` Created|Accepted|Rejected|Deprecated, ``starts_on``."""

    name = "offers"


#: Emission order: reference data before what refers to it, offers last, so a mapper that
#: joins offers to candidates, jobs, departments and offices has seen them all first.
STREAM_TYPES: tuple[type[GreenhouseStream], ...] = (
    DepartmentsStream,
    OfficesStream,
    UsersStream,
    JobsStream,
    CandidatesStream,
    ApplicationsStream,
    OffersStream,
)
