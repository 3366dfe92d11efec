"""Payroll file layouts as data: which columns, from which fields, typed and checked.

A layout is a YAML (or JSON) document; ``layouts/*.yml`` ship with the target and any path
works. ``README.md`` next to this file documents every key; in short::

    name: payroll_changes
    format: csv                     # or fixed_width
    streams:                        # the input streams that become rows, and what they set
      payroll_compensations: {set: {record_type: PAY}, required: [rate, effective_date]}
    columns:
      - {name: EMPLOYEE_ID, source: employee_id, type: string, required: true, max_length: 20}
      - {name: PAY_RATE, source: rate, type: decimal, scale: 2, width: 11, implied_decimal: true}

:meth:`Layout.row` turns one record into the values of one line, or raises
:class:`~hrsync.errors.RecordError` naming the record, the field and the reason; nothing is
truncated, rounded or dropped silently.
"""

from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from hrsync.errors import ConfigError, RecordError
from hrsync.identifiers import ssn_problem

LAYOUTS_DIR = Path(__file__).parent / "layouts"
TYPES = ("string", "integer", "decimal", "date", "boolean", "enum")
FORMATS = ("csv", "fixed_width")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_YES_NO = _TRUE | _FALSE
#: what a header / trailer field may take from the run instead of a record
CONTEXT_SOURCES = (
    "record_count",
    "line_count",
    "file_date",
    "file_time",
    "file_name",
    "company_code",
)

#: identifier checks a string column may name (``check: ssn``): value -> problem or None
CHECKS: dict[str, Callable[[str], str | None]] = {"ssn": ssn_problem}
#: first characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection":
#: = + - @, tab and carriage return; and their full-width forms, which some spreadsheets fold)
FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")

__all__ = ["CHECKS", "CONTEXT_SOURCES", "Column", "Layout", "StreamRule", "load_layout"]


#: Latin letters that Unicode does not decompose into a base letter plus accents
_LATIN_LETTERS = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Ø": "O",
        "ø": "o",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "\u0131": "i",  # dotless i
        "ß": "ss",
        "Æ": "AE",
        "æ": "ae",
        "Œ": "OE",
        "œ": "oe",
        "Þ": "TH",
        "þ": "th",
        "Ð": "D",
        "ð": "d",
        "\u2018": "'",
        "\u2019": "'",  # curly apostrophes
        "\u2010": "-",
        "\u2013": "-",  # hyphen, en dash
    }
)


def _ascii_fold(text: str) -> str:
    """Zoë -> Zoe, Łukasz -> Lukasz, Søren -> Soren; 山田 stays 山田 (and is then refused by
    the ASCII encoder: a name is never mangled into something else)."""
    text = unicodedata.normalize("NFKD", text.translate(_LATIN_LETTERS))
    return "".join(c for c in text if not unicodedata.combining(c))


@dataclass(frozen=True)
class Column:
    """One field of a line. ``source`` names the record field; ``const`` a fixed value."""

    name: str
    source: str | None = None
    const: Any = None
    type: str = "string"
    required: bool = False
    default: Any = None
    # string
    max_length: int | None = None
    pattern: str | None = None
    case: str | None = None  # upper | lower
    strip: str | None = None  # characters removed before checks ("-" for an SSN)
    check: str | None = None  # an identifier check after the pattern: ssn
    raw: bool = False  # CSV: written as is, even when it starts like a formula
    truncate: bool = False  # fixed width: cut an over-long string instead of refusing the row
    # number
    scale: int | None = None  # decimal places; more places is an error, never rounded
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    # date
    format: str = "%Y-%m-%d"
    # boolean
    true_value: str = "Y"
    false_value: str = "N"
    # enum
    values: tuple[str, ...] = ()
    map: Mapping[str, str] = field(default_factory=dict)
    map_default: str | None = None
    # fixed width
    width: int | None = None
    align: str | None = None  # left | right (default: right for numbers, left otherwise)
    pad: str | None = None  # one character (default: "0" for numbers, " " otherwise)
    implied_decimal: bool = False  # 1234.50 with scale 2 -> "123450"

    def justified(self) -> tuple[str, str]:
        numeric = self.type in {"integer", "decimal"}
        align = self.align or ("right" if numeric else "left")
        pad = self.pad if self.pad is not None else ("0" if numeric else " ")
        return align, pad


@dataclass(frozen=True)
class StreamRule:
    """What records of one input stream mean: constants they set, fields renamed, and which
    fields they must carry (on top of the columns' own ``required``)."""

    set: Mapping[str, Any] = field(default_factory=dict)
    rename: Mapping[str, str] = field(default_factory=dict)  # record field -> source name
    required: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # record key fields (default: the stream's key_properties)


@dataclass(frozen=True)
class Layout:
    name: str
    columns: tuple[Column, ...]
    streams: Mapping[str, StreamRule]
    format: str = "csv"
    description: str = ""
    encoding: str = "utf-8"
    ascii_fold: bool = False
    line_terminator: str = "\r\n"
    delimiter: str = ","
    header_row: bool = True
    quote_all: bool = False
    formula_guard: bool = True  # CSV: text cells starting with = + - @ tab CR get a leading '
    unknown_streams: str = "ignore"  # ignore | fail
    header: tuple[Column, ...] = ()  # fixed width header line (context sources / consts)
    trailer: tuple[Column, ...] = ()  # fixed width trailer line
    file_extension: str = ".csv"
    source: str = ""

    @property
    def field_names(self) -> list[str]:
        """The record fields this layout reads (what the audit log lists)."""
        names = {c.source for c in self.columns if c.source}
        for rule in self.streams.values():
            names -= set(rule.set) | set(rule.rename.values())  # made here, not received
        for rule in self.streams.values():
            names.update(rule.rename)
        return sorted(n for n in names if n)

    @property
    def line_width(self) -> int:
        return sum(c.width or 0 for c in self.columns)

    # --- one record -> one line -----------------------------------------------------------

    def row(self, stream: str, record: Mapping[str, Any], record_key: str) -> list[str]:
        """The formatted values of one detail line (strings, not yet padded for CSV).

        In a CSV layout with ``formula_guard`` (the default), a text cell that a spreadsheet
        would read as a formula gets a leading ``'`` (OWASP CSV injection); numeric columns
        and columns marked ``raw: true`` are written as they are (-12.50 is an amount)."""
        fast = self._fast_rows.get(stream)
        if fast is None:
            fast = self._fast_rows[stream] = self._compile_row(stream)
        line = fast(record, stream, record_key)
        if line is None:  # a value off the common path, or an error: the general path decides
            return self.row_reference(stream, record, record_key)
        return line

    def row_reference(self, stream: str, record: Mapping[str, Any], record_key: str) -> list[str]:
        """:meth:`row` by the general path alone: what the compiled path is proven equal to
        (and what it hands every value it does not take itself, and every error)."""
        line = self._row(stream, record, record_key)
        for index in self._guarded:
            value = line[index]
            if value and value[0] in FORMULA_TRIGGERS:
                line[index] = "'" + value
        return line

    @cached_property
    def _fast_rows(self) -> dict[str, _FastRow]:
        return {}

    def _compile_row(self, stream: str) -> _FastRow:
        """One stream's line as straight-line Python, compiled once per stream: each column's
        read and format inlined for the common values (ASCII text that passes its pattern,
        length and check; a plain ``123.45`` amount; an ISO date; an enum text seen before),
        with the column's own converter for anything else. It returns None on any exception
        (the record then goes through :meth:`row_reference`, which raises the error naming the
        first bad column); every text it makes is the text the general path makes."""
        plan = self._stream_plans.get(stream) or self._stream_plan(stream)
        if plan.template is None:  # a constant that fails: every line takes the general path
            return _general_path
        guarded = set(self._guarded)

        def guard(text: str) -> str:
            return "'" + text if text and text[0] in FORMULA_TRIGGERS else text

        ns: dict[str, Any] = {
            "template": [guard(t) if i in guarded else t for i, t in enumerate(plan.template)],
            "TRIG": FORMULA_TRIGGERS,
            "cell": self._cell,
            "fromiso": dt.date.fromisoformat,
        }
        code = ["def fast(record, stream, key):", " try:", "  get = record.get"]
        for _name, source, const in plan.required:
            if source is None:
                if const is None or (isinstance(const, str) and not const.strip()):
                    return _general_path  # always refused, naming the field
                continue
            code += [
                f"  v = get({source!r})",
                "  if v is None or (isinstance(v, str) and not v.strip()): return None",
            ]
        code.append("  line = template.copy()")
        for i, (column, source, _fixed, empty, convert) in enumerate(plan.cells):
            if source is None:  # a constant: in the template
                continue
            ns[f"c{i}"], ns[f"k{i}"] = convert, column
            if column.type == "string" and column.width is None:
                code += _fast_string(column, source, i, ns, empty is None, i in guarded)
                continue
            code += [
                f"  v = get({source!r})",
                "  if v is None or (type(v) is str and not v.strip()):",
                f"   line[{i}] = {_guarded_expr(f'cell(k{i}, v, stream, key)', i in guarded)}"
                if empty is None  # required or with a default: the general path decides
                else "   pass",  # the template's empty cell
                "  else:",
                *_fast_cell(column, i, ns),
            ]
            if i in guarded:
                code.append('   if t and t[0] in TRIG: t = "\'" + t')
            code.append(f"   line[{i}] = t")
        code += ["  return line", " except Exception:", "  return None"]
        # The source is made here: record field names enter it only as repr() literals, every
        # other layout value (pattern, length, table) as an object in ns, never as code.
        source = "\n".join(code)
        exec(compile(source, f"<payroll layout {self.name!r} stream {stream!r}>", "exec"), ns)  # noqa: S102
        fast: _FastRow = ns["fast"]
        return fast

    @cached_property
    def _guarded(self) -> tuple[int, ...]:
        """Indexes of the columns the formula guard applies to."""
        if self.format != "csv" or not self.formula_guard:
            return ()
        return tuple(
            i
            for i, c in enumerate(self.columns)
            if not c.raw and c.type not in {"integer", "decimal"}
        )

    def _row(self, stream: str, record: Mapping[str, Any], record_key: str) -> list[str]:
        plan = self._stream_plans.get(stream) or self._stream_plan(stream)
        get = record.get
        for name, source, const in plan.required:
            value = const if source is None else get(source)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise RecordError(stream, record_key, name, f"is required for {stream} records")
        if plan.template is None:  # a const that fails: the error, in column order
            return self._row_in_order(plan, stream, record, record_key)
        # Only the fields the record carries are looked at (a change line fills a dozen of its
        # columns); the rest keep the empty cell of the template.
        line = plan.template.copy()
        try:
            for index, column, source, convert in plan.checked:  # required / with a default
                raw = get(source)
                if raw is None or (type(raw) is str and not raw.strip()):
                    line[index] = self._cell(column, raw, stream, record_key)
                else:
                    line[index] = convert(raw, stream, record_key)
            by_field = plan.by_field
            for name, raw in record.items():
                targets = by_field.get(name)
                if targets is None or raw is None or (type(raw) is str and not raw.strip()):
                    continue
                for index, convert in targets:
                    line[index] = convert(raw, stream, record_key)
        except Exception:  # the column-order pass raises the first error, as it names it
            return self._row_in_order(plan, stream, record, record_key)
        return line

    def _row_in_order(
        self, plan: _StreamPlan, stream: str, record: Mapping[str, Any], record_key: str
    ) -> list[str]:
        """Column by column: with several bad fields, the first column's error is raised."""
        get = record.get
        line = []
        for column, source, fixed, empty, convert in plan.cells:
            if source is None:  # a const or a value the stream sets: formatted once
                if fixed is None:  # not a valid value: fails on every line, naming it
                    fixed = self._cell(column, plan.constants[column.name], stream, record_key)
                line.append(fixed)
                continue
            raw = get(source)
            if raw is None or (type(raw) is str and not raw.strip()):
                if empty is None:  # required, or has a default
                    empty = self._cell(column, raw, stream, record_key)
                line.append(empty)
            else:
                line.append(convert(raw, stream, record_key))
        return line

    @cached_property
    def _plan(self) -> list[tuple[Column, str | None]]:
        """Each column with its formatted empty cell (None when empty needs the full check:
        a required column or one with a default)."""
        return [
            (c, None if c.required or c.default is not None else self._fit("", c, "", "", c.name))
            for c in self.columns
        ]

    @cached_property
    def _stream_plans(self) -> dict[str, _StreamPlan]:
        return {}

    def _stream_plan(self, stream: str) -> _StreamPlan:
        """Where each column of ``stream``'s lines comes from, worked out once per stream:
        the same lookups :meth:`row` would make on ``record`` + renames + the stream's
        ``set``, without copying the record for every line."""
        rule = self.streams[stream]  # KeyError for a stream the layout does not take
        renamed: dict[str, str] = {}  # source name -> the record field it is read from
        for original, target in rule.rename.items():
            renamed[target] = original

        def lookup(name: str) -> tuple[str | None, Any]:
            """(record field to read, None) or (None, constant value)."""
            if name in rule.set:
                return None, rule.set[name]
            return renamed.get(name, name), None

        required = [(name, *lookup(name)) for name in rule.required]
        cells: list[tuple[Column, str | None, str | None, str | None, _Convert]] = []
        constants: dict[str, Any] = {}
        for column, empty in self._plan:
            if column.const is not None:
                source, value = None, column.const
            else:
                source, value = lookup(column.source or "")
            fixed = None
            if source is None:
                constants[column.name] = value
                try:  # the same for every line; an invalid one fails on each, naming it
                    fixed = self._cell(column, value, stream, "")
                except RecordError:
                    fixed = None
            cells.append((column, source, fixed, empty, self._converter(column)))
        template: list[str] | None = []
        checked: list[tuple[int, Column, str, _Convert]] = []
        by_field: dict[str, list[tuple[int, _Convert]]] = {}
        for index, (column, source, fixed, empty, convert) in enumerate(cells):
            if source is None:
                if fixed is None or template is None:
                    template = None
                else:
                    template.append(fixed)
                continue
            if template is not None:
                template.append(empty or "")
            if empty is None:
                checked.append((index, column, source, convert))
            else:
                by_field.setdefault(source, []).append((index, convert))
        plan = _StreamPlan(required, cells, constants, template, checked, by_field)
        self._stream_plans[stream] = plan
        return plan

    def _converter(self, col: Column) -> _Convert:
        """``convert(raw, stream, key)`` for a non-blank value of ``col``: the common cases
        checked inline, everything else (and every error) through :meth:`_cell`, so a value
        gets exactly the text and the error the general path gives it."""
        slow = self._cell
        plain = col.width is None  # no padding: ASCII text is final as it is

        def fit(text: str, stream: str, key: str) -> str:
            if plain and text.isascii():
                return text
            return self._fit(text, col, stream, key, col.source or col.name)

        kind = col.type
        if kind == "string":
            rx = _regex(col.pattern) if col.pattern else None
            longest = col.max_length
            table = {ord(c): None for c in col.strip} if col.strip else None
            case = col.case
            if col.check:  # every value goes through the general path, which checks it
                rx, longest = _NEVER, 0

            def string(raw: Any, stream: str, key: str) -> str:
                if type(raw) is str:
                    text = raw.strip()
                    if table is not None:
                        text = text.translate(table)
                    if case == "upper":
                        text = text.upper()
                    elif case == "lower":
                        text = text.lower()
                    if (rx is None or rx.fullmatch(text)) and (
                        longest is None or len(text) <= longest
                    ):
                        return fit(text, stream, key)
                return slow(col, raw, stream, key)

            return string
        if kind in {"integer", "decimal"}:
            scale = 0 if kind == "integer" else (col.scale if col.scale is not None else 2)
            quantum = Decimal(1).scaleb(-scale)
            spec = f".{scale}f"
            low, high, implied = col.minimum, col.maximum, col.implied_decimal
            whole = kind == "integer"

            def number(raw: Any, stream: str, key: str) -> str:
                kind_of = type(raw)
                if kind_of is str or kind_of is int or kind_of is Decimal:
                    try:
                        value = Decimal(str(raw).strip().replace(",", ""))
                        if (
                            value.is_finite()
                            and (not whole or value == value.to_integral_value())
                            and (low is None or value >= low)
                            and (high is None or value <= high)
                        ):
                            fixed = value.quantize(quantum)
                            if fixed == value:
                                text = (
                                    str(int(fixed.scaleb(scale)))
                                    if implied
                                    else format(fixed, spec)
                                )
                                return fit(text, stream, key)
                    except ArithmeticError:
                        pass  # the general path names the reason
                return slow(col, raw, stream, key)

            return number
        if kind == "date":
            iso = col.format == "%Y-%m-%d"
            fmt = col.format

            def date(raw: Any, stream: str, key: str) -> str:
                if type(raw) is str:
                    try:
                        day = dt.date.fromisoformat(raw.strip()[:10])
                    except ValueError:
                        return slow(col, raw, stream, key)
                    # isoformat() is strftime("%Y-%m-%d") for four-digit years, only faster
                    text = day.isoformat() if iso and day.year >= 1000 else day.strftime(fmt)
                    return fit(text, stream, key)
                return slow(col, raw, stream, key)

            return date
        # enum, boolean: few distinct values, so each text is worked out once (bounded memo)
        memo: dict[str, str] = {}
        yes = no = None
        if kind == "boolean":
            yes, no = slow(col, True, "", ""), slow(col, False, "", "")

        def memoized(raw: Any, stream: str, key: str) -> str:
            if type(raw) is str:
                text = memo.get(raw)
                if text is None:
                    text = slow(col, raw, stream, key)  # raises for a bad value: not kept
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[raw] = text
                return text
            if raw is True and yes is not None:
                return yes
            if raw is False and no is not None:
                return no
            return slow(col, raw, stream, key)

        return memoized

    def cell(self, column: Column, values: Mapping[str, Any], stream: str, key: str) -> str:
        raw = column.const if column.const is not None else values.get(column.source or "")
        return self._cell(column, raw, stream, key)

    def _cell(self, column: Column, raw: Any, stream: str, key: str) -> str:
        """The general path: one value (from the record, a const or the stream's set) ->
        its text, or a RecordError naming the record, the field and the reason."""
        field_name = column.source or column.name
        if raw is None or (type(raw) is str and not raw.strip()):
            raw = column.default
        if raw is None or (type(raw) is str and not raw.strip()):
            if column.required:
                raise RecordError(stream, key, field_name, f"is required ({column.name})")
            return self._fit("", column, stream, key, field_name)
        text = self._typed(raw, column, stream, key, field_name)
        return self._fit(text, column, stream, key, field_name)

    def _typed(self, raw: Any, col: Column, stream: str, key: str, name: str) -> str:
        kind = col.type
        if (
            kind == "string"
            and type(raw) is str
            and not col.strip
            and not col.case
            and not col.check
        ):
            text = raw.strip()  # the common case, without the general path's checks
            if col.pattern and not _regex(col.pattern).fullmatch(text):
                raise RecordError(stream, key, name, f"does not match {col.pattern} ({col.name})")
            if col.max_length is not None and len(text) > col.max_length:
                raise RecordError(
                    stream, key, name,
                    f"is {len(text)} characters long; at most {col.max_length} allowed "
                    f"({col.name})",
                )  # fmt: skip
            return text

        def bad(reason: str) -> RecordError:
            return RecordError(stream, key, name, f"{reason} ({col.name})")

        if kind == "string":
            text = str(raw).strip()
            if col.strip:
                text = text.translate({ord(c): None for c in col.strip})
            if col.case == "upper":
                text = text.upper()
            elif col.case == "lower":
                text = text.lower()
            if col.pattern and not _regex(col.pattern).fullmatch(text):
                raise bad(f"does not match {col.pattern}")
            if col.max_length is not None and len(text) > col.max_length:
                raise bad(f"is {len(text)} characters long; at most {col.max_length} allowed")
            if col.check:
                problem = CHECKS[col.check](text)
                if problem is not None:
                    raise bad(problem)
            return text
        if kind == "enum":
            text = str(raw).strip()
            if col.map:
                if text in col.map:
                    return str(col.map[text])
                if col.map_default is not None:
                    return col.map_default
                allowed = ", ".join(sorted(col.map))
                raise bad(f"{text!r} is not one of {allowed}")
            if text not in col.values:
                raise bad(f"{text!r} is not one of {', '.join(col.values)}")
            return text
        if kind == "boolean":
            if isinstance(raw, bool):
                flag = raw
            else:
                word = str(raw).strip().lower()
                if word not in _YES_NO:
                    raise bad(f"{raw!r} is not a yes/no value")
                flag = word in _TRUE
            return col.true_value if flag else col.false_value
        if kind == "date":
            day = _as_date(raw)
            if day is None:
                raise bad(f"{raw!r} is not a date (expected YYYY-MM-DD)")
            return day.strftime(col.format)
        if kind in {"integer", "decimal"}:
            if isinstance(raw, bool):
                raise bad(f"{raw!r} is not a number")
            try:
                number = Decimal(str(raw).strip().replace(",", ""))
            except InvalidOperation:
                raise bad(f"{raw!r} is not a number") from None
            if not number.is_finite():
                raise bad(f"{raw!r} is not a number")
            if kind == "integer" and number != number.to_integral_value():
                raise bad(f"{raw!r} is not a whole number")
            if col.minimum is not None and number < col.minimum:
                raise bad(f"{number} is below the minimum {col.minimum}")
            if col.maximum is not None and number > col.maximum:
                raise bad(f"{number} is above the maximum {col.maximum}")
            scale = 0 if kind == "integer" else (col.scale if col.scale is not None else 2)
            quantum = Decimal(1).scaleb(-scale)
            fixed = number.quantize(quantum)
            if fixed != number:
                raise bad(f"{number} has more than {scale} decimal places")
            if col.implied_decimal:
                return str(int(fixed.scaleb(scale)))
            return f"{fixed:.{scale}f}"
        raise ConfigError(f"layout {self.name}: column {col.name}: unknown type {kind!r}")

    def _fit(self, text: str, col: Column, stream: str, key: str, name: str) -> str:
        if col.width is None and text.isascii():
            return text  # no width, ASCII: nothing to fold, and the encoding writes ASCII (checked)
        if self.ascii_fold:
            text = _ascii_fold(text)
        try:
            encoded = text.encode(self.encoding)
        except UnicodeEncodeError:
            raise RecordError(
                stream, key, name, f"cannot be written in {self.encoding} ({col.name})"
            ) from None
        if self.format != "fixed_width" or col.width is None:
            return text
        if len(encoded) > col.width:
            if not col.truncate or col.type != "string":
                raise RecordError(
                    stream,
                    key,
                    name,
                    f"needs {len(encoded)} characters; the {col.name} field is {col.width} wide",
                )
            text = encoded[: col.width].decode(self.encoding, errors="ignore")
        align, pad = col.justified()
        fill = col.width - len(text.encode(self.encoding))
        if text.startswith("-") and pad == "0" and align == "right":  # -0000123, not 0000-123
            return "-" + pad * fill + text[1:]
        return text + pad * fill if align == "left" else pad * fill + text

    # --- fixed width header / trailer ------------------------------------------------------

    def control_line(self, columns: Sequence[Column], context: Mapping[str, Any]) -> str:
        """A header or trailer line; its columns take ``const`` values or context sources
        (``record_count``, ``line_count``, ``file_date``, ``file_time``, ``file_name``,
        ``company_code``, or ``sum:<COLUMN>`` for a hash total of a numeric detail column)."""
        return "".join(self.cell(c, context, "(file)", "header/trailer") for c in columns)


_MEMO_SIZE = 4096  # texts kept per enum / boolean column (memory stays flat)
_Convert = Callable[[Any, str, str], str]
_FastRow = Callable[[Mapping[str, Any], str, str], "list[str] | None"]


def _general_path(record: Mapping[str, Any], stream: str, key: str) -> list[str] | None:
    return None


def _guarded_expr(expr: str, guarded: bool) -> str:
    if not guarded:
        return expr
    return f'(lambda t: "\'" + t if t and t[0] in TRIG else t)({expr})'


def _fast_string(
    col: Column, source: str, i: int, ns: dict[str, Any], checked: bool, guarded: bool
) -> list[str]:
    """Source lines for a text column without a width (CSV): the value stripped once, blank
    or not decided on that, ASCII text that passes the column's checks kept as it is, any
    other value through the column's converter ``c{i}`` (blank: through ``cell``, when the
    column is required or has a default)."""
    checks = ["t.isascii()"]  # ASCII is final as it is (no folding, any encoding writes it)
    if col.max_length is not None:
        ns[f"ml{i}"] = col.max_length
        checks.append(f"len(t) <= ml{i}")
    if col.pattern:
        ns[f"rx{i}"] = _regex(col.pattern).fullmatch
        checks.append(f"rx{i}(t) is not None")
    if col.check:
        ns[f"chk{i}"] = CHECKS[col.check]
        checks.append(f"chk{i}(t) is None")
    shaped = []
    if col.strip:
        ns[f"tb{i}"] = {ord(c): None for c in col.strip}
        shaped.append(f"     t = t.translate(tb{i})")
    if col.case in {"upper", "lower"}:
        shaped.append(f"     t = t.{col.case}()")
    guard = ['{}if t and t[0] in TRIG: t = "\'" + t'] if guarded else []
    blank = f"line[{i}] = {_guarded_expr(f'cell(k{i}, v, stream, key)', guarded)}"
    return [
        f"  v = get({source!r})",
        "  if v is not None:",
        "   if type(v) is str:",
        "    t = v.strip()",
        "    if t:",
        *shaped,
        f"     if not ({' and '.join(checks)}): t = c{i}(v, stream, key)",
        *(g.format("     ") for g in guard),
        f"     line[{i}] = t",
        *([f"    else: {blank}"] if checked else []),
        "   else:",
        f"    t = c{i}(v, stream, key)",
        *(g.format("    ") for g in guard),
        f"    line[{i}] = t",
        *([f"  else: {blank}"] if checked else []),
    ]


def _fast_cell(col: Column, i: int, ns: dict[str, Any]) -> list[str]:
    """Source lines (indented for :meth:`Layout._compile_row`) that set ``t`` to the text of
    the non-blank value ``v`` of column ``i``: the common case inline, exactly as the column's
    converter ``c{i}`` would give it, anything else through ``c{i}``."""
    slow = f"c{i}(v, stream, key)"
    if col.width is not None:  # fixed width: padding and folding stay in the converter
        return [f"   t = {slow}"]
    kind = col.type
    if kind == "string":  # with a width: the converter pads and folds
        return [f"   t = {slow}"]
    if kind in {"integer", "decimal"}:
        scale = 0 if kind == "integer" else (col.scale if col.scale is not None else 2)
        if (
            col.implied_decimal
            or col.maximum is not None
            or (col.minimum or 0) > 0
            or type(scale) is not int
            or not 0 <= scale <= 20
        ):
            return [f"   t = {slow}"]
        # digits without a leading zero (and the number of places the column has) are written
        # as they came: Decimal, quantize and format give back the same text
        fraction = rf"\.[0-9]{{{scale}}}" if scale else ""
        ns[f"num{i}"] = re.compile(rf"(?:0|[1-9][0-9]{{0,14}}){fraction}").fullmatch
        return [
            "   if type(v) is str:",
            "    t = v.strip()",
            f"    if num{i}(t) is None: t = {slow}",
            f"   else: t = {slow}",
        ]
    if kind == "date":
        if col.format != "%Y-%m-%d":
            return [f"   t = {slow}"]
        return [
            "   if type(v) is str:",
            "    try: d = fromiso(v.strip()[:10])",
            "    except ValueError: d = None",
            f"    t = d.isoformat() if d is not None and d.year >= 1000 else {slow}",
            f"   else: t = {slow}",
        ]
    # enum, boolean: the converter's text for each string value, kept (bounded)
    ns[f"m{i}"] = {}
    return [
        f"   t = m{i}.get(v) if type(v) is str else None",
        "   if t is None:",
        f"    t = {slow}",
        "    if type(v) is str:",
        f"     if len(m{i}) >= {_MEMO_SIZE}: m{i}.clear()",
        f"     m{i}[v] = t",
    ]


@dataclass(frozen=True)
class _StreamPlan:
    """One stream's lines, worked out once: required fields and each column's source."""

    required: list[tuple[str, str | None, Any]]  # (name, record field | None, constant)
    cells: list[tuple[Column, str | None, str | None, str | None, _Convert]]
    constants: dict[str, Any]  # column name -> the value a const / the stream's set gives
    template: list[str] | None  # constants and empty cells (None: a constant fails)
    checked: list[tuple[int, Column, str, _Convert]]  # required / default: always checked
    by_field: dict[str, list[tuple[int, _Convert]]]  # record field -> the columns it fills


_NEVER = re.compile(r"(?!)")  # matches nothing: sends a value to the general path


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


# --- loading ----------------------------------------------------------------------------------

_COLUMN_KEYS = set(Column.__dataclass_fields__)
_RULE_KEYS = set(StreamRule.__dataclass_fields__)


def _column(data: Any, where: str) -> Column:
    if not isinstance(data, Mapping) or "name" not in data:
        raise ConfigError.at("each column needs at least a name", file=where)
    unknown = set(data) - _COLUMN_KEYS
    if unknown:
        raise ConfigError.at(f"unknown keys {sorted(unknown)}", file=where, key=str(data["name"]))
    kw = dict(data)
    if kw.get("type", "string") not in TYPES:
        raise ConfigError.at(
            f"type {kw['type']!r} is not one of {', '.join(TYPES)}", file=where, key=kw["name"]
        )
    if "source" not in kw and "const" not in kw:
        raise ConfigError.at(
            "needs a source (a record field) or a const", file=where, key=kw["name"]
        )
    for number in ("minimum", "maximum"):
        if kw.get(number) is not None:
            kw[number] = Decimal(str(kw[number]))
    if "values" in kw:
        kw["values"] = tuple(str(v) for v in kw["values"])
    if "map" in kw:
        kw["map"] = {str(k): str(v) for k, v in (kw["map"] or {}).items()}
    if kw.get("pad") is not None and len(str(kw["pad"])) != 1:
        raise ConfigError.at("pad must be one character", file=where, key=kw["name"])
    if kw.get("type") == "enum" and not kw.get("values") and not kw.get("map"):
        raise ConfigError.at("an enum needs values or a map", file=where, key=kw["name"])
    if kw.get("check") is not None and kw["check"] not in CHECKS:
        raise ConfigError.at(
            f"check {kw['check']!r} is not one of {', '.join(CHECKS)}", file=where, key=kw["name"]
        )
    if kw.get("check") is not None and kw.get("type", "string") != "string":
        raise ConfigError.at("check applies to string columns", file=where, key=kw["name"])
    return Column(**kw)


def parse_layout(data: Any, where: str = "<layout>") -> Layout:
    """Check and build a layout from its parsed YAML / JSON."""
    if not isinstance(data, Mapping):
        raise ConfigError.at("a layout is a mapping", file=where)
    fmt = data.get("format", "csv")
    if fmt not in FORMATS:
        raise ConfigError.at(f"format {fmt!r} is not one of {', '.join(FORMATS)}", file=where)
    columns = tuple(_column(c, where) for c in data.get("columns") or [])
    if not columns:
        raise ConfigError.at("a layout needs columns", file=where, key="columns")
    streams: dict[str, StreamRule] = {}
    for stream, rule in (data.get("streams") or {}).items():
        rule = rule or {}
        unknown = set(rule) - _RULE_KEYS
        if unknown:
            raise ConfigError.at(
                f"unknown keys {sorted(unknown)}", file=where, key=f"streams.{stream}"
            )
        streams[str(stream)] = StreamRule(
            set=dict(rule.get("set") or {}),
            rename=dict(rule.get("rename") or {}),
            required=tuple(rule.get("required") or ()),
            key=tuple(rule.get("key") or ()),
        )
    if not streams:
        raise ConfigError.at("a layout lists the input streams it takes", file=where, key="streams")
    header = tuple(_column(c, where) for c in data.get("header") or [])
    trailer = tuple(_column(c, where) for c in data.get("trailer") or [])
    if fmt == "fixed_width":
        for c in (*columns, *header, *trailer):
            if not c.width:
                raise ConfigError.at("fixed-width columns need a width", file=where, key=c.name)
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ConfigError.at("column names repeat", file=where, key="columns")
    csv_options = data.get("csv") or {}
    layout = Layout(
        name=str(data.get("name") or Path(where).stem),
        description=str(data.get("description") or ""),
        format=fmt,
        columns=columns,
        streams=streams,
        encoding=str(data.get("encoding") or ("ascii" if fmt == "fixed_width" else "utf-8")),
        ascii_fold=bool(data.get("ascii_fold", fmt == "fixed_width")),
        line_terminator=str(data.get("line_terminator") or "\r\n"),
        delimiter=str(csv_options.get("delimiter") or ","),
        header_row=bool(csv_options.get("header", True)),
        quote_all=bool(csv_options.get("quote_all", False)),
        formula_guard=bool(csv_options.get("formula_guard", True)),
        unknown_streams=str(data.get("unknown_streams") or "ignore"),
        header=header,
        trailer=trailer,
        file_extension=str(
            data.get("file_extension") or (".txt" if fmt == "fixed_width" else ".csv")
        ),
        source=where,
    )
    if layout.unknown_streams not in {"ignore", "fail"}:
        raise ConfigError.at("unknown_streams is ignore or fail", file=where, key="unknown_streams")
    try:
        string.printable.encode(layout.encoding)
    except LookupError:
        raise ConfigError.at(f"unknown encoding {layout.encoding!r}", file=where) from None
    except UnicodeEncodeError:
        raise ConfigError.at(
            f"encoding {layout.encoding!r} cannot write ASCII", file=where, key="encoding"
        ) from None
    return layout


def load_layout(layout: str | Path | Mapping[str, Any]) -> Layout:
    """A layout by name (``layouts/<name>.yml``), by path, or given inline as a mapping."""
    if isinstance(layout, Mapping):
        return parse_layout(layout, "<inline layout>")
    candidates = [Path(layout).expanduser()]
    if not str(layout).endswith((".yml", ".yaml", ".json")):
        candidates.append(LAYOUTS_DIR / f"{layout}.yml")
    for path in candidates:
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ConfigError.at(f"not valid YAML: {exc}", file=path) from None
            return parse_layout(data, str(path))
    shipped = ", ".join(sorted(p.stem for p in LAYOUTS_DIR.glob("*.yml")))
    raise ConfigError(f"payroll file layout {layout!r} not found (shipped layouts: {shipped})")
