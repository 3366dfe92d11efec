"""Value transforms and computed fields, each compiled once from its profile options.

Every transform is a function ``(value, record) -> value`` that passes ``None`` through and
raises :class:`TransformError` (a reason, no record context) on a value it cannot convert; the
mapper adds the stream, record key and field. Expensive conversions (dates, phones, countries)
memoise their results in a bounded cache: HR columns repeat values a lot.

Character policy (names, titles and any text through ``name``, ``trim``, ``collapse_spaces``,
``nfc``, ``upper``, ``lower`` and the text computes), see :func:`clean_text`:

* line breaks, tabs and the other whitespace controls (CR, LF, VT, FF, NEL, U+2028/U+2029)
  become one space: a title never starts a new line in a line-based file or LDIF;
* every other control character (C0/C1, NUL included) is removed;
* format characters are removed (bidi marks and embeddings/isolates, zero-width space, word
  joiner, byte-order mark, soft hyphen, tag characters), except ZERO WIDTH JOINER and ZERO
  WIDTH NON-JOINER between two letters of a script that needs them (Arabic, Persian, Indic,
  Sinhala...: never between Latin, Greek or Cyrillic letters);
* accents, apostrophes, hyphens and non-Latin scripts stay as they are.

E-mail addresses (``email``) are identifiers, not text: any control, format or whitespace
character in one is refused (the record becomes a dead letter naming the field), and so is an
address that is not a dot-atom ``local@domain`` (RFC 5322 / RFC 6531: letters of any script,
digits and ``!#$%&'*+/=?^_`{|}~-`` in the local part, LDH or IDN labels in the domain).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson

Transform = Callable[[Any, dict[str, Any]], Any]
Getter = Callable[[dict[str, Any]], Any]

CACHE_LIMIT = 50_000


class TransformError(ValueError):
    """A value that cannot be transformed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_empty(value: Any) -> bool:
    """None, or a string of only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _memo(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Bounded memo for a pure one-argument conversion (cleared when full: memory stays flat)."""
    memo: dict[Any, Any] = {}

    def wrapped(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            pass
        except TypeError:  # unhashable
            return fn(value)
        result = fn(value)
        if len(memo) >= CACHE_LIMIT:
            memo.clear()
        memo[value] = result
        return result

    return wrapped


def _require_str(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    raise TransformError(f"expected text for {what}, got {type(value).__name__} {value!r}")


# --- text -------------------------------------------------------------------------------------


#: whitespace controls and separators that would start a new line (or cell) somewhere
_LINE_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
_JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
#: scripts whose letters never need a joiner between them
_NO_JOINER_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "CJK", "HANGUL", "HIRAGANA", "KATAKANA")


def _joins_script(ch: str) -> bool:
    """A letter or mark of a script that uses ZWJ / ZWNJ inside words (Arabic, Indic...)."""
    if ch.isascii() or unicodedata.category(ch)[0] not in "LM":
        return False
    return not unicodedata.name(ch, "").startswith(_NO_JOINER_SCRIPTS)


def clean_text(text: str) -> str:
    """The character policy (module docstring): line breaks to a space, other controls and
    format characters removed, joiners kept only inside scripts that need them."""
    if text.isprintable():  # no control, format, separator or unassigned character: as is
        return text
    text = _LINE_BREAKS.sub(" ", text)
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat == "Cs":
            continue
        if cat == "Cf" and not (
            ch in _JOINERS
            and 0 < i < last
            and _joins_script(text[i - 1])
            and _joins_script(text[i + 1])
        ):
            continue
        out.append(ch)
    return "".join(out)


def normalise_name(value: str) -> str:
    """Character policy, trim, collapse inner whitespace (incl. no-break spaces), compose to
    NFC. Accents stay."""
    return unicodedata.normalize("NFC", " ".join(clean_text(value).split()))


def _name(value: Any, _rec: dict[str, Any]) -> Any:
    if value is None:
        return None
    return normalise_name(_require_str(value, "a name"))


def _trim(value: Any, _rec: dict[str, Any]) -> Any:
    return clean_text(value).strip() if isinstance(value, str) else value


def _collapse(value: Any, _rec: dict[str, Any]) -> Any:
    return " ".join(clean_text(value).split()) if isinstance(value, str) else value


def _nfc(value: Any, _rec: dict[str, Any]) -> Any:
    return unicodedata.normalize("NFC", clean_text(value)) if isinstance(value, str) else value


def _upper(value: Any, _rec: dict[str, Any]) -> Any:
    return clean_text(value).upper() if isinstance(value, str) else value


def _lower(value: Any, _rec: dict[str, Any]) -> Any:
    return clean_text(value).lower() if isinstance(value, str) else value


# RFC 5322 dot-atom with RFC 6531 (non-ASCII letters and digits of any script) in the local
# part; no quoted local parts, comments or address literals: no HR system issues them and
# they are what breaks the directories and filters the address ends up in.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]|[^\x00-\x7f]"
_LOCAL = re.compile(rf"(?:{_ATEXT})+(?:\.(?:{_ATEXT})+)*")
_LABEL = re.compile(r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9-]|[^\x00-\x7f]){0,62}")


_ASCII_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*"
)


def email_problem(text: str) -> str | None:
    """Why ``text`` (trimmed) is not an e-mail address this project sends anywhere, or None."""
    if (
        len(text) <= 254
        and text.isascii()
        and _ASCII_EMAIL.fullmatch(text)
        and text.index("@") <= 64
        and not text.endswith("-")
    ):
        return None  # the common case, in one regex; everything else gets its reason below
    for ch in text:
        if not ch.isprintable() or ch.isspace():
            name = unicodedata.name(ch, "a control character")
            return f"contains U+{ord(ch):04X} ({name}), an invisible or control character"
    if text.count("@") != 1:
        return "is not an e-mail address (needs exactly one @)"
    local, _, domain = text.partition("@")
    if not local or len(local) > 64 or not _LOCAL.fullmatch(local):
        return "is not an e-mail address (the part before @ is not a dot-atom)"
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or any(not _LABEL.fullmatch(lb) or lb.endswith("-") for lb in labels)
        or labels[-1].isdigit()
    ):
        return "is not an e-mail address (the domain is not a host name)"
    for ch in text:
        if not ch.isascii() and unicodedata.category(ch)[0] not in "LMN":
            return f"contains U+{ord(ch):04X} ({unicodedata.name(ch, '?')}), not a letter or digit"
    return None


def _email(value: Any, _rec: dict[str, Any]) -> Any:
    """Trim and lower-case the domain; the local part keeps its case (RFC 5321)."""
    if value is None:
        return None
    text = _require_str(value, "an e-mail address").strip()
    problem = email_problem(text)
    if problem is not None:
        raise TransformError(f"{value!r} {problem}")
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


# --- scalars ---------------------------------------------------------------------------------


def _string(value: Any, _rec: dict[str, Any]) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise TransformError(f"cannot make text of {type(value).__name__} {value!r}")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TransformError(f"expected a number, got boolean {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        # "75000 USD", "$85,000.00", "18.50/hr": take the leading number
        m = re.match(r"^[^\d+-]{0,3}([+-]?\d+(?:\.\d+)?)", text)
        if m:
            try:
                return Decimal(m.group(1))
            except InvalidOperation:  # pragma: no cover - the regex admits only numbers
                pass
    raise TransformError(f"{value!r} is not a number")


def _integer(value: Any, _rec: dict[str, Any]) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise TransformError(f"{value!r} is not a whole number")
    return int(number)


def _number(value: Any, _rec: dict[str, Any]) -> Any:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    number = _to_decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", ""})


def _boolean(value: Any, _rec: dict[str, Any]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise TransformError(f"{value!r} is not a boolean")


def _money_factory(places: int) -> Transform:
    quantum = Decimal(1).scaleb(-places)

    def money(value: Any, _rec: dict[str, Any]) -> Any:
        if value is None:
            return None
        return str(_to_decimal(value).quantize(quantum))

    return money


# --- dates -----------------------------------------------------------------------------------

_NUMERIC_TOKENS = {
    "YYYY": r"(?P<Y>\d{4})",
    "MM": r"(?P<M>\d{2})",
    "M": r"(?P<M>\d{1,2})",
    "DD": r"(?P<D>\d{2})",
    "D": r"(?P<D>\d{1,2})",
    "HH": r"(?P<h>\d{2})",
    "H": r"(?P<h>\d{1,2})",
    "mm": r"(?P<m>\d{2})",
    "ss": r"(?P<s>\d{2})",
}
_TOKEN_RE = re.compile(r"YYYY|MM|M|DD|D|HH|H|mm|ss|[A-Za-z]+|[^A-Za-z]")


def _numeric_format(fmt: str) -> re.Pattern[str] | None:
    """A regex for formats of numeric tokens only (fast path), or None (use pendulum)."""
    parts = []
    for tok in _TOKEN_RE.findall(fmt):
        if tok in _NUMERIC_TOKENS:
            parts.append(_NUMERIC_TOKENS[tok])
        elif tok.isalpha():
            return None
        else:
            parts.append(re.escape(tok))
    try:
        return re.compile("^" + "".join(parts) + "$")
    except re.error:  # a repeated token (YYYY twice): leave it to pendulum
        return None


def _split_format(fmt: str) -> tuple[str, tuple[str, str, str]] | None:
    """`M/D/YYYY`-style formats: one separator between three date tokens (fastest path)."""
    toks = _TOKEN_RE.findall(fmt)
    if len(toks) != 5 or toks[1] != toks[3] or toks[1].isalnum():
        return None
    parts = (toks[0], toks[2], toks[4])
    if sorted(p[0] for p in parts) != ["D", "M", "Y"] or any(
        p not in _NUMERIC_TOKENS for p in parts
    ):
        return None
    return toks[1], (parts[0][0], parts[1][0], parts[2][0])


def _date_parser(formats: Sequence[str], as_datetime: bool, tz: str) -> Transform:
    zone = UTC if tz == "UTC" else ZoneInfo(tz)
    compiled: list[tuple[str, re.Pattern[str] | None]] = [
        (f, None if f == "iso" else _numeric_format(f)) for f in formats
    ]
    split_first = _split_format(formats[0]) if not as_datetime else None

    def emit(dt: datetime | date) -> str:
        if not as_datetime:
            return (dt.date() if isinstance(dt, datetime) else dt).isoformat()
        if not isinstance(dt, datetime):
            dt = datetime(dt.year, dt.month, dt.day, tzinfo=zone)
        elif dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)
        return dt.isoformat()

    def parse(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return emit(value)
        text = _require_str(value, "a date").strip()
        if split_first is not None:
            sep, order = split_first
            bits = text.split(sep)
            if len(bits) == 3 and all(b.isdigit() for b in bits):
                got = dict(zip(order, bits, strict=True))
                if len(got["Y"]) == 4:
                    try:
                        return date(int(got["Y"]), int(got["M"]), int(got["D"])).isoformat()
                    except ValueError:
                        pass
        for fmt, rx in compiled:
            try:
                if fmt == "iso":
                    try:
                        return emit(datetime.fromisoformat(text.replace("Z", "+00:00")))
                    except ValueError:
                        import pendulum

                        parsed = pendulum.parse(text, strict=True)
                        if isinstance(parsed, datetime | date):
                            return emit(parsed)
                        continue
                if rx is not None:
                    m = rx.match(text)
                    if m is None:
                        continue
                    g = m.groupdict()
                    if "h" in g:
                        return emit(
                            datetime(
                                int(g["Y"]),
                                int(g["M"]),
                                int(g["D"]),
                                int(g["h"]),
                                int(g.get("m") or 0),
                                int(g.get("s") or 0),
                            )
                        )
                    return emit(date(int(g["Y"]), int(g["M"]), int(g["D"])))
                import pendulum

                return emit(pendulum.from_format(text, fmt, tz=tz if as_datetime else "UTC"))
            except (ValueError, TypeError, OverflowError):
                continue
        raise TransformError(f"{value!r} is not a valid date in any of the formats {list(formats)}")

    memo: dict[Any, Any] = {None: None}

    def transform(value: Any, _rec: dict[str, Any]) -> Any:
        try:
            return memo[value]
        except KeyError:
            pass
        except TypeError:  # unhashable: not a date anyway
            return parse(value)
        result = None if isinstance(value, str) and not value.strip() else parse(value)
        if len(memo) >= CACHE_LIMIT:
            memo.clear()
            memo[None] = None
        memo[value] = result
        return result

    return transform


# --- countries -------------------------------------------------------------------------------


def _country_key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if ch.isalnum())


@cache
def country_index() -> dict[str, str]:
    """Normalised country name / alias / alpha-2 / alpha-3 -> ISO 3166-1 alpha-2."""
    data = orjson.loads((resources.files("map_hr") / "countries.json").read_bytes())
    index: dict[str, str] = {}
    for c in data["countries"]:
        code = c["alpha2"]
        for name in [code, c["alpha3"], *c["names"], *c.get("aliases", [])]:
            index.setdefault(_country_key(name), code)
    return index


def to_country_code(value: str) -> str | None:
    """ISO 3166-1 alpha-2 for a name, alias or code; None if unknown."""
    return country_index().get(_country_key(value))


def _country_factory(on_unknown: str) -> Transform:
    def convert(value: Any) -> Any:
        text = _require_str(value, "a country")
        code = to_country_code(text)
        if code is not None:
            return code
        if on_unknown == "null":
            return None
        if on_unknown == "keep":
            return text
        raise TransformError(f"{value!r} is not a known country name or ISO 3166 code")

    memo = _memo(convert)

    def country(value: Any, _rec: dict[str, Any]) -> Any:
        if is_empty(value):
            return None
        return memo(value)

    return country


# --- phones ----------------------------------------------------------------------------------


def _phone_factory(region: str, region_from: Getter | None, on_invalid: str) -> Transform:
    import phonenumbers

    def convert(key: tuple[str, str]) -> Any:
        text, reg = key
        try:
            parsed = phonenumbers.parse(text, reg)
        except phonenumbers.NumberParseException as exc:
            parsed = None
            why = str(exc)
        else:
            why = "not a possible number"
        if parsed is not None and phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if on_invalid == "null":
            return None
        if on_invalid == "keep":
            return text
        raise TransformError(f"{text!r} is not a phone number (region {reg}): {why}")

    memo = _memo(convert)

    def phone(value: Any, rec: dict[str, Any]) -> Any:
        if is_empty(value):
            return None
        reg = region
        if region_from is not None:
            other = region_from(rec)
            if isinstance(other, str) and other.strip():
                reg = to_country_code(other) or region
        return memo((_require_str(value, "a phone number").strip(), reg))

    return phone


# --- the registry ----------------------------------------------------------------------------

SIMPLE: dict[str, Transform] = {
    "name": _name,
    "trim": _trim,
    "collapse_spaces": _collapse,
    "nfc": _nfc,
    "upper": _upper,
    "lower": _lower,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "email": _email,
}

# JSON schema each transform produces (for the output SCHEMA).
OUTPUT_SCHEMA: dict[str, dict[str, Any]] = {
    "name": {"type": "string"},
    "trim": {"type": "string"},
    "collapse_spaces": {"type": "string"},
    "nfc": {"type": "string"},
    "upper": {"type": "string"},
    "lower": {"type": "string"},
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "email": {"type": "string", "format": "email"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
    "phone": {"type": "string"},
    "money": {"type": "string"},
}

DEFAULT_DATE_FORMATS = ("iso",)


def build_transform(
    spec: str | Mapping[str, Any], path_getter: Callable[[str], Getter]
) -> Transform:
    """Compile one transform spec (a name, or ``{name: options}``)."""
    options: Mapping[str, Any]
    if isinstance(spec, str):
        name, options = spec, {}
    else:
        ((name, options),) = spec.items()
        options = options or {}
    if name in SIMPLE:
        return SIMPLE[name]
    if name in ("date", "datetime"):
        return _date_parser(
            tuple(options.get("formats") or DEFAULT_DATE_FORMATS),
            as_datetime=name == "datetime",
            tz=options.get("timezone", "UTC"),
        )
    if name == "country":
        return _country_factory(options.get("on_unknown", "error") or "null")
    if name == "phone":
        region_from = options.get("region_from")
        return _phone_factory(
            options.get("region", "US"),
            path_getter(region_from) if region_from else None,
            options.get("on_invalid", "error") or "null",
        )
    if name == "money":
        return _money_factory(int(options.get("places", 2)))
    raise ValueError(f"unknown transform {name!r}")  # the profile schema prevents this


def transform_name(spec: str | Mapping[str, Any]) -> str:
    return spec if isinstance(spec, str) else next(iter(spec))


# --- computed fields -------------------------------------------------------------------------

Compute = Callable[[dict[str, Any]], Any]


def _text(value: Any) -> str | None:
    if is_empty(value):
        return None
    return normalise_name(value) if isinstance(value, str) else str(value)


def build_compute(
    name: str, args: Mapping[str, Getter], options: Mapping[str, Any], sources: Sequence[Getter]
) -> Compute:
    """Compile a named computation over getters; ``sources`` are the ``from`` paths."""

    def arg(key: str) -> Getter:
        try:
            return args[key]
        except KeyError:
            raise ValueError(f"compute {name!r} needs args.{key}") from None

    if name == "display_name":
        first, last = arg("first"), arg("last")
        preferred = args.get("preferred")

        def display_name(rec: dict[str, Any]) -> Any:
            given = _text(preferred(rec)) if preferred else None
            f = _text(first(rec))
            family = _text(last(rec))
            given = given or f
            if given and family and family != f:
                return f"{given} {family}"
            # mononym (no family name, or stored as first = last)
            return given or family

        return display_name

    if name == "email_local_part":
        email = arg("email")

        def email_local_part(rec: dict[str, Any]) -> Any:
            value = email(rec)
            if is_empty(value):
                return None
            text = str(value).strip()
            problem = email_problem(text)
            if problem is not None:
                raise TransformError(f"{value!r} {problem}")
            return text.rpartition("@")[0]

        return email_local_part

    if name == "coalesce":
        getters = list(sources) or list(args.values())

        def coalesce(rec: dict[str, Any]) -> Any:
            for g in getters:
                value = g(rec)
                if not is_empty(value):
                    return value
            return None

        return coalesce

    if name == "money":
        amount, currency = arg("amount"), args.get("currency")
        places = Decimal(1).scaleb(-int(options.get("places", 2)))

        def money(rec: dict[str, Any]) -> Any:
            value = amount(rec)
            if is_empty(value):
                return None
            text = str(_to_decimal(value).quantize(places))
            cur = currency(rec) if currency else None
            return f"{text} {str(cur).strip().upper()}" if not is_empty(cur) else text

        return money

    if name == "format":
        template = options.get("template")
        if not template:
            raise ValueError("compute 'format' needs a template")
        items = list(args.items())

        def fmt(rec: dict[str, Any]) -> Any:
            values = {}
            for key, g in items:
                value = g(rec)
                if is_empty(value):
                    return None
                values[key] = value
            return template.format(**values)

        return fmt

    if name == "concat":
        sep = options.get("separator", " ")
        getters = list(sources) or list(args.values())

        def concat(rec: dict[str, Any]) -> Any:
            parts = [
                clean_text(str(v)).strip() for v in (g(rec) for g in getters) if not is_empty(v)
            ]
            return sep.join(parts) if parts else None

        return concat

    if name == "truthy":
        getters = list(sources) or list(args.values())

        def truthy(rec: dict[str, Any]) -> Any:
            for g in getters:
                value = g(rec)
                if isinstance(value, str):
                    value = value.strip().lower() not in _FALSE
                if value:
                    return True
            return False

        return truthy

    if name == "equals":
        getters = list(sources) or list(args.values())
        target = options.get("value")

        def equals(rec: dict[str, Any]) -> Any:
            value = getters[0](rec)
            if isinstance(value, str) and isinstance(target, str):
                return value.strip().casefold() == target.casefold()
            return value == target

        return equals

    if name == "object":
        members = list(args.items())

        def obj(rec: dict[str, Any]) -> Any:
            """The named values as one object (an address...); null when all are empty."""
            out = {key: g(rec) for key, g in members}
            out = {key: _text_or_none(v) for key, v in out.items() if not is_empty(v)}
            return out or None

        return obj

    if name in ("current_positions", "secondary_positions"):
        return _positions_compute(name, args, options, sources)

    raise ValueError(f"unknown compute {name!r}")


def _positions_compute(
    name: str, args: Mapping[str, Getter], options: Mapping[str, Any], sources: Sequence[Getter]
) -> Compute:
    """Positions held at once (two concurrent jobs are two rows of one effective date).

    ``current_positions``: from a list of effective-dated rows (``from``), the rows of the
    latest date on or before today (a future hire: the earliest date), each as ``row_fields``
    says plus ``effective_date`` and ``is_primary``; the primary one (the row matching
    ``args.title`` and ``args.department``, else the first) comes first.
    ``secondary_positions``: from such a list, the positions that are not primary, each as
    ``row_fields`` says (output key -> key of the position).
    """
    if not sources:
        raise ValueError(f"compute {name!r} needs from: the list of rows")
    rows_of = sources[0]
    fields = dict(options.get("row_fields") or {})
    if not fields:
        raise ValueError(f"compute {name!r} needs row_fields")

    def listed(rec: dict[str, Any]) -> list[dict[str, Any]]:
        value = rows_of(rec)
        if is_empty(value):
            return []
        if not isinstance(value, list) or any(not isinstance(r, dict) for r in value):
            raise TransformError(f"expected a list of objects, got {type(value).__name__}")
        return value

    if name == "secondary_positions":

        def secondary(rec: dict[str, Any]) -> Any:
            return [
                {k: row.get(src) for k, src in fields.items()}
                for row in listed(rec)
                if not row.get("is_primary")
            ]

        return secondary

    date_key = str(options.get("date_field") or "date")
    title, department = args.get("title"), args.get("department")

    def day(row: dict[str, Any]) -> str | None:
        value = row.get(date_key)
        return str(value)[:10] if not is_empty(value) else None

    def current(rec: dict[str, Any]) -> Any:
        rows = [r for r in listed(rec) if day(r) is not None]
        if not rows:
            return None  # no job history in the input nor the store: unknown, not "none"
        today = date.today().isoformat()
        days = [str(day(r)) for r in rows]
        past = [d for d in days if d <= today]
        when = max(past) if past else min(days)
        chosen = [r for r in rows if day(r) == when]
        want = tuple(
            _fold(g(rec)) if g else None for g in (title, department)
        )  # the worker's own (primary) job
        primary = next(
            (
                i
                for i, r in enumerate(chosen)
                if (
                    _fold(r.get(fields.get("job_title", ""))),
                    _fold(r.get(fields.get("department", ""))),
                )
                == want
            ),
            0,
        )
        chosen.insert(0, chosen.pop(primary))
        return [
            {
                **{k: _text_or_none(r.get(src)) for k, src in fields.items()},
                "effective_date": when,
                "is_primary": i == 0,
            }
            for i, r in enumerate(chosen)
        ]

    return current


def _fold(value: Any) -> str | None:
    return None if is_empty(value) else str(value).strip().casefold()


def _text_or_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


COMPUTE_SCHEMA: dict[str, dict[str, Any]] = {
    "display_name": {"type": "string"},
    "email_local_part": {"type": "string"},
    "money": {"type": "string"},
    "format": {"type": "string"},
    "concat": {"type": "string"},
    "truthy": {"type": "boolean"},
    "equals": {"type": "boolean"},
    "object": {"type": "object"},
    "current_positions": {"type": "array", "items": {"type": "object"}},
    "secondary_positions": {"type": "array", "items": {"type": "object"}},
}
