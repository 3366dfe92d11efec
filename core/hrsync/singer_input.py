"""Reading Singer messages in targets: a line that is not a JSON object fails naming the line.

singer-sdk 0.54's reader checks ``{"type"}.issubset(line)``, which raises a bare ``TypeError``
for a line that is a JSON number, boolean or null. Targets set
``message_reader_class = SingerObjectReader`` to get ``line 3: a Singer message must be a JSON
object, got number`` instead (and the line number on unparseable lines too).
"""

from __future__ import annotations

import typing as t

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from hrsync.shapes import json_kind


class SingerObjectReader(SingerReader):
    """singer-sdk's reader, numbering lines and refusing any line that is not a JSON object."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0

    def deserialize_json(self, line: t.Any) -> dict:
        self.line_number += 1
        try:
            message: t.Any = super().deserialize_json(line)
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
