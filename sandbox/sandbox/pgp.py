"""A throwaway GnuPG home holding one recipient keypair: the "payroll provider" / "carrier".

    with Recipient.create() as recipient:
        recipient.public_key        # ASCII-armored public key, for the target's config
        recipient.fingerprint
        recipient.decrypt(data)     # what the provider would read

The key is ed25519 / cv25519 without a passphrase (fast to make; tests and demo only). The
home lives in a short temporary directory (gpg-agent socket paths are length-limited); close()
stops its gpg-agent (``gpgconf --homedir H --kill gpg-agent``) and removes it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gnupg

__all__ = ["Recipient"]


@dataclass
class Recipient:
    home: Path
    gpg: Any
    fingerprint: str
    public_key: str
    email: str

    @classmethod
    def create(cls, email: str = "payroll-inbound@provider.example") -> Recipient:
        home = Path(tempfile.mkdtemp(prefix="hrsync-pgp-"))
        gpg = gnupg.GPG(gnupghome=str(home))
        gpg.encoding = "utf-8"
        params = "\n".join(
            [
                "Key-Type: EDDSA",
                "Key-Curve: ed25519",
                "Key-Usage: sign",
                "Subkey-Type: ECDH",
                "Subkey-Curve: cv25519",
                "Subkey-Usage: encrypt",
                "Name-Real: hrsync sandbox recipient",
                f"Name-Email: {email}",
                "Expire-Date: 0",
                "%no-protection",
                "%commit",
                "",
            ]
        )
        key = gpg.gen_key(params)
        if not key.fingerprint:
            cls._stop(home)
            raise RuntimeError(f"gpg could not create a key: {key.stderr}")
        public = gpg.export_keys(key.fingerprint)
        return cls(home, gpg, str(key.fingerprint), str(public), email)

    def decrypt(self, data: bytes) -> bytes:
        result = self.gpg.decrypt(data)
        if not result.ok:
            raise ValueError(f"gpg could not decrypt: {result.status} {result.stderr[-300:]}")
        return bytes(result.data)

    def decrypt_file(self, path: Path) -> bytes:
        return self.decrypt(Path(path).read_bytes())

    @staticmethod
    def _stop(home: Path) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)

    def close(self) -> None:
        self._stop(self.home)

    def __enter__(self) -> Recipient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
