# ruff: noqa: RUF001  (the characters are the point)
"""The character policy of map-hr's text transforms: control, format and bidi characters never
reach a file or a directory; legitimate text (accents, apostrophes, scripts) stays intact;
an e-mail with an invisible character is refused and its record becomes a dead letter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hrsync.deadletter import DeadLetterStore
from map_hr.paths import compile_path
from map_hr.transforms import TransformError, build_compute, build_transform, clean_text

Run = Callable[..., list[dict[str, Any]]]


def t(spec: Any, value: Any) -> Any:
    return build_transform(spec, compile_path)(value, {})


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Senior Engineer\r\nDELETE,everyone", "Senior Engineer DELETE,everyone"),  # no new line
        ("Head of\u2028People", "Head of People"),  # Unicode line separator
        ("Nurse\x00\x07", "Nurse"),  # NUL and BEL
        ("Manager\x85x", "Manager x"),  # NEL
        ("\u202eregnaM", "regnaM"),  # right-to-left override
        ("Sales\u200b Lead\ufeff", "Sales Lead"),  # zero-width space, BOM
        ("Fi\u00adnance", "Finance"),  # soft hyphen
        ("ad\u2066min\u2069", "admin"),  # bidi isolates
        ("a\u200db", "ab"),  # ZWJ between Latin letters: spoofing, not spelling
        ("Ingénieure d’études", "Ingénieure d’études"),
        ("محمد", "محمد"),
        ("श्\u200dरी", "श्\u200dरी"),  # Devanagari needs its joiner
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian zero-width non-joiner
        ("山田 太郎", "山田 太郎"),
    ],
)
def test_trim_applies_the_character_policy(raw: str, clean: str) -> None:
    assert t("trim", raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Zo\u00eb\u200f", "Zoë"),
        ("O\u2019Brien\r\nX", "O’Brien X"),
        ("\u202bJos\u00e9\u202c", "José"),
        ("Mary\x00Ann", "MaryAnn"),
        ("Nguyễn\tVăn", "Nguyễn Văn"),
    ],
)
def test_name_applies_the_character_policy(raw: str, clean: str) -> None:
    assert t("name", raw) == clean


def test_every_text_transform_and_compute_cleans() -> None:
    for spec in ("collapse_spaces", "nfc", "upper", "lower"):
        assert "\n" not in t(spec, "a\nb") and "\u202e" not in t(spec, "a\u202eb")
    args = {"first": compile_path("f"), "last": compile_path("l")}
    display = build_compute("display_name", args, {}, [])
    assert display({"f": "Zo\u00eb\r\n", "l": "O'Brien\u200b"}) == "Zoë O'Brien"
    concat = build_compute("concat", {}, {}, [compile_path("a"), compile_path("b")])
    assert concat({"a": "x\ny", "b": "z"}) == "x y z"


def test_clean_text_keeps_printable_text_as_it_is() -> None:
    text = "L'Écuyer-Łukasiewicz, Jr. (王) Δ"
    assert clean_text(text) is text


@pytest.mark.parametrize(
    "address",
    [
        "zoe\u200d@acme.example",  # zero-width joiner
        "zoe@ac\u200bme.example",  # zero-width space in the domain
        "\u202ezoe@acme.example",  # bidi override
        "zoe\x00@acme.example",
        "zoe\r\n@acme.example",
        "zo e@acme.example",
        "zoe@acme",  # no dot in the domain
        "zoe..x@acme.example",
        "*)(uid=*)@acme.example",  # an LDAP filter is not a local part
        '"zoe"@acme.example',  # quoted local parts are refused
        "zoe@acme.example@evil.example",
        "zoe@-acme.example",
    ],
)
def test_email_refuses_invisible_characters_and_bad_syntax(address: str) -> None:
    with pytest.raises(TransformError):
        t("email", address)


@pytest.mark.parametrize(
    "address",
    ["zoe.o'brien@acme.example", "Zoë.Lévy@acme.example", "user+tag@acme.example",
     "山田@例え.jp", "a_b-c@sub.acme.example"],
)  # fmt: skip
def test_email_keeps_real_addresses(address: str) -> None:
    local, _, domain = address.rpartition("@")
    assert t("email", address) == f"{local}@{domain.lower()}"


def test_an_email_with_a_zero_width_joiner_is_a_dead_letter_naming_the_field(
    run_inprocess: Run, h: Any
) -> None:
    """bamboohr_to_canonical: the record with the spoofed address is a dead letter naming
    work_email; the records before and after it are delivered; names are cleaned."""
    props = ("id", "firstName", "lastName", "workEmail", "jobTitle", "status")
    msgs = [
        h.schema_msg("employees", props),
        h.record("employees", {"id": 1, "firstName": "Ann", "lastName": "Lee",
                               "workEmail": "ann.lee@acme.example", "status": "Active"}),
        h.record("employees", {"id": 2, "firstName": "Bob", "lastName": "Roe",
                               "workEmail": "ann.lee\u200d@acme.example", "status": "Active"}),
        h.record("employees", {"id": 3, "firstName": "Cy\u202e", "lastName": "Doe\x00",
                               "workEmail": "cy.doe@acme.example", "status": "Active",
                               "jobTitle": "Engineer\r\nAdmin"}),
    ]  # fmt: skip
    out = run_inprocess({"profile": "bamboohr_to_canonical"}, msgs)
    workers = {m["record"]["id"]: m["record"] for m in out if m["type"] == "RECORD"}
    assert set(workers) == {"1", "3"}
    assert workers["3"]["first_name"] == "Cy" and workers["3"]["last_name"] == "Doe"
    assert workers["3"]["job_title"] == "Engineer Admin"
    (letter,) = DeadLetterStore().list(plugin="map-hr:bamboohr_to_canonical")
    assert letter.record_key == "id=2" and letter.error_class == "unmappable_work_email"
    assert "field work_email: the value contains U+200D (ZERO WIDTH JOINER)" in letter.error
    assert letter.record is not None and "work_email" not in letter.record


def test_every_text_that_leaves_follows_the_policy_unless_a_field_opts_out(
    tmp_path: Any, run_inprocess: Run, h: Any
) -> None:
    """Plain copies too (hris_to_benefits copies the address as it is, from the canonical
    worker's home address): the engine applies the policy to every text value;
    ``raw_text: true`` lets one field through untouched."""
    msgs = [
        h.schema_msg("employees", ("id", "lastName", "address1", "city")),
        h.record("employees", {"id": 1, "lastName": "Lee", "address1": "1 Main St\r\nApt\u202e 4",
                               "city": "Denver\x00"}),
    ]  # fmt: skip
    canonical = run_inprocess({"profile": "bamboohr_to_canonical"}, msgs)
    out = run_inprocess({"profile": "hris_to_benefits"}, canonical)
    (rec,) = [m["record"] for m in out if m["type"] == "RECORD"]
    assert (rec["address_line1"], rec["city"]) == ("1 Main St Apt 4", "Denver")
    profile = tmp_path / "raw.yml"
    profile.write_text(
        "name: raw\ndestination: warehouse\nsource_system: bamboohr\nstreams:\n  employees:\n"
        "    fields:\n      id: {from: id}\n"
        "      note: {from: address1, raw_text: true, sensitive_ok: true}\n"
        "      city: {from: city}\n"
    )
    out = run_inprocess({"profile": str(profile)}, msgs)
    (rec,) = [m["record"] for m in out if m["type"] == "RECORD"]
    assert (rec["note"], rec["city"]) == ("1 Main St\r\nApt\u202e 4", "Denver")
