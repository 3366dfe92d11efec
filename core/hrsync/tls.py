"""The TLS half of hrsync's one connection policy: SMTP and LDAP (HTTP is in :mod:`hrsync.http`,
SFTP with strict host keys in :mod:`hrsync.transfer`).

Every TLS connection product code opens is made from :func:`client_context` (python-ldap's:
the same rules as libldap options, :func:`ldap_connect`): TLS 1.2 or newer, the server's
certificate verified (``CERT_REQUIRED``) against the given CA file or the system's trust store,
and its host name checked during the handshake. Nothing else in the code base opens a socket:
``tests/core/test_connection_policy.py`` fails if a module outside the policy modules calls
``smtplib.SMTP*``, ``ldap3.Server``/``Tls``, ``ldap.initialize``, ``requests.get`` and
friends, ``urllib.request``, ``http.client``, ``socket.create_connection`` or a paramiko client.

* :func:`smtp_connect` - SMTP with STARTTLS (587) or implicit TLS (465); ``security: none`` is
  only for a relay on a loopback address.
* :func:`ldap_server` - an ``ldap3.Server`` for ``ldaps://`` (or ``ldap://`` + StartTLS) whose
  TLS uses :func:`client_context`: ldap3's own ``Tls`` sets ``check_hostname = False`` and checks
  the name itself only after a handshake it was asked to do, and sets no minimum version.
* :func:`ldap_connect` - the same policy for python-ldap (OpenLDAP's libldap): the CA file (or
  the trust store Python uses), TLS 1.2 or newer, certificate required with libldap's host name
  check (``OPT_X_TLS_REQUIRE_CERT = DEMAND``), set on the connection and sealed into its own
  TLS context (``OPT_X_TLS_NEWCTX``) before it connects; StartTLS done before it returns.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
import typing as t

if t.TYPE_CHECKING:
    import ldap.ldapobject
    import ldap3

__all__ = [
    "MINIMUM_TLS_VERSION",
    "InsecureTransportError",
    "client_context",
    "is_loopback",
    "ldap_connect",
    "ldap_server",
    "smtp_connect",
]

#: The oldest protocol any hrsync connection accepts.
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2


class InsecureTransportError(ValueError):
    """A connection that would carry data without TLS (or with TLS checks switched off)."""


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context: TLS 1.2+, certificate required, host name checked.

    ``ca_file`` (a PEM bundle, e.g. a private CA) replaces the system's trust store.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = MINIMUM_TLS_VERSION
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    return context


# --- SMTP ------------------------------------------------------------------------------------


def smtp_connect(
    host: str,
    port: int,
    *,
    security: t.Literal["starttls", "ssl", "none"] = "starttls",
    timeout: float = 30.0,
    ca_file: str | None = None,
) -> smtplib.SMTP:
    """A connected SMTP client under the policy (STARTTLS done for ``starttls``).

    ``none`` (no TLS) is refused unless ``host`` is a loopback relay.
    """
    if security == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=client_context(ca_file))
    if security == "none":
        if not is_loopback(host):
            raise InsecureTransportError(
                f"refusing SMTP without TLS to {host}: use security starttls or ssl "
                "(security none is only allowed for a relay on a loopback address)"
            )
        return smtplib.SMTP(host, port, timeout=timeout)
    if security != "starttls":
        raise InsecureTransportError(f"unknown SMTP security {security!r}")
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        smtp.starttls(context=client_context(ca_file))  # raises if the server has no STARTTLS
    except BaseException:
        smtp.close()
        raise
    return smtp


# --- LDAP ------------------------------------------------------------------------------------


def _policy_tls(host: str, ca_file: str | None) -> ldap3.Tls:
    from ldap3 import Tls

    class PolicyTls(Tls):
        """ldap3's Tls, wrapping sockets with :func:`client_context` (host name checked by
        OpenSSL whether or not ldap3 asks for the handshake at once)."""

        def wrap_socket(self, connection: t.Any, do_handshake: bool = False) -> None:
            context = client_context(ca_file)
            connection.socket = context.wrap_socket(
                connection.socket,
                server_side=False,
                do_handshake_on_connect=do_handshake,
                server_hostname=host,
            )

    return PolicyTls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file, sni=host)


def ldap_server(
    host: str,
    port: int,
    *,
    use_ssl: bool,
    start_tls: bool,
    ca_file: str | None = None,
    connect_timeout: int = 10,
) -> ldap3.Server:
    """An ``ldap3.Server`` under the policy: ``use_ssl`` (ldaps) or ``start_tls`` (the caller
    runs ``Connection.start_tls()`` before binding); neither only on a loopback host."""
    from ldap3 import NONE, Server

    _refuse_plain_ldap(host, use_ssl, start_tls)
    tls = _policy_tls(host, ca_file) if (use_ssl or start_tls) else None
    return Server(
        host, port=port, use_ssl=use_ssl, tls=tls, get_info=NONE, connect_timeout=connect_timeout
    )


def _refuse_plain_ldap(host: str, use_ssl: bool, start_tls: bool) -> None:
    if not (use_ssl or start_tls) and not is_loopback(host):
        raise InsecureTransportError(
            f"refusing plain LDAP to {host}: use ldaps:// or StartTLS "
            "(plain ldap:// is only allowed for loopback hosts)"
        )


def ldap_connect(
    host: str,
    port: int,
    *,
    use_ssl: bool,
    start_tls: bool,
    ca_file: str | None = None,
    timeout: float = 30.0,
) -> ldap.ldapobject.LDAPObject:
    """A python-ldap connection under the policy, not yet bound: ``ldaps://`` for ``use_ssl``,
    else ``ldap://`` with StartTLS done here for ``start_tls``; neither only on a loopback host.

    TLS: certificate required and its name checked against ``host`` by libldap, TLS 1.2 or
    newer, trusted roots from ``ca_file`` or else the bundle Python's own default context
    uses. The options are set on this connection only and sealed into a new TLS context
    (``OPT_X_TLS_NEWCTX``), so a global ``ldap.conf``/``LDAPTLS_*`` setting cannot weaken
    them. No referrals are chased; ``timeout`` bounds connecting and each operation.
    Raises ``ldap.LDAPError`` when the server cannot be reached or its certificate is refused.
    """
    import ldap

    _refuse_plain_ldap(host, use_ssl, start_tls)
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    conn = ldap.initialize(f"{'ldaps' if use_ssl else 'ldap'}://{bracketed}:{port}")
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, float(timeout))
    conn.set_option(ldap.OPT_TIMEOUT, float(timeout))
    if use_ssl or start_tls:
        cafile = ca_file or ssl.get_default_verify_paths().cafile
        if cafile:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, cafile)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_PROTOCOL_MIN, ldap.OPT_X_TLS_PROTOCOL_TLS1_2)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: builds the context from the above
        if start_tls and not use_ssl:
            conn.start_tls_s()
    return conn
