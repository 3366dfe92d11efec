"""The directory connection and the stream base: TLS policy, bind, paged searches, records.

The connection is made by the core's TLS policy (:func:`hrsync.tls.ldap_server`: LDAPS or
StartTLS with TLS 1.2+, the certificate and host name verified; plain ``ldap://`` only to a
loopback host). Searches use RFC 2696 simple paged results; an answer the server truncated
(size or time limit) stops the extract, since a short read-back would report accounts as
missing. Only the attributes the schemas declare are requested: never ``*``, so a password
hash (``userPassword``, ``unicodePwd``) is never read, let alone emitted.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from ldap3 import SUBTREE, SYNC, Connection
from ldap3.core.exceptions import LDAPException
from singer_sdk import SchemaDirectory, Stream, StreamSchema

from hrsync.incremental import DateTimeWindows
from hrsync.output import SelectedRecordMessages
from hrsync.tls import ldap_server
from tap_ldap.values import (
    from_generalized_time,
    guid_text,
    is_under,
    sid_text,
    text_value,
    to_generalized_time,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

SCHEMAS = Path(__file__).parent / "schemas"
PAGED_RESULTS = "1.2.840.113556.1.4.319"
MODES = ("openldap", "ad")
#: attributes no record carries and no setting may add: credentials and their hashes
SECRET_ATTRIBUTES = frozenset(
    name.casefold()
    for name in (
        "userPassword",
        "unicodePwd",
        "dBCSPwd",
        "ntPwdHistory",
        "lmPwdHistory",
        "supplementalCredentials",
        "authPassword",
        "sambaNTPassword",
        "sambaLMPassword",
        "pwdHistory",
    )
)
#: the stamps, per mode: (modified, created)
STAMPS = {"openldap": ("modifyTimestamp", "createTimestamp"), "ad": ("whenChanged", "whenCreated")}
#: the stable identifier, per mode (the DN changes when an account moves)
IDENTIFIERS = {"openldap": "entryUUID", "ad": "objectGUID"}
BINARY = {"objectguid": guid_text, "objectsid": sid_text}
AD_ACCOUNTDISABLE = 0x2


class LDAPTapError(Exception):
    """The directory cannot be read (connection, TLS, bind, a truncated search)."""


def parse_disabled_attribute(value: t.Any) -> tuple[str, str] | None:
    """``'attribute: value'`` or ``{attribute: value}`` (target-ldap's ``disabled_attribute``
    forms, ``{attribute: A, value: V}`` included), or None."""
    if value in (None, "", {}):
        return None
    if isinstance(value, t.Mapping):
        if len(value) == 1 and "attribute" not in value:
            ((key, val),) = value.items()
            value = f"{key}: {val}"
        else:
            value = f"{value.get('attribute') or ''}: {value.get('value') or ''}"
    name, sep, wanted = str(value).partition(":")
    if not sep:
        name, sep, wanted = str(value).partition("=")
    if not sep or not name.strip() or not wanted.strip():
        raise ValueError(
            f"disabled_attribute {value!r}: expected 'attribute: value', e.g. "
            "'pwdAccountLockedTime: 000001010000Z' or 'employeeType: disabled'"
        )
    return name.strip(), wanted.strip()


class Directory:
    """One bound connection for the tap's searches (streams run one after the other)."""

    def __init__(self, config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
        self.url = str(config["url"])
        parts = urlsplit(self.url)
        if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
            raise LDAPTapError(f"url {self.url!r}: expected ldaps://host[:port] or ldap://host")
        self.use_ssl = parts.scheme.lower() == "ldaps"
        self.start_tls = bool(config.get("start_tls")) and not self.use_ssl
        self.bind_dn = config.get("bind_dn") or None
        self.password = config.get("bind_password") or None
        self.timeout = max(1, int(config.get("timeout") or 30))
        self.server = ldap_server(
            parts.hostname,
            parts.port or (636 if self.use_ssl else 389),
            use_ssl=self.use_ssl,
            start_tls=self.start_tls,
            ca_file=config.get("ca_file") or None,
            connect_timeout=self.timeout,
        )
        self.logger = logger
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None or self._conn.closed:
            conn = Connection(
                self.server,
                user=self.bind_dn,
                password=self.password,
                client_strategy=SYNC,
                raise_exceptions=False,
                receive_timeout=self.timeout,
                auto_referrals=False,
                check_names=False,
            )
            try:
                conn.open()
                if self.start_tls:
                    conn.start_tls()
                bound = conn.bind()
            except LDAPException as error:
                raise LDAPTapError(f"cannot connect to {self.url}: {error}") from None
            if not bound:
                result = conn.result or {}
                raise LDAPTapError(
                    f"bind as {self.bind_dn or '(anonymous)'} to {self.url} failed: LDAP result "
                    f"{result.get('result')} {result.get('description')}: "
                    f"{(result.get('message') or '').strip()}"
                )
            self._conn = conn
        return self._conn

    def search(
        self, base: str, search_filter: str, attributes: Sequence[str], page_size: int
    ) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
        """Paged subtree search: (dn, {attribute lower-cased: [raw values]}) per entry."""
        asked = [a for a in attributes if a.casefold() not in SECRET_ATTRIBUTES]
        conn = self.conn
        cookie: bytes | None = None
        while True:
            try:
                conn.search(
                    base,
                    search_filter,
                    search_scope=SUBTREE,
                    attributes=asked,
                    paged_size=page_size,
                    paged_cookie=cookie,
                )
            except LDAPException as error:
                raise LDAPTapError(f"search under {base} failed: {error}") from None
            result = conn.result or {}
            if result.get("result") != 0:
                raise LDAPTapError(
                    f"search under {base} ({search_filter}) failed: LDAP result "
                    f"{result.get('result')} {result.get('description')}: "
                    f"{(result.get('message') or '').strip()}; the extract stops rather than "
                    "come out short"
                )
            for entry in conn.response or []:
                if entry.get("type") != "searchResEntry":
                    continue  # search references (AD): other naming contexts
                raw = {
                    name.lower(): list(values)
                    for name, values in (entry.get("raw_attributes") or {}).items()
                    if name.casefold() not in SECRET_ATTRIBUTES
                }
                yield str(entry["dn"]), raw
            controls = result.get("controls") or {}
            cookie = controls.get(PAGED_RESULTS, {}).get("value", {}).get("cookie") or None
            if not cookie:
                return

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.unbind()
        self._conn = None


class LDAPStream(SelectedRecordMessages, DateTimeWindows, Stream):
    """One kind of directory entry, read with a paged search; incremental on ``modified``.
    Records leave through the core's :class:`~hrsync.output.SelectedRecordMessages` (the same
    bytes as singer-sdk's per-record path, for less work)."""

    schema = StreamSchema(SchemaDirectory(SCHEMAS))  # schemas/<stream name>.json
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "modified"
    is_sorted = False
    window_precision = timedelta(seconds=1)  # generalized time in whole seconds
    emit_after_window_end = True  # a read-back: an entry changed during the run is not left out

    #: single-valued attributes emitted as they are named in the schema
    text_attributes: t.ClassVar[tuple[str, ...]] = ()
    #: attributes emitted as arrays of strings
    list_attributes: t.ClassVar[tuple[str, ...]] = ()
    #: the setting holding this stream's filter, and its default per mode
    filter_setting: t.ClassVar[str] = ""
    default_filters: t.ClassVar[dict[str, str]] = {}

    @property
    def mode(self) -> str:
        return str(self.config.get("mode") or "openldap")

    @property
    def directory(self) -> Directory:
        return t.cast(t.Any, self._tap).directory

    def bases(self) -> list[str]:
        raise NotImplementedError

    def extra_attributes(self) -> list[str]:
        return []

    def attributes(self) -> list[str]:
        modified, created = STAMPS[self.mode]
        names = [*self.text_attributes, *self.list_attributes, modified, created]
        names += ["entryUUID", "objectGUID", "objectSid", *self.extra_attributes()]
        return list(dict.fromkeys(names))

    def search_filter(self, context: Context | None) -> str:
        base_filter = str(
            self.config.get(self.filter_setting) or self.default_filters[self.mode]
        ).strip()
        if not base_filter.startswith("("):
            base_filter = f"({base_filter})"
        low = self.window(context).low
        if low is None:
            return base_filter
        return f"(&{base_filter}({STAMPS[self.mode][0]}>={to_generalized_time(low)}))"

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        page_size = int(self.config.get("page_size") or 500)
        search_filter = self.search_filter(context)
        bases = self.bases()
        try:
            for i, base in enumerate(bases):
                for dn, raw in self.directory.search(
                    base, search_filter, self.attributes(), page_size
                ):
                    if any(is_under(dn, earlier) for earlier in bases[:i]):
                        continue  # read under an earlier base already (no id set: memory flat)
                    row = self.build(dn, raw)
                    if self.in_window(row, context):
                        yield row
        finally:
            self.directory.close()  # unbind; the next stream binds again

    # --- values --------------------------------------------------------------------------

    def texts(self, dn: str, raw: dict[str, list[bytes]], name: str) -> list[str]:
        values: list[str] = []
        for value in raw.get(name.lower(), []):
            decoded = text_value(value)
            if decoded is None:
                self._warn_once(
                    name,
                    "entry %s: attribute %s holds a value that is not UTF-8 text; it is left out",
                    dn,
                    name,
                )
                continue
            values.append(decoded)
        return values

    def first(self, dn: str, raw: dict[str, list[bytes]], name: str) -> str | None:
        values = self.texts(dn, raw, name)
        if len(values) > 1:
            self._warn_once(
                f"{name}:many",
                "entry %s: attribute %s has %d values; the record carries the first, %r",
                dn,
                name,
                len(values),
                values[0],
            )
        return values[0] if values else None

    def stamp(self, dn: str, raw: dict[str, list[bytes]], name: str) -> str | None:
        value = self.first(dn, raw, name)
        if value is None:
            return None
        try:
            return from_generalized_time(value)
        except ValueError:
            self._warn_once(name, "entry %s: %s %r is not a generalized time", dn, name, value)
            return None

    def _warn_once(self, key: str, message: str, *args: t.Any) -> None:
        warned: set[str] = self.__dict__.setdefault("_warned", set())
        if key not in warned:
            warned.add(key)
            self.logger.warning(message, *args)

    def build(self, dn: str, raw: dict[str, list[bytes]]) -> dict[str, t.Any]:
        """The record of one entry: its DN, stable id, stamps and declared attributes."""
        modified, created = STAMPS[self.mode]
        row: dict[str, t.Any] = {"dn": dn}
        for name in self.text_attributes:
            row[name] = self.first(dn, raw, name)
        for name in self.list_attributes:
            row[name] = self.texts(dn, raw, name)
        for name, convert in BINARY.items():
            values = raw.get(name)
            row["objectGUID" if name == "objectguid" else "objectSid"] = (
                convert(values[0]) if values else None
            )
        row["entryUUID"] = self.first(dn, raw, "entryUUID")
        row["modified"] = self.stamp(dn, raw, modified)
        row["created"] = self.stamp(dn, raw, created)
        row["id"] = row.get(IDENTIFIERS[self.mode]) or dn
        return row
