"""The directory connection: TLS policy, bind, paged reads, pipelined writes that report results.

Built on python-ldap (OpenLDAP's C client library, libldap): the BER encoding and the socket
work happen in C, so a write costs the client a few tens of microseconds. Writes are
pipelined: :meth:`Directory.pipeline` issues ``add_ext`` / ``modify_ext`` / ``rename`` on up to
``max_connections`` connections (round robin) with at most ``window`` requests in flight per
connection, and hands each result back in the order the items were given, so a rejected
operation maps to its own record. Result codes are returned, not raised, so a rejected entry
becomes a specific per-employee error while the run goes on; a lost connection is reopened
once and the operations that were in flight on it are sent again (an add or a move that had
in fact reached the directory is recognised on the second try, so nothing is lost or doubled);
a second loss, a failed bind or a refused certificate stops the run.

Everything runs on the calling thread: python-ldap objects are not shared between threads.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import ldap
from ldap.controls import LDAPControl
from ldap.controls.libldap import SimplePagedResultsControl
from ldap.ldapobject import LDAPObject

from hrsync.tls import ldap_connect
from target_ldap.config import Settings, check_transport
from target_ldap.naming import parent_of, rdn_of, split_dn

LOGGER = logging.getLogger("target_ldap")
PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"  # add-existing / delete-missing value: no error
MODIFY_ADD: int = ldap.MOD_ADD
MODIFY_DELETE: int = ldap.MOD_DELETE
MODIFY_REPLACE: int = ldap.MOD_REPLACE
SUBTREE: int = ldap.SCOPE_SUBTREE
BASE: int = ldap.SCOPE_BASE
WINDOW = 64  # requests in flight per connection
#: a connection gone or not answering: reopened once, its unanswered requests sent again
LOST = (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR)
OK = 0
T = TypeVar("T")

__all__ = [
    "MODIFY_ADD",
    "MODIFY_DELETE",
    "MODIFY_REPLACE",
    "Directory",
    "DirectoryError",
    "Op",
    "Result",
]

#: LDAP result codes by the names of the IANA registry (RFC 4511 section 4.1.9 and later RFCs)
RESULT_NAMES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    5: "compareFalse",
    6: "compareTrue",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    14: "saslBindInProgress",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    33: "aliasProblem",
    34: "invalidDNSyntax",
    36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    54: "loopDetect",
    64: "namingViolation",
    65: "objectClassViolation",
    66: "notAllowedOnNonLeaf",
    67: "notAllowedOnRDN",
    68: "entryAlreadyExists",
    69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs",
    80: "other",
    118: "canceled",
    119: "noSuchOperation",
    120: "tooLate",
    121: "cannotCancel",
    122: "assertionFailed",
    123: "authorizationDenied",
    4096: "e-syncRefreshRequired",
}


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


def _details(error: ldap.LDAPError) -> dict[str, Any]:
    arg = error.args[0] if error.args else {}
    return arg if isinstance(arg, dict) else {"desc": str(arg)}


def _server_result(error: ldap.LDAPError, dn: str) -> Result | None:
    """The server's answer carried by ``error``, or None for a client-side failure (no
    connection, TLS refused, timeout: libldap's negative codes)."""
    details = _details(error)
    code = details.get("result")
    if not isinstance(code, int) or code < 0:
        return None
    name = RESULT_NAMES.get(code, str(details.get("desc") or "unknown").replace(" ", ""))
    return Result(code, name, str(details.get("info") or "").strip(), dn)


def _describe(error: ldap.LDAPError) -> str:
    """libldap's words for a client-side failure: "Can't contact LDAP server (TLS: ...)"."""
    details = _details(error)
    desc = str(details.get("desc") or type(error).__name__)
    info = str(details.get("info") or "").strip()
    return f"{desc} ({info})" if info else desc


@dataclass(frozen=True)
class Op:
    """One write: ``kind`` is add, modify or move; ``args`` what python-ldap takes after the DN
    (an add's modlist, a modify's modlist, a move's (new RDN, new superior or None))."""

    kind: str
    dn: str
    args: Any
    target: str  # the DN the entry has once the operation succeeded


def _encode(values: Iterable[Any]) -> list[bytes]:
    return [
        v.encode("utf-8") if type(v) is str else v if isinstance(v, bytes) else str(v).encode()
        for v in values
    ]


def _texts(values: list[bytes]) -> list[str]:
    """Attribute values as text (a value that is no UTF-8 as its bytes' repr)."""
    try:
        return [v.decode("utf-8") for v in values]
    except UnicodeDecodeError:
        out = []
        for v in values:
            try:
                out.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(str(v))
        return out


@dataclass
class _Pending:
    item: Any
    op: Op | None  # None: a known result, nothing was sent
    slot: int
    conn: LDAPObject | None
    msgid: int
    resent: bool = False
    known: Result | None = None


class Directory:
    """Up to ``max_connections`` connections to one directory, opened on first use."""

    def __init__(self, settings: Settings, logger: logging.Logger | None = None) -> None:
        check_transport(settings.url, settings.start_tls)
        self.settings = settings
        self.logger = logger or LOGGER
        self.window = WINDOW
        self._conns: list[LDAPObject | None] = [None] * max(1, settings.max_connections)
        self._permissive = [LDAPControl(PERMISSIVE_MODIFY, False, None)]

    @property
    def destination(self) -> str:
        return f"{self.settings.url.rstrip('/')}/{self.settings.base_dn}"

    # -- connections ------------------------------------------------------------------
    def _open(self) -> LDAPObject:
        s = self.settings
        try:
            # TLS 1.2+, certificate and host name verified: the core's connection policy
            conn = ldap_connect(
                s.host,
                s.port,
                use_ssl=s.use_ssl,
                start_tls=s.start_tls,
                ca_file=s.ca_file,
                timeout=max(1.0, s.timeout),
            )
            conn.simple_bind_s(s.bind_dn or "", s.bind_password or "")
        except ldap.LDAPError as error:
            result = _server_result(error, s.bind_dn or "")
            if result is None:
                raise DirectoryError(f"cannot connect to {s.url}: {self._why(error)}") from None
            raise DirectoryError(
                f"bind as {s.bind_dn or '(anonymous)'} to {s.url} failed: {result}"
            ) from None
        return conn

    def _why(self, error: ldap.LDAPError) -> str:
        """libldap's reason; a failed TLS handshake it only reports as "(unknown error code)"."""
        s = self.settings
        why = _describe(error)
        tls = s.use_ssl or s.start_tls
        if tls and str(_details(error).get("info") or "").strip() in ("", "(unknown error code)"):
            why += (
                ": the TLS handshake failed. The server's certificate must be issued by the CA "
                f"in ca_file (or a root this machine trusts) and name the host {s.host!r} "
                "(libldap checks a connection to 'localhost' against this machine's own host "
                "name), with TLS 1.2 or newer"
            )
        return why

    def _conn(self, slot: int = 0) -> LDAPObject:
        conn = self._conns[slot]
        if conn is None:
            conn = self._conns[slot] = self._open()
        return conn

    @property
    def conn(self) -> LDAPObject:
        """The first connection (reads and single writes), bound."""
        return self._conn(0)

    def check(self) -> None:
        """Connect and bind once (fails fast on TLS / credentials)."""
        _ = self.conn

    def _drop(self, slot: int) -> None:
        conn, self._conns[slot] = self._conns[slot], None
        if conn is not None:
            with contextlib.suppress(ldap.LDAPError):  # already gone
                conn.unbind_ext()

    def close(self) -> None:
        for slot in range(len(self._conns)):
            self._drop(slot)

    # -- reads ------------------------------------------------------------------------
    def search(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        *,
        scope: int = SUBTREE,
        page_size: int = 1000,
        missing_ok: bool = False,
    ) -> Iterator[tuple[str, dict[str, list[str]]]]:
        """Paged search (RFC 2696); yields (dn, {attribute lower-cased: [values]}).

        A truncated answer (size or time limit) is an error: planning from a partial view
        of the directory would create duplicate accounts.
        """
        conn = self.conn
        paging = SimplePagedResultsControl(False, size=page_size, cookie=b"")
        while True:
            try:
                msgid = conn.search_ext(
                    base,
                    scope,
                    search_filter,
                    list(attributes),
                    serverctrls=[paging] if scope == SUBTREE else None,
                )
                _, entries, _, controls = conn.result3(
                    msgid,
                    all=1,
                    timeout=max(1.0, self.settings.timeout),
                    resp_ctrl_classes={paging.controlType: SimplePagedResultsControl},
                )
            except ldap.LDAPError as error:
                result = _server_result(error, base)
                if result is None:
                    raise DirectoryError(
                        f"search under {base} failed: {_describe(error)}"
                    ) from None
                if result.code == 32 and missing_ok:  # noSuchObject
                    return
                raise DirectoryError(
                    f"search under {base} ({search_filter}) failed: {result}. A partial view "
                    "of the directory is not safe to plan from; nothing was written"
                ) from None
            for dn, attrs in entries or []:
                if dn is None:  # a search continuation reference: referrals are not chased
                    continue
                yield dn, {name.lower(): _texts(vs) for name, vs in attrs.items()}
            cookie = next(
                (c.cookie for c in controls or [] if isinstance(c, SimplePagedResultsControl)),
                b"",
            )
            if not cookie:
                return
            paging.cookie = cookie

    def read(self, dn: str, attributes: Sequence[str]) -> dict[str, list[str]] | None:
        for _, attrs in self.search(dn, "(objectClass=*)", attributes, scope=BASE, missing_ok=True):
            return attrs
        return None

    # -- operations -------------------------------------------------------------------
    @staticmethod
    def add_op(dn: str, object_classes: Sequence[str], attributes: dict[str, Any]) -> Op:
        """An add; ``objectClass`` values given in ``attributes`` come first, then the rest."""
        classes: list[str] = []
        modlist: list[tuple[str, list[bytes]]] = []
        for name, values in attributes.items():
            if name.lower() == "objectclass":
                classes += [str(v) for v in values]
            elif values:
                modlist.append((name, _encode(values)))
        classes += [c for c in object_classes if c not in classes]
        return Op("add", dn, [("objectClass", _encode(classes)), *modlist], dn)

    @staticmethod
    def modify_op(dn: str, changes: dict[str, list[tuple[int, list[Any]]]]) -> Op:
        """A modify: {attribute: [(MODIFY_ADD | MODIFY_DELETE | MODIFY_REPLACE, values)]};
        an empty list of values replaces or deletes every value."""
        modlist = [
            (op, name, _encode(values) if values else None)
            for name, ops in changes.items()
            for op, values in ops
        ]
        return Op("modify", dn, modlist, dn)

    @staticmethod
    def move_op(dn: str, new_dn: str) -> Op:
        """modify_dn: new RDN and/or new parent; the old RDN value is removed."""
        new_parent = parent_of(new_dn)
        superior = new_parent if split_dn(new_parent) != split_dn(parent_of(dn)) else None
        return Op("move", dn, (rdn_of(new_dn), superior), new_dn)

    def add(self, dn: str, object_classes: Sequence[str], attributes: dict[str, Any]) -> Result:
        return self.execute(self.add_op(dn, object_classes, attributes))

    def modify(self, dn: str, changes: dict[str, list[tuple[int, list[Any]]]]) -> Result:
        return self.execute(self.modify_op(dn, changes))

    def move(self, dn: str, new_dn: str) -> Result:
        return self.execute(self.move_op(dn, new_dn))

    def execute(self, op: Op) -> Result:
        """One operation, waited for."""
        results: list[Result] = []
        self.pipeline([op], lambda o: o, lambda _, r: results.append(r))
        return results[0]

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
            result = self.add(ou_dn, ["top", "organizationalUnit"], {"ou": [value]})
            if not result.ok and result.code != 68:  # entryAlreadyExists: made meanwhile
                self.logger.error("could not create %s: %s", ou_dn, result)
                return False
            self.logger.info("created organizational unit %s", ou_dn)
        return True

    # -- pipelined writes -------------------------------------------------------------
    def pipeline(
        self,
        items: Iterable[T],
        op_of: Callable[[T], Op | Result | None],
        done: Callable[[T, Result], None],
        window: int | None = None,
    ) -> None:
        """Send ``op_of(item)`` for every item on the connections, at most ``window`` in
        flight per connection, and call ``done(item, result)`` in the order of ``items``
        (``op_of`` may also answer a Result without sending anything, or None: no call).
        Returns when every result has been handled.

        An add or a move answered noSuchObject for a missing parent OU is retried once after
        creating the OUs (``create_missing_ous``)."""
        slots = len(self._conns)
        limit = slots * max(1, window or self.window)
        inflight: deque[_Pending] = deque()
        turn = 0
        for item in items:
            op = op_of(item)
            if op is None:
                continue
            if isinstance(op, Result):
                inflight.append(_Pending(item, None, 0, None, 0, known=op))
                continue
            slot = turn % slots
            turn += 1
            inflight.append(self._send(item, op, slot))
            while len(inflight) >= limit:
                self._finish(inflight.popleft(), inflight, done)
        while inflight:
            self._finish(inflight.popleft(), inflight, done)

    def _issue(self, conn: LDAPObject, op: Op) -> int:
        if op.kind == "add":
            msgid: int = conn.add_ext(op.dn, op.args)
        elif op.kind == "modify":
            msgid = conn.modify_ext(op.dn, op.args, serverctrls=self._permissive)
        else:
            new_rdn, superior = op.args
            msgid = conn.rename(op.dn, new_rdn, superior, 1)
        return msgid

    def _send(self, item: Any, op: Op, slot: int, resent: bool = False) -> _Pending:
        conn = self._conn(slot)
        try:
            return _Pending(item, op, slot, conn, self._issue(conn, op), resent)
        except ldap.LDAPError as error:
            if not isinstance(error, LOST):  # not sent at all (the client refused the request)
                raise DirectoryError(
                    f"cannot send the write of {op.dn}: {_describe(error)}"
                ) from None
            if resent:
                raise self._lost(error) from None
            self._reconnect(slot, op.dn, error)
            return self._send(item, op, slot, resent=True)

    def _lost(self, error: ldap.LDAPError) -> DirectoryError:
        return DirectoryError(f"LDAP connection to {self.settings.url} lost: {_describe(error)}")

    def _reconnect(self, slot: int, dn: str, error: ldap.LDAPError) -> None:
        # a dropped connection: reopened once per operation, then the run stops (a re-run
        # converges)
        self.logger.warning(
            "LDAP connection problem on %s (%s); reconnecting", dn, _describe(error)
        )
        self._drop(slot)

    def _finish(
        self,
        pending: _Pending,
        inflight: deque[_Pending],
        done: Callable[[Any, Result], None],
    ) -> None:
        op = pending.op
        if op is None:
            assert pending.known is not None
            done(pending.item, pending.known)
            return
        while True:
            if pending.conn is not self._conns[pending.slot]:  # its connection was reopened
                pending = self._send(pending.item, op, pending.slot, resent=True)
            assert pending.conn is not None
            try:
                pending.conn.result3(pending.msgid, all=1, timeout=max(1.0, self.settings.timeout))
                result = Result(OK, "success", "", op.dn)
                break
            except ldap.LDAPError as error:
                answer = _server_result(error, op.dn)
                if answer is not None:
                    result = answer
                    break
                if not isinstance(error, LOST):  # the client cannot read the answer
                    raise DirectoryError(
                        f"the answer to the write of {op.dn} is unreadable: {_describe(error)}"
                    ) from None
                if pending.resent:
                    raise self._lost(error) from None
                self._reconnect(pending.slot, op.dn, error)
                # everything in flight on that connection is sent again when its turn comes
                pending = self._send(pending.item, op, pending.slot, resent=True)
        if pending.resent and not result.ok:
            result = self._settled_before(op, result)
        parent_missing = result.code == 32 and self.settings.create_missing_ous
        if parent_missing and op.kind != "modify" and self.ensure_parents(op.target):
            result = self.execute(op)
        done(pending.item, result)

    def _settled_before(self, op: Op, result: Result) -> Result:
        """A sent-again add answered entryAlreadyExists, or a sent-again move answered
        noSuchObject: did the first attempt reach the directory before the connection
        dropped? Then that is this operation's success."""
        if op.kind == "add" and result.code == 68:
            eid_attr = self.settings.employee_id_attribute
            mine = next((v for k, v in op.args if k.lower() == eid_attr.lower()), None)
            there = self.read(op.dn, [eid_attr])
            if mine is not None and there is not None:
                values = there.get(eid_attr.lower(), [])
                if [v.encode("utf-8") for v in values] == mine:
                    return Result(OK, "success", "", op.dn)
        if op.kind == "move" and result.code == 32:
            there = self.read(op.target, ["objectClass"])
            if there is not None and self.read(op.dn, ["objectClass"]) is None:
                return Result(OK, "success", "", op.dn)
        return result
