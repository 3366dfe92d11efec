"""Identifiers checked before they are written anywhere: a wrong one is refused, never sent.

Each check returns why a value is not valid (a reason that names no part of the value, so it
can go into a dead letter's error and an alert), or ``None`` when it is.
"""

from __future__ import annotations

import re

__all__ = ["ssn_digits", "ssn_problem"]

_SSN = re.compile(r"(\d{3})-?(\d{2})-?(\d{4})")


def ssn_digits(value: str) -> str:
    """The nine digits of ``123-45-6789`` / ``123 45 6789`` / ``123456789`` (else the text)."""
    return re.sub(r"[\s-]", "", value.strip())


def ssn_problem(value: str) -> str | None:
    """Why ``value`` is not a Social Security number the SSA can have issued, or None.

    The SSA never issues area number 000, 666 or 900-999 (the 9xx range is ITINs and
    advertising numbers), group number 00 or serial number 0000 (SSA, "Social Security Number
    Randomization", and POMS RM 10201.035). Dashes and spaces between the groups are allowed.
    """
    text = value.strip().replace(" ", "-")
    m = _SSN.fullmatch(text)
    if m is None:
        return "is not a Social Security number (expected 9 digits, NNN-NN-NNNN)"
    area, group, serial = m.groups()
    if area == "000" or area == "666" or area >= "900":
        return "has an area number the SSA never issues (000, 666 or 900-999)"
    if group == "00":
        return "has group number 00, which the SSA never issues"
    if serial == "0000":
        return "has serial number 0000, which the SSA never issues"
    return None
