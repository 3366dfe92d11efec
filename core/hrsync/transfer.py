"""File feeds: PGP-encrypt a file and send it over SFTP, atomically, once, and log it.

Vendor-neutral: payroll files, X12 834 enrolments, any file a destination picks up from an
SFTP drop. Never FTP. The usual call is :func:`deliver`::

    from hrsync.transfer import SFTPTarget, TransferLedger, deliver

    target = SFTPTarget(host="sftp.example.com", port=22, username="acme",
                        private_key_path="~/.ssh/payroll_ed25519",
                        known_hosts_path="/etc/hrsync/known_hosts", remote_dir="/inbound")
    result = deliver("payroll.csv", target, recipient_public_key=ARMORED_PUBLIC_KEY,
                     remote_name="payroll_20250301.csv.pgp", record_count=1234,
                     stream="payroll_changes", fields=["employee_id", "rate"])
    result.status   # "sent", or "already-sent" when this content already went to this target

API
---
``SFTPTarget(host, port, username, private_key_path | private_key, known_hosts_path,
remote_dir, private_key_passphrase=None, timeout=30.0)``
    Where a file goes; ``SFTPTarget.from_config(config, prefix="sftp_")`` reads the plugin
    settings ``sftp_host``, ``sftp_port``, ``sftp_username``, ``sftp_private_key_path`` or
    ``sftp_private_key`` (the key text, a secret), ``sftp_private_key_passphrase``,
    ``sftp_known_hosts_path``, ``sftp_remote_dir``, ``sftp_timeout_seconds``
    (:data:`SFTP_SETTINGS` declares them for a singer-sdk target).

``encrypt(data, recipient_public_key, *, armor=False, fingerprint=None) -> bytes`` and
``encrypt_file(source, destination, recipient_public_key, ...) -> fingerprint``
    OpenPGP encryption with GnuPG (python-gnupg) to the one key given as ASCII-armored text,
    in a private temporary GNUPGHOME that is removed afterwards (its gpg-agent stopped).
    ``fingerprint`` pins the key: a different key is refused. ``encrypt_file`` streams.

``send_file(local_path, target, *, remote_name=None, ...) -> TransferResult``
    Uploads one file as it is (no encryption). Host keys are checked strictly against
    ``known_hosts_path`` (paramiko ``RejectPolicy``): an unknown host key raises
    :class:`UnknownHostKeyError`, a changed one :class:`HostKeyMismatchError`, and nothing is
    sent. Key-based auth only (:class:`AuthenticationError`). The file is written under a
    temporary name in the target directory (``.<name>.<random>.part``), its size checked, then
    renamed to its final name: the final name never holds a partial file, and the temporary
    file is removed when the transfer fails. A dropped connection (or one that cannot be
    opened) is retried on a fresh connection with backoff (:class:`hrsync.http.RetryPolicy`:
    ``max_retries`` attempts in all, within ``retry_max_seconds``), then
    :class:`TransferFailed`. An existing remote file of the same name is never overwritten
    (:class:`RemoteFileExistsError`) unless ``overwrite=True``.

``deliver(plaintext_path, target, *, recipient_public_key, remote_name, ...) -> TransferResult``
    Checks the ledger, encrypts to a temporary file, ``send_file``, records the transfer.

Both ``send_file`` and ``deliver`` take ``ledger`` (a :class:`TransferLedger`, a path, or
None for the default ``$HRSYNC_TRANSFER_LEDGER``, else ``.hrsync/transfers.sqlite``): a file
whose content checksum (sha256 of the plaintext for ``deliver``; pass ``content_key`` to key
on something else, e.g. a file without its run-specific control numbers) was already sent to
the same destination is not sent again (``status == "already-sent"``). Each call writes one
audit event (:class:`hrsync.audit.AuditLog`): record key = file name, ``fields`` = the field
names the file carries, outcome ``sent`` / ``unchanged`` / ``failed``, and a detail with the
sha256, byte size and record count. Never the contents.

``TransferLedger(path).items(destination)`` (a context manager) gives :class:`SentItems`
for change files that must not resend a row: ``seen(item_key, item_sha256)`` (or
``seen_many(item_keys)`` for a batch) while building, ``add([(item_key, item_sha256), ...],
file_name)`` after the file was sent.

The ledger never keeps a bare hash of content (a line's sha256 gives its salary and SSN
back to anyone who guesses them): every content and line hash it stores is an HMAC-SHA256
under the ledger key - ``$HRSYNC_LEDGER_KEY``, else derived from the sealing passphrase
``$HRSYNC_DLQ_KEY``, else a random key kept next to the ledger (``<ledger>.key``, 0600). The
ledger remembers a check value of its key and refuses another one (a new key would make every
line look new and resend it). A ledger written before (bare sha256) is migrated in place on
first use - HMAC(key, old hash) is exactly the new value - and vacuumed. The ledger file is
0600 in a 0700 folder.

``TransferResult``: ``status``, ``file_name``, ``remote_path``, ``destination``,
``content_sha256``, ``content_size``, ``sent_sha256``, ``sent_size``, ``record_count``,
``attempts``, ``sent_at``. All errors derive from :class:`TransferError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import posixpath
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko
from singer_sdk import typing as th

from hrsync import sqlite
from hrsync.audit import AuditLog
from hrsync.errors import ConfigError
from hrsync.http import RetryPolicy
from hrsync.sealing import ENV_KEY as SEALING_ENV_KEY

__all__ = [
    "DEFAULT_LEDGER_PATH",
    "SFTP_SETTINGS",
    "AuthenticationError",
    "EncryptionError",
    "HostKeyError",
    "HostKeyMismatchError",
    "LedgerKeyError",
    "RemoteFileExistsError",
    "SFTPTarget",
    "SentItems",
    "TransferError",
    "TransferFailed",
    "TransferLedger",
    "TransferResult",
    "UnknownHostKeyError",
    "deliver",
    "encrypt",
    "encrypt_file",
    "send_file",
    "sha256_file",
]

DEFAULT_LEDGER_PATH = Path(".hrsync/transfers.sqlite")
ENV_LEDGER = "HRSYNC_TRANSFER_LEDGER"
ENV_LEDGER_KEY = "HRSYNC_LEDGER_KEY"
#: the ledger's hash scheme, stored in ledger_meta (absent: a ledger of bare sha256 hashes)
LEDGER_HASHING = "hmac-sha256:v1"
LOGGER = logging.getLogger("hrsync.transfer")
CHUNK = 1 << 20


# --- errors ---------------------------------------------------------------------------------


class TransferError(Exception):
    """A file could not be encrypted or sent; the message says where and why."""


class LedgerKeyError(TransferError):
    """The transfer ledger was keyed with another key than the one configured."""


class EncryptionError(TransferError):
    """GnuPG refused the key or the encryption."""


class HostKeyError(TransferError):
    """The server's host key is not the one in known_hosts: nothing was sent."""


class UnknownHostKeyError(HostKeyError):
    """The server is not in known_hosts (never auto-added)."""


class HostKeyMismatchError(HostKeyError):
    """known_hosts holds a different key for this server (changed key or a man in the middle)."""


class AuthenticationError(TransferError):
    """The server refused the client key."""


class RemoteFileExistsError(TransferError):
    """The final remote name is taken and ``overwrite`` is off: nothing was sent."""


class TransferFailed(TransferError):
    """The upload failed for good (retries spent or a permanent server error)."""


# --- configuration ----------------------------------------------------------------------------

SFTP_SETTINGS = th.PropertiesList(
    th.Property("sftp_host", th.StringType, required=True, description="SFTP server host name"),
    th.Property("sftp_port", th.IntegerType, default=22, description="SFTP server port"),
    th.Property("sftp_username", th.StringType, required=True, description="SFTP user name"),
    th.Property(
        "sftp_private_key_path",
        th.StringType,
        description="Path of the SSH private key (OpenSSH or PEM) used to log in",
    ),
    th.Property(
        "sftp_private_key",
        th.StringType,
        secret=True,
        description="The SSH private key itself (instead of sftp_private_key_path)",
    ),
    th.Property(
        "sftp_private_key_passphrase",
        th.StringType,
        secret=True,
        description="Passphrase of the SSH private key, if it has one",
    ),
    th.Property(
        "sftp_known_hosts_path",
        th.StringType,
        required=True,
        description="known_hosts file holding the server's host key (strict checking: an "
        "unknown or changed key aborts the transfer)",
    ),
    th.Property(
        "sftp_remote_dir",
        th.StringType,
        default=".",
        description="Directory on the server the file is written to",
    ),
    th.Property(
        "sftp_timeout_seconds",
        th.IntegerType,
        default=30,
        description="Connect and read timeout of the SFTP connection",
    ),
    th.Property(
        "pgp_recipient_public_key",
        th.StringType,
        required=True,
        description="The recipient's ASCII-armored OpenPGP public key; files are encrypted to it",
    ),
    th.Property(
        "pgp_recipient_fingerprint",
        th.StringType,
        description="Expected full fingerprint of that key (40 hex digits; refuses any other "
        "key if set; a short key id is refused)",
    ),
    th.Property(
        "pgp_armor",
        th.BooleanType,
        default=False,
        description="ASCII-armored output (.asc) instead of binary OpenPGP (.pgp)",
    ),
    th.Property(
        "transfer_ledger_path",
        th.StringType,
        description="SQLite ledger of sent files (default $HRSYNC_TRANSFER_LEDGER, else "
        ".hrsync/transfers.sqlite); a file already sent is not sent again",
    ),
    th.Property(
        "transfer_max_attempts",
        th.IntegerType,
        default=5,
        description="Attempts per file on dropped connections before the run fails",
    ),
    th.Property(
        "transfer_backoff_seconds",
        th.IntegerType,
        default=2,
        description="Base of the exponential backoff between attempts (seconds, jittered)",
    ),
    th.Property(
        "transfer_retry_max_seconds",
        th.IntegerType,
        default=600,
        description="Give up retrying a file after this many seconds",
    ),
)


@dataclass(frozen=True)
class SFTPTarget:
    """Where a file goes. Exactly one of ``private_key_path`` / ``private_key`` is set."""

    host: str
    username: str
    known_hosts_path: str | Path
    port: int = 22
    private_key_path: str | Path | None = None
    remote_dir: str = "."
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("SFTP target: host is required")
        if not self.username:
            raise ConfigError("SFTP target: username is required")
        if bool(self.private_key_path) == bool(self.private_key):
            raise ConfigError(
                "SFTP target: set exactly one of private_key_path and private_key "
                "(key-based login only; passwords are not supported)"
            )

    @property
    def destination(self) -> str:
        """``sftp://host:port/remote_dir``: the ledger key and the audit destination."""
        directory = self.remote_dir if self.remote_dir.startswith("/") else f"/{self.remote_dir}"
        return f"sftp://{self.host}:{self.port}{directory.rstrip('/') or '/'}"

    def remote_path(self, name: str) -> str:
        return posixpath.join(self.remote_dir or ".", name)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "sftp_") -> SFTPTarget:
        def get(key: str) -> Any:
            return config.get(prefix + key)

        return cls(
            host=get("host") or "",
            port=int(get("port") or 22),
            username=get("username") or "",
            private_key_path=get("private_key_path") or None,
            private_key=get("private_key") or None,
            private_key_passphrase=get("private_key_passphrase") or None,
            known_hosts_path=get("known_hosts_path") or "",
            remote_dir=get("remote_dir") or ".",
            timeout=float(get("timeout_seconds") or 30),
        )


def retry_policy_from_config(config: Mapping[str, Any]) -> RetryPolicy:
    """The retry budget of the ``transfer_*`` settings of :data:`SFTP_SETTINGS`."""
    return RetryPolicy(
        max_retries=max(1, int(config.get("transfer_max_attempts") or 5)),
        retry_max_seconds=float(config.get("transfer_retry_max_seconds") or 600),
        backoff_base_seconds=float(config.get("transfer_backoff_seconds") or 2),
        backoff_max_seconds=60.0,
    )


@dataclass(frozen=True)
class TransferResult:
    status: str  # "sent" | "already-sent"
    file_name: str
    remote_path: str
    destination: str
    content_sha256: str
    content_size: int
    sent_sha256: str
    sent_size: int
    record_count: int | None
    attempts: int
    sent_at: str

    @property
    def sent(self) -> bool:
        """True when this call uploaded the file (False: the ledger had it already)."""
        return self.status == "sent"


# --- checksums and PGP ------------------------------------------------------------------------


def sha256_file(path: str | Path) -> tuple[str, int]:
    """(hex sha256, byte size) of a file, read in 1 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _gnupg_home() -> Iterator[Any]:
    """A private, throwaway GnuPG home; its gpg-agent (if one started) is stopped after."""
    import gnupg

    home = tempfile.mkdtemp(prefix="hrsync-gpg-")  # short path: gpg's socket names are limited
    try:
        gpg = gnupg.GPG(gnupghome=home)
        gpg.encoding = "utf-8"
        yield gpg
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _import_recipient(gpg: Any, recipient_public_key: str, fingerprint: str | None) -> str:
    if not recipient_public_key or "BEGIN PGP PUBLIC KEY BLOCK" not in recipient_public_key:
        raise EncryptionError(
            "PGP recipient key: expected an ASCII-armored OpenPGP public key "
            "('-----BEGIN PGP PUBLIC KEY BLOCK-----')"
        )
    if "PRIVATE KEY" in recipient_public_key:
        raise EncryptionError("PGP recipient key: a private key was given; give the public key")
    imported = gpg.import_keys(recipient_public_key)
    found = sorted(set(imported.fingerprints or []))
    if len(found) != 1:
        raise EncryptionError(
            f"PGP recipient key: expected exactly one public key, GnuPG imported {len(found)} "
            f"({imported.summary() if hasattr(imported, 'summary') else imported.results})"
        )
    actual = found[0]
    if fingerprint:
        wanted = "".join(fingerprint.split()).upper().removeprefix("0X")
        if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", wanted):
            raise EncryptionError(
                f"PGP recipient fingerprint {fingerprint!r}: give the key's full fingerprint "
                "(40 hex digits, `gpg --fingerprint`); a short or long key id is not a pin "
                "(anyone can make a key with the same id)"
            )
        if actual.upper() != wanted:
            raise EncryptionError(
                f"PGP recipient key: fingerprint {actual} is not the configured {wanted}"
            )
    return str(actual)


def _check(result: Any, what: str) -> None:
    if not result.ok:
        lines = [ln for ln in (result.stderr or "").splitlines() if "[GNUPG:]" not in ln]
        raise EncryptionError(f"{what}: GnuPG says {result.status!r}: {' '.join(lines)[-500:]}")


def encrypt(
    data: bytes,
    recipient_public_key: str,
    *,
    armor: bool = False,
    fingerprint: str | None = None,
) -> bytes:
    """``data`` encrypted to the one public key given (binary OpenPGP unless ``armor``)."""
    with _gnupg_home() as gpg:
        recipient = _import_recipient(gpg, recipient_public_key, fingerprint)
        result = gpg.encrypt(data, [recipient], armor=armor, always_trust=True)
        _check(result, "PGP encryption")
        return bytes(result.data)


def encrypt_file(
    source: str | Path,
    destination: str | Path,
    recipient_public_key: str,
    *,
    armor: bool = False,
    fingerprint: str | None = None,
) -> str:
    """Encrypt the file ``source`` into ``destination`` (streamed); returns the key's fingerprint.

    The key is trusted because it is the one configured (``--trust-model always``); pin it
    with ``fingerprint``.
    """
    with _gnupg_home() as gpg:
        recipient = _import_recipient(gpg, recipient_public_key, fingerprint)
        with Path(source).open("rb") as fh:
            result = gpg.encrypt_file(
                fh, [recipient], armor=armor, always_trust=True, output=str(destination)
            )
        _check(result, f"PGP encryption of {Path(source).name}")
        return recipient


# --- ledger -----------------------------------------------------------------------------------

_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    content_key TEXT NOT NULL,
    file_name TEXT NOT NULL,
    remote_path TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    content_size INTEGER NOT NULL,
    sent_sha256 TEXT NOT NULL,
    sent_size INTEGER NOT NULL,
    record_count INTEGER,
    attempts INTEGER NOT NULL,
    integration TEXT,
    sent_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS transfers_once ON transfers (destination, content_key);
CREATE TABLE IF NOT EXISTS transfer_items (
    destination TEXT NOT NULL,
    item_key TEXT NOT NULL,
    item_sha256 TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (destination, item_key, item_sha256)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SentItems:
    """The items (rows, members) already sent to one destination: ``seen(key, sha)`` while a
    file is built, ``add(rows, file_name)`` once it was sent. One open connection."""

    def __init__(
        self, conn: sqlite3.Connection, destination: str, keyed: Callable[[str], str]
    ) -> None:
        self._conn = conn
        self.destination = destination
        self._keyed = keyed

    def seen(self, item_key: str, item_sha256: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM transfer_items WHERE destination=? AND item_key=? AND item_sha256=?",
            (self.destination, item_key, self._keyed(item_sha256)),
        ).fetchone()
        return row is not None

    def seen_many(self, item_keys: Iterable[str]) -> _SentPairs:
        """The (item_key, item_sha256) pairs already sent for these keys (test membership with
        ``in``): one query per 500 keys instead of one ``seen`` per line."""
        keys = list(dict.fromkeys(item_keys))
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), 500):
            rows = self._conn.execute(
                "SELECT item_key, item_sha256 FROM transfer_items WHERE destination=? "
                "AND item_key IN (SELECT value FROM json_each(?))",
                (self.destination, json.dumps(keys[start : start + 500])),
            )
            found.update((key, sha) for key, sha in rows)
        return _SentPairs(found, self._keyed)

    def add(self, items: Iterable[tuple[str, str]], file_name: str) -> int:
        """Record (item_key, item_sha256) pairs as sent in ``file_name``; one transaction."""
        now = _now()
        count = 0

        def rows() -> Iterator[tuple[str, str, str, str, str]]:
            nonlocal count
            for key, sha in items:
                count += 1
                yield (self.destination, key, self._keyed(sha), file_name, now)

        with sqlite.transaction(self._conn):
            self._conn.executemany(
                "INSERT OR IGNORE INTO transfer_items VALUES (?,?,?,?,?)", rows()
            )
        return count


class _SentPairs:
    """(item_key, item_sha256) pairs as stored (keyed); ``(key, sha) in pairs`` keys ``sha``."""

    def __init__(self, stored: set[tuple[str, str]], keyed: Callable[[str], str]) -> None:
        self._stored, self._keyed = stored, keyed
        self._keys = {key for key, _ in stored}  # a key never sent needs no HMAC to say no

    def __contains__(self, pair: object) -> bool:
        if not (isinstance(pair, tuple) and len(pair) == 2) or pair[0] not in self._keys:
            return False
        return (pair[0], self._keyed(str(pair[1]))) in self._stored

    def __len__(self) -> int:
        return len(self._stored)


_IPAD = bytes(x ^ 0x36 for x in range(256))  # HMAC's inner and outer pads, as byte tables
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _ledger_key(path: Path) -> bytes:
    """``$HRSYNC_LEDGER_KEY``, else a subkey of ``$HRSYNC_DLQ_KEY``, else ``<ledger>.key``."""
    if own := os.environ.get(ENV_LEDGER_KEY):
        return own.encode("utf-8")
    if sealing := os.environ.get(SEALING_ENV_KEY):
        return hmac.new(sealing.encode("utf-8"), b"hrsync transfer ledger", "sha256").digest()
    key_file = path.with_name(path.name + ".key")
    with contextlib.suppress(FileExistsError):
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        LOGGER.warning(
            "transfer ledger %s: neither %s nor %s is set; its hashes are keyed with a new "
            "random key in %s (keep it with the ledger: without it every line looks new)",
            path, ENV_LEDGER_KEY, SEALING_ENV_KEY, key_file,
        )  # fmt: skip
    return key_file.read_text("utf-8").strip().encode("utf-8")


class TransferLedger:
    """What was sent where (SQLite, WAL): one row per (destination, content key).

    ``path`` defaults to ``$HRSYNC_TRANSFER_LEDGER``, else ``.hrsync/transfers.sqlite``.
    Holds keyed checksums (HMAC-SHA256, see the module docstring), names and counts, never
    contents.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or os.environ.get(ENV_LEDGER) or DEFAULT_LEDGER_PATH)
        self._ready = False
        self._key: bytes | None = None
        self._pads: tuple[Any, Any] | None = None  # sha256 of the key's inner / outer pad

    def keyed(self, digest: str) -> str:
        """What the ledger stores for the hash ``digest``: HMAC-SHA256 under the ledger key.

        RFC 2104 on two sha256 states keyed once (the construction of the standard library's
        ``hmac`` module, the same value as ``hmac.new(key, digest, "sha256")``): each line then
        costs two state copies, not an HMAC set-up (a ledger holds one hash per line sent)."""
        pads = self._pads
        if pads is None:
            if self._key is None:
                self._key = _ledger_key(self.path)
            key = self._key
            if len(key) > 64:  # sha256's block size
                key = hashlib.sha256(key).digest()
            key = key.ljust(64, b"\0")
            pads = self._pads = (
                hashlib.sha256(key.translate(_IPAD)),
                hashlib.sha256(key.translate(_OPAD)),
            )
        inner = pads[0].copy()
        inner.update(digest.encode("ascii"))
        outer = pads[1].copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Check the key; turn a ledger of bare sha256 hashes into a keyed one, in place."""
        check = self.keyed("hrsync ledger key check")
        rows = dict(conn.execute("SELECT name, value FROM ledger_meta").fetchall())
        if rows.get("hashing") == LEDGER_HASHING:
            if rows.get("key_check") != check:
                raise LedgerKeyError(
                    f"transfer ledger {self.path} was keyed with another key than the one now "
                    f"configured ({ENV_LEDGER_KEY}, else {SEALING_ENV_KEY}, else "
                    f"{self.path.name}.key): set the key it was written with; with a new key "
                    "every line would look new and be sent again"
                )
            return
        with sqlite.transaction(conn):
            old = conn.execute("SELECT count(*) FROM transfers").fetchone()[0]
            conn.execute(
                "UPDATE transfers SET content_key = hrsync_keyed(content_key), "
                "content_sha256 = hrsync_keyed(content_sha256)"
            )
            conn.execute("UPDATE transfer_items SET item_sha256 = hrsync_keyed(item_sha256)")
            conn.executemany(
                "INSERT OR REPLACE INTO ledger_meta VALUES (?, ?)",
                [("hashing", LEDGER_HASHING), ("key_check", check)],
            )
        if old:
            conn.execute("VACUUM")  # no copy of the bare hashes left in free pages
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            LOGGER.warning(
                "transfer ledger %s: its bare sha256 hashes are now keyed (HMAC-SHA256)", self.path
            )

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        schema = "" if self._ready else _LEDGER_SCHEMA
        migrate = None if self._ready else self._migrate
        conn = sqlite3_connect_keyed(self, schema, migrate)
        self._ready = True
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    def lookup(self, destination: str, content_key: str) -> TransferResult | None:
        """The earlier transfer of this content to this destination, if any."""
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT * FROM transfers WHERE destination=? AND content_key=?",
                (destination, self.keyed(content_key)),
            ).fetchone()
        if row is None:
            return None
        return TransferResult(
            status="already-sent",
            file_name=row["file_name"],
            remote_path=row["remote_path"],
            destination=row["destination"],
            content_sha256=row["content_sha256"],
            content_size=row["content_size"],
            sent_sha256=row["sent_sha256"],
            sent_size=row["sent_size"],
            record_count=row["record_count"],
            attempts=0,
            sent_at=row["sent_at"],
        )

    def record(self, content_key: str, result: TransferResult, integration: str | None) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO transfers (destination, content_key, file_name, "
                "remote_path, content_sha256, content_size, sent_sha256, sent_size, "
                "record_count, attempts, integration, sent_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    result.destination,
                    self.keyed(content_key),
                    result.file_name,
                    result.remote_path,
                    self.keyed(result.content_sha256),
                    result.content_size,
                    result.sent_sha256,
                    result.sent_size,
                    result.record_count,
                    result.attempts,
                    integration,
                    result.sent_at,
                ),
            )

    @contextlib.contextmanager
    def items(self, destination: str) -> Iterator[SentItems]:
        """Row-level memory for change files: which items already reached ``destination``."""
        with self._db() as db:
            yield SentItems(db, destination, self.keyed)

    def all(self) -> list[dict[str, Any]]:
        """Every transfer, oldest first (for tests and reports)."""
        if not self.path.exists():
            return []
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM transfers ORDER BY id")]


def sqlite3_connect_keyed(
    ledger: TransferLedger, schema: str, migrate: Callable[[sqlite3.Connection], None] | None
) -> sqlite3.Connection:
    """The ledger's connection (0600), ``hrsync_keyed(text)`` available to SQL (migration)."""

    def run_migration(conn: sqlite3.Connection) -> None:
        conn.create_function("hrsync_keyed", 1, ledger.keyed, deterministic=True)
        if migrate is not None:
            migrate(conn)

    return sqlite.connect(ledger.path, schema=schema, migrate=run_migration, name="transfer ledger")


def _ledger(ledger: TransferLedger | str | Path | None) -> TransferLedger:
    return ledger if isinstance(ledger, TransferLedger) else TransferLedger(ledger)


# --- SFTP -------------------------------------------------------------------------------------


class _Reject(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, raising an error that says what to do."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise UnknownHostKeyError(
            f"SFTP host {hostname} is not in {self.known_hosts} (its {key.get_name()} key is "
            f"SHA256:{_fingerprint(key)}); nothing was sent. Verify that key with the server's "
            "operator and add it to known_hosts (e.g. ssh-keyscan, checked out of band)"
        )


def _fingerprint(key: paramiko.PKey) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _load_private_key(target: SFTPTarget) -> paramiko.PKey:
    passphrase = target.private_key_passphrase
    try:
        if target.private_key_path:
            path = Path(target.private_key_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"SFTP private key {path} does not exist")
            return paramiko.PKey.from_path(path, password=passphrase)
        text = target.private_key or ""
        errors = []
        for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return cls.from_private_key(io.StringIO(text), password=passphrase)
            except paramiko.SSHException as exc:
                errors.append(f"{cls.__name__}: {exc}")
        raise ConfigError(f"SFTP private key: not a usable key ({'; '.join(errors)})")
    except paramiko.PasswordRequiredException:
        raise ConfigError("SFTP private key is encrypted: set its passphrase") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"SFTP private key could not be read: {exc}") from None


def _connect(target: SFTPTarget, pkey: paramiko.PKey) -> paramiko.SSHClient:
    known_hosts = Path(target.known_hosts_path).expanduser()
    if not str(target.known_hosts_path) or not known_hosts.is_file():
        raise ConfigError(
            f"SFTP known_hosts file {known_hosts} does not exist: strict host-key checking "
            "needs the server's key there (keys are never auto-added)"
        )
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))  # the only trusted keys; ~/.ssh is not consulted
    client.set_missing_host_key_policy(_Reject(known_hosts))
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.username,
            pkey=pkey,
            look_for_keys=False,
            allow_agent=False,
            timeout=target.timeout,
            banner_timeout=target.timeout,
            auth_timeout=target.timeout,
            channel_timeout=target.timeout,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyMismatchError(
            f"SFTP host {target.host}:{target.port} presented a {exc.key.get_name()} key "
            f"SHA256:{_fingerprint(exc.key)}, but {known_hosts} holds "
            f"SHA256:{_fingerprint(exc.expected_key)}; nothing was sent. The server's key "
            "changed or someone is in the middle: check with its operator before updating "
            "known_hosts"
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthenticationError(
            f"SFTP host {target.host}:{target.port} refused user {target.username!r} with the "
            f"configured key ({exc}); nothing was sent"
        ) from None
    except BaseException:
        client.close()
        raise
    return client


def _exists(sftp: paramiko.SFTPClient, path: str) -> int | None:
    """Size of the remote file, or None when there is none."""
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None
    except OSError as exc:  # some servers answer "no such file" without an errno
        if "no such file" in str(exc).lower():
            return None
        raise


def _server_refused(client: paramiko.SSHClient, sftp: paramiko.SFTPClient, exc: Exception) -> bool:
    """True when the server answered with an error (permission, no such directory, full disk)
    over a connection that still works; False when the connection is gone (retry)."""
    if isinstance(exc, EOFError | paramiko.SSHException | ConnectionError | TimeoutError):
        return False
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        return False
    try:
        sftp.normalize(".")  # a round trip: does the connection still answer?
    except Exception:
        return False
    return True


def _upload(
    target: SFTPTarget,
    pkey: paramiko.PKey,
    local_path: Path,
    size: int,
    temp_path: str,
    final_path: str,
    overwrite: bool,
    state: dict[str, bool],
) -> None:
    """One attempt. Raises a TransferError for what retrying cannot fix, anything else
    (connection lost) for the caller to retry."""
    client = _connect(target, pkey)
    try:
        sftp = client.open_sftp()
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(target.timeout)
        try:
            if (  # the previous attempt lost the answer to its rename, which went through
                state.get("renamed")
                and _exists(sftp, temp_path) is None
                and _exists(sftp, final_path) == size
            ):
                return
            with contextlib.suppress(OSError):  # leftovers of a dropped attempt
                sftp.remove(temp_path)
            if not overwrite and _exists(sftp, final_path) is not None:
                raise RemoteFileExistsError(
                    f"SFTP {target.destination}: {final_path} already exists; nothing was sent "
                    "(the earlier file may not have been picked up yet; it is never overwritten "
                    "unless overwrite is allowed)"
                )
            state["uploading"] = True
            with local_path.open("rb") as fh:
                sftp.putfo(fh, temp_path, file_size=size, confirm=True)
            state["renamed"] = True
            if overwrite:
                sftp.posix_rename(temp_path, final_path)
            else:
                sftp.rename(temp_path, final_path)  # SSH_FXP_RENAME never replaces a file
            state["uploading"] = False
        except TransferError:
            raise
        except Exception as exc:
            if _server_refused(client, sftp, exc):  # retrying will not help
                with contextlib.suppress(Exception):
                    sftp.remove(temp_path)
                state["uploading"] = False
                raise TransferFailed(
                    f"SFTP {target.destination}: writing {final_path} failed: "
                    f"{type(exc).__name__}: {exc}; nothing was left under the final name"
                ) from exc
            raise
        finally:
            with contextlib.suppress(Exception):
                sftp.close()
    finally:
        client.close()


def _remove_temp(target: SFTPTarget, pkey: paramiko.PKey, temp_path: str) -> None:
    """Best effort, after the last failed attempt: do not leave the temporary file behind."""
    with contextlib.suppress(Exception):
        client = _connect(target, pkey)
        try:
            sftp = client.open_sftp()
            with contextlib.suppress(OSError):
                sftp.remove(temp_path)
            sftp.close()
        finally:
            client.close()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _audit_detail(result: TransferResult | None, **parts: Any) -> str:
    items = dict(parts)
    if result is not None:
        items.update(
            sha256=result.sent_sha256,
            bytes=result.sent_size,
            records=result.record_count,
            plain_sha256=result.content_sha256,
            attempts=result.attempts,
        )
    return " ".join(f"{k}={v}" for k, v in items.items() if v is not None)


def send_file(
    local_path: str | Path,
    target: SFTPTarget,
    *,
    remote_name: str | None = None,
    record_count: int | None = None,
    content_key: str | None = None,
    content: tuple[str, int] | None = None,
    ledger: TransferLedger | str | Path | None = None,
    audit: AuditLog | None = None,
    stream: str = "file",
    fields: Iterable[str] = (),
    retry: RetryPolicy | None = None,
    overwrite: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> TransferResult:
    """Upload ``local_path`` to ``target`` as ``remote_name`` (default: the local name).

    ``content`` is (sha256, size) of the plaintext when ``local_path`` is its encryption
    (recorded in the ledger and the audit; default: the file itself); ``content_key`` is the
    ledger key (default: that sha256). See the module docstring for the guarantees.
    """
    local = Path(local_path)
    name = remote_name or local.name
    if "/" in name or name in {"", ".", ".."}:
        raise ConfigError(f"remote file name {name!r} must be a plain file name")
    sent_sha, sent_size = sha256_file(local)
    content_sha, content_size = content or (sent_sha, sent_size)
    key = content_key or content_sha
    book = _ledger(ledger)
    log = audit or AuditLog()
    field_names = sorted(set(fields))
    final_path = target.remote_path(name)

    earlier = book.lookup(target.destination, key)
    if earlier is not None:
        log.record(
            stream=stream,
            record_key=name,
            fields=field_names,
            destination=target.destination,
            outcome="unchanged",
            detail=_audit_detail(
                earlier, reason="already sent", sent_as=earlier.file_name, at=earlier.sent_at
            ),
        )
        return earlier

    policy = retry or RetryPolicy(max_retries=5, backoff_base_seconds=2.0)
    pkey = _load_private_key(target)
    temp_path = target.remote_path(f".{name}.{secrets.token_hex(6)}.part")
    state: dict[str, bool] = {}
    started = time.monotonic()
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                _upload(target, pkey, local, sent_size, temp_path, final_path, overwrite, state)
                break
            except (TransferError, ConfigError):
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                wait = policy.wait(attempt - 1, None)
                elapsed = time.monotonic() - started
                if attempt >= policy.max_retries or elapsed + wait > policy.retry_max_seconds:
                    if state.get("uploading"):
                        _remove_temp(target, pkey, temp_path)
                    raise TransferFailed(
                        f"SFTP {target.destination}: sending {name} failed after {attempt} "
                        f"attempts in {elapsed:.1f} s: {failure}; nothing was left under the "
                        "final name"
                    ) from exc
                sleep(wait)
    except Exception as exc:
        log.record(
            stream=stream,
            record_key=name,
            fields=field_names,
            destination=target.destination,
            outcome="failed",
            detail=_audit_detail(
                None,
                sha256=sent_sha,
                bytes=sent_size,
                records=record_count,
                attempts=attempt,
                error=type(exc).__name__,
            ),
        )
        raise

    result = TransferResult(
        status="sent",
        file_name=name,
        remote_path=final_path,
        destination=target.destination,
        content_sha256=content_sha,
        content_size=content_size,
        sent_sha256=sent_sha,
        sent_size=sent_size,
        record_count=record_count,
        attempts=attempt,
        sent_at=_now(),
    )
    book.record(key, result, log.integration)
    log.record(
        stream=stream,
        record_key=name,
        fields=field_names,
        destination=target.destination,
        outcome="sent",
        detail=_audit_detail(result),
    )
    return result


def deliver(
    plaintext_path: str | Path,
    target: SFTPTarget,
    *,
    recipient_public_key: str,
    remote_name: str,
    record_count: int | None = None,
    fingerprint: str | None = None,
    armor: bool = False,
    content_key: str | None = None,
    ledger: TransferLedger | str | Path | None = None,
    audit: AuditLog | None = None,
    stream: str = "file",
    fields: Iterable[str] = (),
    retry: RetryPolicy | None = None,
    overwrite: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> TransferResult:
    """Encrypt ``plaintext_path`` to the recipient and send it (unless already sent).

    The ledger is keyed on the plaintext's sha256 (or ``content_key``): PGP output differs on
    every run, the content does not. The encrypted copy lives in a temporary file next to
    nothing else and is removed afterwards.
    """
    plain = Path(plaintext_path)
    content = sha256_file(plain)
    key = content_key or content[0]
    book = _ledger(ledger)
    log = audit or AuditLog()
    earlier = book.lookup(target.destination, key)
    if earlier is not None:
        log.record(
            stream=stream,
            record_key=remote_name,
            fields=sorted(set(fields)),
            destination=target.destination,
            outcome="unchanged",
            detail=_audit_detail(
                earlier, reason="already sent", sent_as=earlier.file_name, at=earlier.sent_at
            ),
        )
        return earlier
    with tempfile.TemporaryDirectory(prefix="hrsync-out-") as tmp:
        encrypted = Path(tmp) / remote_name
        encrypt_file(plain, encrypted, recipient_public_key, armor=armor, fingerprint=fingerprint)
        return send_file(
            encrypted,
            target,
            remote_name=remote_name,
            record_count=record_count,
            content_key=key,
            content=content,
            ledger=book,
            audit=log,
            stream=stream,
            fields=fields,
            retry=retry,
            overwrite=overwrite,
            sleep=sleep,
        )
