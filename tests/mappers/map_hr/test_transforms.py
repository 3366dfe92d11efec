# ruff: noqa: RUF001  (the names are the point)
"""Each transform on the edge-case people: accents, apostrophes, scripts, missing values."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from map_hr.paths import compile_path
from map_hr.transforms import TransformError, build_compute, build_transform, to_country_code


def t(spec: Any, value: Any, rec: dict[str, Any] | None = None) -> Any:
    return build_transform(spec, compile_path)(value, rec or {})


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Rene\u0301e ", "Renée"),  # NFD accent composed, whitespace trimmed
        ("Franc\u0327ois", "François"),
        ("L'E\u0301cuyer", "L'Écuyer"),  # apostrophe kept
        ("D’Alessandro", "D’Alessandro"),  # typographic apostrophe kept as is
        ("O'Brien-Łukasiewicz", "O'Brien-Łukasiewicz"),
        ("Mary  Ann", "Mary Ann"),  # inner runs collapse
        ("Mary\u00a0Ann", "Mary Ann"),  # no-break space
        ("王", "王"),
        ("Мария", "Мария"),
        ("محمد", "محمد"),
        ("Nguyễn", "Nguyễn"),
        ("Αλέξανδρος", "Αλέξανδρος"),
        ("김", "김"),
    ],
)
def test_name_normalises_without_mangling(raw: str, clean: str) -> None:
    got = t("name", raw)
    assert got == clean
    assert unicodedata.is_normalized("NFC", got)


def test_name_passes_missing_through() -> None:
    assert t("name", None) is None


def test_name_rejects_non_text() -> None:
    with pytest.raises(TransformError, match="expected text"):
        t("name", {"first": "x"})


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("3/7/2021", "2021-03-07"),
        ("12/31/1999", "1999-12-31"),
        ("2021-03-07", "2021-03-07"),
        ("2021-03-07T23:30:00Z", "2021-03-07"),
        ("07.03.2021", "2021-03-07"),
        ("Mar 7, 2021", "2021-03-07"),
        ("", None),
        (None, None),
    ],
)
def test_date_formats_to_iso(value: str | None, iso: str | None) -> None:
    spec = {"date": {"formats": ["M/D/YYYY", "iso", "DD.MM.YYYY", "MMM D, YYYY"]}}
    assert t(spec, value) == iso


@pytest.mark.parametrize("bad", ["2/30/2020", "13/1/2020", "yesterday", "0000-00-00"])
def test_date_rejects_impossible_dates(bad: str) -> None:
    with pytest.raises(TransformError, match="not a valid date"):
        t({"date": {"formats": ["M/D/YYYY", "iso"]}}, bad)


def test_datetime_output_keeps_or_sets_zone() -> None:
    spec = {"datetime": {"formats": ["iso"], "timezone": "Europe/Berlin"}}
    assert t(spec, "2021-03-07T10:00:00+00:00") == "2021-03-07T10:00:00+00:00"
    assert t(spec, "2021-03-07T10:00:00") == "2021-03-07T10:00:00+01:00"


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-0132", "US", "+14155550132"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("030 1234567", "DE", "+49301234567"),
    ],
)
def test_phone_to_e164(raw: str, region: str, e164: str) -> None:
    assert t({"phone": {"region": region}}, raw) == e164


def test_phone_region_from_another_field() -> None:
    spec = {"phone": {"region_from": "address.country"}}
    assert t(spec, "020 7946 0958", {"address": {"country": "United Kingdom"}}) == "+442079460958"


def test_phone_invalid_is_an_error_or_null() -> None:
    with pytest.raises(TransformError, match="not a phone number"):
        t("phone", "call me maybe")
    assert t({"phone": {"on_invalid": "null"}}, "12") is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("gbr", "GB"),
        ("Deutschland", "DE"),
        ("united states of america", "US"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d’Ivoire", "CI"),
        ("日本", "JP"),
        ("Türkiye", "TR"),
        ("JP", "JP"),
    ],
)
def test_country_to_iso_3166(name: str, code: str) -> None:
    assert to_country_code(name) == code
    assert t("country", name) == code


def test_unknown_country_is_an_error() -> None:
    with pytest.raises(TransformError, match="Narnia"):
        t("country", "Narnia")
    assert t({"country": {"on_unknown": "null"}}, "Narnia") is None


def test_money_and_numbers() -> None:
    assert t("money", "75000 USD") == "75000.00"
    assert t("money", 85000) == "85000.00"
    assert t("integer", "12") == 12
    assert t("number", "18.50") == 18.5
    assert t("boolean", "Yes") is True
    with pytest.raises(TransformError):
        t("integer", "12.5")


def compute(name: str, args: dict[str, str], rec: dict[str, Any], **opts: Any) -> Any:
    return build_compute(name, {k: compile_path(v) for k, v in args.items()}, opts, [])(rec)


NAMES = {"first": "first", "last": "last", "preferred": "preferred"}


@pytest.mark.parametrize(
    ("rec", "shown"),
    [
        ({"first": "José", "last": "Núñez de Balboa", "preferred": "Pepe"}, "Pepe Núñez de Balboa"),
        ({"first": " Zoë ", "last": "O'Brien-Łukasiewicz"}, "Zoë O'Brien-Łukasiewicz"),
        ({"first": "Sukarno", "last": ""}, "Sukarno"),  # mononym in the ATS
        ({"first": "Madonna", "last": "Madonna"}, "Madonna"),  # mononym in the HRIS
        ({"first": "秀英", "last": "王"}, "秀英 王"),
        ({"last": "Nobody"}, "Nobody"),
        ({}, None),
    ],
)
def test_display_name(rec: dict[str, Any], shown: str | None) -> None:
    assert compute("display_name", NAMES, rec) == shown


def test_email_local_part() -> None:
    args = {"email": "email"}
    assert compute("email_local_part", args, {"email": "zoe.obrien@acme.example"}) == "zoe.obrien"
    assert compute("email_local_part", args, {}) is None
    with pytest.raises(TransformError):
        compute("email_local_part", args, {"email": "not-an-address"})


def test_paths_select_list_items() -> None:
    rec = {
        "email_addresses": [
            {"value": "me@home.example", "type": "personal"},
            {"value": "me@work.example", "type": "work"},
        ],
        "positions": [{"title": "A"}, {"title": "B"}],
    }
    assert compile_path("email_addresses[type=work].value")(rec) == "me@work.example"
    assert compile_path("email_addresses[type=other].value")(rec) is None
    assert compile_path("positions[1].title")(rec) == "B"
    assert compile_path("positions[5].title")(rec) is None
    assert compile_path("missing.deeper[0].x")(rec) is None


def test_object_compute_builds_one_object_and_null_when_empty() -> None:
    args = {"line1": compile_path("address1"), "city": compile_path("home.city")}
    obj = build_compute("object", args, {}, [])
    assert obj({"address1": " 1 Main St ", "home": {"city": "Denver"}}) == {
        "line1": "1 Main St",
        "city": "Denver",
    }
    assert obj({"address1": "1 Main St"}) == {"line1": "1 Main St"}  # empty members left out
    assert obj({"address1": "", "home": {}}) is None


def test_object_compute_needs_args() -> None:
    from map_hr.profile import ProfileError, parse_profile

    text = (
        "name: p\ndestination: x\nsource_system: y\nstreams:\n  s:\n    fields:\n"
        "      home_address: {compute: object, from: address1, sensitive_ok: true}\n"
    )
    with pytest.raises(ProfileError, match="compute 'object' needs args"):
        parse_profile(text, "p.yml")
