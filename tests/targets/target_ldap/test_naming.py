"""Login names and DNs: folding, escaping, normal forms (no server needed)."""

from __future__ import annotations

import unicodedata
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_ldap.naming import (
    _escape_each,
    _unescape,
    ascii_fold,
    dn_key,
    escape_value,
    first_rdn,
    login_candidates,
    login_source,
    parent_key,
    parent_of,
    rdn_of,
    render_dn,
    split_dn,
)


@pytest.mark.parametrize(
    ("email", "given", "family", "expected"),
    [
        ("Zoë.O'Brien@example.com", None, None, "zoe.obrien"),
        ("JÜRGEN.GROß@example.de", None, None, "jurgen.gross"),
        (None, "Łukasz", "Żółć", "lukasz.zolc"),
        (None, "Søren", "Kierkegård", "soren.kierkegard"),
        (None, "Madonna", "Madonna", "madonna"),
        (None, "小龙", "李", "ue42"),
        ("李@example.cn", "小龙", "李", "ue42"),
        ("a..b--c@example.com", None, None, "a.b-c"),
    ],
)
def test_login_source(
    email: str | None, given: str | None, family: str | None, expected: str
) -> None:
    assert login_source(email, None, given, family, "E42") == expected


def test_login_candidates_respect_the_length_and_are_deterministic() -> None:
    got = list(islice(login_candidates("jean-francois.dupont-moreau", "E-000123", 20), 3))
    assert got == ["jean-francois.dupont", "jean-francoise000123", "jean-francoie0001232"]
    assert all(len(c) <= 20 for c in got)
    assert got == list(islice(login_candidates("jean-francois.dupont-moreau", "E-000123", 20), 3))


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("Smith, John", "Smith\\, John"),
        ("R+D", "R\\+D"),
        ("#1 Team", "\\#1 Team"),
        (" lead", "\\ lead"),
        ("trail ", "trail\\ "),
        ('say "hi"', 'say \\"hi\\"'),
        ("a<b>;c=d\\e", "a\\<b\\>\\;c\\=d\\\\e"),
        ("São Paulo", "São Paulo"),
        ("C# Team", "C# Team"),
        ("nul\x00byte", "nul\\00byte"),
    ],
)
def test_escape_value(value: str, escaped: str) -> None:
    assert escape_value(value) == escaped
    assert split_dn(f"ou={escape_value(value)},dc=x")[0] == [("ou", value)]


def test_render_and_compare_dns() -> None:
    dn = render_dn(
        "uid={uid},ou={department},ou=People,{base_dn}",
        {"uid": "zoe", "department": "R&D, Lab + Ops"},
        "dc=example,dc=com",
    )
    assert dn == "uid=zoe,ou=R&D\\, Lab \\+ Ops,ou=People,dc=example,dc=com"
    assert dn_key(dn) == dn_key("UID=Zoe, OU=r&d\\2C lab \\2b ops,OU=people,DC=Example,DC=com")
    assert dn_key(dn) != dn_key("uid=zoe,ou=R&D,ou=People,dc=example,dc=com")
    assert rdn_of(dn) == "uid=zoe"
    assert parent_of(dn) == "ou=R&D\\, Lab \\+ Ops,ou=People,dc=example,dc=com"
    assert ascii_fold("Ærøskøbing") == "AEroskobing"
    assert parent_of("uid=a+cn=b,ou=x\\,y+l=z,dc=c") == "ou=x\\,y+l=z,dc=c"
    assert rdn_of("uid=a+cn=b,dc=c") == "uid=a+cn=b"


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and s.strip()))
def test_escaping_round_trips(value: str) -> None:
    assert split_dn(f"cn={escape_value(value)},dc=example")[0] == [("cn", value)]


_DN_CHARS = st.sampled_from([*'ab Zë#\\,+"<>;=\x00\x1f\x7f', "\\2C", "\\41", "李"])


@given(st.lists(_DN_CHARS, max_size=12).map("".join))
def test_the_fast_paths_of_escaping_answer_as_the_slow_ones(value: str) -> None:
    """A value that needs no escaping is its own escape, and one without a backslash its own
    unescape: exactly what the character-by-character paths give."""
    assert escape_value(value) == _escape_each(value)
    slow = bytearray()
    for ch in value:  # the unescape of a value without escapes: its UTF-8, decoded
        slow.extend(ch.encode())
    if "\\" not in value and not value.startswith("#"):
        assert _unescape(value) == slow.decode("utf-8", errors="replace")


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=20))
def test_ascii_folds_to_itself(value: str) -> None:
    """The ASCII fast path of ascii_fold: what NFKD and the filter leave of ASCII text."""
    kept = unicodedata.normalize("NFKD", value)
    assert (
        ascii_fold(value)
        == value
        == "".join(c for c in kept if ord(c) < 128 and not unicodedata.combining(c))
    )


@given(st.lists(st.lists(_DN_CHARS, min_size=1, max_size=6).map("".join), min_size=2, max_size=4))
def test_parent_key_and_first_rdn_answer_as_the_long_ways(values: list[str]) -> None:
    dn = ",".join(f"ou={escape_value(v)}" for v in values if v.strip())
    if dn.count("ou=") < 2:
        return
    assert parent_key(dn) == dn_key(parent_of(dn))
    assert first_rdn(dn) == split_dn(dn)[0]
    plain = "uid=a+cn=b ,ou=x, dc=c"
    assert parent_key(plain) == dn_key(parent_of(plain)) and first_rdn(plain) == split_dn(plain)[0]
