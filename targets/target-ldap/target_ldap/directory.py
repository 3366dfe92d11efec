"""The directory connection: TLS policy, bind, paged reads, writes that report LDAP results.

One ldap3 SYNC connection per worker thread (ldap3 connections are not thread-safe); writes
fan out over ``max_connections`` threads. Result codes are returned, not raised, so a
rejected entry becomes a specific per-employee error while the run goes on; a lost
connection or a failed bind stops the run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ldap3 import (
    BASE,
    MODIFY_ADD,
    MODIFY_DELETE,
    MODIFY_REPLACE,
    SUBTREE,
    SYNC,
    Connection,
)
from ldap3.core.exceptions import LDAPException

from hrsync.tls import ldap_server
from target_ldap.config import Settings, check_transport
from target_ldap.naming import parent_of, rdn_of, split_dn

LOGGER = logging.getLogger("target_ldap")
PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"  # add-existing / delete-missing value: no error
PAGED_RESULTS = "1.2.840.113556.1.4.319"
T = TypeVar("T")
R = TypeVar("R")

__all__ = ["MODIFY_ADD", "MODIFY_DELETE", "MODIFY_REPLACE", "Directory", "DirectoryError"]


class DirectoryError(Exception):
    """The directory cannot be used at all (connection, TLS, bind, search): stop the run."""


@dataclass(frozen=True)
class Result:
    """An LDAP operation's outcome."""

    code: int
    description: str
    message: str
    dn: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def __str__(self) -> str:
        text = f"LDAP result {self.code} {self.description}"
        return f"{text}: {self.message}" if self.message else text


def _result(conn: Connection, dn: str) -> Result:
    res = conn.result or {}
    return Result(
        int(res.get("result", -1)),
        str(res.get("description", "")),
        str(res.get("message", "") or "").strip(),
        dn,
    )


class Directory:
    """Connections to one directory, created per thread on first use."""

    def __init__(self, settings: Settings, logger: logging.Logger | None = None) -> None:
        check_transport(settings.url, settings.start_tls)
        self.settings = settings
        self.logger = logger or LOGGER
        # TLS 1.2+, certificate and host name verified: the core's connection policy
        self.server = ldap_server(
            settings.host,
            settings.port,
            use_ssl=settings.use_ssl,
            start_tls=settings.start_tls,
            ca_file=settings.ca_file,
            connect_timeout=max(1, int(settings.timeout)),
        )
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def destination(self) -> str:
        return f"{self.settings.url.rstrip('/')}/{self.settings.base_dn}"

    def _open(self) -> Connection:
        s = self.settings
        conn = Connection(
            self.server,
            user=s.bind_dn,
            password=s.bind_password,
            client_strategy=SYNC,
            raise_exceptions=False,
            receive_timeout=max(1, int(s.timeout)),
            auto_referrals=False,
            check_names=False,
        )
        try:
            conn.open()
            if s.start_tls and not s.use_ssl:
                conn.start_tls()
            bound = conn.bind()
        except LDAPException as error:
            raise DirectoryError(f"cannot connect to {s.url}: {error}") from None
        if not bound:
            result = _result(conn, s.bind_dn or "")
            raise DirectoryError(
                f"bind as {s.bind_dn or '(anonymous)'} to {s.url} failed: {result}"
            )
        with self._lock:
            self._all.append(conn)
        return conn

    @property
    def conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._open()
            self._local.conn = conn
        return conn

    def check(self) -> None:
        """Connect and bind once (fails fast on TLS / credentials)."""
        _ = self.conn

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(LDAPException):  # already gone
                    conn.unbind()
            self._all.clear()
        self._local = threading.local()

    # -- reads ------------------------------------------------------------------------
    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        scope: Any = SUBTREE,
        page_size: int = 1000,
        missing_ok: bool = False,
    ) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Paged search; yields (dn, {attribute lower-cased: [values]}).

        A truncated answer (size or time limit) is an error: planning from a partial view
        of the directory would create duplicate accounts.
        """
        conn = self.conn
        cookie: bytes | None = None
        while True:
            try:
                conn.search(
                    base,
                    search_filter,
                    search_scope=scope,
                    attributes=list(attributes),
                    paged_size=page_size if scope == SUBTREE else None,
                    paged_cookie=cookie,
                )
            except LDAPException as error:
                raise DirectoryError(f"search under {base} failed: {error}") from None
            result = _result(conn, base)
            if result.code == 32 and missing_ok:  # noSuchObject
                return
            if not result.ok:
                raise DirectoryError(
                    f"search under {base} ({search_filter}) failed: {result}. A partial view "
                    "of the directory is not safe to plan from; nothing was written"
                )
            for entry in conn.response or []:
                if entry.get("type") != "searchResEntry":
                    continue
                attrs = {
                    name.lower(): [v if isinstance(v, str) else str(v) for v in values]
                    if isinstance(values, list)
                    else [values if isinstance(values, str) else str(values)]
                    for name, values in entry["attributes"].items()
                }
                yield entry["dn"], attrs
            controls = (conn.result or {}).get("controls") or {}
            cookie = controls.get(PAGED_RESULTS, {}).get("value", {}).get("cookie") or None
            if not cookie:
                return

    def read(self, dn: str, attributes: Sequence[str]) -> dict[str, list[str]] | None:
        for _, attrs in self.search(dn, "(objectClass=*)", attributes, scope=BASE, missing_ok=True):
            return attrs
        return None

    # -- writes -----------------------------------------------------------------------
    def add(self, dn: str, object_classes: Sequence[str], attributes: dict[str, Any]) -> Result:
        result = self._write(lambda c: c.add(dn, list(object_classes), attributes), dn)
        parent_missing = result.code == 32 and self.settings.create_missing_ous
        if parent_missing and self.ensure_parents(dn):
            result = self._write(lambda c: c.add(dn, list(object_classes), attributes), dn)
        return result

    def modify(self, dn: str, changes: dict[str, list[tuple[Any, list[str]]]]) -> Result:
        return self._write(
            lambda c: c.modify(dn, changes, controls=[(PERMISSIVE_MODIFY, False, None)]), dn
        )

    def move(self, dn: str, new_dn: str) -> Result:
        """modify_dn: new RDN and/or new parent; the old RDN value is removed."""
        new_rdn, new_parent = rdn_of(new_dn), parent_of(new_dn)
        superior = new_parent if split_dn(new_parent) != split_dn(parent_of(dn)) else None

        def op(c: Connection) -> Any:
            return c.modify_dn(dn, new_rdn, delete_old_dn=True, new_superior=superior)

        result = self._write(op, dn)
        parent_missing = result.code == 32 and superior and self.settings.create_missing_ous
        if parent_missing and self.ensure_parents(new_dn):
            result = self._write(op, dn)
        return result

    def ensure_parents(self, dn: str) -> bool:
        """Create missing organizational units above ``dn`` (down from the first one that
        exists). Only ``ou=`` RDNs are created; False when something else is missing or a
        creation failed."""
        missing: list[str] = []
        parent = parent_of(dn)
        while parent and self.read(parent, ["objectClass"]) is None:
            rdn = split_dn(parent)[0]
            if len(rdn) != 1 or rdn[0][0].lower() != "ou":
                return False
            missing.append(parent)
            parent = parent_of(parent)
        for ou_dn in reversed(missing):
            value = split_dn(ou_dn)[0][0][1]

            def add_ou(c: Connection, d: str = ou_dn, v: str = value) -> Any:
                return c.add(d, ["top", "organizationalUnit"], {"ou": v})

            result = self._write(add_ou, ou_dn)
            if not result.ok and result.code != 68:  # entryAlreadyExists: another thread won
                self.logger.error("could not create %s: %s", ou_dn, result)
                return False
            self.logger.info("created organizational unit %s", ou_dn)
        return True

    def _write(self, op: Callable[[Connection], Any], dn: str) -> Result:
        conn = self.conn
        try:
            op(conn)
        except LDAPException as error:
            # a dropped connection: one reconnect, then the run stops (a re-run converges)
            self.logger.warning("LDAP connection problem on %s (%s); reconnecting", dn, error)
            self._local.conn = None
            conn = self.conn
            try:
                op(conn)
            except LDAPException as again:
                raise DirectoryError(
                    f"LDAP connection to {self.settings.url} lost: {again}"
                ) from None
        return _result(conn, dn)

    # -- fan-out ----------------------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run ``fn`` over ``items`` on up to max_connections threads (order kept)."""
        items = list(items)
        if self.settings.max_connections <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.settings.max_connections, thread_name_prefix="target-ldap"
            )
        return list(self._pool.map(fn, items))
