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

A RECORD holding a string no destination can take (an unpaired UTF-16 surrogate such as JSON
``"\\ud800"``: valid JSON, which singer-sdk's reader accepts and which then fails every UTF-8
encoder downstream) is refused here, for every target at once: it becomes that record's dead
letter (``hrsync.deadletter``, the target's name, its ``dead_letter_path`` setting if it has
one) naming stream, record key and field path, and the records around it go on. orjson refuses
such a line, so the check (:func:`unencodable`) only runs on lines read again by singer-sdk's
reader, and only walks the message when the raw line has a ``\\uD800``-``\\uDFFF`` escape (or such a
character). A target whose run depends on every record defines
``record_refused(stream, record_key, record, field, error)``, called after the letter is filed
(target-payroll-file holds its file; target-benefits-834 leaves that employee's family as
the carrier has it).
"""

from __future__ import annotations

import io
import sys
import typing as t

import orjson
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from hrsync.shapes import UNPAIRED as UNPAIRED  # re-exported
from hrsync.shapes import json_kind, unencodable

#: the message type a refused record is handed on as (counted apart, never reaches a sink)
REFUSED = "HRSYNC_REFUSED_RECORD"


def _may_hold_surrogate(line: t.Any) -> bool:
    """Whether a line may hold an unpaired surrogate: a ``\\uD...`` escape, or a surrogate
    character (which UTF-8 cannot encode). Two C-speed scans; the walk then decides."""
    text = str(line)
    if "\\ud" in text or "\\uD" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class SingerObjectReader(SingerReader):
    """singer-sdk's reader, numbering lines and refusing any line that is not a JSON object."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        #: called before an error ends the reading (hrsync.direct hands over records it holds)
        self.before_failing: t.Callable[[], None] | None = None
        #: stream -> key properties, from the SCHEMA messages read (to name a refused record)
        self.keys: dict[str, list[str]] = {}
        self.schemas: dict[str, dict] = {}
        self._letters: t.Any = None
        self._plugin: t.Any = None

    def process_lines(
        self, file_input: t.IO[str] | None, callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        callbacks = dict(callbacks)
        on_schema = callbacks.get("SCHEMA")
        self._plugin = getattr(on_schema, "__self__", None)  # the Target (or mapper) reading

        def schema(message: dict) -> None:
            stream = message.get("stream")
            if type(stream) is str:
                self.keys[stream] = list(message.get("key_properties") or ())
                self.schemas[stream] = message.get("schema") or {}
            if on_schema is not None:
                on_schema(message)

        callbacks["SCHEMA"] = schema
        callbacks[REFUSED] = self.refuse
        if file_input is None and isinstance(sys.stdin, io.TextIOWrapper):
            # bytes that are not UTF-8 become lone surrogates (that record's dead letter)
            # rather than a UnicodeDecodeError that ends the run at an unknown line
            sys.stdin.reconfigure(errors="surrogateescape")
            file_input = sys.stdin
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
        if _may_hold_surrogate(line) and message.get("type") == "RECORD":
            bad = unencodable(message.get("record"))
            if bad is not None:
                return {"type": REFUSED, "message": message, "field": bad[0], "reason": bad[1]}
        return message

    def record_key(self, stream: str, record: t.Any) -> str:
        """The record's key properties' values (``a/b``), ``<missing>`` without them; a
        target's sink with a ``record_key(record)`` method names its records itself."""
        keys = self.keys.get(stream) or []
        if type(record) is not dict or not keys or any(record.get(k) is None for k in keys):
            return "<missing>"
        text = "/".join(str(record[k]) for k in keys)
        return text.encode("utf-8", "backslashreplace").decode()

    def refuse(self, refused: dict) -> None:
        """A RECORD no destination can take: its dead letter, then the next line."""
        message, field, reason = refused["message"], refused["field"], refused["reason"]
        stream = str(message.get("stream"))
        record = message.get("record")
        key = self.record_key(stream, record)
        sinks = getattr(self._plugin, "_sinks_active", None) or {}
        keyer = getattr(sinks.get(stream), "record_key", None)
        if callable(keyer) and type(record) is dict:  # the key the target files letters under
            try:
                own = keyer(record)
            except Exception:  # the reader's own key then names it
                own = None
            if own is not None:
                key = str(own).encode("utf-8", "backslashreplace").decode()
        error = (
            f"stream {stream}, record {key}: field {field}: {reason} (line {self.line_number}: "
            "text that cannot be encoded as UTF-8; fix it at the source, then replay)"
        )
        if self.before_failing is not None:
            self.before_failing()  # the records before it go first, in order
        if self._letters is None:
            from hrsync.deadletter import DeadLetterStore, TargetDeadLetters

            plugin = self._plugin
            name = str(getattr(plugin, "name", None) or "unknown-plugin")
            config = getattr(plugin, "config", None) or {}
            self._letters = TargetDeadLetters(
                name, DeadLetterStore(config.get("dead_letter_path") or None)
            )
        letters = self._letters
        letters.stream(stream, self.schemas.get(stream) or {}, self.keys.get(stream) or [])
        letters.dead(
            stream=stream,
            record_key=key,
            record=record if type(record) is dict else {"record": record},
            error=error,
            error_class="unpaired_surrogate",
        )
        logger = getattr(self._plugin, "logger", None)
        if logger is not None:
            logger.warning("record refused, kept as a dead letter: %s", error)
        hook = getattr(self._plugin, "record_refused", None)
        if callable(hook):  # a target whose run depends on every record (a held file...)
            hook(stream, key, record, field, error)


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
