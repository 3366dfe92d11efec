"""PII catalogue: which fields are personal data, and which of those are sensitive.

A field is classified first by its JSON-schema annotation (``"x-pii": "sensitive.salary"`` on the
property), else by its name. Names are split into lower-case tokens (``dateOfBirth`` ->
``date of birth``, ``home_address.line1`` -> ``home address line1``) and matched against token
patterns, so ``sin`` matches ``sin``/``employee_sin`` but never ``business``.

Classes:

- ``identifier``: ids, employee numbers, user names (join keys; not secret on their own).
- ``contact``: e-mail addresses and phone numbers.
- ``name``: a person's names (first, last, preferred, display...): personal, not sensitive.
- ``sensitive.*``: data whose leak harms the person; a destination gets it only when its
  mapping profile says so explicitly (``sensitive_ok: true``).

The core knows no vendor: the patterns are generic HR vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

IDENTIFIER: Final = "identifier"
PERSON_NAME: Final = "name"
CONTACT: Final = "contact"
NATIONAL_ID: Final = "sensitive.national_id"
DATE_OF_BIRTH: Final = "sensitive.date_of_birth"
BANK_ACCOUNT: Final = "sensitive.bank_account"
SALARY: Final = "sensitive.salary"
HOME_ADDRESS: Final = "sensitive.home_address"
HEALTH: Final = "sensitive.health"
DEMOGRAPHIC: Final = "sensitive.demographic"

CLASSES: Final[tuple[str, ...]] = (
    IDENTIFIER,
    PERSON_NAME,
    CONTACT,
    NATIONAL_ID,
    DATE_OF_BIRTH,
    BANK_ACCOUNT,
    SALARY,
    HOME_ADDRESS,
    HEALTH,
    DEMOGRAPHIC,
)
SENSITIVE_CLASSES: Final[frozenset[str]] = frozenset(
    c for c in CLASSES if c.startswith("sensitive.")
)
ANNOTATION: Final = "x-pii"

# Each rule: (class, token sequences). A name matches when any sequence appears as consecutive
# tokens in it. Sensitive rules come first: "home_phone" is contact, "home_address" sensitive.
_RULES: Final[tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]] = (
    (
        NATIONAL_ID,
        (
            ("ssn",),
            ("sin",),
            ("nin",),
            ("social", "security"),
            ("social", "insurance"),
            ("national", "id"),
            ("national", "identifier"),
            ("national", "insurance"),
            ("nationalid",),
            ("tax", "id"),
            ("taxid",),
            ("tin",),
            ("passport",),
            ("driver", "license"),
            ("drivers", "license"),
            ("driving", "licence"),
            ("government", "id"),
            ("sofi",),
            ("bsn",),
            ("nino",),
        ),
    ),
    (
        DATE_OF_BIRTH,
        (
            ("dob",),
            ("birth",),
            ("birthday",),
            ("birthdate",),
            ("date", "of", "birth"),
            ("birth", "date"),
        ),
    ),
    (
        BANK_ACCOUNT,
        (
            ("iban",),
            ("bic",),
            ("swift",),
            ("account", "number"),
            ("bank",),
            ("routing",),
            ("sort", "code"),
            ("aba",),
        ),
    ),
    (
        SALARY,
        (
            ("salary",),
            ("salaries",),
            ("pay", "rate"),
            ("payrate",),
            ("compensation",),
            ("wage",),
            ("wages",),
            ("bonus",),
            ("commission",),
            ("equity",),
            ("stock", "options"),
            ("hourly", "rate"),
            ("base", "pay"),
            ("gross", "pay"),
            ("net", "pay"),
        ),
    ),
    (
        HOME_ADDRESS,
        (
            ("home", "address"),
            ("address",),
            ("address1",),
            ("address2",),
            ("street",),
            ("postal", "code"),
            ("postcode",),
            ("zip",),
            ("zipcode",),
            ("home",),
        ),
    ),
    (
        HEALTH,
        (
            ("health",),
            ("medical",),
            ("disability",),
            ("disabled",),
            ("diagnosis",),
            ("illness",),
            ("sick",),
            ("benefit",),
            ("benefits",),
            ("dependent",),
            ("dependents",),
            ("beneficiary",),
            ("pregnancy",),
            ("maternity",),
        ),
    ),
    (
        DEMOGRAPHIC,
        (
            ("gender",),
            ("sex",),
            ("ethnicity",),
            ("race",),
            ("religion",),
            ("veteran",),
            ("sexual", "orientation"),
            ("marital",),
        ),
    ),
    (
        CONTACT,
        (
            ("email",),
            ("emails",),
            ("e", "mail"),
            ("phone",),
            ("phones",),
            ("mobile",),
            ("cell",),
            ("telephone",),
            ("fax",),
        ),
    ),
    (
        IDENTIFIER,
        (
            ("id",),
            ("ids",),
            ("uuid",),
            ("employee", "number"),
            ("username",),
            ("user", "name"),
            ("login",),
        ),
    ),
    (
        PERSON_NAME,
        (
            ("first", "name"),
            ("firstname",),
            ("last", "name"),
            ("lastname",),
            ("middle", "name"),
            ("given", "name"),
            ("family", "name"),
            ("preferred", "name"),
            ("display", "name"),
            ("full", "name"),
            ("legal", "name"),
            ("surname",),
        ),
    ),
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^0-9A-Za-z]+")


def tokens(name: str) -> tuple[str, ...]:
    """Lower-case word tokens of a field name or path (camelCase, snake_case, dots, brackets)."""
    return tuple(t.lower() for t in _SPLIT.split(_CAMEL.sub(" ", name)) if t)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def classify_name(name: str) -> str | None:
    """PII class of a field by its name alone, or None."""
    toks = tokens(name)
    if not toks:
        return None
    # A trailing "id" makes most things an identifier of another object: `department_id` is
    # no PII at all, `bank_account_id` is still a reference, but `national_id`/`tax_id` are
    # matched first by the sensitive rules.
    for cls, patterns in _RULES:
        if any(_contains(toks, p) for p in patterns):
            if cls == HOME_ADDRESS and not _address_is_personal(toks):
                continue
            return cls
    return None


_NON_PERSONAL_ADDRESS: Final = frozenset(
    {"office", "work", "company", "business", "location", "ip"}
)


_CONTACT_WORDS: Final = frozenset({"email", "emails", "phone", "phones", "mobile", "fax", "cell"})


def _address_is_personal(toks: tuple[str, ...]) -> bool:
    """`office_address`, `ip_address`, `email_address` and `home_phone` are no home addresses."""
    words = set(toks)
    return not (_NON_PERSONAL_ADDRESS & words) and not (_CONTACT_WORDS & words)


def classify(name: str, schema: Mapping[str, Any] | None = None) -> str | None:
    """PII class of a field: its ``x-pii`` annotation wins, else its name.

    An explicit ``"x-pii": null`` or ``"x-pii": "none"`` marks a field as not personal data.
    """
    if schema is not None and ANNOTATION in schema:
        value = schema[ANNOTATION]
        if value in (None, "none"):
            return None
        if value not in CLASSES:
            msg = f"unknown PII class {value!r} on field {name!r}; expected one of {CLASSES}"
            raise ValueError(msg)
        return str(value)
    return classify_name(name)


def is_sensitive(pii_class: str | None) -> bool:
    """Whether a PII class needs an explicit acknowledgement to leave its system."""
    return pii_class is not None and pii_class in SENSITIVE_CLASSES


def classify_schema(schema: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Classify every property of an object schema (nested objects as dotted paths)."""
    found: dict[str, str] = {}
    props = schema.get("properties") or {}
    for name, prop in props.items():
        path = f"{prefix}{name}"
        cls = classify(name, prop)
        if cls is not None:
            found[path] = cls
        if isinstance(prop, Mapping):
            if "properties" in prop:
                found.update(classify_schema(prop, prefix=f"{path}."))
            items = prop.get("items")
            if isinstance(items, Mapping) and "properties" in items:
                found.update(classify_schema(items, prefix=f"{path}[]."))
    return found


def sensitive_fields(names: Iterable[str]) -> dict[str, str]:
    """Names among ``names`` that are sensitive by name, with their class."""
    out: dict[str, str] = {}
    for name in names:
        cls = classify_name(name)
        if is_sensitive(cls):
            out[name] = cls  # type: ignore[assignment]
    return out
