"""One connection policy: every outbound connection goes through hrsync.http / hrsync.tls.

* An AST scan of the product code (core/, ops/, taps/, mappers/, targets/) fails if a module
  outside the policy modules opens a connection another way.
* A real local HTTPS server (certificate from a CA made here, trusted through
  ``REQUESTS_CA_BUNDLE``) answers every request with a 307 to plain http, or to another host:
  every HTTP client of the project (each tap, each HTTP target, the alert webhook) must refuse,
  and nothing - above all no body - may reach the place it was sent to.
* TLS for LDAP against a real slapd: a certificate for another name is refused.
"""

from __future__ import annotations

import ast
import json
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hrsync.http import InsecureURLError, SecureSession
from hrsync.tls import (
    InsecureTransportError,
    client_context,
    ldap_connect,
    ldap_server,
    smtp_connect,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "taps"))
from tapkit import sync

from tlskit import CA, Hit, Recorder

ROOT = Path(__file__).resolve().parents[2]

# --- the static rule ----------------------------------------------------------------------

#: modules allowed to open connections: the policy itself (SFTP lives with the file feed)
POLICY_MODULES = {"core/hrsync/http.py", "core/hrsync/tls.py", "core/hrsync/transfer.py"}
PRODUCT_FOLDERS = ("core", "ops", "taps", "mappers", "targets")

FORBIDDEN_CALLS = {
    *(f"requests.{m}" for m in ("get", "post", "put", "patch", "delete", "head", "options")),
    "requests.request",
    "requests.Session",
    "requests.session",
    "requests.sessions.Session",
    "requests.adapters.HTTPAdapter",
    "urllib3.PoolManager",
    "urllib3.HTTPSConnectionPool",
    "urllib3.HTTPConnectionPool",
    "urllib3.request",
    "smtplib.SMTP",
    "smtplib.SMTP_SSL",
    "smtplib.LMTP",
    "ldap3.Server",
    "ldap3.Tls",
    "ldap3.ServerPool",
    "ldap3.core.server.Server",
    "ldap3.core.tls.Tls",
    "ldap.initialize",
    "ldap.ldapobject.LDAPObject",
    "ldap.ldapobject.SimpleLDAPObject",
    "ldap.ldapobject.ReconnectLDAPObject",
    "paramiko.SSHClient",
    "paramiko.Transport",
    "paramiko.SFTPClient",
    "socket.create_connection",
    "socket.socket",
    "ssl.wrap_socket",
    "ssl.create_default_context",
    "ssl.SSLContext",
}
FORBIDDEN_IMPORTS = ("urllib.request", "http.client", "httpx", "aiohttp", "ftplib", "telnetlib")


def _violations(source: str) -> list[str]:
    """Where ``source`` opens a connection (or imports a module that does) by itself."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                aliases[a.asname or top] = a.name if a.asname else top
                if a.name.startswith(FORBIDDEN_IMPORTS):
                    found.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                full = f"{node.module}.{a.name}"
                if node.module.startswith(FORBIDDEN_IMPORTS) or full.startswith(FORBIDDEN_IMPORTS):
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        parts: list[str] = []
        func: ast.expr = node.func
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name):
            continue
        parts.append(aliases.get(func.id, func.id))
        dotted = ".".join(reversed(parts))
        if dotted in FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: {dotted}()")
    return found


def _product_files() -> Iterator[Path]:
    for folder in PRODUCT_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if {"tests", ".venv", "build"} & set(rel.parts) or "site-packages" in rel.parts:
                continue
            yield path


def test_the_scan_sees_every_way_round_the_policy() -> None:
    bad = """
import requests as r, smtplib, socket
from requests import Session
from ldap3 import Server, Tls
import paramiko
from urllib.request import urlopen
r.post("https://x")
Session()
smtplib.SMTP("h", 25)
Server("h"); Tls()
paramiko.SSHClient()
socket.create_connection(("h", 1))
"""
    assert len(_violations(bad)) == 8
    good = "from hrsync.http import SecureSession\nSecureSession().post('https://x')\n"
    assert _violations(good) == []


def test_product_code_connects_only_through_the_core_policy() -> None:
    files = list(_product_files())
    assert len(files) > 100  # the scan really covers the code base
    offenders = {
        str(p.relative_to(ROOT)): v
        for p in files
        if str(p.relative_to(ROOT)) not in POLICY_MODULES
        and (v := _violations(p.read_text("utf-8")))
    }
    assert offenders == {}, "connections opened outside hrsync.http / hrsync.tls: " + json.dumps(
        offenders, indent=1
    )


# --- redirects from a real HTTPS server -------------------------------------------------------

SSN = "078-05-1120"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return CA(tmp_path_factory.mktemp("ca"))


class Trap:
    """https://127.0.0.1:P redirects (307) everything to ``sink``: plain http on loopback,
    or https on another host name (localhost)."""

    def __init__(self, ca: CA, to: str) -> None:
        ok: Callable[[Hit], tuple[int, dict[str, str], bytes]] = lambda hit: (  # noqa: E731
            200,
            {"Content-Type": "application/json"},
            b"{}",
        )
        self.sink = Recorder(ok) if to == "http" else Recorder(ok, cert=ca.issue("localhost"))
        where = self.sink.url("127.0.0.1" if to == "http" else "localhost")
        self.redirector = Recorder(
            lambda hit: (307, {"Location": f"{where}{hit.path}"}, b""),
            cert=ca.issue("127.0.0.1"),
        )

    @property
    def url(self) -> str:
        return self.redirector.url()


@pytest.fixture(params=["http", "other-host"])
def trap(request: pytest.FixtureRequest, ca: CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trap]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_file))
    trap = Trap(ca, request.param)
    with trap.sink.running(), trap.redirector.running():
        yield trap


def _refused(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, InsecureURLError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _tap(name: str, url: str) -> Callable[[], Any]:
    fast = {"backoff_base_seconds": 0.01, "max_retries": 8}
    if name == "tap-bamboohr":
        from tap_bamboohr.tap import TapBambooHR

        cfg = {"api_key": "k", "api_url": f"{url}/api/v1", **fast}
        return lambda: sync(TapBambooHR(config=cfg, parse_env_config=False))
    if name == "tap-greenhouse":
        from tap_greenhouse.tap import TapGreenhouse

        cfg = {"client_id": "c", "client_secret": "s", "user_id": "1", "api_url": f"{url}/v3",
               "token_url": f"{url}/token", **fast}  # fmt: skip
        return lambda: sync(TapGreenhouse(config=cfg, parse_env_config=False))
    if name == "tap-lever":
        from tap_lever.tap import TapLever

        cfg = {"api_key": "k", "api_url": f"{url}/v1", **fast}
        return lambda: sync(TapLever(config=cfg, parse_env_config=False))
    from tap_surveymonkey.tap import TapSurveyMonkey

    cfg = {"access_token": "t", "api_url": f"{url}/v3", **fast}
    return lambda: sync(TapSurveyMonkey(config=cfg, parse_env_config=False))


@pytest.mark.parametrize("tap", ["tap-bamboohr", "tap-greenhouse", "tap-lever", "tap-surveymonkey"])
def test_taps_refuse_unsafe_redirects(trap: Trap, tap: str) -> None:
    with pytest.raises(Exception) as caught:
        _tap(tap, trap.url)()
    assert _refused(caught.value), caught.value
    assert trap.redirector.hits, "the tap never reached the server"
    assert trap.sink.hits == []


def _target_call(name: str, url: str, tmp_path: Path) -> Callable[[], Any]:
    person = {"firstName": "Zoë", "lastName": "Ng", "ssn": SSN}
    fast = {"backoff_base_seconds": 0.01, "max_retries": 8}
    if name == "target-bamboohr":
        from target_bamboohr.client import BambooHRClient

        client = BambooHRClient({"api_key": "k", "api_url": f"{url}/api/v1", **fast})
        return lambda: client.create(person)
    if name == "target-scim":
        from target_scim.auth import BearerAuth
        from target_scim.client import SCIMClient

        scim = SCIMClient(f"{url}/v2", BearerAuth("t"), backoff_base_seconds=0.01)
        return lambda: scim.request("POST", "/Users", body={"userName": "zng", "ssn": SSN})
    if name == "target-payroll-api":
        from target_payroll_api.client import GustoClient

        gusto = GustoClient({"api_url": url, "company_uuid": "c", "client_id": "i",
                             "client_secret": "s", "refresh_token": "r",
                             "token_file": str(tmp_path / "token.json"), **fast})  # fmt: skip
        return lambda: gusto.call("POST", "/v1/companies/c/employees", json=person)
    from target_moodle.client import MoodleClient

    moodle = MoodleClient({"base_url": url, "token": "t", **fast})
    return lambda: moodle.call("core_user_create_users", users=[person])


@pytest.mark.parametrize(
    "target", ["target-bamboohr", "target-scim", "target-payroll-api", "target-moodle"]
)
def test_http_targets_refuse_unsafe_redirects_and_never_resend_the_body(
    trap: Trap, target: str, tmp_path: Path
) -> None:
    with pytest.raises(Exception) as caught:
        _target_call(target, trap.url, tmp_path)()
    assert _refused(caught.value), caught.value
    assert trap.sink.hits == []
    # refused once, not retried (target-bamboohr used to try 8 times)
    assert len(trap.redirector.hits) == 1


def test_the_alert_webhook_refuses_unsafe_redirects(
    trap: Trap, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hrsync_ops.alerts import Alert, send

    monkeypatch.setenv("HRSYNC_TEST_HOOK", f"{trap.url}/hooks/abc")
    alert = Alert(job="hris-to-iam", kind="failures", title="hris-to-iam failed 3 times")
    (delivery,) = send(alert, [{"type": "webhook", "name": "chat", "url_env": "HRSYNC_TEST_HOOK"}])
    assert not delivery.ok
    assert "refusing" in (delivery.error or "")
    assert len(trap.redirector.hits) == 1
    assert trap.sink.hits == []


def test_same_origin_redirects_still_work(ca: CA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_file))
    server = Recorder(
        lambda hit: (
            (307, {"Location": "/moved"}, b"") if hit.path == "/old" else (200, {}, hit.body)
        ),
        cert=ca.issue("127.0.0.1"),
    )
    with server.running(), SecureSession() as session:
        response = session.post(f"{server.url()}/old", data=b"payload", timeout=10)
    assert response.content == b"payload"
    assert [h.path for h in server.hits] == ["/old", "/moved"]


def test_an_untrusted_certificate_is_refused(ca: CA, tmp_path: Path) -> None:
    other = CA(tmp_path / "other")  # REQUESTS_CA_BUNDLE not set: certifi's roots only
    server = Recorder(lambda hit: (200, {}, b"{}"), cert=other.issue("127.0.0.1"))
    with server.running(), SecureSession() as session, pytest.raises(Exception) as caught:
        session.get(server.url(), timeout=10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


# --- TLS for SMTP and LDAP ------------------------------------------------------------------


def test_client_context_is_tls12_verified_and_checks_host_names() -> None:
    context = client_context()
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_smtp_without_tls_only_to_a_loopback_relay() -> None:
    with pytest.raises(InsecureTransportError, match="refusing SMTP without TLS"):
        smtp_connect("smtp.example.com", 25, security="none")


def test_plain_ldap_only_on_loopback() -> None:
    with pytest.raises(InsecureTransportError, match="refusing plain LDAP"):
        ldap_server("ldap.example.com", 389, use_ssl=False, start_tls=False)
    with pytest.raises(InsecureTransportError, match="refusing plain LDAP"):
        ldap_connect("ldap.example.com", 389, use_ssl=False, start_tls=False)


@pytest.fixture(scope="module", params=["ldap.wrong.example", "127.0.0.1"])
def slapd_named(
    request: pytest.FixtureRequest, ca: CA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A real slapd serving a certificate (from the trusted CA) for the given name."""
    from sandbox.directories import start_slapd

    cert, key = ca.issue(request.param)
    workdir = tmp_path_factory.mktemp("slapd")
    server = start_slapd(workdir, ppolicy=False, cert=(cert, key, ca.ca_file))
    server.cert_name = request.param
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(10)


@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_target_ldap_checks_the_certificate_names_the_host(
    slapd_named: Any, mode: str, ca: CA, tmp_path: Path
) -> None:
    import ldap

    from sandbox.directories import ADMIN, PASSWORD, SUFFIX
    from target_ldap.config import parse_settings
    from target_ldap.directory import Directory, DirectoryError

    s = slapd_named
    url = f"ldaps://127.0.0.1:{s.tls_port}" if mode == "ldaps" else f"ldap://127.0.0.1:{s.port}"
    config = {"url": url, "start_tls": mode == "start_tls", "ca_file": str(s.ca_file),
              "bind_dn": ADMIN, "bind_password": PASSWORD, "base_dn": SUFFIX,
              "disabled_ou": f"ou=Disabled,{SUFFIX}"}  # fmt: skip
    # a CA that did not issue the server's certificate: refused whatever the name
    other = CA(tmp_path / "other")
    with pytest.raises(DirectoryError, match="cannot connect") as caught:
        Directory(parse_settings(dict(config, ca_file=str(other.ca_file)))).check()
    assert "TLS handshake failed" in str(caught.value)
    directory = Directory(parse_settings(config))
    if s.cert_name == "127.0.0.1":  # the same CA, the right name: it connects
        directory.check()
        assert directory.conn.get_option(ldap.OPT_X_TLS_VERSION) in ("TLS1.2", "TLS1.3")
        assert directory.conn.whoami_s() == f"dn:{ADMIN}"
        directory.close()
        return
    with pytest.raises(DirectoryError, match="cannot connect") as caught:
        directory.check()
    assert "TLS handshake failed" in str(caught.value) and "name the host" in str(caught.value)


def test_http_pools_refuse_anything_older_than_tls12() -> None:
    with SecureSession() as session:
        pool = session.get_adapter("https://example.com").poolmanager
        assert pool.connection_pool_kw["ssl_minimum_version"] == ssl.TLSVersion.TLSv1_2
        with pytest.raises(TypeError, match="policy adapter"):
            session.mount("https://", requests.adapters.HTTPAdapter())


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_checks_the_certificate_names_the_host(ca: CA, security: str) -> None:
    from opskit import start_smtp

    wrong = ca.issue("mail.wrong.example")
    controller, _box = start_smtp(cert=wrong[0], key=wrong[1], implicit_tls=security == "ssl")
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="match"):
            smtp_connect(
                "127.0.0.1", controller.port, security=security, timeout=10,
                ca_file=str(ca.ca_file),
            )  # fmt: skip
    finally:
        controller.stop()
    right = ca.issue("127.0.0.1")
    controller, _box = start_smtp(cert=right[0], key=right[1], implicit_tls=security == "ssl")
    try:
        smtp = smtp_connect(
            "127.0.0.1", controller.port, security=security, timeout=10, ca_file=str(ca.ca_file)
        )
        assert smtp.sock is not None and smtp.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
        smtp.quit()
    finally:
        controller.stop()
