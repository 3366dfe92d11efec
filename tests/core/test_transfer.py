"""hrsync.transfer against a real OpenSSH sshd and real GnuPG: what arrives is decrypted and
compared with the source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrsync.audit import AuditLog
from hrsync.errors import ConfigError
from hrsync.http import RetryPolicy
from hrsync.transfer import (
    AuthenticationError,
    EncryptionError,
    HostKeyMismatchError,
    RemoteFileExistsError,
    SFTPTarget,
    TransferFailed,
    TransferLedger,
    UnknownHostKeyError,
    deliver,
    encrypt,
    send_file,
    sha256_file,
)
from sandbox.pgp import Recipient
from sandbox.sftp import DroppingProxy, Sshd, keygen, start_sshd

FAST = RetryPolicy(max_retries=4, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
SECRET_MARKER = "Zoë O'Brien-Müller,123-45-6789"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recipient() -> Iterator[Recipient]:
    with Recipient.create() as r:
        yield r


@pytest.fixture
def drop(sshd: Sshd, tmp_path: Path) -> Path:
    """A fresh, empty upload directory on the server for one test."""
    path = sshd.upload_dir / tmp_path.name
    path.mkdir()
    return path


def target_for(
    sshd: Sshd, known_hosts: Path, remote_dir: Path, port: int | None = None, **kw: object
) -> SFTPTarget:
    return SFTPTarget(
        host="127.0.0.1",
        port=port or sshd.port,
        username=sshd.username,
        private_key_path=kw.pop("private_key_path", sshd.client_key_path),  # type: ignore[arg-type]
        known_hosts_path=known_hosts,
        remote_dir=str(remote_dir),
    )


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "payroll.csv"
    rows = [f"{i},{SECRET_MARKER},{i * 1000}.00" for i in range(40_000)]
    path.write_text("employee_id,name,ssn,rate\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_encrypt_round_trip_and_cleanup(recipient: Recipient) -> None:
    before = {p.name for p in Path("/tmp").glob("hrsync-gpg-*")}
    data = "Zoë;Łukasz;山田\n".encode() * 100
    sealed = encrypt(data, recipient.public_key)
    assert data not in sealed and sealed != data
    assert recipient.decrypt(sealed) == data
    armored = encrypt(data, recipient.public_key, armor=True, fingerprint=recipient.fingerprint)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert recipient.decrypt(armored) == data
    assert {p.name for p in Path("/tmp").glob("hrsync-gpg-*")} == before  # homes removed


def test_encrypt_refuses_wrong_or_missing_key(recipient: Recipient) -> None:
    with pytest.raises(EncryptionError, match="fingerprint"):
        encrypt(b"x", recipient.public_key, fingerprint="0" * 40)
    with pytest.raises(EncryptionError, match="ASCII-armored"):
        encrypt(b"x", "not a key")


def test_deliver_encrypts_uploads_logs_and_does_not_resend(
    sshd: Sshd, recipient: Recipient, drop: Path, plain: Path, tmp_path: Path
) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    target = target_for(sshd, known_hosts, drop)
    audit = AuditLog(tmp_path / "audit.jsonl", integration="hris-to-payroll")
    ledger = TransferLedger(tmp_path / "ledger.sqlite")
    result = deliver(
        plain,
        target,
        recipient_public_key=recipient.public_key,
        remote_name="payroll_1.csv.pgp",
        record_count=40_000,
        ledger=ledger,
        audit=audit,
        stream="payroll_changes",
        fields=["employee_id", "name", "ssn", "rate"],
        retry=FAST,
    )
    assert result.sent and result.attempts == 1
    arrived = drop / "payroll_1.csv.pgp"
    assert sorted(p.name for p in drop.iterdir()) == ["payroll_1.csv.pgp"]  # no temp left
    assert SECRET_MARKER.encode() not in arrived.read_bytes()
    assert recipient.decrypt_file(arrived) == plain.read_bytes()
    assert (result.content_sha256, result.content_size) == sha256_file(plain)
    assert (result.sent_sha256, result.sent_size) == sha256_file(arrived)

    # the same content again, under another name: not sent
    again = deliver(
        plain,
        target,
        recipient_public_key=recipient.public_key,
        remote_name="payroll_2.csv.pgp",
        record_count=40_000,
        ledger=ledger,
        audit=audit,
        stream="payroll_changes",
        retry=FAST,
    )
    assert again.status == "already-sent" and again.file_name == "payroll_1.csv.pgp"
    assert sorted(p.name for p in drop.iterdir()) == ["payroll_1.csv.pgp"]
    assert len(ledger.all()) == 1

    events = AuditLog.read(tmp_path / "audit.jsonl")
    assert [e["outcome"] for e in events] == ["sent", "unchanged"]
    sent = events[0]
    assert sent["record_key"] == "payroll_1.csv.pgp"
    assert sent["fields"] == ["employee_id", "name", "rate", "ssn"]
    assert f"sha256={result.sent_sha256}" in sent["detail"]
    assert f"bytes={result.sent_size}" in sent["detail"] and "records=40000" in sent["detail"]
    log_text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    ledger_bytes = ledger.path.read_bytes()
    assert "123-45-6789" not in log_text and b"123-45-6789" not in ledger_bytes


def test_unknown_host_key_sends_nothing(
    sshd: Sshd, drop: Path, plain: Path, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("", encoding="ascii")
    target = target_for(sshd, known_hosts, drop)
    with pytest.raises(UnknownHostKeyError, match=r"not in .*nothing was sent"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST)
    assert list(drop.iterdir()) == []
    assert known_hosts.read_text() == ""  # never auto-added


def test_changed_host_key_sends_nothing(
    sshd: Sshd, drop: Path, plain: Path, tmp_path: Path
) -> None:
    kind, blob = keygen(tmp_path / "impostor").split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n", encoding="ascii")
    target = target_for(sshd, known_hosts, drop)
    with pytest.raises(HostKeyMismatchError, match="nothing was sent"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST)
    assert list(drop.iterdir()) == []
    events = AuditLog.read()
    assert events[-1]["outcome"] == "failed" and "HostKeyMismatchError" in events[-1]["detail"]


def test_missing_known_hosts_is_a_config_error(
    sshd: Sshd, drop: Path, plain: Path, tmp_path: Path
) -> None:
    target = target_for(sshd, tmp_path / "nope", drop)
    with pytest.raises(ConfigError, match="known_hosts"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST)


def test_wrong_client_key_is_refused(sshd: Sshd, drop: Path, plain: Path, tmp_path: Path) -> None:
    keygen(tmp_path / "stranger")
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    target = target_for(sshd, known_hosts, drop, private_key_path=tmp_path / "stranger")
    with pytest.raises(AuthenticationError, match="refused user"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST)
    assert list(drop.iterdir()) == []


def test_drop_mid_upload_is_retried_and_never_leaves_a_partial_file(
    sshd: Sshd, drop: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2_000_000))
    with DroppingProxy(sshd.port, drop_after_bytes=600_000, drops=2) as proxy:
        known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts", proxy.port)
        target = target_for(sshd, known_hosts, drop, port=proxy.port)
        waits: list[float] = []
        result = send_file(
            big, target, remote_name="big.bin", ledger=tmp_path / "l.sqlite", retry=FAST,
            sleep=waits.append,
        )  # fmt: skip
        assert proxy.dropped == 2 and proxy.connections == 3
    assert result.attempts == 3 and len(waits) == 2
    assert sorted(p.name for p in drop.iterdir()) == ["big.bin"]
    assert (drop / "big.bin").read_bytes() == big.read_bytes()


def test_drop_on_every_attempt_fails_cleanly(sshd: Sshd, drop: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1_500_000))
    ledger = TransferLedger(tmp_path / "l.sqlite")
    with DroppingProxy(sshd.port, drop_after_bytes=400_000, drops=4) as proxy:
        known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts", proxy.port)
        target = target_for(sshd, known_hosts, drop, port=proxy.port)
        with pytest.raises(TransferFailed, match="after 4 attempts"):
            send_file(
                big, target, remote_name="big.bin", ledger=ledger, retry=FAST, sleep=lambda s: None
            )
    assert list(drop.iterdir()) == []  # neither the final name nor the temporary file
    assert ledger.all() == []  # not marked sent: the next run sends it
    result = send_file(
        big, target_for(sshd, known_hosts, drop), remote_name="big.bin", ledger=ledger, retry=FAST
    )
    assert result.sent and (drop / "big.bin").read_bytes() == big.read_bytes()


def test_existing_remote_file_is_not_overwritten(
    sshd: Sshd, drop: Path, plain: Path, tmp_path: Path
) -> None:
    (drop / "payroll.csv").write_text("the provider's unread file\n")
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    target = target_for(sshd, known_hosts, drop)
    with pytest.raises(RemoteFileExistsError, match="already exists"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST)
    assert (drop / "payroll.csv").read_text() == "the provider's unread file\n"
    assert sorted(p.name for p in drop.iterdir()) == ["payroll.csv"]
    send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST, overwrite=True)
    assert (drop / "payroll.csv").read_bytes() == plain.read_bytes()


def test_server_error_is_not_retried(sshd: Sshd, plain: Path, tmp_path: Path) -> None:
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    target = target_for(sshd, known_hosts, sshd.upload_dir / "no-such-dir")
    waits: list[float] = []
    with pytest.raises(TransferFailed, match="No such file"):
        send_file(plain, target, ledger=tmp_path / "l.sqlite", retry=FAST, sleep=waits.append)
    assert waits == []


def test_target_from_config_requires_key_auth() -> None:
    with pytest.raises(ConfigError, match="exactly one of private_key_path and private_key"):
        SFTPTarget.from_config(
            {"sftp_host": "h", "sftp_username": "u", "sftp_known_hosts_path": "k"}
        )
    target = SFTPTarget.from_config(
        {"sftp_host": "h", "sftp_port": 2222, "sftp_username": "u", "sftp_private_key_path": "/k",
         "sftp_known_hosts_path": "/kh", "sftp_remote_dir": "/in"}
    )  # fmt: skip
    assert target.destination == "sftp://h:2222/in"
    assert target.remote_path("a.pgp") == "/in/a.pgp"


def test_lost_answer_to_the_rename_is_not_a_second_upload(
    sshd: Sshd, drop: Path, plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename went through but the connection died before its answer: the retry sees the
    final file (and no temporary one) and does not upload again."""
    import paramiko

    real_rename = paramiko.SFTPClient.rename
    calls: list[str] = []

    def rename_then_drop(self: paramiko.SFTPClient, old: str, new: str) -> None:
        real_rename(self, old, new)
        calls.append(new)
        if len(calls) == 1:
            self.get_channel().get_transport().close()  # type: ignore[union-attr]
            raise EOFError

    monkeypatch.setattr(paramiko.SFTPClient, "rename", rename_then_drop)
    known_hosts = sshd.write_known_hosts(tmp_path / "known_hosts")
    result = send_file(plain, target_for(sshd, known_hosts, drop), ledger=tmp_path / "l.sqlite",
                       retry=FAST, sleep=lambda s: None)  # fmt: skip
    assert result.sent and result.attempts == 2 and len(calls) == 1
    assert sorted(p.name for p in drop.iterdir()) == ["payroll.csv"]
    assert (drop / "payroll.csv").read_bytes() == plain.read_bytes()
