"""Subject references: one keyed pseudonym per person across ATS, HRIS and analytics.

An audit line names the person it is about by a *subject reference*, never by another system's
raw identifier. The reference is derived from the analytics pseudonym, which map-hr already
computes as ``HMAC(MAP_HR_HMAC_KEY, context "analytics", employee id)``::

    analytics = Pseudonymizer(key).context("analytics")(employee_id)
    subject   = Pseudonymizer(key).context("audit-subject")(analytics)[:32]

so the HRIS employee (``employee_id``) and the warehouse's pseudonymous rows
(``analytics_pseudonym``) give the same reference. An ATS candidate has a reference of its own
(``context "audit-subject-candidate"``); the writer that creates the employee from the candidate
(the ATS -> HRIS target, which stores the candidate id in the HRIS) knows both and writes the
candidate's reference in the event's ``links``, so ``hrsync audit subject`` joins them. Without
the key no reference is written (``subject: null``).
"""

from __future__ import annotations

import os
from typing import Any, Final

from hrsync.pseudonym import DEFAULT_ENV, Pseudonymizer, PseudonymKeyError

ANALYTICS_CONTEXT: Final = "analytics"
SUBJECT_CONTEXT: Final = "audit-subject"
CANDIDATE_CONTEXT: Final = "audit-subject-candidate"
REF_CHARS: Final = 32
#: the column in which map-hr's analytics profiles write the analytics pseudonym
PSEUDONYM_FIELD: Final = "employee_key"

__all__ = [
    "PSEUDONYM_FIELD",
    "analytics_pseudonym",
    "candidate_ref",
    "employee_ref",
    "pseudonym_ref",
    "references",
]

_cache: dict[str, Pseudonymizer] = {}


def _keyed(context: str) -> Pseudonymizer | None:
    key = os.environ.get(DEFAULT_ENV)
    if not key:
        return None
    cached = _cache.get(f"{context}\x00{key}")
    if cached is None:
        try:
            cached = Pseudonymizer(key).context(context)
        except PseudonymKeyError:
            return None
        _cache[f"{context}\x00{key}"] = cached
    return cached


def analytics_pseudonym(employee_id: Any) -> str | None:
    """The employee's pseudonym in the analytics flow (what map-hr writes as employee_key)."""
    p = _keyed(ANALYTICS_CONTEXT)
    return None if p is None or employee_id in (None, "") else p(str(employee_id))


def pseudonym_ref(analytics: str | None) -> str | None:
    p = _keyed(SUBJECT_CONTEXT)
    return None if p is None or not analytics else p(analytics)[:REF_CHARS]


def employee_ref(employee_id: Any) -> str | None:
    """The subject reference of an HRIS employee id."""
    return pseudonym_ref(analytics_pseudonym(employee_id))


def candidate_ref(candidate_id: Any) -> str | None:
    """The subject reference of an ATS candidate id (before the person is an employee)."""
    p = _keyed(CANDIDATE_CONTEXT)
    return None if p is None or candidate_id in (None, "") else p(str(candidate_id))[:REF_CHARS]


def references(
    *, employee_id: Any = None, candidate_id: Any = None, analytics_pseudonym: str | None = None
) -> list[str]:
    """[the person's main reference, then their other ones]; empty without a key or an id."""
    refs = [
        employee_ref(employee_id) if employee_id not in (None, "") else None,
        pseudonym_ref(analytics_pseudonym) if employee_id in (None, "") else None,
        candidate_ref(candidate_id),
    ]
    out: list[str] = []
    for ref in refs:
        if ref and ref not in out:
            out.append(ref)
    return out
