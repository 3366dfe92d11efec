"""Reading Singer messages in targets: a line that is not a JSON object fails naming the line.

singer-sdk 0.54's reader checks ``{"type"}.issubset(line)``, which raises a bare ``TypeError``
for a line that is a JSON number, boolean or null. Targets set
``message_reader_class = SingerObjectReader`` to get ``line 3: a Singer message must be a JSON
object, got number`` instead (and the line number on unparseable lines too).

It also reads lines with orjson where that gives exactly what singer-sdk's reader gives
(``json.loads`` with ``parse_float=Decimal``): a line whose message holds no float at all
(strings, integers within 64 bits, booleans, nulls, objects, arrays). A line with a number that
orjson reads as a float (a fraction, an exponent, an integer beyond 64 bits), or one orjson
refuses (NaN, a lone surrogate, nesting deeper than it reads, bad JSON) is read again by
singer-sdk's reader, whose value or error is the one used: the same Decimal numbers and the same
errors as before, about three times faster for the usual record.

``before_failing``, when set, is called before an error ends the reading: hrsync.direct hands
over the records it holds, so every record before the failing line is processed, as it would
be one at a time.
"""

from __future__ import annotations

import typing as t

import orjson
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from hrsync.shapes import json_kind


class SingerObjectReader(SingerReader):
    """singer-sdk's reader, numbering lines and refusing any line that is not a JSON object."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        #: called before an error ends the reading (hrsync.direct hands over records it holds)
        self.before_failing: t.Callable[[], None] | None = None

    def process_lines(
        self, file_input: t.IO[str] | None, callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        try:
            return super().process_lines(file_input, callbacks)
        except Exception:
            if self.before_failing is not None:
                self.before_failing()  # the records before the failing line, as before
            raise

    def deserialize_json(self, line: t.Any) -> dict:
        self.line_number += 1
        try:
            message: t.Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            message = None  # singer-sdk's reader says what is wrong (or reads NaN, surrogates)
        if type(message) is dict and not _has_float(message):
            return message
        try:
            message = super().deserialize_json(line)
        except InvalidInputLine as exc:
            raise InvalidInputLine(f"line {self.line_number}: {exc}") from exc
        except RecursionError as exc:  # valid JSON, nested deeper than any parser recurses
            raise InvalidInputLine(
                f"line {self.line_number}: JSON nested too deeply to read (no record can be "
                f"taken from it): {str(line)[:120]!r}..."
            ) from exc
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"line {self.line_number}: a Singer message must be a JSON object, got "
                f"{json_kind(message)}: {str(line)[:200]!r}"
            )
        return message


#: value types that hold no float (and nothing that could)
_FLAT = frozenset({str, int, bool, type(None)})


def _has_float(message: dict) -> bool:
    """Whether a float is anywhere in a parsed message (orjson's floats are not singer-sdk's
    Decimals); nesting deeper than Python recurses counts as yes (singer-sdk's reader then
    decides)."""
    record = message.get("record")
    if type(record) is dict and _FLAT.issuperset(map(type, record.values())):
        # the usual RECORD: a flat record, and flat values beside it
        for key, value in message.items():
            if type(value) not in _FLAT and key != "record":
                break
        else:
            return False
    try:
        return _floats(message)
    except RecursionError:
        return True


def _floats(value: dict | list) -> bool:
    items = value.values() if type(value) is dict else value
    kinds = set(map(type, items))
    if float in kinds:
        return True
    if dict in kinds or list in kinds:
        for item in items:
            kind = type(item)
            if (kind is dict or kind is list) and _floats(item):
                return True
    return False
