"""Personal data at rest: keyed hashes in the transfer ledger, 0600 files in 0700 folders,
sealing with a salted KDF (old blobs still open), a loud warning for unsealed dead letters,
sealed lookup stores with a retention period, full PGP fingerprints."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hrsync import sealing
from hrsync import sqlite as hsqlite
from hrsync.deadletter import DeadLetterStore
from hrsync.sealing import Sealer, is_sealed
from hrsync.transfer import EncryptionError, LedgerKeyError, TransferLedger, encrypt
from map_hr.lookups import LookupStore
from sandbox.pgp import Recipient

LINE = json.dumps(["078-05-1120", "Zoë", "Ng", "123456.00"], ensure_ascii=False)
LINE_SHA = hashlib.sha256(LINE.encode()).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_bytes(path: Path) -> bytes:
    """The database and its WAL, as a thief would read them."""
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


# --- the transfer ledger (item 10) -----------------------------------------------------------


def test_ledger_keeps_keyed_hashes_in_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HRSYNC_LEDGER_KEY", "ledger-key-for-tests")
    path = tmp_path / "state" / "ledger" / "transfers.sqlite"
    ledger = TransferLedger(path)
    with ledger.items("sftp://payroll") as items:
        items.add([("pay_lines/E1", LINE_SHA)], "payroll-1.csv")
    with ledger.items("sftp://payroll") as items:
        assert items.seen("pay_lines/E1", LINE_SHA)
        assert ("pay_lines/E1", LINE_SHA) in items.seen_many(["pay_lines/E1"])
        assert not items.seen("pay_lines/E1", hashlib.sha256(b"other").hexdigest())
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    stored = sqlite3.connect(path).execute("SELECT item_sha256 FROM transfer_items").fetchall()
    assert stored and stored[0][0] != LINE_SHA
    assert LINE_SHA.encode() not in file_bytes(path)  # a guessed line's hash finds nothing


def test_ledger_refuses_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "transfers.sqlite"
    monkeypatch.setenv("HRSYNC_LEDGER_KEY", "first")
    with TransferLedger(path).items("d") as items:
        items.add([("k", LINE_SHA)], "f")
    monkeypatch.setenv("HRSYNC_LEDGER_KEY", "second")
    with (
        pytest.raises(LedgerKeyError, match="keyed with another key"),
        TransferLedger(path).items("d"),
    ):
        pass


def test_ledger_without_a_key_uses_a_private_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HRSYNC_LEDGER_KEY", raising=False)
    path = tmp_path / "transfers.sqlite"
    with TransferLedger(path).items("d") as items:
        items.add([("k", LINE_SHA)], "f")
    key_file = tmp_path / "transfers.sqlite.key"
    assert mode(key_file) == 0o600 and len(key_file.read_text()) == 64
    with TransferLedger(path).items("d") as items:
        assert items.seen("k", LINE_SHA)
    assert LINE_SHA.encode() not in file_bytes(path)


def test_an_old_unkeyed_ledger_is_migrated_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "transfers.sqlite"
    old = sqlite3.connect(path)  # the schema and rows of a ledger written before keying
    old.executescript(
        """
        CREATE TABLE transfers (id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL,
            content_key TEXT NOT NULL, file_name TEXT NOT NULL, remote_path TEXT NOT NULL,
            content_sha256 TEXT NOT NULL, content_size INTEGER NOT NULL,
            sent_sha256 TEXT NOT NULL, sent_size INTEGER NOT NULL, record_count INTEGER,
            attempts INTEGER NOT NULL, integration TEXT, sent_at TEXT NOT NULL);
        CREATE UNIQUE INDEX transfers_once ON transfers (destination, content_key);
        CREATE TABLE transfer_items (destination TEXT NOT NULL, item_key TEXT NOT NULL,
            item_sha256 TEXT NOT NULL, file_name TEXT NOT NULL, sent_at TEXT NOT NULL,
            PRIMARY KEY (destination, item_key, item_sha256)) WITHOUT ROWID;
        """
    )
    content = hashlib.sha256(b"the whole file").hexdigest()
    old.execute("INSERT INTO transfer_items VALUES ('d', 'k', ?, 'f', 'now')", (LINE_SHA,))
    old.execute(
        "INSERT INTO transfers VALUES (1, 'd', ?, 'f', '/in/f', ?, 1, 'x', 1, 1, 1, NULL, 'now')",
        (content, content),
    )
    old.commit()
    old.close()
    assert LINE_SHA.encode() in file_bytes(path)
    monkeypatch.setenv("HRSYNC_LEDGER_KEY", "ledger-key-for-tests")
    ledger = TransferLedger(path)
    with ledger.items("d") as items:
        assert items.seen("k", LINE_SHA)  # nothing already sent looks new
    earlier = ledger.lookup("d", content)
    assert earlier is not None and earlier.file_name == "f"
    data = file_bytes(path)
    assert LINE_SHA.encode() not in data and content.encode() not in data


# --- sqlite stores: 0600 in 0700 -----------------------------------------------------------


def test_every_private_store_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "a" / "b" / "store.sqlite"
    hsqlite.connect(path, schema="CREATE TABLE t (x);").close()
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert mode(tmp_path) == 0o755  # a folder hrsync did not create keeps its mode


# --- sealing (item 12) ------------------------------------------------------------------------


def test_a_sealer_for_a_random_key_needs_no_kdf_and_opens_only_its_own() -> None:
    key = os.urandom(32)
    sealer, other = Sealer.for_key(key), Sealer.for_key(os.urandom(32))
    blob = sealer.seal(b"secret")
    assert is_sealed(blob) and sealer.open(blob) == b"secret"
    assert other.open(blob) is None
    assert sealer.open(Sealer("passphrase").seal(b"x")) is None
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer.for_key(b"short")


def test_sealing_uses_a_salted_kdf_and_still_opens_old_blobs() -> None:
    a = Sealer("passphrase")
    sealing._SALTS.clear()  # as in another process: a random salt per process, in the blob
    b = Sealer("passphrase")
    one, two = a.seal(b"secret"), b.seal(b"secret")
    assert one.startswith(b"hrsK1:") and is_sealed(one)
    assert one[6:22] != two[6:22]
    assert Sealer("passphrase").seal(b"x")[6:22] == two[6:22]  # one scrypt per process
    assert a.open(two) == b"secret" and b.open(one) == b"secret"
    assert Sealer("another").open(one) is None
    altered = one[:-1] + bytes([one[-1] ^ 1])
    assert a.open(altered) is None
    # the key is not the unsalted SHA-256 of the passphrase any more
    import base64

    from cryptography.fernet import Fernet, InvalidToken

    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"passphrase").digest()))
    with pytest.raises(InvalidToken):
        legacy.decrypt(one[22:])
    # a blob sealed the old way still opens
    old_blob = legacy.encrypt(b"from before")
    assert is_sealed(old_blob) and a.open(old_blob) == b"from before"


def test_dead_letters_without_a_key_warn_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = {"ssn": "078-05-1120", "lastName": "Ng"}
    with caplog.at_level(logging.WARNING, logger="hrsync.deadletter"):
        DeadLetterStore(tmp_path / "plain.sqlite", key="").add(
            plugin="p", stream="s", record_key="1", record=record, error="field x: bad"
        )
        DeadLetterStore(tmp_path / "sealed.sqlite", key="k").add(
            plugin="p", stream="s", record_key="1", record=record, error="field x: bad"
        )
    warned = [r.getMessage() for r in caplog.records if "UNSEALED" in r.getMessage()]
    assert len(warned) == 1 and "plain.sqlite" in warned[0] and "HRSYNC_DLQ_KEY" in warned[0]
    assert b"078-05-1120" not in file_bytes(tmp_path / "sealed.sqlite")


def test_dead_letters_sealed_the_old_way_still_open(tmp_path: Path) -> None:
    import base64

    from cryptography.fernet import Fernet

    store = DeadLetterStore(tmp_path / "dl.sqlite", key="k")
    letter_id = store.add(plugin="p", stream="s", record_key="1", record={"a": 1}, error="e")
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"k").digest()))
    payload = {"record": {"a": "old"}, "schema": None, "key_properties": []}
    with sqlite3.connect(tmp_path / "dl.sqlite") as db:
        db.execute(
            "UPDATE dead_letters SET payload=? WHERE id=?",
            (legacy.encrypt(json.dumps(payload).encode()), letter_id),
        )
    (letter,) = DeadLetterStore(tmp_path / "dl.sqlite", key="k").list()
    assert letter.record == {"a": "old"}


# --- map-hr lookup stores (item 12) ---------------------------------------------------------

CANDIDATE = {"first_name": "Zoë", "last_name": "Ng", "personal_email": "zoe.private@example.net"}


@pytest.fixture
def sealing_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HRSYNC_DLQ_KEY", "lookup-key-for-tests")
    yield "lookup-key-for-tests"


def test_lookup_store_seals_records(tmp_path: Path, sealing_key: str) -> None:
    path = tmp_path / "map-hr" / "ats.sqlite"
    store = LookupStore(path)
    store.put("candidates", 41, CANDIDATE)
    store.close()
    assert b"zoe.private" not in file_bytes(path) and "Zoë".encode() not in file_bytes(path)
    again = LookupStore(path)
    assert again.get("candidates", 41) == CANDIDATE
    again.close()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_lookup_store_purges_expired_rows_on_open(tmp_path: Path, sealing_key: str) -> None:
    path = tmp_path / "ats.sqlite"
    store = LookupStore(path, retention_days=30)
    store.put("candidates", 1, CANDIDATE)
    store.put("candidates", 2, {**CANDIDATE, "first_name": "Recent"})
    store.close()
    with sqlite3.connect(path) as db:  # candidate 1 was last seen 31 days ago
        db.execute("UPDATE refs SET stored_at=? WHERE k='1'", (time.time() - 31 * 86400,))
    again = LookupStore(path, retention_days=30)
    assert again.purged == 1
    assert again.get("candidates", 1) is None
    assert again.get("candidates", 2) is not None
    again.close()


def test_an_old_plaintext_lookup_store_is_sealed_on_open(tmp_path: Path, sealing_key: str) -> None:
    path = tmp_path / "ats.sqlite"
    with sqlite3.connect(path) as db:  # the layout before sealing and retention
        db.execute(
            "CREATE TABLE refs (lookup TEXT NOT NULL, k TEXT NOT NULL, v BLOB NOT NULL, "
            "PRIMARY KEY (lookup, k))"
        )
        db.execute(
            "INSERT INTO refs VALUES ('candidates', '7', ?)", (json.dumps(CANDIDATE).encode(),)
        )
    store = LookupStore(path)
    assert store.purged == 0  # rows from before count from now
    assert store.get("candidates", 7) == CANDIDATE
    store.close()
    assert b"zoe.private" not in file_bytes(path)


def test_lookup_store_without_a_key_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HRSYNC_DLQ_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="map_hr.lookups"):
        LookupStore(tmp_path / "ats.sqlite").close()
    assert any("UNSEALED" in r.getMessage() for r in caplog.records)


# --- PGP pins (item 12) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def recipient() -> Iterator[Recipient]:
    with Recipient.create() as r:
        yield r


def test_pgp_pin_must_be_the_full_fingerprint(recipient: Recipient) -> None:
    short_id = recipient.fingerprint[-8:]
    long_id = recipient.fingerprint[-16:]
    for pin in (short_id, long_id, f"0x{long_id}"):
        with pytest.raises(EncryptionError, match="full fingerprint"):
            encrypt(b"x", recipient.public_key, fingerprint=pin)
    spaced = " ".join(recipient.fingerprint[i : i + 4] for i in range(0, 40, 4))
    assert encrypt(b"x", recipient.public_key, fingerprint=spaced.lower())


# --- target-benefits-834's member ledger: old-format blobs are re-sealed ----------------------


def test_834_ledger_reseals_blobs_sealed_the_old_way(tmp_path: Path) -> None:
    import base64

    from cryptography.fernet import Fernet

    from target_benefits_834.store import Ledger

    path = tmp_path / "ledger.sqlite"
    Ledger(path, Sealer("k")).close()  # the schema
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"k").digest()))
    snapshot = {"ssn": "078-05-1120", "first": "Zoë"}
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO members VALUES ('E1/self', 'E1', ?, 'd', 'active', 'now')",
            (legacy.encrypt(json.dumps(snapshot).encode()),),
        )
    ledger = Ledger(path, Sealer("k"))
    assert ledger.family("E1") == {"E1/self": (snapshot, "d", "active")}
    ledger.close()
    (blob,) = sqlite3.connect(path).execute("SELECT snapshot FROM members").fetchone()
    assert bytes(blob).startswith(b"hrsK1:")


# --- the demo seals its dead letters ---------------------------------------------------------


def test_the_demo_seals_dead_letters_with_a_generated_key(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.demo import meltano_env

    monkeypatch.delenv("HRSYNC_DLQ_KEY", raising=False)
    env = meltano_env(sandbox, tmp_path)
    key = env["HRSYNC_DLQ_KEY"]
    assert len(key) >= 32
    assert mode(tmp_path / "sealing.key") == 0o600
    assert meltano_env(sandbox, tmp_path)["HRSYNC_DLQ_KEY"] == key  # stable: letters reopen
