"""Test kit of target-benefits-834: the carrier (a real OpenSSH sshd as its SFTP drop and a GnuPG
recipient as its key, beside the BambooHR sandbox) and X12 segment readers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.pgp import Recipient
from sandbox.server import Sandbox
from sandbox.sftp import Sshd

BIN = Path(sys.executable).parent


@dataclass
class Carrier:
    """Everything a test needs: sandbox, sshd, recipient key, and the target's files."""

    sandbox: Sandbox
    sshd: Sshd
    recipient: Recipient
    workdir: Path
    runs: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def target_config(self, **overrides: Any) -> dict[str, Any]:
        base = {
            "sender_id": "ACMEHR",
            "receiver_id": "BLUEPRAIRIE",
            "usage_indicator": "T",
            "sponsor_name": "Acme Inc",
            "sponsor_id": "123456789",
            "payer_name": "Blue Prairie Health",
            "payer_id": "987654321",
            "master_policy_number": "MP-2026-01",
            "work_dir": str(self.workdir / "work"),
            "dead_letter_path": str(self.workdir / "dlq.sqlite"),
            "transfer_ledger_path": str(self.workdir / "transfers.sqlite"),
            "audit_log_path": str(self.workdir / "audit.jsonl"),
            "validation_workers": 1,
            "sftp_host": "127.0.0.1",
            "sftp_port": self.sshd.port,
            "sftp_username": self.sshd.username,
            "sftp_private_key_path": str(self.sshd.client_key_path),
            "sftp_known_hosts_path": str(self.sshd.write_known_hosts(self.workdir / "known_hosts")),
            "sftp_remote_dir": str(self.sshd.upload_dir),
            "pgp_recipient_public_key": self.recipient.public_key,
            "pgp_recipient_fingerprint": self.recipient.fingerprint,
            "transfer_max_attempts": 2,
            "transfer_backoff_seconds": 1,
        }
        return {**base, **self.config, **overrides}

    def messages(self) -> bytes:
        """tap-bamboohr | map-hr bamboohr_to_canonical | map-hr hris_to_benefits: the Singer
        messages of now."""
        info = self.sandbox.info()["bamboohr"]
        tap_cfg = self.workdir / "tap.json"
        tap_cfg.write_text(json.dumps({"api_key": info["api_key"], "api_url": info["api_url"]}))
        configs = []
        for profile in ("bamboohr_to_canonical", "hris_to_benefits"):
            map_cfg = self.workdir / f"map-{profile}.json"
            map_cfg.write_text(json.dumps({
                "profile": profile,
                "hmac_key": "test-key-test-key-test-key-test-key",
                "state_dir": str(self.workdir / "map-hr"),
            }))  # fmt: skip
            configs.append(map_cfg)
        catalog = self.workdir / "catalog.json"
        if not catalog.exists():  # every stream selected (the benefits streams are opt-in)
            found = json.loads(subprocess.run(
                [str(BIN / "tap-bamboohr"), "--config", str(tap_cfg), "--discover"],
                capture_output=True, check=True,
            ).stdout)  # fmt: skip
            for stream in found["streams"]:
                for entry in stream["metadata"]:
                    if not entry["breadcrumb"]:
                        entry["metadata"]["selected"] = True
            catalog.write_text(json.dumps(found))
        tap = subprocess.Popen(
            [str(BIN / "tap-bamboohr"), "--config", str(tap_cfg), "--catalog", str(catalog)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        canonical = subprocess.Popen(
            [str(BIN / "map-hr"), "--config", str(configs[0])],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        mapped = subprocess.run(
            [str(BIN / "map-hr"), "--config", str(configs[1])],
            stdin=canonical.stdout,
            capture_output=True,
            check=False,
        )
        assert tap.wait() == 0 and canonical.wait() == 0, "tap-bamboohr | map-hr failed"
        assert mapped.returncode == 0, mapped.stderr.decode()[-2000:]
        return mapped.stdout

    def run_target(self, messages: bytes, **overrides: Any) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        cfg = self.workdir / f"target-{self.runs}.json"
        cfg.write_text(json.dumps(self.target_config(**overrides)))
        return subprocess.run(
            [str(BIN / "target-benefits-834"), "--config", str(cfg)],
            input=messages.decode(),
            capture_output=True,
            text=True,
            check=False,
        )

    def arrived(self) -> list[Path]:
        return sorted(p for p in self.sshd.upload_dir.iterdir() if not p.name.startswith("."))

    def decrypt(self, path: Path) -> str:
        return self.recipient.decrypt_file(path).decode("ascii")


def segments(text: str) -> list[list[str]]:
    """An X12 document as lists of elements (``~`` ends a segment, ``*`` splits elements)."""
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def member_loops(text: str) -> list[list[list[str]]]:
    """The 2000 loops (INS up to the next INS or SE) of a document."""
    loops: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for seg in segments(text):
        if seg[0] == "INS":
            current = [seg]
            loops.append(current)
        elif seg[0] in ("SE", "ST", "GE", "IEA"):
            current = None
        elif current is not None:
            current.append(seg)
    return loops


def loop_value(loop: list[list[str]], seg_id: str, *qualifier: str) -> list[str] | None:
    for seg in loop:
        if seg[0] == seg_id and all(seg[i + 1] == q for i, q in enumerate(qualifier)):
            return seg
    return None
