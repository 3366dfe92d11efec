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
