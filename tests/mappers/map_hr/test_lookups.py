"""map-hr's on-disk lookup store under concurrent runs of one profile."""

from __future__ import annotations

from pathlib import Path

from map_hr.lookups import LookupStore


def test_lookup_stores_of_one_profile_keep_their_parked_records_apart(tmp_path: Path) -> None:
    """Two map-hr runs of one profile share references but never each other's parked records."""
    path = tmp_path / "profile.sqlite"
    a, b = LookupStore(path), LookupStore(path)
    a.defer("offers", {"id": "a1"})
    a.put("candidates", 7, {"id": 7, "name": "Zoë O'Brien"})
    a.commit()
    b.defer("offers", {"id": "b1"})
    assert b.get("candidates", 7) == {"id": 7, "name": "Zoë O'Brien"}  # shared reference
    assert [m["id"] for _, m in a.drain()] == ["a1"]
    assert [m["id"] for _, m in b.drain()] == ["b1"]  # a's drain did not clear b's
    a.close()
    b.close()


#: a run of map-hr in its own process: one reference record sealed under that process's salt
WRITER = """
import sys
from map_hr.lookups import LookupStore
store = LookupStore(sys.argv[1], key="warm-test-passphrase")
store.put("jobs", sys.argv[2], {"id": sys.argv[2], "jobTitle": "Engineer"})
store.close()
"""
#: a warm process: derives the keys of the store's recent salts, then opens the rows with no
#: key derivation left to do (the KDF is made to fail after the warm-up to prove it)
WARM = """
import sys
from hrsync import sealing
from map_hr.lookups import LookupStore, recent_salts
sealing.sealer("warm-test-passphrase")  # its own salt's key, as hrsync.cli.prefork derives
salts = recent_salts(sys.argv[1])
print(sealing.derive_keys(salts, key="warm-test-passphrase"), len(set(salts)))
def no_kdf(*args, **kwargs):
    raise AssertionError("a key was derived after the warm-up")
sealing.derive_key = no_kdf
store = LookupStore(sys.argv[1], key="warm-test-passphrase")
print(sorted(store.get("jobs", k)["id"] for k in sys.argv[2:]))
"""


def test_a_warm_process_derives_the_keys_of_rows_other_runs_sealed(tmp_path: Path) -> None:
    """Each run seals under its own salt; a warm process (the webhook fast path's) derives the
    keys of the salts the store's newest rows carry, once, so its forked runs derive none."""
    import subprocess
    import sys

    from map_hr.lookups import recent_salts

    path = tmp_path / "bamboohr_to_canonical.sqlite"
    assert recent_salts(path) == []  # no store yet: nothing to derive, nothing created
    assert not path.exists()
    for key in ("1", "2"):  # two earlier runs, two processes, two salts
        subprocess.run([sys.executable, "-c", WRITER, str(path), key], check=True)
    salts = recent_salts(path)
    assert len(salts) == 2 and len(set(salts)) == 2
    assert all(len(s) == 16 for s in salts)
    assert recent_salts(path, limit=1) == salts[:1]  # the newest run's first
    proc = subprocess.run([sys.executable, "-c", WARM, str(path), "1", "2"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.stdout.split("\n")[:2] == ["2 2", "['1', '2']"], proc.stderr[-2000:]
