"""Personal data at rest: sealing with one operator passphrase (``$HRSYNC_DLQ_KEY``).

The dead-letter store, map-hr's lookup stores and target-benefits-834's member ledger keep
personal data between runs; with a key set they keep it sealed: AES-256-GCM (authenticated
encryption) under a key derived from the passphrase with scrypt (N=2**15, r=8, p=1) and a
random 16-byte salt, so any string an operator keeps in a secret store works and a stolen
store cannot be attacked with precomputed tables or a fast hash. A sealed blob carries its
salt and nonce::

    b"hrsK1:" + salt (16 bytes) + nonce (12 bytes) + ciphertext and tag

Blobs sealed before (a Fernet token under the unsalted SHA-256 of the passphrase, starting
``gAAAAA``) still open; stores re-seal them when they rewrite a row.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import typing as t

if t.TYPE_CHECKING:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENV_KEY = "HRSYNC_DLQ_KEY"
#: Every blob sealed now starts with these bytes (then the salt, the nonce, the ciphertext).
TOKEN_PREFIX = b"hrsK1:"
#: Every Fernet token starts with these bytes (version 0x80, base64url-encoded): the format of
#: blobs sealed before the salted KDF.
LEGACY_PREFIX = b"gAAAAA"
SALT_BYTES = 16
NONCE_BYTES = 12
#: scrypt cost: 2**15 x 8 x 128 bytes = 32 MiB, some 0.1 s on one core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


_cache_lock = threading.Lock()
#: this process's sealing salt per passphrase, and every key derived in it: scrypt is slow by
#: design, so each (passphrase, salt) is derived once per process (a process forked from one
#: that derived them, such as the webhook fast path's plugin runs, inherits both)
_SALTS: dict[str, bytes] = {}
_KEYS: dict[tuple[str, bytes], bytes] = {}


def _cached_key(passphrase: str, salt: bytes) -> bytes:
    with _cache_lock:
        key = _KEYS.get((passphrase, salt))
    if key is None:
        key = derive_key(passphrase, salt)
        with _cache_lock:
            _KEYS[(passphrase, salt)] = key
    return key


def _process_salt(passphrase: str) -> bytes:
    with _cache_lock:
        return _SALTS.setdefault(passphrase, os.urandom(SALT_BYTES))


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """The 32-byte sealing key for ``passphrase`` and ``salt``: scrypt."""
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=32,
    )


class Sealer:
    """Seals with one random salt per process and passphrase (one scrypt run per process);
    opens any salt (each derived once per process)."""

    def __init__(self, passphrase: str, *, key: bytes | None = None) -> None:
        self._passphrase = passphrase
        self._raw = key
        self._salt = _process_salt(passphrase) if key is None else os.urandom(SALT_BYTES)
        self._head = TOKEN_PREFIX + self._salt
        self._lock = threading.Lock()
        self._by_salt: dict[bytes, AESGCM] = {}
        self._aead = self._aead_for(self._salt)
        self._legacy: Fernet | None = None

    @classmethod
    def for_key(cls, key: bytes) -> Sealer:
        """A sealer under ``key`` itself, 32 random bytes rather than a passphrase (no KDF:
        there is nothing to stretch), for data sealed and opened by one process."""
        if len(key) != 32:
            raise ValueError("Sealer.for_key: the key must be 32 bytes")
        return cls("", key=key)

    def _aead_for(self, salt: bytes) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _AESGCM

        with self._lock:
            aead = self._by_salt.get(salt)
            if aead is None:
                key = self._raw if self._raw is not None else _cached_key(self._passphrase, salt)
                aead = self._by_salt[salt] = _AESGCM(key)
            return aead

    def seal(self, raw: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self._head + nonce + self._aead.encrypt(nonce, bytes(raw), self._head)

    def open(self, token: bytes) -> bytes | None:
        """The plaintext, or None when the blob was sealed with another key (or altered)."""
        token = bytes(token)
        if token.startswith(TOKEN_PREFIX):
            head_end = len(TOKEN_PREFIX) + SALT_BYTES
            salt, nonce = (
                token[len(TOKEN_PREFIX) : head_end],
                token[head_end : head_end + NONCE_BYTES],
            )
            if len(nonce) != NONCE_BYTES:
                return None
            # this sealer's own salt (a spill file's every row) without the lock
            aead = self._aead if salt == self._salt else self._aead_for(salt)
            try:
                return aead.decrypt(nonce, token[head_end + NONCE_BYTES :], token[:head_end])
            except Exception as error:  # imported here: opening is hot, failing is rare
                from cryptography.exceptions import InvalidTag

                if isinstance(error, InvalidTag):
                    return None
                raise
        from cryptography.fernet import Fernet as _Fernet
        from cryptography.fernet import InvalidToken

        # sealed before the salted KDF: Fernet under the unsalted SHA-256 of the passphrase
        if self._raw is not None:
            return None
        if self._legacy is None:
            digest = hashlib.sha256(self._passphrase.encode("utf-8")).digest()
            self._legacy = _Fernet(base64.urlsafe_b64encode(digest))
        try:
            return self._legacy.decrypt(token)
        except InvalidToken:
            return None


def sealer(key: str | None = None) -> Sealer | None:
    """A sealer for ``key``, else for ``$HRSYNC_DLQ_KEY``; None when neither is set."""
    passphrase = key if key is not None else os.environ.get(ENV_KEY)
    return Sealer(passphrase) if passphrase else None


def derive_keys(salts: t.Iterable[bytes], key: str | None = None) -> int:
    """Derive now, once per process, the keys that open blobs sealed under ``salts`` (with
    ``key``, else ``$HRSYNC_DLQ_KEY``): a process that forks runs (the webhook fast path's warm
    one) spares each run a scrypt per salt it meets in a store that other processes wrote.
    Returns how many salts were taken."""
    passphrase = key if key is not None else os.environ.get(ENV_KEY)
    if not passphrase:
        return 0
    taken = 0
    for salt in salts:
        if len(salt) == SALT_BYTES:
            _cached_key(passphrase, bytes(salt))
            taken += 1
    return taken


def is_sealed(blob: bytes) -> bool:
    head = bytes(blob[: len(TOKEN_PREFIX)])
    return head in (TOKEN_PREFIX, LEGACY_PREFIX)


def is_legacy(blob: bytes) -> bool:
    """Sealed in the format before the salted KDF (re-seal it when rewriting)."""
    return bytes(blob[: len(LEGACY_PREFIX)]) == LEGACY_PREFIX
