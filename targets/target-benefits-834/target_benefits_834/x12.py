# ruff: noqa: RUF001, RUF002  (transliteration tables and examples are look-alike letters)
"""X12 text: separators, the character set data may use, and segment rendering.

Separators (fixed, the common 005010 choice): element ``*``, component ``:``, repetition
``^``, segment ``~`` (each segment on its own line: a newline after ``~`` is allowed and
ignored by readers). No data element ever contains any of them.

How names and addresses become X12 text (:func:`x12_text`):

1. Typographic apostrophes and quotes become ASCII, then **apostrophes are dropped**
   (``O'Brien`` -> ``OBRIEN``, ``D’Alessandro`` -> ``DALESSANDRO``): most carriers' companion
   guides allow only letters, digits, spaces and hyphens in names.
2. NFKD decomposition, combining marks removed (``é`` -> ``e``, ``ñ`` -> ``n``, ``Ş`` -> ``S``,
   ``ό`` -> ``ο``); letters without a decomposition are spelled out (``Ł`` -> ``L``, ``Ø`` -> ``O``,
   ``Æ`` -> ``AE``, ``Œ`` -> ``OE``, ``ß`` -> ``SS``, ``Þ`` -> ``TH``, ``ı`` -> ``I``...), Greek
   and Cyrillic letters are transliterated letter by letter (simplified ISO 843 / ISO 9-style
   tables below).
3. Upper case; anything outside ``A-Z 0-9`` and the kind's few punctuation marks becomes a
   space (names keep ``-`` only; addresses also ``& ( ) , . /``); spaces collapsed, trimmed,
   cut to the element's maximum length.

A name that still has letters of another script (Chinese, Arabic, Korean, ...) has no spelling
here: :class:`Untransliterable` is raised and the member is dead-lettered with that reason
(a Latin preferred/legal name in the HRIS fixes it). A library such as ``anyascii`` would
cover every script; it is not a dependency of this project.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
SEGMENT = "~"
SEPARATORS = frozenset((ELEMENT, COMPONENT, REPETITION, SEGMENT))
_FORBIDDEN = (COMPONENT, REPETITION, SEGMENT, "\n", "\r")
_FORBIDDEN_RE = re.compile("[" + re.escape("".join(_FORBIDDEN)) + "]")  # one C scan

_APOSTROPHES = dict.fromkeys(map(ord, "’‘ʼʻ`´′"), "'") | dict.fromkeys(map(ord, "“”„″"), '"')
_SPELLED = {
    "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe",
    "ß": "SS", "ẞ": "SS", "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "TH", "þ": "th",
    "ı": "i", "Ħ": "H", "ħ": "h", "Ŧ": "T", "ŧ": "t", "Ŀ": "L", "ŀ": "l", "Ŋ": "N", "ŋ": "n",
    "ſ": "s", "ĸ": "k",
}  # fmt: skip
_CYRILLIC = dict(zip(
    "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯІЇЄҐ",
    ["A", "B", "V", "G", "D", "E", "E", "ZH", "Z", "I", "Y", "K", "L", "M", "N", "O", "P", "R",
     "S", "T", "U", "F", "KH", "TS", "CH", "SH", "SHCH", "", "Y", "", "E", "YU", "YA", "I",
     "YI", "YE", "G"],
    strict=True,
))  # fmt: skip
_GREEK = dict(zip(
    "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    ["A", "V", "G", "D", "E", "Z", "I", "TH", "I", "K", "L", "M", "N", "X", "O", "P", "R", "S",
     "T", "Y", "F", "CH", "PS", "O"],
    strict=True,
))  # fmt: skip
_TABLE = str.maketrans(
    {**_SPELLED, **_CYRILLIC, **{k.lower(): v for k, v in _CYRILLIC.items()},
     **_GREEK, **{k.lower(): v for k, v in _GREEK.items()}, "ς": "S"}
)  # fmt: skip
_KEEP = {"name": "-", "text": "-&(),./", "id": "-./"}
_ALLOWED = {kind: re.compile(rf"[^A-Z0-9 {re.escape(extra)}]") for kind, extra in _KEEP.items()}
_SPACES = re.compile(r"\s+")


class Untransliterable(ValueError):
    """A value has letters this module cannot spell in the X12 character set."""


def _strip_marks(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


def x12_text(value: object, *, kind: str = "text", max_len: int | None = None) -> str:
    """``value`` as upper-case X12 basic-character-set text (see the module docstring).

    ``kind`` is ``name`` (letters, digits, spaces, hyphens), ``text`` (addresses: also
    ``& ( ) , . /``) or ``id`` (identifiers: ``-./``). Raises :class:`Untransliterable` when
    letters of another script remain. Never returns a separator.
    """
    if value is None:
        return ""
    return _x12_text(str(value), kind, max_len)


@functools.lru_cache(maxsize=100_000)  # names, cities and codes repeat a great deal
def _x12_text(value: str, kind: str, max_len: int | None) -> str:
    text = value.translate(_APOSTROPHES).replace("'", "")
    if text.isascii():
        text = text.upper()
    else:
        text = _strip_marks(_strip_marks(text).translate(_TABLE)).upper()
    foreign = [ch for ch in text if ord(ch) > 127 and unicodedata.category(ch).startswith("L")]
    if foreign:
        script = unicodedata.name(foreign[0], "UNKNOWN").split(" ")[0]
        script = script if len(script) <= 3 else script.title()
        raise Untransliterable(f"has {script} letters with no Latin spelling here")
    text = _SPACES.sub(" ", _ALLOWED[kind].sub(" ", text)).strip(" -")
    if max_len is not None:
        text = text[:max_len].rstrip(" -")
    return text


def digits(value: object) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def segment(seg_id: str, *elements: object) -> str:
    """``ID*E1*E2~`` with trailing empty elements dropped. Elements are already X12 text;
    a separator inside one is a programming error, never silently emitted."""
    values = ["" if e is None else str(e) for e in elements]
    while values and values[-1] == "":
        values.pop()
    text = ELEMENT.join((seg_id, *values))
    if text.count(ELEMENT) != len(values) or _FORBIDDEN_RE.search(text):
        bad = next(v for v in values if SEPARATORS & set(v) or "\n" in v or "\r" in v)
        raise ValueError(f"{seg_id}: element {bad!r} contains an X12 separator")
    return text + SEGMENT


def isa_field(value: str, width: int) -> str:
    """ISA elements are fixed width: padded with spaces (and never longer)."""
    text = x12_text(value, kind="id")
    if len(text) > width:
        raise ValueError(f"ISA value {text!r} is longer than {width} characters")
    return text.ljust(width)


def join_lines(segments: Iterable[str]) -> str:
    return "".join(s + "\n" for s in segments)
