"""Real identity stores for the IAM jobs, on free loopback ports: OpenLDAP ``slapd`` and
``scim2-server``. The demo, the end-to-end tests and the target tests all start them from here.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import BASE, NONE, SUBTREE, Connection, Server

SUFFIX = "dc=example,dc=com"
ADMIN = f"cn=admin,{SUFFIX}"
PASSWORD = "slapd-test-secret"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
DISABLED = f"ou=Disabled,{SUFFIX}"
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
SCIM_TOKEN = "sandbox-scim-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScimServer:
    """scim2-server (in-memory SCIM 2.0) with dynamic tenants: ``url(tenant)`` is a fresh store."""

    port: int
    process: subprocess.Popen[bytes]
    token: str = SCIM_TOKEN

    def url(self, tenant: str) -> str:
        return f"http://127.0.0.1:{self.port}/{tenant}/v2"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_scim_server(*extra: str, token: str = SCIM_TOKEN) -> ScimServer:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scim2_server.testserver.cli", "--hostname", "127.0.0.1",
         "--port", str(port), "--bearer-token", token, "--dynamic-tenants", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return ScimServer(port, process, token)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("scim2-server exited at start") from None
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("scim2-server did not start")


@dataclass
class Slapd:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    tls_port: int | None = None
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def connect(self) -> Connection:
        server = Server("127.0.0.1", port=self.port, get_info=NONE)
        return Connection(server, ADMIN, PASSWORD, auto_bind=True, raise_exceptions=True)

    def entries(
        self, base: str = PEOPLE, search_filter: str = "(objectClass=person)", attrs: Any = None
    ) -> dict[str, dict[str, Any]]:
        """DN (lower-cased) -> attributes (str values), everything under ``base``."""
        with self.connect() as conn:
            conn.search(base, search_filter, SUBTREE, attributes=attrs or ["*", "+"])
            return {e.entry_dn.lower(): e.entry_attributes_as_dict for e in conn.entries}

    def by_eid(self, eid: str, attr: str = "employeeNumber") -> tuple[str, dict[str, Any]]:
        found = self.entries(SUFFIX, f"({attr}={eid})")
        assert len(found) == 1, found
        return next(iter(found.items()))

    def members(self, group_dn: str, attr: str = "member") -> set[str]:
        with self.connect() as conn:
            conn.search(group_dn, "(objectClass=*)", BASE, attributes=[attr])
            return {str(v).lower() for v in conn.entries[0].entry_attributes_as_dict.get(attr, [])}

    def writes(self) -> str:
        """Every change the server accepted so far, as LDIF (slapo-auditlog)."""
        path = self.workdir / "writes.ldif"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def write_count(self) -> int:
        return self.writes().count("\nchangetype: ") + self.writes().startswith("changetype: ")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def make_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (also its own CA)."""
    cert, key = workdir / "server.pem", workdir / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def start_slapd(
    workdir: Path,
    *,
    ad: bool = False,
    ppolicy: bool = True,
    tls: bool = False,
    ad_schema: Path | None = None,
    cert: tuple[Path, Path, Path] | None = None,
) -> Slapd:
    """A fresh slapd (mdb, auditlog, optional ppolicy/TLS) on a free loopback port, seeded with
    ou=People, ou=Groups, ou=Disabled and a few groups. ``ad=True`` needs ``ad_schema``: a schema
    with AD's attribute names (real AD cannot run here). ``cert``: (certificate, key, CA file)
    to serve instead of a fresh self-signed one for 127.0.0.1 (``tls`` implied)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir()
    schemas = ["core", "cosine", "inetorgperson", "nis"]
    includes = [f"include {SCHEMA_DIR / s}.schema" for s in schemas]
    if ad:
        if ad_schema is None:
            raise ValueError("ad=True needs ad_schema (AD's attribute names as an OpenLDAP schema)")
        includes.append(f"include {ad_schema}")
    lines = [
        *includes,
        f"modulepath {MODULES}",
        "moduleload back_mdb",
        "moduleload auditlog",
    ]
    if ppolicy:
        lines.append("moduleload ppolicy")
    port = free_port()
    urls = [f"ldap://127.0.0.1:{port}/"]
    tls_port = ca_file = None
    if tls or cert:
        served, key, ca = cert or (*make_cert(workdir), None)
        lines += [f"TLSCertificateFile {served}", f"TLSCertificateKeyFile {key}"]
        tls_port, ca_file = free_port(), ca or served
        urls.append(f"ldaps://127.0.0.1:{tls_port}/")
    lines += [
        f"pidfile {workdir / 'slapd.pid'}",
        "sizelimit 500",  # the Debian default: the target must page past it
        "database mdb",
        f'suffix "{SUFFIX}"',
        f'rootdn "{ADMIN}"',
        f"rootpw {PASSWORD}",
        f"directory {workdir / 'db'}",
        "maxsize 1073741824",
        "dbnosync",
        "index objectClass,uid,employeeNumber eq",
    ]
    if ad:
        lines.append("index sAMAccountName,employeeID eq")
    if ppolicy:
        lines.append("overlay ppolicy")
    # every write lands in this LDIF file: "writes nothing" is checked against it
    lines += ["overlay auditlog", f"auditlog {workdir / 'writes.ldif'}"]
    conf = workdir / "slapd.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = subprocess.Popen(
        [SLAPD, "-d", "0", "-f", str(conf), "-h", " ".join(urls)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"slapd exited with {process.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("slapd did not start") from None
            time.sleep(0.02)
    server = Slapd(port, process, workdir, tls_port, ca_file)
    seed(server, ad=ad)
    return server


def seed(server: Slapd, *, ad: bool) -> None:
    group_class = "group" if ad else "groupOfNames"
    with server.connect() as conn:
        conn.add(SUFFIX, ["top", "dcObject", "organization"], {"dc": "example", "o": "Example"})
        for ou in ("People", "Groups", "Disabled"):
            conn.add(f"ou={ou},{SUFFIX}", ["top", "organizationalUnit"], {"ou": ou})
        for cn in ("engineering", "sales", "all-staff", "managers"):
            dn = f"cn={cn},{GROUPS}"
            attrs: dict[str, Any] = {"cn": cn}
            if not ad:  # groupOfNames needs a member: the usual self-reference
                attrs["member"] = [dn]
            conn.add(dn, ["top", group_class], attrs)
