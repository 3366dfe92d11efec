"""Names in the directory: login names (uid / sAMAccountName) and distinguished names.

Login names are derived deterministically from the work email's local part, folded to
ASCII; a collision gets the employee id as a suffix, so the same person always ends up with
the same name whatever order the feed arrives in. Once an account exists its name is never
regenerated (the account is found by its employee id, not by its name).

DNs are rendered from a template whose placeholders are RDN-escaped per RFC 4514 (commas,
plus signs, quotes, a leading '#' or space, a trailing space, control characters as hex...),
and compared through a normal form (case-folded, unescaped, whitespace-insensitive).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterator, Mapping
from functools import lru_cache


class InvalidDNError(ValueError):
    """A string that is not a DN."""


# letters NFKD does not decompose into ASCII
_SPECIAL = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "Ħ": "H",
        "ŋ": "ng",
    }
)
_NOT_LOGIN = re.compile(r"[^a-z0-9._-]+")
_DOTS = re.compile(r"[._-]{2,}")

TEMPLATE_FIELDS = frozenset(
    {
        "uid",
        "cn",
        "display_name",
        "given_name",
        "family_name",
        "employee_id",
        "department",
        "division",
        "location",
        "cost_center",
        "base_dn",
    }
)


def ascii_fold(text: str) -> str:
    """'Zoë Łukasz-Groß' -> 'Zoe Lukasz-Gross'; characters without an ASCII form vanish."""
    if text.isascii():  # nothing to fold (the usual work e-mail)
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return "".join(c for c in decomposed if ord(c) < 128 and not unicodedata.combining(c))


def login_base(text: str) -> str:
    """Fold and reduce to ``[a-z0-9._-]``: "Zoë.O'Brien" -> 'zoe.obrien'."""
    folded = ascii_fold(text).lower().replace(" ", ".")
    cleaned = _NOT_LOGIN.sub("", folded)
    cleaned = _DOTS.sub(lambda m: m.group(0)[0], cleaned)
    return cleaned.strip("._-")


def login_source(
    work_email: str | None,
    user_name: str | None,
    given_name: str | None,
    family_name: str | None,
    employee_id: str,
) -> str:
    """The base login: work email local part, else userName's, else the names, else the id."""
    for address in (work_email, user_name):
        if address and "@" in address:
            base = login_base(address.rsplit("@", 1)[0])
            if base:
                return base
    if user_name and "@" not in user_name:
        base = login_base(user_name)
        if base:
            return base
    names = [n for n in (given_name, family_name) if n]
    if len(names) == 2 and names[0] == names[1]:  # a mononym
        names = names[:1]
    base = login_base(".".join(names))
    if base:
        return base
    # non-Latin names fold to nothing: fall back to the employee id
    return "u" + (login_base(employee_id).replace(".", "") or "nknown")


def login_candidates(base: str, employee_id: str, max_length: int) -> Iterator[str]:
    """``base``, then ``base`` + employee id, then numbered variants (all <= max_length)."""
    base = base[:max_length].rstrip("._-") or "u"
    yield base
    suffix = re.sub(r"[^a-z0-9]", "", ascii_fold(employee_id).lower()) or "x"
    suffix = suffix[-(max_length - 1) :]
    n = 1
    while True:
        tail = suffix if n == 1 else f"{suffix}{n}"
        head = base[: max(1, max_length - len(tail))].rstrip("._-") or "u"
        yield (head + tail)[:max_length]
        n += 1


_RDN_SPECIAL = frozenset('\\,+"<>;=')
#: anything escape_value would change (a value without it is its own escape)
_NEEDS_ESCAPE = re.compile(r'[\\,+"<>;=\x00-\x1f\x7f]|\A[# ]| \Z')


def escape_value(value: str) -> str:
    """An RDN attribute value, escaped per RFC 4514: the special characters with a backslash
    (a '#' or space only where it leads, a space also where it ends), control characters and
    DEL as \\XX."""
    return value if _NEEDS_ESCAPE.search(value) is None else _escape_each(value)


def _escape_each(value: str) -> str:
    """escape_value, character by character."""
    last = len(value) - 1
    out = []
    for i, ch in enumerate(value):
        if ch in _RDN_SPECIAL or (i == 0 and ch in "# ") or (i == last and ch == " "):
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


class TemplateError(ValueError):
    """A dn_template that cannot work (unknown placeholder, not a DN)."""


def template_fields(template: str) -> list[str]:
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
    if unknown:
        raise TemplateError(
            f"dn_template {template!r} uses unknown placeholder(s) {unknown}; "
            f"allowed: {sorted(TEMPLATE_FIELDS)}"
        )
    return names


def render_dn(template: str, values: Mapping[str, str], base_dn: str) -> str:
    """Fill a DN template: every placeholder but ``base_dn`` is RDN-escaped."""
    fields = {
        name: escape_value(values[name]) for name in template_fields(template) if name in values
    }
    fields["base_dn"] = base_dn
    return template.format(**fields)


def _unescape(value: str) -> str:
    """RFC 4514 value -> the string it stands for (``\\,`` and ``\\2C`` both -> ',')."""
    if value.startswith("#"):  # a BER-encoded value: compare as written
        return value
    if "\\" not in value:  # nothing escaped: the value itself (the common case)
        value.encode("utf-8")  # a lone surrogate fails here as it does below
        return value
    raw = bytearray()
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                raw.append(int(pair, 16))
                i += 3
                continue
            raw.extend(value[i + 1].encode())
            i += 2
            continue
        raw.extend(ch.encode())
        i += 1
    return raw.decode("utf-8", errors="replace")


def parse(dn: str) -> list[list[tuple[str, str]]]:
    """RFC 4514 DN -> RDNs, each a list of (attribute type, value as written, escaped).

    Our own small parser: some parsers reject valid DNs (a '#' inside a value, as in
    'ou=C# Team', or an escaped trailing space)."""
    plain = _parse_plain(dn)
    if plain is not None:
        return plain
    rdns: list[list[tuple[str, str]]] = [[]]
    attr: str | None = None
    tokens: list[str] = []
    i = 0

    def value() -> str:
        while tokens and tokens[0] == " ":
            tokens.pop(0)
        while tokens and tokens[-1] == " ":
            tokens.pop()
        return "".join(tokens)

    while i <= len(dn):
        ch = dn[i] if i < len(dn) else ","
        if ch == "\\" and i + 1 < len(dn):
            tokens.append(dn[i : i + 2])
            i += 2
            continue
        if ch == "=" and attr is None:
            attr = "".join(tokens).strip()
            if not attr:
                raise InvalidDNError(f"empty attribute type in {dn!r}")
            tokens = []
        elif ch in ",+" and (attr is not None or "".join(tokens).strip()):
            if attr is None:
                raise InvalidDNError(f"missing '=' in {dn!r}")
            rdns[-1].append((attr, value()))
            if ch == ",":
                rdns.append([])
            attr, tokens = None, []
        else:
            tokens.append(ch)
        i += 1
    return [r for r in rdns if r]


def _parse_plain(dn: str) -> list[list[tuple[str, str]]] | None:
    """``parse`` for the common DN without escapes, quotes or empty parts (None otherwise:
    the full parser decides, and words the error)."""
    if "\\" in dn or '"' in dn:
        return None
    rdns = []
    for part in dn.split(","):
        rdn = []
        for ava in part.split("+"):
            attr, eq, value = ava.partition("=")
            attr = attr.strip()
            if not eq or not attr:
                return None
            rdn.append((attr, value.strip(" ")))
        rdns.append(rdn)
    return rdns


def split_dn(dn: str) -> list[list[tuple[str, str]]]:
    """RDNs, each a list of (attribute type, unescaped value)."""
    return [[(a, _unescape(v)) for a, v in rdn] for rdn in parse(dn)]


def first_rdn(dn: str) -> list[tuple[str, str]]:
    """``split_dn(dn)[0]``: the first RDN's (attribute type, unescaped value) pairs."""
    return [(a, _unescape(v)) for a, v in parse(dn)[0]]


@lru_cache(maxsize=1 << 17)
def dn_key(dn: str) -> str:
    """A normal form for comparing DNs (case, escaping and spacing do not matter).

    RDNs are joined by NUL, the attribute-value pairs of one RDN by SOH (both cannot occur
    in a directory string), values unescaped, NFC-normalised and case-folded."""
    if "\\" not in dn and '"' not in dn:  # the common case: nothing escaped
        rdns = [
            [tuple(ava.split("=", 1)) if "=" in ava else (ava, "") for ava in rdn.split("+")]
            for rdn in dn.split(",")
            if rdn.strip()
        ]
    else:
        try:
            rdns = [list(r) for r in split_dn(dn)]
        except InvalidDNError:
            return unicodedata.normalize("NFC", dn).casefold().strip()
    return "\x00".join(
        "\x01".join(
            sorted(
                f"{a.strip().lower()}={unicodedata.normalize('NFC', v).strip().casefold()}"
                for a, v in rdn
            )
        )
        for rdn in rdns
    )


def _join(rdns: list[list[tuple[str, str]]]) -> str:
    return ",".join("+".join(f"{a}={v}" for a, v in rdn) for rdn in rdns)


def rdn_of(dn: str) -> str:
    """The first RDN as written (still escaped)."""
    return _join(parse(dn)[:1])


def parent_key(dn: str) -> str:
    """``dn_key(parent_of(dn))``; for a DN without escapes (or NULs), from the DN's own
    (cached) key: everything after its first RDN's."""
    if "\\" in dn or '"' in dn or "\x00" in dn:  # a value may hold the keys' separator
        return dn_key(parent_of(dn))
    return dn_key(dn).partition("\x00")[2]


def parent_of(dn: str) -> str:
    """Everything after the first RDN (still escaped)."""
    return _join(parse(dn)[1:])


def rdn_attributes(dn: str) -> set[str]:
    """The attribute types in the first RDN, lower-cased."""
    return {a.lower() for a, _ in parse(dn)[0]}


def is_under(dn: str, base: str) -> bool:
    child, parent = dn_key(dn), dn_key(base)
    return child == parent or child.endswith("\x00" + parent)
