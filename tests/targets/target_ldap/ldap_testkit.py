"""Test kit for target-ldap: a real OpenLDAP slapd (fresh mdb database, loopback port),
ldap3 to read back, identity records and Singer messages."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import BASE, NONE, SUBTREE, Connection, Server

ROOT = Path(__file__).resolve().parents[3]

HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "iam_users.schema.json").read_text(encoding="utf-8"))
SUFFIX = "dc=example,dc=com"
ADMIN = f"cn=admin,{SUFFIX}"
PASSWORD = "slapd-test-secret"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
DISABLED = f"ou=Disabled,{SUFFIX}"
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


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
    workdir: Path, *, ad: bool = False, ppolicy: bool = True, tls: bool = False
) -> Slapd:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir()
    schemas = ["core", "cosine", "inetorgperson", "nis"]
    includes = [f"include {SCHEMA_DIR / s}.schema" for s in schemas]
    if ad:
        includes.append(f"include {HERE / 'ad_test.schema'}")
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
    if tls:
        cert, key = make_cert(workdir)
        lines += [f"TLSCertificateFile {cert}", f"TLSCertificateKeyFile {key}"]
        tls_port, ca_file = free_port(), cert
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


def person(eid: str, given: str, family: str, **extra: Any) -> dict[str, Any]:
    """An identity record with sensible defaults."""
    folded = unicodedata.normalize("NFKD", f"{given}.{family}").encode("ascii", "ignore").decode()
    local = folded.lower().replace(" ", "").replace("'", "").strip(".") or f"e{eid}"
    record: dict[str, Any] = {
        "employee_id": eid,
        "employee_number": f"N{eid}",
        "user_name": f"{local}@example.com",
        "work_email": f"{local}@example.com",
        "given_name": given,
        "family_name": family,
        "preferred_name": None,
        "display_name": None,
        "title": "Engineer",
        "department": "Engineering",
        "division": "Product",
        "location": "Lisbon",
        "cost_center": "CC-100",
        "manager_employee_id": None,
        "employment_status": "Active",
        "hire_date": "2020-01-06",
        "termination_date": None,
        "deleted": None,
        "positions": None,
    }
    record.update(extra)
    return record


def messages(records: list[dict[str, Any]], stream: str = "iam_users") -> str:
    lines = [
        {"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": ["employee_id"]}
    ]
    lines += [{"type": "RECORD", "stream": stream, "record": r} for r in records]
    lines.append({"type": "STATE", "value": {"bookmarks": {stream: {"n": len(records)}}}})
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in lines) + "\n"


def openldap_config(server: Slapd, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": server.url,
        "bind_dn": ADMIN,
        "bind_password": PASSWORD,
        "base_dn": PEOPLE,
        "mode": "openldap",
        "dn_template": "uid={uid},ou={department},ou=People,dc=example,dc=com",
        "disabled_ou": DISABLED,
        "group_rules": [
            {"group": f"cn=engineering,{GROUPS}", "match": {"department": "Engineering"}},
            {"group": f"cn=sales,{GROUPS}", "match": {"department": ["Sales", "Sales Ops"]}},
            {"group": f"cn=all-staff,{GROUPS}", "match": {}},
            {"group": f"cn=managers,{GROUPS}", "match": {"title": ["Engineering Manager"]}},
        ],
        "retry_file": str(tmp_path / "retry.jsonl"),
        "max_connections": 2,
    }
    config.update(overrides)
    return config


def audit_lines(monkeypatch_env: str | None = None) -> list[dict[str, Any]]:
    import os

    path = Path(monkeypatch_env or os.environ["HRSYNC_AUDIT_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


RunTarget = Callable[..., Any]
