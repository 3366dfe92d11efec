"""The compiled line path (``Layout.row``) gives exactly what the general path
(``Layout.row_reference``) gives: the same texts, or the same error naming the same record, field
and reason, for odd values of every type in every column of both shipped layouts and a CSV
layout with every option (strip, case, check, enum map, boolean, integer, maximum, raw)."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest

from hrsync.errors import RecordError
from target_payroll_file.layout import Layout, load_layout, parse_layout
from target_payroll_file.writer import _line_json

ODD: list[Any] = [
    None, "", "  ", "\t", "x", "Zoë", "O'Brien", "D\u2019Arcy", "小龙", "Zo\u200be", "\ufeffAna",
    "=1+1", "+1", "-1", "@a", "\t=1", "\r=1", "\uff1d1", "a,b", 'q"q', "multi\nline", "A" * 61,
    "T" * 100, "x" * 121, "123-45-6789", "123 45 6789", "666-12-3456", "123456789", "12-34",
    "CA", " CA ", "ca", "USD", "usd", "2026-01-31", "2026-13-01", "2026-02-30", "0999-01-01",
    "20260131", "2026-01-31T08:00:00Z", " 2026-01-31 ", "0", "0.00", "00.00", "0.5", "10.5",
    "12.345", "-5", "-5.00", "1,234.50", " 18.25 ", "85000.00", "085000.00", "1e3", "NaN",
    "Infinity", "9" * 16 + ".00", "100", "abc", "Single", "Married", "Head of Household", "single",
    "active", "inactive", "Salary", "Hourly", "Year", "Hour", "Exempt", "Non-exempt",
    "Terminated", "Full-Time", "percent", "per_pay_period", "yes", "no", "Y", "true", "maybe",
    "EMP", "PAY", "\ud800", 0, 1, -3, 12, 2**70, True, False, Decimal("31.5"), Decimal("12.345"),
    Decimal("-1"), Decimal("1E+2"), Decimal("NaN"), 31.5, [], {}, ["x"],
]  # fmt: skip

EVERY_OPTION: dict[str, Any] = {
    "name": "every_option",
    "streams": {
        "people": {"set": {"kind": "P"}, "rename": {"status": "state"}, "required": ["id"]},
        "guarded": {"set": {"kind": "=K"}},
    },
    "columns": [
        {"name": "KIND", "source": "kind", "type": "enum", "values": ["P", "=K"]},
        {"name": "ID", "source": "id", "required": True, "max_length": 8, "pattern": "[0-9a-z]+"},
        {"name": "UP", "source": "code", "case": "upper", "strip": " -"},
        {"name": "LOW", "source": "code", "case": "lower"},
        {"name": "SSN", "source": "ssn", "strip": "- ", "pattern": "[0-9]{9}", "check": "ssn"},
        {"name": "RAW", "source": "code", "raw": True},
        {"name": "DEF", "source": "note", "default": "-none-"},
        {"name": "N", "source": "n", "type": "integer", "minimum": -5, "maximum": 100},
        {"name": "AMT", "source": "amount", "type": "decimal", "scale": 3},
        {"name": "AMT0", "source": "amount", "type": "decimal", "scale": 0, "minimum": 1},
        {"name": "D", "source": "day", "type": "date", "format": "%d.%m.%Y"},
        {"name": "B", "source": "flag", "type": "boolean", "true_value": "+", "false_value": "-"},
        {"name": "S", "source": "state", "type": "enum", "map": {"a": "=A"}, "map_default": "Z"},
        {"name": "C", "const": "@c"},
    ],
}


def fields(layout: Layout) -> list[str]:
    names = {c.source for c in layout.columns if c.source}
    for rule in layout.streams.values():
        names |= set(rule.rename)
    return sorted(n for n in names if n)


def outcome(call: Any) -> Any:
    try:
        return call()
    except RecordError as error:
        return ("error", str(error))


@pytest.mark.parametrize("layout", ["payroll_changes", "payroll_changes_fixed", "every_option"])
def test_compiled_row_equals_the_general_path(layout: str) -> None:
    lay = parse_layout(EVERY_OPTION) if layout == "every_option" else load_layout(layout)
    names = fields(lay)
    rng = random.Random(14)
    errors = lines = 0
    for stream in lay.streams:
        for n in range(1500):
            # mostly good-looking records with a few odd fields, some entirely odd
            record = {name: rng.choice(ODD) for name in names if rng.random() < 0.6}
            if n % 3:
                record = {name: value for name, value in record.items() if rng.random() < 0.2}
                record |= {"employee_id": str(n), "id": f"a{n}", "first_name": "Ann",
                           "last_name": "Lee", "work_state": "CA", "effective_date": "2026-01-01",
                           "rate": "10.00", "pay_type": "Salary", "paid_per": "Year"}  # fmt: skip
            key = str(n)
            got = outcome(lambda: lay.row(stream, record, key))  # noqa: B023
            want = outcome(lambda: lay.row_reference(stream, record, key))  # noqa: B023
            assert got == want, (stream, record)
            errors += isinstance(got, tuple)
            lines += isinstance(got, list)
    assert errors > 500 and lines > 500  # both outcomes were exercised


def test_line_checksum_text_is_json_dumps_for_every_character() -> None:
    """A line's ledger text (its sha256 is what the ledger keeps) is json.dumps(values,
    ensure_ascii=False) whether or not a value needs escaping: every ASCII character, the
    Unicode line separators, non-Latin text and emoji, alone and mixed with plain cells."""
    rng = random.Random(14)
    alphabet = [chr(c) for c in range(128)] + ["é", "小", "\u2028", "\u200b", "😀", "\x85"]
    for n in range(3000):
        values = ["".join(rng.choices(alphabet, k=rng.randrange(4))) for _ in range(n % 7)]
        if n % 2:  # mostly plain text: the fast join
            values = [v.translate(dict.fromkeys(range(32))).replace('"', "").replace("\\", "")
                      for v in values]  # fmt: skip
        assert _line_json(values) == json.dumps(values, ensure_ascii=False), values
