"""Personal data at rest: Fernet sealing with one operator passphrase (``$HRSYNC_DLQ_KEY``).

The dead-letter store and target-benefits-834's member ledger keep personal data between runs;
with a key set they keep it sealed (AES-128-CBC + HMAC-SHA256, Fernet). The passphrase is
hashed to the Fernet key, so any string an operator keeps in a secret store works.
"""

from __future__ import annotations

import base64
import hashlib
import os

ENV_KEY = "HRSYNC_DLQ_KEY"
#: Every Fernet token starts with these bytes (version 0x80, base64url-encoded).
TOKEN_PREFIX = b"gAAAAA"


class Sealer:
    def __init__(self, passphrase: str) -> None:
        from cryptography.fernet import Fernet

        digest = hashlib.sha256(passphrase.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, raw: bytes) -> bytes:
        return self._fernet.encrypt(raw)

    def open(self, token: bytes) -> bytes | None:
        """The plaintext, or None when the token was sealed with another key (or altered)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token)
        except InvalidToken:
            return None


def sealer(key: str | None = None) -> Sealer | None:
    """A sealer for ``key``, else for ``$HRSYNC_DLQ_KEY``; None when neither is set."""
    passphrase = key if key is not None else os.environ.get(ENV_KEY)
    return Sealer(passphrase) if passphrase else None


def is_sealed(blob: bytes) -> bool:
    return bytes(blob[: len(TOKEN_PREFIX)]) == TOKEN_PREFIX
