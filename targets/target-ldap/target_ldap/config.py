"""Typed, validated settings: everything the target checks before it talks to the directory."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hrsync.errors import ConfigError as HRSyncConfigError
from target_ldap.naming import InvalidDNError, TemplateError, parse, rdn_attributes, template_fields
from target_ldap.passwords import PasswordSettingError, check_password_transport, unicode_pwd

MODES = ("openldap", "ad")
MATCH_FIELDS = ("department", "division", "location", "title", "cost_center", "employee_id")

# record field -> LDAP attribute, per mode (attribute_map overrides or removes entries)
DEFAULT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "openldap": {
        "cn": "display_name",
        "sn": "family_name",
        "givenName": "given_name",
        "displayName": "display_name",
        "mail": "work_email",
        "title": "titles",
        "departmentNumber": "departments",
        "l": "location",
    },
    "ad": {
        "givenName": "given_name",
        "sn": "family_name",
        "displayName": "display_name",
        "mail": "work_email",
        "title": "title",
        "department": "department",
        "division": "division",
        "physicalDeliveryOfficeName": "location",
        "employeeNumber": "employee_number",
    },
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "openldap": {
        "object_classes": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "employee_id_attribute": "employeeNumber",
        "login_attribute": "uid",
        "login_max_length": 64,
        "dn_template": "uid={uid},{base_dn}",
    },
    "ad": {
        "object_classes": ["top", "person", "organizationalPerson", "user"],
        "employee_id_attribute": "employeeID",
        "login_attribute": "sAMAccountName",
        "login_max_length": 20,
        "dn_template": "CN={uid},{base_dn}",
    },
}
SOURCE_FIELDS = frozenset(
    {
        "display_name",
        "given_name",
        "family_name",
        "preferred_name",
        "work_email",
        "user_name",
        "title",
        "titles",
        "department",
        "departments",
        "division",
        "location",
        "cost_center",
        "employee_number",
        "employee_id",
    }
)


class ConfigError(HRSyncConfigError):
    """A setting that cannot work; raised before anything is read or written."""


@dataclass(frozen=True)
class GroupRule:
    group_dn: str
    match: dict[str, frozenset[str]]  # field -> accepted values (case-folded); {} = everyone

    def matches(self, facets: list[dict[str, str | None]]) -> bool:
        """True when one facet (the primary position or another one) meets every criterion."""
        for facet in facets:
            if all(
                (facet.get(name) or "").strip().casefold() in accepted
                for name, accepted in self.match.items()
            ):
                return True
        return False


@dataclass(frozen=True)
class Settings:
    url: str
    bind_dn: str | None
    bind_password: str | None
    base_dn: str
    mode: str
    dn_template: str
    object_classes: tuple[str, ...]
    employee_id_attribute: str
    login_attribute: str
    login_max_length: int
    attributes: dict[str, str]  # LDAP attribute -> source field
    upn_domain: str | None = None
    start_tls: bool = False
    ca_file: str | None = None
    disabled_ou: str | None = None
    disabled_attribute: tuple[str, str] | None = None
    group_rules: tuple[GroupRule, ...] = ()
    group_placeholder_member: str | None = None
    remove_groups_on_disable: bool = True
    create_missing_ous: bool = True
    dry_run: bool = False
    max_deactivation_share: float = 0.10
    mass_deactivation_floor: int = 1
    allow_mass_deactivation: bool = False
    deactivate_missing_users: bool = False
    max_connections: int = 4
    timezone: str = "UTC"
    timeout: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)
    # ad mode: unicodePwd of new accounts (LDAPS or StartTLS only; never in repr)
    initial_password: str | None = field(default=None, repr=False)
    password_must_change: bool = True  # ad mode: pwdLastSet=0 with the initial password

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def use_ssl(self) -> bool:
        return urlsplit(self.url).scheme.lower() == "ldaps"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (636 if self.use_ssl else 389)

    @property
    def dn_attributes(self) -> set[str]:
        """Attributes named by the template's first RDN: changed by modify_dn only."""
        return rdn_attributes(_sample_dn(self.dn_template, self.base_dn))


def _sample_dn(template: str, base_dn: str) -> str:
    """The template with sample values, to check its shape."""
    fields = dict.fromkeys(template_fields(template), "x")
    fields["base_dn"] = base_dn
    return template.format(**fields)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_transport(url: str, start_tls: bool) -> None:
    """LDAPS or StartTLS, except on loopback; no other scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise ConfigError(f"url {url!r}: expected ldaps://host[:port] or ldap://host[:port]")
    if scheme == "ldap" and not start_tls and not is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain ldap:// to {parts.hostname!r}: it is not a loopback address, and "
            "passwords and personal data would cross the network in clear text. Use "
            "ldaps://host:636, or set start_tls: true"
        )


def _check_dn(name: str, value: str) -> str:
    try:
        if not parse(value):
            raise InvalidDNError("empty")
    except InvalidDNError as error:
        raise ConfigError(f"{name} {value!r} is not a DN: {error}") from None
    return value


def _parse_disabled_attribute(value: Any) -> tuple[str, str] | None:
    if value in (None, ""):
        return None
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((name, val),) = value.items()
        else:
            name, val = value.get("attribute"), value.get("value")
    elif isinstance(value, str) and ":" in value:
        name, val = value.split(":", 1)
    elif isinstance(value, str) and "=" in value:
        name, val = value.split("=", 1)
    else:
        name, val = None, None
    if not name or val is None or not str(val).strip():
        raise ConfigError(
            f"disabled_attribute {value!r}: expected 'attribute: value', e.g. "
            "'pwdAccountLockedTime: 000001010000Z' or 'employeeType: disabled'"
        )
    return str(name).strip(), str(val).strip()


def _accepted(name: str, value: Any) -> frozenset[str]:
    values = value if isinstance(value, list | tuple) else [value]
    if not values or any(not isinstance(v, str | int | float) for v in values):
        raise ConfigError(f"group_rules: {name} must be a string or a list of strings")
    return frozenset(str(v).strip().casefold() for v in values)


def parse_group_rules(value: Any) -> tuple[GroupRule, ...]:
    """Rules as data. Either a list of ``{group: DN, match: {department: X}}`` (``match``
    may be left out and the criteria written next to ``group``), or a mapping
    ``{DN: {department: X}}``. Values may be lists (any of); ``{}`` matches everyone.
    A person matches when their primary position or any other position meets every
    criterion."""
    if isinstance(value, str) and value.strip():  # from an environment variable
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"group_rules: not JSON: {error}") from None
    if value in (None, "", [], {}):
        return ()
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        items = [(str(dn), crit) for dn, crit in value.items()]
    elif isinstance(value, list):
        for rule in value:
            if not isinstance(rule, Mapping) or not rule.get("group"):
                raise ConfigError(f"group_rules: each rule needs a 'group' DN, got {rule!r}")
            crit = rule.get("match")
            if crit is None:
                crit = {k: v for k, v in rule.items() if k != "group"}
            items.append((str(rule["group"]), crit))
    else:
        raise ConfigError("group_rules must be a list of rules or a mapping DN -> criteria")
    rules = []
    for dn, crit in items:
        _check_dn("group_rules group", dn)
        alternatives = crit if isinstance(crit, list) else [crit]
        for alt in alternatives:
            if not isinstance(alt, Mapping):
                raise ConfigError(f"group_rules {dn!r}: criteria must be a mapping, got {alt!r}")
            unknown = sorted(set(alt) - set(MATCH_FIELDS))
            if unknown:
                raise ConfigError(
                    f"group_rules {dn!r}: unknown field(s) {unknown}; allowed {list(MATCH_FIELDS)}"
                )
            rules.append(GroupRule(dn, {k: _accepted(k, v) for k, v in alt.items()}))
    return tuple(rules)


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the whole configuration; raise ConfigError with an operator-facing reason."""
    mode = str(config.get("mode") or "openldap").lower()
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}: expected one of {list(MODES)}")
    defaults = DEFAULTS[mode]
    url = str(config.get("url") or "")
    start_tls = bool(config.get("start_tls"))
    check_transport(url, start_tls)
    base_dn = _check_dn("base_dn", str(config.get("base_dn") or ""))
    if not base_dn:
        raise ConfigError("base_dn is required (the subtree of the managed accounts)")
    template = str(config.get("dn_template") or defaults["dn_template"])
    try:
        names = template_fields(template)
        _check_dn("dn_template", _sample_dn(template, base_dn))
    except TemplateError as error:
        raise ConfigError(str(error)) from None
    if not names or names[0] == "base_dn":
        raise ConfigError(f"dn_template {template!r} must start with an RDN such as uid={{uid}}")
    disabled_ou = config.get("disabled_ou") or None
    if disabled_ou:
        _check_dn("disabled_ou", disabled_ou)
    disabled_attribute = _parse_disabled_attribute(config.get("disabled_attribute"))
    if mode == "openldap" and not disabled_ou and not disabled_attribute:
        raise ConfigError(
            "openldap mode needs a way to disable accounts: set disabled_ou and/or "
            "disabled_attribute (e.g. 'pwdAccountLockedTime: 000001010000Z' with the "
            "ppolicy overlay, or 'employeeType: disabled')"
        )
    upn_domain = config.get("upn_domain") or None
    if mode == "ad" and not upn_domain:
        raise ConfigError("ad mode needs upn_domain (userPrincipalName = login@upn_domain)")
    attributes = dict(DEFAULT_ATTRIBUTES[mode])
    attribute_map = config.get("attribute_map") or {}
    if isinstance(attribute_map, str):
        try:
            attribute_map = json.loads(attribute_map)
        except json.JSONDecodeError as error:
            raise ConfigError(f"attribute_map: not JSON: {error}") from None
    if not isinstance(attribute_map, Mapping):
        raise ConfigError("attribute_map must be an object: LDAP attribute -> record field")
    for attr, source in attribute_map.items():
        if source in (None, ""):
            attributes.pop(attr, None)
        elif source not in SOURCE_FIELDS:
            raise ConfigError(
                f"attribute_map {attr}: unknown source field {source!r}; "
                f"allowed {sorted(SOURCE_FIELDS)}"
            )
        else:
            attributes[attr] = source
    share = float(config.get("max_deactivation_share", 0.10))
    if not 0 <= share <= 1:
        raise ConfigError(f"max_deactivation_share {share}: expected a share between 0 and 1")
    login_max = int(config.get("login_max_length") or defaults["login_max_length"])
    if mode == "ad" and login_max > 20:
        raise ConfigError("login_max_length: sAMAccountName allows at most 20 characters")
    initial_password = _initial_password(config, mode, url, start_tls)
    placeholder = config.get("group_placeholder_member") or None
    if placeholder:
        _check_dn("group_placeholder_member", placeholder)
    return Settings(
        url=url,
        bind_dn=config.get("bind_dn") or None,
        bind_password=config.get("bind_password") or None,
        base_dn=base_dn,
        mode=mode,
        dn_template=template,
        object_classes=tuple(config.get("object_classes") or defaults["object_classes"]),
        employee_id_attribute=str(
            config.get("employee_id_attribute") or defaults["employee_id_attribute"]
        ),
        login_attribute=str(defaults["login_attribute"]),
        login_max_length=login_max,
        attributes=attributes,
        upn_domain=str(upn_domain) if upn_domain else None,
        start_tls=start_tls,
        ca_file=config.get("ca_file") or None,
        disabled_ou=disabled_ou,
        disabled_attribute=disabled_attribute,
        group_rules=parse_group_rules(config.get("group_rules")),
        group_placeholder_member=placeholder,
        remove_groups_on_disable=bool(config.get("remove_groups_on_disable", True)),
        create_missing_ous=bool(config.get("create_missing_ous", True)),
        dry_run=bool(config.get("dry_run")),
        max_deactivation_share=share,
        mass_deactivation_floor=int(config.get("mass_deactivation_floor", 1)),
        allow_mass_deactivation=bool(config.get("allow_mass_deactivation")),
        deactivate_missing_users=bool(config.get("deactivate_missing_users")),
        max_connections=max(1, int(config.get("max_connections") or 4)),
        timezone=str(config.get("timezone") or "UTC"),
        timeout=float(config.get("timeout") or 30),
        initial_password=initial_password,
        password_must_change=bool(config.get("password_must_change", True)),
    )


def _initial_password(
    config: Mapping[str, Any], mode: str, url: str, start_tls: bool
) -> str | None:
    """The initial password of new AD accounts, checked: ad mode, a protected connection."""
    password = config.get("initial_password") or None
    if password is None:
        return None
    if mode != "ad":
        raise ConfigError("initial_password is for ad mode (unicodePwd); openldap mode sets none")
    try:
        check_password_transport(url, start_tls)
        unicode_pwd(str(password))
    except PasswordSettingError as error:
        raise ConfigError(str(error)) from None
    return str(password)
